// The runc runtime against the real runc, on busybox images built here (test/helpers/runtime-images.ts):
// exit codes and logs, image config merged with the spec, groups sharing localhost, two groups on
// port 80 published on different host ports, exec, OOM, the metadata endpoint bound to its group,
// adoption after a restart, and a delete that leaves no process, mount, namespace or port behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { BuiltLayer } from '../src/image/layer.js';
import { RuncRuntime, runcUnavailable, StartError } from '../src/runtime/runc/runc-runtime.js';
import type { ContainerSpec, Sandbox, SandboxSpec, Task } from '../src/runtime/runtime.js';
import { killedServerGroup } from './helpers/killed-server.js';
import { FORWARDER_SCRIPT } from '../src/runtime/runc/publish.js';
import { aliveWith } from '../src/runtime/runc/proc.js';
import { busyboxLayer, busyboxPath, entriesLayer, imageWorkDir, pulledImage } from './helpers/runtime-images.js';

const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed');
if (skip) console.log(`# skipping runtime-runc tests: ${skip}`);

let dataDir: string;
let work: string;
let rt: RuncRuntime;
let base: BuiltLayer;
const groups = new Set<string>();

async function sandbox(spec: SandboxSpec): Promise<Sandbox> {
  groups.add(spec.groupId);
  return rt.createSandbox(spec);
}

function spec(name: string, command: string[] | undefined, extra: Partial<ContainerSpec> = {}, config = {}): ContainerSpec {
  return { name, image: pulledImage([base], { cmd: ['/bin/sh'], ...config }), env: [], ...(command ? { command } : {}), ...extra };
}

async function runToEnd(sb: Sandbox, s: ContainerSpec) {
  const t = await rt.create(sb, s);
  await rt.start(t);
  const exit = await rt.wait(t);
  return { task: t, exit, log: await readFile(t.logPath, 'utf8') };
}

/** Polls a condition a bounded number of times (readiness of a server in a container, not a timing assertion). */
async function eventually<T>(what: string, f: () => Promise<T | undefined>, tries = 100): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen: ${String(last)}`);
}

async function execOut(t: Task, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => (o += d));
  err.on('data', (d) => (e += d));
  const r = await rt.exec(t, argv, { stdout: out, stderr: err });
  return { code: r.exitCode, out: o, err: e };
}

/** A live process (a zombie has exited: it only waits to be reaped by its parent). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat !== undefined && !/\) Z /.test(stat);
}

async function describeProcess(pid: number): Promise<string> {
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return `${pid} ${cmd.split('\0').join(' ')} [${stat.split(' ').slice(2, 4).join(' ')}]`;
}

async function processesMentioning(s: string): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(s)) out.push(Number(p));
  }
  return out;
}

function connectRefused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((res) => {
    const c = net.connect(port, host);
    c.once('connect', () => {
      c.destroy();
      res(false);
    });
    c.once('error', () => res(true));
  });
}

describe('runc runtime', { skip }, () => {
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'berth-runc-'));
    work = await imageWorkDir();
    base = await busyboxLayer(work);
    rt = new RuncRuntime({ dataDir: join(dataDir, 'runtime') });
    const info = await rt.info();
    console.log(`# runtime here: rootfs=${info.rootfs} cgroups=${info.cgroups.version} memory=${info.cgroups.memory} cpu=${info.cgroups.cpu} nofile=${info.nofile}`);
  });

  after(async () => {
    if (!rt) return;
    for (const g of groups) await rt.deleteSandbox(g).catch((e: Error) => console.log(`# cleanup of ${g}: ${e.message}`));
    await rt.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  test('echo: exit code 0 and its log', async () => {
    const sb = await sandbox({ groupId: 'g-echo', ports: [] });
    const r = await runToEnd(sb, spec('c', ['/bin/echo', 'hello world']));
    assert.equal(r.exit.exitCode, 0);
    assert.equal(r.exit.reason, 'Completed');
    assert.equal(r.log, 'hello world\n');
    assert.equal(await rt.status(r.task), 'stopped');
    assert.deepEqual(await rt.wait(r.task), r.exit, 'wait() after the exit gives the same answer');
  });

  test('exit code 3 is propagated, stderr is in the log', async () => {
    const sb = await sandbox({ groupId: 'g-echo', ports: [] });
    const r = await runToEnd(sb, spec('fail', ['sh', '-c', 'echo oops >&2; exit 3']));
    assert.equal(r.exit.exitCode, 3);
    assert.equal(r.exit.reason, 'Error');
    assert.equal(r.log, 'oops\n');
  });

  test('a missing executable fails start() with runc\'s reason', async () => {
    const sb = await sandbox({ groupId: 'g-echo', ports: [] });
    const t = await rt.create(sb, spec('noexec', ['/bin/not-there']));
    await assert.rejects(rt.start(t), (e: Error) => e instanceof StartError && /not-there/.test(e.message) && /no such file/.test(e.message));
    assert.equal((await rt.wait(t)).reason, 'StartError');
  });

  test('image config merged with the spec: entrypoint+cmd, command replaces both, env overrides, WorkingDir, User', async () => {
    const sb = await sandbox({ groupId: 'g-merge', ports: [] });
    const config = { entrypoint: ['/bin/sh', '-c'], cmd: ['echo "from image $A $B"'], env: ['A=image', 'B=image', 'PATH=/bin'], workingDir: '/work/dir', user: 'app' };
    const fromImage = await runToEnd(sb, spec('img', undefined, {}, config));
    assert.equal(fromImage.log, 'from image image image\n');
    const replaced = await runToEnd(sb, spec('cmd', ['sh', '-c', 'echo "$A $B $C $HOME"; pwd; id -u; id -g; id -G'], { env: ['B=spec', 'C=spec'] }, config));
    assert.equal(replaced.log, 'image spec spec /home/app\n/work/dir\n1000\n1000\n1000 50\n');
    const numeric = await runToEnd(sb, spec('num', ['sh', '-c', 'id -u; id -g'], {}, { user: '4242:77' }));
    assert.equal(numeric.log, '4242\n77\n');
    const sb2 = await sandbox({ groupId: 'g-merge', ports: [] });
    await assert.rejects(rt.create(sb2, spec('nouser', ['true'], {}, { user: 'ghost' })), /user "ghost" is not in the image's \/etc\/passwd/);
    await assert.rejects(rt.create(sb2, { name: 'nocmd', image: pulledImage([base], {}), env: [] }), /no Entrypoint or Cmd/);
  });

  test('two containers of one group talk over localhost', async () => {
    const sb = await sandbox({ groupId: 'g-web', ports: [{ port: 80, protocol: 'TCP' }] });
    const web = await rt.create(sb, spec('web', ['httpd', '-f', '-p', '80', '-h', '/www']));
    await rt.start(web);
    const r = await runToEnd(sb, spec('client', ['sh', '-c', 'for i in $(seq 1 100); do wget -q -O - http://localhost/ && exit 0; sleep 0.1; done; exit 1']));
    assert.equal(r.exit.exitCode, 0, r.log);
    assert.equal(r.log, 'hello from busybox httpd\n');
    assert.equal(await rt.status(web), 'running');
  });

  test('two groups both listen on port 80, published on different host ports, fetched from the host', async () => {
    const sb1 = await sandbox({ groupId: 'g-web', ports: [{ port: 80, protocol: 'TCP' }] }); // adopted: same ports
    const sb2 = await sandbox({ groupId: 'g-web2', ports: [{ port: 80, protocol: 'TCP' }] });
    const other = await rt.create(sb2, spec('web', ['sh', '-c', 'mkdir -p /w2 && echo second group > /w2/index.html && exec httpd -f -p 80 -h /w2']));
    await rt.start(other);
    assert.equal(sb1.ip, '127.0.0.1');
    assert.ok(sb1.hostPorts[80] && sb2.hostPorts[80]);
    assert.notEqual(sb1.hostPorts[80], sb2.hostPorts[80]);
    console.log(`# host ports for group port 80: g-web ${sb1.hostPorts[80]}, g-web2 ${sb2.hostPorts[80]}`);
    const get = (port: number) => eventually(`GET on ${port}`, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/`);
      return r.ok ? r.text() : undefined;
    });
    assert.equal(await get(sb1.hostPorts[80]!), 'hello from busybox httpd\n');
    assert.equal(await get(sb2.hostPorts[80]!), 'second group\n');
  });

  test('exec runs a command with arguments and returns its exit code', async () => {
    const sb = await sandbox({ groupId: 'g-web', ports: [{ port: 80, protocol: 'TCP' }] });
    const web: Task = { groupId: sb.groupId, name: 'web', logPath: '' };
    const r = await execOut(web, ['sh', '-c', 'echo "[$1] [$2]"; echo err >&2; exit 7', 'sh', 'a b', 'c']);
    assert.deepEqual(r, { code: 7, out: '[a b] [c]\n', err: 'err\n' });
    const stdin = new PassThrough();
    const out = new PassThrough();
    let got = '';
    out.on('data', (d) => (got += d));
    const p = rt.exec(web, ['tr', 'a-z', 'A-Z'], { stdin, stdout: out, stderr: new PassThrough() });
    stdin.end('piped in\n');
    assert.equal((await p).exitCode, 0);
    assert.equal(got, 'PIPED IN\n');
  });

  test('secure environment values do not appear in any process command line', async () => {
    const sb = await sandbox({ groupId: 'g-secret', ports: [] });
    const secret = 'S3cret-value-4b1d';
    const t = await rt.create(sb, spec('c', ['sh', '-c', 'while [ ! -e /go ]; do sleep 0.1; done; test "$TOKEN" = "$EXPECTED"'], { env: [`TOKEN=${secret}`, `EXPECTED=${secret}`] }));
    await rt.start(t);
    assert.deepEqual(await processesMentioning(secret), []);
    await execOut(t, ['touch', '/go']);
    assert.equal((await rt.wait(t)).exitCode, 0, 'the value reached the container');
  });

  test('kill: the exit reason is Killed', async () => {
    const sb = await sandbox({ groupId: 'g-echo', ports: [] });
    const t = await rt.create(sb, spec('sleeper', ['sleep', '1000']));
    await rt.start(t);
    await rt.kill(t, 'SIGKILL');
    const exit = await rt.wait(t);
    assert.equal(exit.exitCode, 137);
    assert.equal(exit.reason, 'Killed');
  });

  test('SIGTERM: delivered to an init that handles it; an init without a handler (the kernel would drop it) is killed at once', async () => {
    const sb = await sandbox({ groupId: 'g-term', ports: [] });
    // `sleep` as PID 1 has no SIGTERM handler: without the escalation it would sleep on.
    const plain = await rt.create(sb, spec('plain', ['sleep', '1000']));
    await rt.start(plain);
    await rt.kill(plain, 'SIGTERM');
    // Bounded, so that a SIGTERM the kernel dropped fails the test instead of hanging it.
    const gone = await Promise.race([rt.wait(plain), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('SIGTERM left `sleep` as PID 1 running')), 30_000).unref())]);
    assert.equal(gone.exitCode, 137);
    assert.equal(gone.reason, 'Killed');
    // A shell that traps TERM gets the signal itself and exits its own way.
    const trapping = await rt.create(sb, spec('trapping', ['sh', '-c', 'trap "echo got TERM; exit 3" TERM; touch /ready; while :; do sleep 0.1; done']));
    await rt.start(trapping);
    await eventually('the trap set', async () => ((await execOut(trapping, ['test', '-e', '/ready'])).code === 0 ? true : undefined));
    await rt.kill(trapping, 'SIGTERM');
    const own = await rt.wait(trapping);
    assert.equal(own.exitCode, 3);
    assert.match(await readFile(trapping.logPath, 'utf8'), /got TERM/);
  });

  test('memory limit: a container over it is OOM-killed and says OOMKilled', async (t) => {
    const info = await rt.info();
    if (!info.cgroups.memory) return t.skip(`no memory cgroup controller on this machine (cgroups ${info.cgroups.version})`);
    const sb = await sandbox({ groupId: 'g-oom', ports: [] });
    const r = await runToEnd(sb, spec('hog', ['sh', '-c', 'echo start; x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'], { memoryBytes: 32 * 1024 * 1024, cpu: 0.5 }));
    assert.equal(r.exit.reason, 'OOMKilled');
    assert.equal(r.exit.exitCode, 137);
    assert.equal(r.log, 'start\n');
    const fine = await runToEnd(sb, spec('small', ['sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'], { memoryBytes: 32 * 1024 * 1024 }));
    assert.equal(fine.exit.reason, 'Completed');
    assert.equal(fine.log.trim(), String(32 * 1024 * 1024));
  });

  test('cpu quota and rlimits within the host\'s hard limits', async (t) => {
    const info = await rt.info();
    if (!info.cgroups.cpu) return t.skip(`no cpu cgroup controller on this machine (cgroups ${info.cgroups.version})`);
    const sb = await sandbox({ groupId: 'g-oom', ports: [] });
    const r = await runToEnd(sb, spec('cpu', ['sh', '-c', '(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d" " -f1 /sys/fs/cgroup/cpu.max); ulimit -n; ulimit -Hn'], { cpu: 1.5 }));
    assert.equal(r.log, `150000\n1024\n${info.nofile}\n`);
  });

  test('UDP ports are published too', async () => {
    const sb = await sandbox({ groupId: 'g-udp', ports: [{ port: 5353, protocol: 'UDP' }] });
    // busybox has no UDP server: a node echo server runs inside the group's namespace instead.
    const echo = spawn('nsenter', [`--net=${join(dataDir, 'runtime', 'groups', 'g-udp', 'netns')}`, '--', process.execPath, '-e',
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(Buffer.concat([Buffer.from('echo:'),m]),r.port,r.address));s.bind(5353,'127.0.0.1',()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((res) => echo.stdout!.once('data', res));
      const client = dgram.createSocket('udp4');
      const reply = await eventually('a UDP reply', () => new Promise<string | undefined>((res) => {
        const t = setTimeout(() => res(undefined), 200);
        client.once('message', (m) => { clearTimeout(t); res(m.toString()); });
        client.send('ping', sb.hostPorts[5353]!, '127.0.0.1');
      }), 20);
      client.close();
      assert.equal(reply, 'echo:ping');
    } finally {
      echo.kill();
    }
  });

  test('copy rootfs (the fallback where overlay mounts fail) gives the same filesystem', async () => {
    const copyDir = await mkdtemp(join(tmpdir(), 'berth-runc-copy-'));
    const copyRt = new RuncRuntime({ dataDir: copyDir, rootfs: 'copy' });
    try {
      assert.equal((await copyRt.info()).rootfs, 'copy');
      const upper = await entriesLayer(work, 'upper-copy', [{ name: 'etc/.wh.motd' }, { name: 'opt/.wh..wh..opq' }, { name: 'opt/upper', body: 'upper\n' }]);
      const sb = await copyRt.createSandbox({ groupId: 'g-copy', ports: [] });
      const t = await copyRt.create(sb, { name: 'c', image: pulledImage([base, upper], {}), env: [], command: ['sh', '-c', 'ls /opt; ls /etc/motd 2>/dev/null; echo done'] });
      await copyRt.start(t);
      assert.equal((await copyRt.wait(t)).exitCode, 0);
      assert.equal(await readFile(t.logPath, 'utf8'), 'upper\ndone\n');
      await copyRt.deleteSandbox('g-copy');
    } finally {
      await copyRt.deleteSandbox('g-copy');
      await rm(copyDir, { recursive: true, force: true });
    }
  });

  test('the metadata endpoint answers only inside the group that holds the identity', async () => {
    const seen: Array<{ path: string; headers: Record<string, string> }> = [];
    const sb = await sandbox({
      groupId: 'g-id',
      ports: [],
      identityEndpoint: async (req) => {
        seen.push({ path: req.path, headers: req.headers });
        if (req.headers.metadata !== 'true') return { status: 400, headers: { 'content-type': 'application/json' }, body: '{"error":"invalid_request"}' };
        return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: 'tok-for-g-id', token_type: 'Bearer' }) };
      },
    });
    const url = 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net';
    // The group itself serves on 0.0.0.0:80: the metadata address must not take that port from it.
    const web = await rt.create(sb, spec('web', ['httpd', '-f', '-p', '80', '-h', '/www']));
    await rt.start(web);
    const r = await runToEnd(sb, spec('c', ['sh', '-c', `for i in $(seq 1 100); do wget -q -O /dev/null http://127.0.0.1/ && break; sleep 0.1; done; wget -q -O - --header 'Metadata: true' '${url}'`]));
    assert.equal(r.exit.exitCode, 0, r.log);
    assert.equal(await rt.status(web), 'running', await readFile(web.logPath, 'utf8'));
    assert.equal(JSON.parse(r.log).access_token, 'tok-for-g-id');
    assert.equal(seen[0]?.path, '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net');
    const other = await sandbox({ groupId: 'g-noid', ports: [] });
    const n = await runToEnd(other, spec('c', ['wget', '-q', '-T', '3', '-O', '-', '--header', 'Metadata: true', url]));
    assert.notEqual(n.exit.exitCode, 0);
    assert.doesNotMatch(n.log, /tok-for-g-id/);
    assert.equal(seen.length, 1, 'the other group never reached the identity endpoint');
  });

  test('layers stack with whiteouts and opaque directories (overlay or copy)', async () => {
    const upper = await entriesLayer(work, 'upper', [
      { name: 'etc/.wh.motd' },
      { name: 'opt/', type: 'directory', mode: 0o755 },
      { name: 'opt/.wh..wh..opq' },
      { name: 'opt/upper', body: 'upper\n' },
    ]);
    const sb = await sandbox({ groupId: 'g-layers', ports: [] });
    const image = pulledImage([base, upper], {});
    const r = await runToEnd(sb, { name: 'c', image, env: [], command: ['sh', '-c', 'ls /opt; test -e /etc/motd && echo motd still there; echo x > /opt/written; cat /opt/upper'] });
    assert.equal(r.log, 'upper\nupper\n');
    const again = await runToEnd(sb, { name: 'c2', image, env: [], command: ['ls', '/opt'] });
    assert.equal(again.log, 'upper\n', 'one container\'s writes are not seen by another');
  });

  test('a new runtime on the same data dir (Berth restarted) lists running tasks and waits for them', async () => {
    const sb = await sandbox({ groupId: 'g-restart', ports: [{ port: 8080, protocol: 'TCP' }] });
    const t = await rt.create(sb, spec('waiter', ['sh', '-c', 'echo waiting; while [ ! -e /go ]; do sleep 0.1; done; echo released']));
    await rt.start(t);
    const again = new RuncRuntime({ dataDir: join(dataDir, 'runtime') });
    const listed = await again.list();
    const g = listed.find((x) => x.groupId === 'g-restart');
    assert.ok(g, JSON.stringify(listed));
    const c = g.containers.find((x) => x.name === 'waiter');
    assert.equal(c?.status, 'running');
    assert.ok(c?.pid && (await alive(c.pid)));
    const adopted = await again.createSandbox({ groupId: 'g-restart', ports: [{ port: 8080, protocol: 'TCP' }] });
    assert.deepEqual(adopted.hostPorts, sb.hostPorts, 'the adopted group keeps its host ports');
    const waiting = again.wait(t);
    const out = new PassThrough();
    assert.equal((await again.exec(t, ['touch', '/go'], { stdout: out, stderr: out })).exitCode, 0);
    const exit = await waiting;
    assert.equal(exit.exitCode, 0);
    assert.equal(await readFile(t.logPath, 'utf8'), 'waiting\nreleased\n');
    // A server shutdown: pending waits end, the containers do not.
    const web: Task = { groupId: 'g-web', name: 'web', logPath: '' };
    const hanging = again.wait(web);
    await again.close();
    await assert.rejects(hanging, /closed/);
    assert.equal(await rt.status(web), 'running');
  });

  test('a runtime that starts stops the helper processes of groups that are gone, and only those', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-runc-orphans-'));
    const groupsDir = join(dir, 'groups');
    await mkdir(join(groupsDir, 'g-live'), { recursive: true });
    await writeFile(join(groupsDir, 'g-live', 'sandbox.json'), '{}');
    // Stand-ins with the command lines of a forwarder and an outbound stack (sh runs `sleep`; its argv
    // carries the marks): one of a group that is gone, one of a group that still exists.
    const standIn = (...marks: string[]) => {
      const c = spawn('sh', ['-c', 'sleep 1000', ...marks], { stdio: 'ignore', detached: true });
      c.unref();
      return c.pid!;
    };
    const goneFwd = standIn(FORWARDER_SCRIPT, join(groupsDir, 'g-gone', 'forwarder.json'));
    const goneNet = standIn('--netns-type=path', join(groupsDir, 'g-gone2', 'netns'), 'tap0');
    const liveFwd = standIn(FORWARDER_SCRIPT, join(groupsDir, 'g-live', 'forwarder.json'));
    try {
      await new RuncRuntime({ dataDir: dir }).info();
      assert.equal(await aliveWith(goneFwd, FORWARDER_SCRIPT), false, 'the forwarder of a removed group is stopped');
      assert.equal(await aliveWith(goneNet, '--netns-type=path'), false, 'and its network stack');
      assert.equal(await aliveWith(liveFwd, FORWARDER_SCRIPT), true, 'a live group\'s forwarder is left alone');
    } finally {
      for (const pid of [goneFwd, goneNet, liveFwd]) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('kill -9 of the server process: containers, logs, ports survive; a new runtime adopts them', async () => {
    groups.add('g-killed');
    const sb = await killedServerGroup(join(dataDir, 'runtime'), base);

    const next = new RuncRuntime({ dataDir: join(dataDir, 'runtime') });
    const g = (await next.list()).find((x) => x.groupId === 'g-killed');
    assert.deepEqual(g?.containers.map((c) => [c.name, c.status]), [['client', 'running'], ['web', 'running']]);
    const page = await eventually('the published port after the kill', async () => (await fetch(`http://127.0.0.1:${sb.hostPorts[80]}/`)).text());
    assert.equal(page, 'hello from busybox httpd\n');
    const adopted = await next.createSandbox({
      groupId: 'g-killed',
      ports: [{ port: 80, protocol: 'TCP' }],
      identityEndpoint: async () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"access_token":"from-the-new-server"}' }),
    });
    assert.deepEqual(adopted, sb);
    const client: Task = { groupId: 'g-killed', name: 'client', logPath: join(dataDir, 'runtime', 'groups', 'g-killed', 'logs', 'client.log') };
    const done = next.wait(client);
    await next.exec(client, ['touch', '/go'], { stdout: new PassThrough(), stderr: new PassThrough() });
    assert.equal((await done).exitCode, 0);
    assert.equal(await readFile(client.logPath, 'utf8'), 'before\n{"access_token":"from-the-new-server"}');
    await next.deleteSandbox('g-killed');
    await next.close();
    assert.equal(await connectRefused(sb.hostPorts[80]!), true);
  });

  test('deleteSandbox leaves no process, mount, namespace, cgroup or listening port', async () => {
    const sb = await sandbox({ groupId: 'g-web', ports: [{ port: 80, protocol: 'TCP' }] });
    const groupDir = join(dataDir, 'runtime', 'groups', 'g-web');
    const listed = (await rt.list()).find((g) => g.groupId === 'g-web')!;
    const pids = listed.containers.flatMap((c) => (c.pid ? [c.pid] : []));
    assert.ok(pids.length > 0, 'the httpd container runs');
    const helpers = await processesMentioning(groupDir + '/');
    assert.ok(helpers.length >= 2, 'a shim and the forwarder');
    assert.equal(await connectRefused(sb.hostPorts[80]!), false);
    const runcIds = execFileSync('runc', ['--root', join(dataDir, 'runtime', 'runc'), 'list', '-q']).toString().split('\n').filter(Boolean);

    await rt.deleteSandbox('g-web');
    groups.delete('g-web');

    for (const pid of [...pids, ...helpers]) assert.equal(await alive(pid), false, `process ${await describeProcess(pid)} is still alive`);
    const mentioning = [];
    for (const pid of await processesMentioning(groupDir + '/')) if (await alive(pid)) mentioning.push(await describeProcess(pid));
    assert.deepEqual(mentioning, []);
    const mounts = await readFile('/proc/mounts', 'utf8');
    assert.deepEqual(mounts.split('\n').filter((l) => l.split(' ')[1] === join(groupDir, 'netns') || l.includes(groupDir + '/')), [], 'a mount of the group is left');
    await assert.rejects(access(groupDir));
    assert.equal(await connectRefused(sb.hostPorts[80]!), true, 'the published port still accepts connections');
    const left = execFileSync('runc', ['--root', join(dataDir, 'runtime', 'runc'), 'list', '-q']).toString().split('\n').filter(Boolean);
    assert.equal(left.length, runcIds.length - 2, 'runc still knows containers of the group');
    for (const ctl of ['pids', 'cpu', 'freezer']) {
      const names = await readdir(`/sys/fs/cgroup/${ctl}`).catch(() => [] as string[]);
      for (const id of runcIds.filter((i) => !left.includes(i))) assert.equal(names.includes(id), false, `cgroup ${ctl}/${id} is left`);
    }
    await rt.deleteSandbox('g-web'); // idempotent
  });
});
