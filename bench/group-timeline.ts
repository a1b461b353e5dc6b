// A timeline of one container-group start (issue 15): `node dist/bench/group-timeline.js` starts a
// docker-registry and a `berth serve --log-level debug`, pushes busybox, then creates groups through the
// API (a PUT, then the operation and the logs polled every 5 ms) and prints, per group, the client's
// milestones and the server's debug log lines as milliseconds from the PUT. Cold first, then warm.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ArmClient } from '../src/cli/arm-client.js';
import { resolveContext } from '../src/cli/context.js';
import { Cleanup, run, sleep, Tail } from './proc.js';
import { BERTH_BIN, reference } from './servers.js';
import { pushBusybox } from './groups.js';

const PROVIDER = '/providers/Microsoft.ContainerInstance/containerGroups';

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  const tmp = await mkdtemp(join(tmpdir(), 'berth-timeline-'));
  cleanup.dir(tmp);
  try {
    const reg = await reference.start(await mkdtemp(join(tmp, 'reg-')), cleanup);
    const ref = await pushBusybox(tmp, reg);
    const dataDir = await mkdtemp(join(tmp, 'berth-'));
    const lines: Array<{ t: number; msg: string }> = [];
    const p = spawn(process.execPath, [BERTH_BIN, 'serve', '--data-dir', dataDir, '--port', '0', '--log-level', 'debug', '--gc-interval', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.child(p, 'berth serve');
    const tail = new Tail();
    let url = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { tail.push(d); url ||= /Berth is ready at (http:\/\/\S+)/.exec(d)?.[1] ?? ''; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      for (const l of d.split('\n')) {
        try {
          const j = JSON.parse(l) as { time: string; level: string; msg: string; [k: string]: unknown };
          const { time, level: _l, msg, ...rest } = j;
          lines.push({ t: Date.parse(time), msg: `${msg} ${JSON.stringify(rest)}` });
        } catch { /* not JSON */ }
      }
    });
    for (const deadline = Date.now() + 30_000; !url; await sleep(20)) if (Date.now() > deadline) throw new Error(`berth serve did not start:\n${tail}`);
    const env = { ...process.env, BERTH_SERVER: url, BERTH_DATA_DIR: dataDir };
    await run(process.execPath, [BERTH_BIN, 'group', 'create', '-n', 'bench', '-l', 'westus', '-o', 'none'], { env });
    const arm = new ArmClient(resolveContext(env));
    await arm.accessToken();
    for (const name of ['cold', 'warm', 'warm2']) {
      const path = arm.sub(`/resourceGroups/bench${PROVIDER}/${name}`);
      const body = { location: 'westus', properties: { osType: 'Linux', restartPolicy: 'Never',
        imageRegistryCredentials: [{ server: reg.registry, username: reg.username, password: reg.password }],
        containers: [{ name, properties: { image: ref, command: ['/bin/busybox', 'echo', 'ready'], resources: { requests: { cpu: 0.1, memoryInGB: 0.1 } } } }] } };
      const marks: Array<{ t: number; msg: string }> = [];
      const w0 = Date.now();
      const t0 = performance.now();
      const mark = (msg: string) => marks.push({ t: w0 + (performance.now() - t0), msg: `CLIENT ${msg}` });
      let asyncUrl = '';
      await arm.request('PUT', path, body, { apiVersion: '2021-09-01', onHeaders: (h) => { asyncUrl = h.get('azure-asyncoperation') ?? ''; } });
      mark('PUT answered');
      const u = new URL(asyncUrl);
      u.searchParams.delete('api-version');
      let opDone = false;
      let logged = false;
      for (const deadline = Date.now() + 60_000; !(opDone && logged);) {
        if (Date.now() > deadline) throw new Error(`group ${name} did not log within 60 s:\n${tail}`);
        if (!opDone) {
          const op = await arm.request<{ status: string }>('GET', u.pathname + u.search, undefined, { apiVersion: '2018-06-01' });
          if (op?.status !== 'InProgress') { opDone = true; mark(`operation ${op?.status}`); }
        }
        if (!logged) {
          const r = await arm.request<{ content?: string }>('GET', `${path}/containers/${name}/logs`, undefined, { apiVersion: '2021-09-01' }).catch(() => undefined);
          if (r?.content?.includes('ready')) { logged = true; mark('first log line'); }
        }
        await sleep(5);
      }
      process.stdout.write(`--- ${name}\n`);
      for (const l of [...marks, ...lines.filter((x) => x.t >= w0 - 5 && !x.msg.startsWith('api request'))].sort((a, b) => a.t - b.t)) process.stdout.write(`${String(Math.round(l.t - w0)).padStart(6)} ms  ${l.msg.slice(0, 160)}\n`);
      lines.length = 0;
    }
    for (const name of ['cold', 'warm', 'warm2']) await arm.request('DELETE', arm.sub(`/resourceGroups/bench${PROVIDER}/${name}`), undefined, { apiVersion: '2021-09-01' }).catch(() => undefined);
  } finally {
    await cleanup.runAll();
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
