// Image garbage collection (src/instances/image-gc.ts): the runc runtime's extracted layers and the pull
// client's content store. Layers and blobs an existing container uses stay however old; unused ones go
// once past the grace period (mtimes set with utimes, or a later `now`: no sleeps); a lowerdir of a live
// overlay mount is never removed; a crash mid-removal leaves a `.gc-*` directory that is never taken for
// a layer and that the next sweep removes; downloads in progress stay. End to end on a Berth with the real
// pull client: `berth container prune-images` prints what it freed, only an Owner may run it, and a
// group created after it pulls and extracts again and runs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { BuiltLayer } from '../src/image/layer.js';
import { digestOf, type Digest } from '../src/oci/digest.js';
import { startBerth, type RunningBerth } from '../src/platform/berth.js';
import { dataPaths } from '../src/lib/data-dir.js';
import { ContentStore } from '../src/pull/content-store.js';
import { RuncRuntime, runcUnavailable } from '../src/runtime/runc/runc-runtime.js';
import { ImageGoneError, type ContainerSpec } from '../src/runtime/runtime.js';
import { findRole } from '../src/identity/roles.js';
import { runCli, type CliResult } from './helpers/berth.js';
import { FakePuller, FakeRuntime } from './helpers/fake-runtime.js';
import { Reconciler } from '../src/instances/reconciler.js';
import { parseGroupSpec } from '../src/instances/spec.js';
import { initialState } from '../src/instances/state.js';
import { MultiKeychain } from '../src/keychain/keychain.js';
import { createLogger } from '../src/lib/logger.js';
import type { Sandbox, Task } from '../src/runtime/runtime.js';
import { busyboxLayer, busyboxPath, entriesLayer, imageWorkDir, pulledImage } from './helpers/runtime-images.js';

const run = promisify(execFile);
const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed');
if (skip) console.log(`# skipping runtime-gc tests: ${skip}`);

const HOUR = 3600_000;
const DAY = 24 * HOUR;

let work: string;
let base: BuiltLayer;
let layerA: BuiltLayer;
let layerB: BuiltLayer;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  if (skip) return;
  work = await imageWorkDir();
  base = await busyboxLayer(work);
  layerA = await entriesLayer(work, 'a', [{ name: 'marker-a', body: 'layer a\n' }]);
  layerB = await entriesLayer(work, 'b', [{ name: 'marker-b', body: 'layer b\n' }]);
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.log(`# cleanup: ${String(e)}`));
  if (work) await rm(work, { recursive: true, force: true });
});

/** Sets a file's or directory's mtime (and atime) `ms` into the past. */
async function age(path: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms);
  await utimes(path, t, t);
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** A runtime over a fresh data directory (its groups are deleted after the tests). */
async function freshRuntime(): Promise<{ rt: RuncRuntime; dir: string; layerDir: (l: BuiltLayer) => string; groups: Set<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-gc-'));
  const rt = new RuncRuntime({ dataDir: dir });
  await rt.info();
  const groups = new Set<string>();
  cleanups.push(async () => {
    for (const g of groups) await rt.deleteSandbox(g);
    await rt.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { rt, dir, groups, layerDir: (l) => join(dir, 'layers', l.digest.slice('sha256:'.length)) };
}

function spec(name: string, layers: BuiltLayer[], command?: string[]): ContainerSpec {
  return { name, image: pulledImage(layers, { cmd: ['/bin/sh'] }), env: [], ...(command ? { command } : {}) };
}

async function gcDirs(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'layers'))).filter((n) => n.startsWith('.gc-'));
}

describe('runtime layers', { skip }, () => {
  test('layers an existing container uses survive past the grace; once its group is deleted they go after the grace', async () => {
    const { rt, dir, layerDir, groups } = await freshRuntime();
    groups.add('gc-keep');
    const sb = await rt.createSandbox({ groupId: 'gc-keep', ports: [] });
    const s = spec('app', [base, layerA]);
    await rt.create(sb, s);
    for (const l of [base, layerA]) await age(layerDir(l), 2 * DAY);
    let r = await rt.collectGarbage({ graceMs: DAY });
    assert.deepEqual(r, { removed: 0, kept: 2, bytesFreed: 0 });
    for (const l of [base, layerA]) assert.ok(await exists(layerDir(l)), 'a layer of an existing container stays');
    // The content store keeps what the bundle names: manifest, config and layers.
    const refs = await rt.imageReferences();
    for (const d of [s.image.digest, s.image.configDigest, base.digest, layerA.digest]) assert.ok(refs.has(d), `${d} is referenced`);
    // The task record names the image (the merge key of the collection).
    const rec = JSON.parse(await readFile(join(dir, 'groups', 'gc-keep', 'containers', 'app', 'task.json'), 'utf8'));
    assert.deepEqual(rec.image.layers.map((l: { digest: string }) => l.digest), [base.digest, layerA.digest]);

    await rt.deleteSandbox('gc-keep');
    groups.delete('gc-keep');
    assert.equal((await rt.imageReferences()).size, 0);
    // The delete was their last use: within the grace they stay; a day later they go.
    r = await rt.collectGarbage({ graceMs: DAY });
    assert.equal(r.removed, 0);
    r = await rt.collectGarbage({ graceMs: DAY, now: Date.now() + DAY + HOUR });
    assert.equal(r.removed, 2);
    assert.ok(r.bytesFreed > 1_000_000, `busybox's layer is counted (${r.bytesFreed} bytes)`);
    for (const l of [base, layerA]) assert.equal(await exists(layerDir(l)), false);
    assert.deepEqual(await gcDirs(dir), [], 'nothing half-removed is left');
  });

  test('of deleted groups\' layers, those past the grace are removed and younger ones kept', async () => {
    const { rt, dir, layerDir, groups } = await freshRuntime();
    for (const [g, l] of [['gc-one', layerA], ['gc-two', layerB]] as const) {
      groups.add(g);
      await rt.create(await rt.createSandbox({ groupId: g, ports: [] }), spec('app', [base, l]));
      await rt.deleteSandbox(g);
      groups.delete(g);
    }
    await age(layerDir(base), 2 * DAY);
    await age(layerDir(layerA), 25 * HOUR);
    await age(layerDir(layerB), 23 * HOUR);
    const r = await rt.collectGarbage({ graceMs: DAY });
    assert.equal(r.removed, 2);
    assert.equal(r.kept, 1);
    assert.equal(await exists(layerDir(base)), false);
    assert.equal(await exists(layerDir(layerA)), false);
    assert.ok(await exists(layerDir(layerB)), 'the layer used 23 hours ago stays');
    assert.deepEqual(await gcDirs(dir), []);
  });

  test('a lowerdir of a live overlay mount is never removed, even when no bundle names it', async (t) => {
    const { rt, dir, layerDir, groups } = await freshRuntime();
    if ((await rt.info()).rootfs !== 'overlay') return t.skip('overlay mounts do not work here');
    groups.add('gc-mounted');
    const task = await rt.create(await rt.createSandbox({ groupId: 'gc-mounted', ports: [] }), spec('app', [base, layerA]));
    // As a bundle written before image records: task.json without the image.
    const recPath = join(dir, 'groups', 'gc-mounted', 'containers', 'app', 'task.json');
    const { image: _image, ...rec } = JSON.parse(await readFile(recPath, 'utf8'));
    await writeFile(recPath, JSON.stringify(rec));
    assert.equal((await rt.imageReferences()).size, 0);
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(mountinfo.includes(layerA.digest.slice(7)), 'the layer is a lowerdir in mountinfo');
    for (const l of [base, layerA]) await age(layerDir(l), 2 * DAY);
    let r = await rt.collectGarbage({ graceMs: 0 });
    assert.equal(r.removed, 0);
    for (const l of [base, layerA]) assert.ok(await exists(layerDir(l)));
    await rt.delete(task);
    r = await rt.collectGarbage({ graceMs: 0 });
    assert.equal(r.removed, 2, 'unmounted, they go');
  });

  test('a crash mid-removal leaves a .gc-* directory that is never used as the layer and is swept', async () => {
    const { rt, dir, layerDir, groups } = await freshRuntime();
    groups.add('gc-crash');
    const sb = await rt.createSandbox({ groupId: 'gc-crash', ports: [] });
    await rt.delete(await rt.create(sb, spec('first', [base, layerA])));
    // The crash: the layer was renamed away, and its removal stopped half-way.
    const half = join(dir, 'layers', `.gc-${layerA.digest.slice(7, 19)}-0badc0de`);
    await rename(layerDir(layerA), half);
    await rm(join(half, 'marker-a'));
    // A container of the same image extracts the layer again (the .gc-* directory is not the layer).
    const task = await rt.create(sb, spec('second', [base, layerA], ['/bin/cat', '/marker-a']));
    await rt.start(task);
    assert.equal((await rt.wait(task)).exitCode, 0);
    assert.equal(await readFile(task.logPath, 'utf8'), 'layer a\n');
    assert.equal(await readFile(join(layerDir(layerA), 'marker-a'), 'utf8'), 'layer a\n');
    // The next collection sweeps the leftover and removes nothing in use or young.
    const r = await rt.collectGarbage({ graceMs: DAY });
    assert.equal(r.removed, 0);
    assert.deepEqual(await gcDirs(dir), []);
    await rt.deleteSandbox('gc-crash');
    groups.delete('gc-crash');
    // A runtime starting on the data directory sweeps them too.
    await mkdir(join(dir, 'layers', '.gc-0123456789ab-00000000', 'bin'), { recursive: true });
    const again = new RuncRuntime({ dataDir: dir });
    await again.info();
    await again.close();
    assert.deepEqual(await gcDirs(dir), []);
  });

  test('a create whose layer blob is gone fails with ImageGoneError and leaves no bundle', async () => {
    const { rt, dir, groups } = await freshRuntime();
    groups.add('gc-gone');
    const sb = await rt.createSandbox({ groupId: 'gc-gone', ports: [] });
    const copy = join(work, 'gone.tar.gz');
    await copyFile(layerB.path, copy);
    const s = spec('app', [base, { ...layerB, path: copy }]);
    await rm(copy);
    await assert.rejects(rt.create(sb, s), (e: Error) => e instanceof ImageGoneError && e.message.includes(copy));
    assert.equal(await exists(join(dir, 'groups', 'gc-gone', 'containers', 'app')), false);
  });
});

describe('content store', { skip }, () => {
  test('blobs referenced by bundles or pinned by a pull survive; unreferenced old ones go; young ones and downloads stay', async () => {
    const root = await mkdtemp(join(tmpdir(), 'berth-gc-content-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const store = new ContentStore(root);
    const blobs: Record<string, Digest> = {};
    for (const name of ['kept', 'old', 'old2', 'young', 'pinned']) {
      const bytes = Buffer.from(`blob ${name}\n`.repeat(1000));
      blobs[name] = digestOf(bytes, 'sha256');
      await store.putBytes(bytes, blobs[name]!);
      if (name !== 'young') await age(store.path(blobs[name]!), 2 * DAY);
    }
    // A download in progress (and an old, abandoned one: the store's own start-up sweep handles those).
    const tmp = await store.tempPath(blobs.old!);
    await writeFile(tmp, 'partial');
    await age(tmp, 2 * DAY);
    const release = store.pin([blobs.pinned!]);
    const r = await store.collectGarbage({ graceMs: DAY, keep: new Set([blobs.kept!]) });
    assert.equal(r.removed, 2, 'old and old2');
    assert.equal(r.kept, 3);
    assert.ok(r.bytesFreed >= 4096, `${r.bytesFreed} bytes`);
    assert.equal(await store.has(blobs.old!), false);
    assert.equal(await store.has(blobs.old2!), false);
    for (const n of ['kept', 'young', 'pinned']) assert.ok(await store.has(blobs[n]!), `${n} stays`);
    assert.equal(await readFile(tmp, 'utf8'), 'partial', 'the download in progress is untouched');
    release();
    assert.equal((await store.collectGarbage({ graceMs: DAY, keep: new Set() })).removed, 2, 'released and unreferenced: kept and pinned go');
    // Finding a blob cached is a use: its grace starts again.
    const bytes = Buffer.from('blob young\n'.repeat(1000));
    await age(store.path(blobs.young!), 2 * DAY);
    assert.equal(await store.ensure(blobs.young!, bytes.length, async () => assert.fail('cached')), 'cached');
    assert.equal((await store.collectGarbage({ graceMs: DAY, keep: new Set() })).removed, 0);
  });
});

test('the reconciler pulls again when create finds the image data gone: at once the first time, after a back-off when it happens again', async () => {
  // A runtime whose first two creates find the pulled blobs gone (a collection ran since the pull).
  class GoneOnce extends FakeRuntime {
    gone = 2;
    override async create(sb: Sandbox, s: ContainerSpec): Promise<Task> {
      if (this.gone-- > 0) throw new ImageGoneError(`the layer blob of image ${s.image.reference} is gone`);
      return super.create(sb, s);
    }
  }
  const runtime = new GoneOnce();
  const puller = new FakePuller();
  const delays: number[] = [];
  const r = new Reconciler({ runtime, puller, log: createLogger('error', () => undefined), keychainFor: () => new MultiKeychain([]), persist: () => undefined,
    sleep: async (ms) => { delays.push(ms); } });
  const spec = parseGroupSpec({ location: 'westus', properties: { osType: 'Linux', restartPolicy: 'Always',
    containers: [{ name: 'app', properties: { image: 'r.io/app:1', resources: { requests: { cpu: 1, memoryInGB: 1 } } } }] } });
  const g = { id: 'g-gone', resourceGroup: 'rg', name: 'grp', location: 'westus', spec, state: initialState(['app']), createdAt: '' };
  const runner = r.run(g);
  await runtime.running('app');
  await runner.provisioned;
  // First create: gone → pulled again at once (no back-off); the second create: gone again → an ordinary
  // start failure with back-off (no tight loop), then pulled again after it.
  assert.deepEqual(puller.pulls, ['r.io/app:1', 'r.io/app:1', 'r.io/app:1']);
  assert.equal(delays.length, 1);
  await r.halt(g, { deleteSandbox: true });
});

test('berth serve collects on its timer and logs the counts and bytes freed; a bad --image-gc-grace is a usage error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-gc-timer-'));
  const logs: string[] = [];
  const b = await startBerth({ dataDir: dir, port: 0, logSink: (l) => logs.push(l), imageGcIntervalMs: 20, imageGcGraceMs: HOUR });
  try {
    const store = new ContentStore(dataPaths(dir).content);
    const bytes = Buffer.from('an old blob\n'.repeat(500));
    const d = digestOf(bytes, 'sha256');
    await store.putBytes(bytes, d);
    await age(store.path(d), 2 * HOUR);
    let line: string | undefined;
    for (let i = 0; i < 200 && !line; i++) {
      line = logs.find((l) => l.includes('image garbage collected'));
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(line, 'the timer ran');
    assert.match(line, /"blobs":1/);
    assert.match(line, /"bytesFreed":[1-9]/);
    assert.equal(await store.has(d), false);
  } finally {
    await b.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const bad = await runCli(['serve', '--port', '0', '--data-dir', join(tmpdir(), 'berth-gc-never'), '--image-gc-grace', 'soon'], process.env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--image-gc-grace: invalid grace period "soon"/);
});

describe('berth container prune-images, end to end', { skip }, () => {
  let b: RunningBerth;
  let dir: string;
  let rt: RuncRuntime;
  let env: NodeJS.ProcessEnv;
  let acr: { loginServer: string; username: string; password: string };
  const cli = (args: string[]): Promise<CliResult> => runCli(args, env);
  async function ok(args: string[]): Promise<any> {
    const r = await cli(args);
    if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout.trim().startsWith('{') || r.stdout.trim().startsWith('[') ? JSON.parse(r.stdout) : r.stdout;
  }
  /** Polls a group's state a bounded number of times (a process's progress, not a timing assertion). */
  async function state(name: string, want: string): Promise<any> {
    let g: any;
    for (let i = 0; i < 300; i++) {
      g = (await b.containerGroups.list()).find((x) => x.name === name);
      const s = g && (await ok(['container', 'show', '-g', 'rg', '-n', name])).containers[0].instanceView?.currentState?.state;
      if (s === want) return g;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${name} did not reach ${want}: ${JSON.stringify(g)}`);
  }
  const create = (name: string, image: string, command: string) => ok(['container', 'create', '-g', 'rg', '-n', name, '--image', `${acr.loginServer}/${image}`,
    '--registry-login-server', acr.loginServer, '--registry-username', acr.username, '--registry-password', acr.password,
    '--restart-policy', 'Never', '--command-line', command, '--cpu', '0.5', '--memory', '0.25']);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-gc-e2e-'));
    rt = new RuncRuntime({ dataDir: dataPaths(dir).runtime });
    await rt.info();
    b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime: rt, reconciler: { backoff: { baseMs: 200, maxMs: 400 } } });
    env = { ...process.env, BERTH_SERVER: b.url, BERTH_DATA_DIR: dir };
    await ok(['group', 'create', '-n', 'rg', '-l', 'westus']);
    const reg = await ok(['acr', 'create', '-n', 'gcreg01', '-g', 'rg', '--sku', 'Basic', '--admin-enabled', 'true']);
    const cred = await ok(['acr', 'credential', 'show', '-n', 'gcreg01']);
    acr = { loginServer: reg.loginServer, username: cred.username, password: cred.passwords[0].value };
    const rootA = join(work, 'busybox-rootfs');
    const rootB = join(work, 'other-rootfs');
    await run('cp', ['-a', rootA, rootB]);
    await writeFile(join(rootB, 'other.txt'), 'the other image\n');
    await ok(['image', 'push', rootA, `${acr.loginServer}/app:v1`]);
    await ok(['image', 'push', rootB, `${acr.loginServer}/other:v1`]);
  });
  after(async () => {
    if (!b) return;
    for (const g of await b.containerGroups.list()) await b.containerGroups.delete(g.resourceGroup, g.name).catch(() => undefined);
    await b.stop();
    await rt.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Every content blob and cached layer, aged two days (as if nothing had used them since). */
  async function ageEverything(): Promise<void> {
    const p = dataPaths(dir);
    for (const d of [join(p.content, 'blobs', 'sha256'), join(p.runtime, 'layers')]) {
      for (const n of await readdir(d)) if (!n.startsWith('.')) await age(join(d, n), 2 * DAY);
    }
  }

  test('frees what no container uses, prints it, keeps a running group\'s image, and a later group pulls again and runs', async () => {
    await create('keep', 'app:v1', '/bin/sleep 3600');
    await state('keep', 'Running');
    await create('gone', 'other:v1', '/bin/cat /other.txt');
    await state('gone', 'Terminated');
    await ok(['container', 'delete', '-g', 'rg', '-n', 'gone', '--yes']);
    const layers = join(dataPaths(dir).runtime, 'layers');
    assert.equal((await readdir(layers)).length, 2, 'two images, one layer each');
    await ageEverything();

    const freed = await ok(['container', 'prune-images']);
    assert.equal(freed.layers.removed, 1, JSON.stringify(freed));
    assert.equal(freed.layers.kept, 1);
    assert.equal(freed.blobs.removed, 3, 'the other image\'s manifest, config and layer');
    assert.equal(freed.blobs.kept, 3, 'the running image\'s manifest, config and layer');
    assert.equal(freed.graceSeconds, 24 * 3600);
    assert.ok(freed.layers.bytesFreed > 1_000_000 && freed.blobs.bytesFreed > 100_000, JSON.stringify(freed));
    assert.equal(freed.bytesFreed, freed.layers.bytesFreed + freed.blobs.bytesFreed);
    assert.equal((await readdir(layers)).length, 1);

    // --query and -o as every command; --grace 0 still keeps what the running group uses.
    const q = await cli(['container', 'prune-images', '--grace', '0', '--query', '{l: layers.removed, b: blobs.removed, k: layers.kept}', '-o', 'tsv']);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, '0\t0\t1\n');
    const bad = await cli(['container', 'prune-images', '--grace', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--grace: invalid grace period "soon"/);

    // A group of the removed image pulls and extracts it again, and runs.
    await create('again', 'other:v1', '/bin/cat /other.txt');
    await state('again', 'Terminated');
    const logs = await ok(['container', 'logs', '-g', 'rg', '-n', 'again']);
    assert.equal(logs.trim(), 'the other image');
    assert.equal((await readdir(layers)).length, 2);
    await ok(['container', 'delete', '-g', 'rg', '-n', 'again', '--yes']);
    await ok(['container', 'delete', '-g', 'rg', '-n', 'keep', '--yes']);
    const all = await ok(['container', 'prune-images', '--grace', '0']);
    assert.equal(all.layers.removed, 2, JSON.stringify({ all, groups: await readdir(join(dataPaths(dir).runtime, 'groups')).catch(() => []), layers: await readdir(layers), mounts: (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes('overlay')) }));
    assert.equal(all.blobs.removed, 6);
    assert.deepEqual((await readdir(layers)).filter((n) => !n.startsWith('.')), []);
  });

  test('only an Owner of the subscription may prune', async () => {
    const sub = b.identity.ids.subscriptionId;
    const tokenFor = async (role: string) => {
      const app = await b.applications.createApplication(`gc-${role}`);
      await b.applications.createServicePrincipal(app.appId);
      const secret = (await b.applications.addPassword(app.id, {})).secretText;
      await b.identity.assignRole(app.id, findRole(role)!, `/subscriptions/${sub}`);
      const r = await fetch(`${b.url}/${b.identity.ids.tenantId}/oauth2/v2.0/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: secret, scope: 'https://management.azure.com/.default' }),
      });
      return ((await r.json()) as { access_token: string }).access_token;
    };
    const prune = (token?: string) => fetch(`${b.url}/berth/images/prune`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: '{}' });
    assert.equal((await prune()).status, 401);
    const contributor = await prune(await tokenFor('Contributor'));
    assert.equal(contributor.status, 403);
    assert.match(await contributor.text(), /AuthorizationFailed/);
    const owner = await prune(await tokenFor('Owner'));
    assert.equal(owner.status, 200);
    assert.equal(typeof ((await owner.json()) as { bytesFreed: number }).bytesFreed, 'number');
  });
});
