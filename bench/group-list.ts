// `container list` / `container show` latency with many groups stored (issue 15), in `npm run bench`'s
// container-group section: a `berth serve` data directory gets N stopped groups (default 1,000,
// BENCH_GROUPS_STORED) written straight into its store while the server is down — a stopped group runs
// nothing, so none needs a sandbox — then the server is started on it again and the ARM API is timed
// over HTTP in this process (no CLI start-up): the subscription's list, the resource group's list, and
// a GET of single groups.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ArmClient } from '../src/cli/arm-client.js';
import { resolveContext } from '../src/cli/context.js';
import { IdentityService } from '../src/identity/service.js';
import { parseGroupSpec } from '../src/instances/spec.js';
import { initialState } from '../src/instances/state.js';
import { GroupStore } from '../src/instances/store.js';
import { dataPaths } from '../src/lib/data-dir.js';
import { loadKek } from '../src/storage/kek.js';
import { SqliteSql } from '../src/storage/sql/sqlite-sql.js';
import { openDatabase } from '../src/storage/sqlite.js';
import { Cleanup, run, Tail } from './proc.js';
import { BERTH_BIN } from './servers.js';

const API = '2021-09-01';

export interface Latency {
  /** Milliseconds: median and 95th percentile of `samples` requests. */
  medianMs: number;
  p95Ms: number;
  samples: number;
}

export interface GroupListResult {
  groups: number;
  listSubscription: Latency;
  listResourceGroup: Latency;
  show: Latency;
  /** Bytes of one subscription-wide list answer. */
  listBytes: number;
}

function latency(ms: number[]): Latency {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { medianMs: at(0.5), p95Ms: at(0.95), samples: s.length };
}

/** Starts `berth serve` on `dataDir`; resolves with its URL and a stop function (SIGTERM, then the exit). */
async function serve(dataDir: string, cleanup: Cleanup): Promise<{ url: string; stop: () => Promise<void> }> {
  const p = spawn(process.execPath, [BERTH_BIN, 'serve', '--data-dir', dataDir, '--port', '0', '--log-level', 'warn', '--gc-interval', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = cleanup.child(p, 'stop berth serve (group list)');
  const tail = new Tail();
  p.stderr.setEncoding('utf8').on('data', (d: string) => tail.push(d));
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`berth serve was not ready within 60 s:\n${tail}`)), 60_000);
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      seen += d;
      const m = /Berth is ready at (http:\/\/\S+)/.exec(seen);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`berth serve exited (${code}):\n${tail}`)); });
  });
  return { url, stop };
}

/** Writes `count` stopped groups into the store of a data directory whose server is down. */
async function storeGroups(dataDir: string, count: number): Promise<void> {
  const paths = dataPaths(dataDir);
  const db = openDatabase(paths.db);
  try {
    const sql = new SqliteSql(db);
    const store = new GroupStore(sql, (await IdentityService.platformIds(sql)).subscriptionId, await loadKek(sql, paths.kek));
    const spec = parseGroupSpec({ location: 'westus', properties: { osType: 'Linux', restartPolicy: 'Never',
      containers: [{ name: 'app', properties: { image: 'localhost:5000/bench/app:1', command: ['/bin/busybox', 'echo', 'ready'],
        environmentVariables: [{ name: 'MODE', value: 'bench' }, { name: 'TOKEN', secureValue: 'not-a-secret' }],
        resources: { requests: { cpu: 0.1, memoryInGB: 0.1 } } } }] } });
    spec.location = 'westus';
    for (let i = 0; i < count; i++) {
      const state = initialState(['app']);
      state.stopped = true;
      state.state = 'Stopped';
      state.provisioningState = 'Succeeded';
      await store.save({ resourceGroup: 'bench', name: `stored-${String(i).padStart(4, '0')}`, location: 'westus', spec, state });
    }
  } finally {
    db.close();
  }
}

export async function groupListBench(tmp: string, cleanup: Cleanup, progress: (s: string) => void): Promise<GroupListResult> {
  const count = Number(process.env.BENCH_GROUPS_STORED ?? 1000);
  if (!Number.isInteger(count) || count < 1) throw new Error(`BENCH_GROUPS_STORED must be a whole number >= 1, not "${process.env.BENCH_GROUPS_STORED}"`);
  const dataDir = await mkdtemp(join(tmp, 'berth-list-'));
  const removeDir = cleanup.dir(dataDir);
  try {
    let s = await serve(dataDir, cleanup);
    const env = { ...process.env, BERTH_SERVER: s.url, BERTH_DATA_DIR: dataDir };
    await run(process.execPath, [BERTH_BIN, 'group', 'create', '-n', 'bench', '-l', 'westus', '-o', 'none'], { env });
    await s.stop();
    progress(`bench: storing ${count} stopped container groups …`);
    await storeGroups(dataDir, count);
    s = await serve(dataDir, cleanup);
    const arm = new ArmClient(resolveContext({ ...env, BERTH_SERVER: s.url }));
    await arm.accessToken();
    const time = async (n: number, f: (i: number) => Promise<unknown>) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await f(i);
        ms.push(performance.now() - t0);
      }
      return ms;
    };
    const sub = arm.sub(`/providers/Microsoft.ContainerInstance/containerGroups`);
    const rg = arm.sub(`/resourceGroups/bench/providers/Microsoft.ContainerInstance/containerGroups`);
    const first = await arm.request<{ value: unknown[] }>('GET', sub, undefined, { apiVersion: API });
    if (first?.value.length !== count) throw new Error(`the list holds ${first?.value.length} groups, not ${count}`);
    const listBytes = Buffer.byteLength(JSON.stringify(first));
    const listSubscription = latency(await time(20, () => arm.request('GET', sub, undefined, { apiVersion: API })));
    const listResourceGroup = latency(await time(20, () => arm.request('GET', rg, undefined, { apiVersion: API })));
    const show = latency(await time(200, (i) => arm.request('GET', `${rg}/stored-${String((i * 7919) % count).padStart(4, '0')}`, undefined, { apiVersion: API })));
    await s.stop();
    return { groups: count, listSubscription, listResourceGroup, show, listBytes };
  } finally {
    await removeDir();
    await rm(dataDir, { recursive: true, force: true });
  }
}
