// Container-group start in `npm run bench` (SPEC §7, issue 15): create-to-first-log-line of a busybox
// group, cold (the image cached nowhere) and warm (cached), Berth vs `podman run` vs `docker run` (a
// private dockerd), all three pulling the same image from the same registry: a reference
// `docker-registry` with htpasswd, plain HTTP on loopback, addressed as localhost:<port>. Then the
// fan-out check: N groups (default 50) created at once from one image through a counting proxy, which
// must see one GET per blob; then `container list`/`show` latency with 1,000 groups stored (./group-list.ts).
//
// What each number includes:
// - Berth API: from the PUT (undici, a token already in hand: no CLI start-up) through polling the
//   ARM long-running operation (the server answers a poll when the operation ends, or after 1 s) to a
//   GET of the container's logs that holds "ready" (polled every 10 ms once the operation ended).
// - Berth CLI: from spawning `berth container create … --restart-policy Never --command-line
//   "/bin/busybox echo ready"` (Node start-up of the CLI, token, PUT, the CLI's polling) until the logs
//   API (polled in this process every 50 ms after the CLI exits) returns "ready". A user who then types
//   `berth container logs` adds one more CLI start-up. Cold = a fresh `berth serve` data directory
//   (server start-up not timed); warm = a second group on the same server.
// - podman: `podman run --rm --network slirp4netns … /bin/busybox echo ready` (outbound network, as a
//   Berth group has), and `--network none` for reference, from spawn until "ready" is on its stdout.
//   Cold = a fresh --root/--runroot; warm = the same store again.
// - docker: `docker run --rm --network none …` likewise, against a private dockerd (started with
//   --bridge=none, so no network of its own). Cold = after `docker rmi`; warm = image present.
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request as undiciRequest } from 'undici';
import { ArmClient } from '../src/cli/arm-client.js';
import { resolveContext } from '../src/cli/context.js';
import { dockerdUnavailable, startDockerd, unmountUnder, type Dockerd } from './dockerd.js';
import { Cleanup, run, sleep, which } from './proc.js';
import { BERTH_BIN, berth, reference, type RunningServer } from './servers.js';
import { groupListBench, type GroupListResult } from './group-list.js';

const READY = 'ready';
const COMMAND = ['/bin/busybox', 'echo', READY];
const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
const PROVIDER = '/providers/Microsoft.ContainerInstance/containerGroups';
const ACI_API = '2021-09-01';

export interface StartTimes {
  label: string;
  /** Median seconds from the start command to the first log line. */
  cold: number;
  warm: number;
  coldRuns: number[];
  warmRuns: number[];
  /** Berth only: median seconds the `container create` CLI took (part of cold/warm). */
  createCold?: number;
  createWarm?: number;
}

export interface FanOutResult {
  groups: number;
  /** Seconds from the first PUT to the last group's "ready". */
  seconds: number;
  /** GETs of each blob the counting proxy saw, by digest. */
  blobGets: Record<string, number>;
  manifestGets: number;
  ok: boolean;
}

export interface GroupsBenchResult {
  runs: number;
  /** Berth through the ARM API (an HTTP client, no CLI start-up). */
  berthApi: StartTimes;
  /** Berth through `berth container create`. */
  berth: StartTimes;
  /** podman run --network slirp4netns (outbound network, as a Berth group). */
  podman: StartTimes;
  podmanNone: StartTimes;
  docker: StartTimes;
  fanOut: FanOutResult;
  list: GroupListResult;
}

export function groupsBenchSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'container groups, podman and dockerd need root';
  const missing = ['runc', 'podman', 'busybox'].filter((t) => !which(t));
  if (missing.length) return `${missing.join(', ')} not installed`;
  return dockerdUnavailable();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Spawns a command and resolves with the seconds until `line` appears on its stdout (then waits for exit). */
function secondsToLine(cmd: string, args: string[], env: NodeJS.ProcessEnv, line: string): Promise<number> {
  return new Promise((resolveLine, reject) => {
    const started = performance.now();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let seen: number | undefined;
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (seen === undefined && stdout.split('\n').some((l) => l.trim() === line)) seen = (performance.now() - started) / 1000;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (code === 0 && seen !== undefined) resolveLine(seen);
      else reject(new Error(`${[cmd, ...args].join(' ')} failed (${signal ?? `exit ${code}`}${seen === undefined ? `, no "${line}" line` : ''}):\n${stderr.trim() || stdout.trim()}`));
    });
  });
}

/** A root filesystem of busybox-static alone (/bin/busybox, /bin/sh), pushed with `berth image push`. */
export async function pushBusybox(tmp: string, reg: RunningServer): Promise<string> {
  const root = join(tmp, 'busybox-rootfs');
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(which('busybox')!, join(root, 'bin', 'busybox'));
  await symlink('busybox', join(root, 'bin', 'sh'));
  const ref = `${reg.registry}/bench/busybox:1`;
  await run(process.execPath, [BERTH_BIN, 'image', 'push', root, ref, '-u', reg.username, '--password-stdin', '-o', 'none'],
    { input: reg.password, redact: [reg.password] });
  return ref;
}

// ---- Berth ----

interface BerthRunner {
  server: RunningServer;
  arm: ArmClient;
  env: NodeJS.ProcessEnv;
}

function groupPath(arm: ArmClient, name: string): string {
  return arm.sub(`/resourceGroups/bench${PROVIDER}/${encodeURIComponent(name)}`);
}

async function startBerthRunner(tmp: string, cleanup: Cleanup): Promise<BerthRunner> {
  const server = await berth.start(await mkdtemp(join(tmp, 'berth-groups-')), cleanup);
  const env = server.cliEnv!;
  return { server, env, arm: new ArmClient(resolveContext(env)) };
}

/** Polls the logs API until the container's log holds the line; returns when it does. */
async function waitForLine(b: BerthRunner, name: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const path = `${groupPath(b.arm, name)}/containers/${encodeURIComponent(name)}/logs`;
  for (;;) {
    const r = await b.arm.request<{ content?: string }>('GET', path, undefined, { apiVersion: ACI_API, notFoundOk: true }).catch(() => undefined);
    if (r?.content?.split('\n').some((l) => l.trim() === READY)) return;
    if (Date.now() > deadline) {
      const g = await b.arm.request('GET', groupPath(b.arm, name), undefined, { apiVersion: ACI_API, notFoundOk: true }).catch((e: Error) => e.message);
      throw new Error(`Berth group ${name} logged no "${READY}" within ${timeoutMs / 1000} s; group: ${JSON.stringify(g)}\n${b.server.output()}`);
    }
    await sleep(50);
  }
}

async function berthStart(b: BerthRunner, reg: RunningServer, ref: string, name: string): Promise<{ total: number; create: number }> {
  const t0 = performance.now();
  await run(process.execPath, [BERTH_BIN, 'container', 'create', '-g', 'bench', '-n', name, '--image', ref,
    '--registry-login-server', reg.registry, '--registry-username', reg.username, '--registry-password', reg.password,
    '--command-line', COMMAND.join(' '), '--restart-policy', 'Never', '-o', 'none'], { env: b.env, redact: [reg.password] })
    .catch((e: Error) => { throw new Error(`${e.message}\n--- berth serve output ---\n${b.server.output()}`); });
  const create = (performance.now() - t0) / 1000;
  await waitForLine(b, name);
  return { total: (performance.now() - t0) / 1000, create };
}

function groupBody(reg: RunningServer, ref: string, name: string) {
  return {
    location: 'westus',
    properties: {
      osType: 'Linux',
      restartPolicy: 'Never',
      imageRegistryCredentials: [{ server: reg.registry, username: reg.username, password: reg.password }],
      containers: [{ name, properties: { image: ref, command: COMMAND, resources: { requests: { cpu: 0.1, memoryInGB: 0.1 } } } }],
    },
  };
}

/** Through the API: PUT, the operation polled until it ends, then the logs until they hold the line. */
async function berthApiStart(b: BerthRunner, reg: RunningServer, ref: string, name: string): Promise<number> {
  const token = await b.arm.accessToken();
  const base = b.server.cliEnv!.BERTH_SERVER!;
  const call = async (method: 'GET' | 'PUT', path: string, body?: unknown) => {
    const r = await undiciRequest(new URL(path, base), { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await r.body.text();
    if (r.statusCode >= 300) throw new Error(`${method} ${path}: HTTP ${r.statusCode} ${text.slice(0, 500)}`);
    return { headers: r.headers, json: JSON.parse(text || '{}') as Record<string, unknown> };
  };
  const path = `${groupPath(b.arm, name)}?api-version=${ACI_API}`;
  const t0 = performance.now();
  const put = await call('PUT', path, groupBody(reg, ref, name));
  const op = String(put.headers['azure-asyncoperation'] ?? '');
  for (const deadline = Date.now() + 120_000; ;) {
    const st = String((await call('GET', op)).json.status);
    if (st === 'Succeeded') break;
    if (st !== 'InProgress' || Date.now() > deadline) throw new Error(`Berth group ${name}: operation ${st}\n${b.server.output()}`);
  }
  for (const deadline = Date.now() + 60_000; ;) {
    const logs = await call('GET', `${groupPath(b.arm, name)}/containers/${name}/logs?api-version=${ACI_API}`);
    if (String(logs.json.content ?? '').split('\n').some((l) => l.trim() === READY)) return (performance.now() - t0) / 1000;
    if (Date.now() > deadline) throw new Error(`Berth group ${name} logged no "${READY}"\n${b.server.output()}`);
    await sleep(10);
  }
}

async function deleteGroups(b: BerthRunner, names: string[]): Promise<void> {
  // A few at a time: each delete tears down a sandbox (processes, mounts, namespace).
  const queue = [...names];
  await Promise.all(Array.from({ length: Math.min(8, queue.length) }, async () => {
    for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
      await b.arm.request('DELETE', groupPath(b.arm, n), undefined, { apiVersion: ACI_API, notFoundOk: true }).catch(() => undefined);
    }
  }));
}

// ---- podman ----

async function podmanStarts(tmp: string, reg: RunningServer, ref: string, round: number, network: 'slirp4netns' | 'none'): Promise<{ cold: number; warm: number }> {
  const store = await mkdtemp(join(tmp, `podman-${network}-${round}-`));
  // podman refuses a --runroot longer than 50 characters: that one lives in a short folder of /tmp.
  const runroot = await mkdtemp('/tmp/bpm-');
  const base = ['--root', join(store, 'root'), '--runroot', runroot, '--runtime=runc', '--cgroup-manager=cgroupfs'];
  // Its own auth file, so nothing of the machine's podman login leaks in or is changed.
  const env = { ...process.env, REGISTRY_AUTH_FILE: join(store, 'auth.json') };
  try {
    await run('podman', [...base, 'login', '--tls-verify=false', '-u', reg.username, '--password-stdin', reg.registry], { env, input: reg.password });
    const args = [...base, 'run', '--rm', '--network', network, ...ULIMITS, '--tls-verify=false', ref, ...COMMAND];
    const cold = await secondsToLine('podman', args, env, READY);
    const warm = await secondsToLine('podman', args, env, READY);
    await run('podman', [...base, 'rmi', '-a', '-f'], { env }).catch(() => undefined);
    return { cold, warm };
  } finally {
    await unmountUnder(store);
    await unmountUnder(runroot);
    await rm(store, { recursive: true, force: true });
    await rm(runroot, { recursive: true, force: true });
  }
}

// ---- docker ----

async function dockerStarts(d: Dockerd, ref: string): Promise<{ cold: number; warm: number }> {
  await d.docker(['rmi', '-f', ref]);
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: join(d.dir, 'client'), DOCKER_HOST: d.host };
  delete env.DOCKER_CONTEXT;
  const args = ['run', '--rm', '--network', 'none', ref, ...COMMAND];
  const cold = await secondsToLine(d.cli, args, env, READY);
  const warm = await secondsToLine(d.cli, args, env, READY);
  await d.docker(['rmi', '-f', ref]);
  return { cold, warm };
}

// ---- fan-out through a counting proxy ----

interface CountingProxy {
  registry: string;
  blobGets: Map<string, number>;
  manifestGets: number;
  stop(): Promise<void>;
}

/** Forwards every request to `upstream` (host:port) and counts blob and manifest GETs. */
async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const [host, port] = [upstream.slice(0, upstream.lastIndexOf(':')), Number(upstream.slice(upstream.lastIndexOf(':') + 1))];
  const proxy: CountingProxy = { registry: '', blobGets: new Map(), manifestGets: 0, stop: async () => undefined };
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET') {
      const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
      if (blob) proxy.blobGets.set(blob[1]!, (proxy.blobGets.get(blob[1]!) ?? 0) + 1);
      else if (/\/manifests\/[^/]+$/.test(path)) proxy.manifestGets++;
    }
    const up = httpRequest({ host: host === 'localhost' ? '127.0.0.1' : host, port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.registry = `localhost:${(server.address() as AddressInfo).port}`;
  proxy.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return proxy;
}

async function fanOut(tmp: string, cleanup: Cleanup, reg: RunningServer, count: number, progress: (s: string) => void): Promise<FanOutResult> {
  const proxy = await startCountingProxy(reg.registry);
  const stopProxy = cleanup.add('stop counting proxy', () => proxy.stop());
  const b = await startBerthRunner(tmp, cleanup);
  const names = Array.from({ length: count }, (_, i) => `fan-${i}`);
  try {
    const ref = `${proxy.registry}/bench/busybox:1`;
    const body = groupBody({ ...reg, registry: proxy.registry }, ref, 'c');
    await b.arm.accessToken();
    progress(`bench: creating ${count} groups at once through the counting proxy …`);
    const t0 = performance.now();
    await Promise.all(names.map((n) => b.arm.request('PUT', groupPath(b.arm, n), { ...body, properties: { ...body.properties, containers: [{ ...body.properties.containers[0]!, name: n }] } }, { apiVersion: ACI_API })));
    await Promise.all(names.map((n) => waitForLine(b, n, 300_000)));
    const seconds = (performance.now() - t0) / 1000;
    const blobGets = Object.fromEntries(proxy.blobGets);
    return { groups: count, seconds, blobGets, manifestGets: proxy.manifestGets, ok: Object.values(blobGets).every((n) => n === 1) };
  } finally {
    await deleteGroups(b, names);
    await b.server.stop();
    await stopProxy();
  }
}

// ---- the section ----

export async function groupsBench(tmp: string, cleanup: Cleanup, runs: number, progress: (s: string) => void): Promise<GroupsBenchResult> {
  const fanCount = Number(process.env.BENCH_GROUPS_FANOUT ?? 50);
  if (!Number.isInteger(fanCount) || fanCount < 1) throw new Error(`BENCH_GROUPS_FANOUT must be a whole number >= 1, not "${process.env.BENCH_GROUPS_FANOUT}"`);
  const reg = await reference.start(await mkdtemp(join(tmp, 'groups-registry-')), cleanup);
  try {
    const ref = await pushBusybox(tmp, reg);
    progress('bench: starting a private dockerd …');
    const d = await startDockerd();
    const stopDockerd = cleanup.add('stop dockerd', () => d.stop());
    const pair = () => ({ cold: [] as number[], warm: [] as number[] });
    const times = { berthApi: pair(), berth: { ...pair(), createCold: [] as number[], createWarm: [] as number[] }, podman: pair(), podmanNone: pair(), docker: pair() };
    try {
      await d.ok(['login', '-u', reg.username, '--password-stdin', reg.registry], { input: reg.password });
      const steps: Array<[keyof typeof times, (round: number) => Promise<void>]> = [
        ['berthApi', async (round) => {
          const b = await startBerthRunner(tmp, cleanup);
          try {
            times.berthApi.cold.push(await berthApiStart(b, reg, ref, `api-cold-${round}`));
            times.berthApi.warm.push(await berthApiStart(b, reg, ref, `api-warm-${round}`));
            await deleteGroups(b, [`api-cold-${round}`, `api-warm-${round}`]);
          } finally {
            await b.server.stop();
          }
        }],
        ['berth', async (round) => {
          const b = await startBerthRunner(tmp, cleanup);
          try {
            const cold = await berthStart(b, reg, ref, `cold-${round}`);
            const warm = await berthStart(b, reg, ref, `warm-${round}`);
            times.berth.cold.push(cold.total); times.berth.createCold.push(cold.create);
            times.berth.warm.push(warm.total); times.berth.createWarm.push(warm.create);
            await deleteGroups(b, [`cold-${round}`, `warm-${round}`]);
          } finally {
            await b.server.stop();
          }
        }],
        ['podman', async (round) => {
          const r = await podmanStarts(tmp, reg, ref, round, 'slirp4netns');
          times.podman.cold.push(r.cold); times.podman.warm.push(r.warm);
        }],
        ['podmanNone', async (round) => {
          const r = await podmanStarts(tmp, reg, ref, round, 'none');
          times.podmanNone.cold.push(r.cold); times.podmanNone.warm.push(r.warm);
        }],
        ['docker', async () => {
          const r = await dockerStarts(d, ref);
          times.docker.cold.push(r.cold); times.docker.warm.push(r.warm);
        }],
      ];
      for (let round = 0; round < runs; round++) {
        // Rotate the order so drift on the shared machine favours none of them.
        const order = [...steps.slice(round % steps.length), ...steps.slice(0, round % steps.length)];
        for (const [key, step] of order) {
          await step(round);
          const t = times[key];
          progress(`bench: groups run ${round + 1}/${runs} ${key.padEnd(10)} cold ${t.cold.at(-1)!.toFixed(2)} s, warm ${t.warm.at(-1)!.toFixed(2)} s`);
        }
      }
    } finally {
      await stopDockerd();
    }
    const fan = await fanOut(tmp, cleanup, reg, fanCount, progress);
    const list = await groupListBench(tmp, cleanup, progress);
    const st = (label: string, t: { cold: number[]; warm: number[] }): StartTimes => ({ label, cold: median(t.cold), warm: median(t.warm), coldRuns: t.cold, warmRuns: t.warm });
    return {
      runs,
      berthApi: st('Berth API', times.berthApi),
      berth: { ...st('Berth CLI', times.berth), createCold: median(times.berth.createCold), createWarm: median(times.berth.createWarm) },
      podman: st('podman run (slirp4netns)', times.podman),
      podmanNone: st('podman run (none)', times.podmanNone),
      docker: st('docker run (none)', times.docker),
      fanOut: fan,
      list,
    };
  } finally {
    await reg.stop();
  }
}
