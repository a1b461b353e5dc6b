// The reconciler's restart, back-off and event logic, at unit level. The Runtime and ImagePuller here
// are test doubles written for this file (the end-to-end tests with runc and the real pull client come
// when those land): they let the test decide when a container exits, which pulls fail and which starts
// fail, and the sleep records the back-off delays instead of waiting them out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MultiKeychain } from '../src/keychain/keychain.js';
import { PullError } from '../src/pull/types.js';
import { FakePuller, FakeRuntime } from './helpers/fake-runtime.js';
import { Reconciler } from '../src/instances/reconciler.js';
import { parseGroupSpec } from '../src/instances/spec.js';
import { backoffDelay, groupRunState, initialState, recordEvent, type GroupState } from '../src/instances/state.js';
import type { StoredGroup } from '../src/instances/store.js';
import { createLogger } from '../src/lib/logger.js';

function group(restartPolicy: string, containers = ['app'], extra: Record<string, unknown> = {}): StoredGroup {
  const spec = parseGroupSpec({ location: 'westus', properties: { osType: 'Linux', restartPolicy, ...extra,
    containers: containers.map((name) => ({ name, properties: { image: `r.io/${name}:1`, ports: [{ port: 80 }], resources: { requests: { cpu: 1, memoryInGB: 1 } } } })) } });
  return { id: `g-${Math.random().toString(16).slice(2)}`, resourceGroup: 'rg', name: 'grp', location: 'westus', spec, state: initialState(containers), createdAt: '' };
}

function setup(logDir?: string) {
  const runtime = new FakeRuntime(logDir);
  const puller = new FakePuller();
  const delays: number[] = [];
  const saved = new Map<string, GroupState>();
  const watchers: Array<() => void> = [];
  const r = new Reconciler({
    runtime, puller, log: createLogger('error', () => undefined),
    keychainFor: () => new MultiKeychain([]),
    persist: (id, s) => { saved.set(id, structuredClone(s)); for (const w of watchers.splice(0)) w(); },
    sleep: async (ms) => { delays.push(ms); },
  });
  /** Resolves when the persisted state satisfies `pred`. */
  const until = async (g: StoredGroup, pred: (s: GroupState) => boolean) => {
    for (;;) {
      const s = saved.get(g.id);
      if (s && pred(s)) return s;
      await new Promise<void>((res) => watchers.push(res));
    }
  };
  return { runtime, puller, delays, r, until };
}

const names = (s: GroupState, c = 'app') => s.containers[c]!.events.map((e) => `${e.name}x${e.count}`);

test('OnFailure: failed exits restart with 10 s, 20 s back-off; a clean exit ends it; events fold with counts', async () => {
  const { runtime, delays, r, until } = setup();
  const g = group('OnFailure');
  const runner = r.run(g);
  assert.deepEqual(await runner.provisioned, { ok: true });
  runtime.exit('app', 1);
  await runtime.running('app', 2);
  runtime.exit('app', 2);
  await runtime.running('app', 3);
  runtime.exit('app', 0);
  const s = await until(g, (x) => x.containers.app!.currentState?.state === 'Terminated');
  assert.deepEqual(delays, [10_000, 20_000]);
  const c = s.containers.app!;
  assert.equal(c.restartCount, 2);
  assert.equal(c.currentState!.exitCode, 0);
  assert.equal(c.currentState!.detailStatus, 'Completed');
  assert.deepEqual({ state: c.previousState!.state, exitCode: c.previousState!.exitCode, detailStatus: c.previousState!.detailStatus }, { state: 'Terminated', exitCode: 2, detailStatus: 'Error' });
  assert.deepEqual(names(s), ['Pullingx1', 'Pulledx1', 'BackOffx1', 'BackOffx1', 'Createdx3', 'Startedx3']);
  const backoffs = c.events.filter((e) => e.name === 'BackOff');
  assert.deepEqual(backoffs.map((e) => e.message), ['Back-off restarting failed container app; last error: exited with code 1 (Error)',
    'Back-off restarting failed container app; last error: exited with code 2 (Error)']);
  assert.ok(backoffs.every((e) => e.type === 'Warning'));
  assert.equal(s.state, 'Succeeded');
  assert.equal(s.provisioningState, 'Succeeded');
  assert.equal(runtime.calls.filter((x) => x.startsWith('sandbox')).length, 1);
});

test('a failed exit\'s last output lines stay in the BackOff event, and the log file stays readable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-fake-logs-'));
  try {
    const { r, until, delays, runtime } = setup(dir);
    const g = group('OnFailure');
    await r.run(g).provisioned;
    const t = await runtime.running('app');
    appendFileSync(t.task.logPath, 'starting\nconnecting to db:5432\nFATAL: password authentication failed\n');
    runtime.exit('app', 2);
    const s = await until(g, (x) => x.containers.app!.events.some((e) => e.name === 'BackOff'));
    assert.equal(s.containers.app!.events.find((e) => e.name === 'BackOff')!.message,
      'Back-off restarting failed container app; last error: exited with code 2 (Error); last output: starting | connecting to db:5432 | FATAL: password authentication failed');
    assert.deepEqual(delays, [10_000]);
    // The same failure again with new output: one BackOff event, count 2, the latest output.
    const t2 = await runtime.running('app', 2);
    appendFileSync(t2.task.logPath, 'retrying\nFATAL: password authentication failed again\n');
    runtime.exit('app', 2);
    const s2 = await until(g, (x) => x.containers.app!.events.some((e) => e.name === 'BackOff' && e.count === 2));
    const backoffs = s2.containers.app!.events.filter((e) => e.name === 'BackOff');
    assert.equal(backoffs.length, 1);
    assert.equal(backoffs[0]!.message, 'Back-off restarting failed container app; last error: exited with code 2 (Error); last output: retrying | FATAL: password authentication failed again',
      'only the last run\'s output');
    await runtime.running('app', 3);
    await r.halt(g, { deleteSandbox: false });
    assert.match(readFileSync(t.task.logPath, 'utf8'), /FATAL/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Never: a failed exit stays terminated and the group is Failed', async () => {
  const { runtime, delays, r, until } = setup();
  const g = group('Never');
  await r.run(g).provisioned;
  runtime.exit('app', 3);
  const s = await until(g, (x) => x.containers.app!.currentState?.state === 'Terminated');
  assert.equal(s.state, 'Failed');
  assert.equal(s.containers.app!.restartCount, 0);
  assert.deepEqual(delays, []);
  assert.equal(runtime.calls.filter((c) => c === 'create app').length, 1);
});

test('Always: clean exits restart too, the back-off doubles and caps at five minutes', async () => {
  const { runtime, delays, r, until } = setup();
  const g = group('Always');
  await r.run(g).provisioned;
  for (let i = 1; i <= 7; i++) {
    runtime.exit('app', 0);
    await runtime.running('app', i + 1);
  }
  assert.deepEqual(delays, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  const s = await until(g, (x) => x.containers.app!.restartCount === 7 && x.containers.app!.currentState?.state === 'Running');
  assert.equal(s.state, 'Running');
  assert.equal(s.containers.app!.events.find((e) => e.name === 'Started')!.count, 8);
  await r.halt(g, { deleteSandbox: true });
});

test('pull failures: Failed and BackOff events keep the registry\'s words, then the pull succeeds', async () => {
  const { runtime, puller, delays, r, until } = setup();
  const err = new PullError('UNAUTHORIZED', 'unauthorized: authentication required', 'The credential source "inline" (user bob) was refused; check the password.');
  puller.failures.push(err, err);
  const g = group('Always');
  const runner = r.run(g);
  const waiting = await until(g, (x) => x.containers.app!.currentState?.detailStatus.startsWith('ErrImagePull') ?? false);
  assert.equal(waiting.containers.app!.currentState!.state, 'Waiting');
  assert.equal(waiting.containers.app!.currentState!.detailStatus, 'ErrImagePull: unauthorized: authentication required');
  await runner.provisioned;
  await runtime.running('app');
  const s = await until(g, (x) => x.containers.app!.currentState?.state === 'Running');
  const ev = s.containers.app!.events;
  const failed = ev.find((e) => e.name === 'Failed')!;
  assert.equal(failed.count, 2);
  assert.equal(failed.type, 'Warning');
  assert.equal(failed.message, `Failed to pull image "r.io/app:1": ${err.message}`);
  const backoff = ev.find((e) => e.name === 'BackOff')!;
  assert.equal(backoff.count, 2);
  assert.match(backoff.message, /^Back-off pulling image "r\.io\/app:1"; last error: unauthorized: authentication required\. The credential source "inline"/);
  assert.equal(ev.find((e) => e.name === 'Pulling')!.count, 3);
  assert.deepEqual(delays, [10_000, 20_000]);
  assert.equal(puller.pulls.length, 3);
  await r.halt(g, { deleteSandbox: true });
});

test('start failures: the BackOff event keeps the start error; with Never the provisioning fails', async () => {
  {
    const { runtime, r, until } = setup();
    runtime.startErrors.push('exec: "nosuchbinary": executable file not found in $PATH');
    const g = group('OnFailure');
    const runner = r.run(g);
    await runtime.running('app');
    assert.deepEqual(await runner.provisioned, { ok: true });
    const s = await until(g, (x) => x.containers.app!.currentState?.state === 'Running');
    const ev = s.containers.app!.events;
    assert.match(ev.find((e) => e.name === 'Failed')!.message, /^Error: failed to start container "app": exec: "nosuchbinary": executable file not found/);
    assert.match(ev.find((e) => e.name === 'BackOff')!.message, /last error: exec: "nosuchbinary": executable file not found/);
    assert.equal(s.containers.app!.previousState!.exitCode, 128);
    assert.match(s.containers.app!.previousState!.detailStatus, /^StartError: /);
    await r.halt(g, { deleteSandbox: true });
  }
  {
    const { runtime, r, until } = setup();
    runtime.startErrors.push('exec format error');
    const g = group('Never');
    const res = await r.run(g).provisioned;
    assert.equal(res.ok, false);
    assert.equal(res.error!.code, 'ContainerGroupDeploymentFailed');
    assert.match(res.error!.message, /Container 'app' failed to start: exec format error/);
    const s = await until(g, (x) => x.provisioningState === 'Failed');
    assert.equal(s.containers.app!.currentState!.state, 'Terminated');
  }
});

test('two containers share one sandbox; provisioning waits for both; halting kills both with Killing events', async () => {
  const { runtime, r, until } = setup();
  const g = group('Always', ['web', 'sidecar'], { ipAddress: { type: 'Public', ports: [{ port: 80 }] } });
  const res = await r.run(g).provisioned;
  assert.equal(res.ok, true);
  assert.equal(runtime.calls.filter((c) => c.startsWith('sandbox')).length, 1);
  await runtime.running('web');
  await runtime.running('sidecar');
  await r.halt(g, { deleteSandbox: true });
  const s = await until(g, (x) => Object.values(x.containers).every((c) => c.currentState?.state === 'Terminated'));
  for (const c of ['web', 'sidecar']) {
    const k = s.containers[c]!.events.find((e) => e.name === 'Killing')!;
    assert.equal(k.message, `Killing container with id ${c}`);
    assert.equal(s.containers[c]!.currentState!.detailStatus, 'Killed');
    assert.equal(s.containers[c]!.currentState!.exitCode, 137);
  }
  assert.ok(runtime.calls.includes('kill web SIGTERM'));
  assert.ok(runtime.calls.includes(`deleteSandbox ${g.id}`));
  assert.equal(runtime.sandboxes.size, 0);
});

test('recover after a server restart: adopts running tasks, recreates lost groups, removes orphans', async () => {
  const { runtime, r, until } = setup();
  // A group whose container still runs.
  const live = group('Always');
  await r.run(live).provisioned;
  await runtime.running('app');
  await r.detachAll(); // server shutdown: containers keep running
  assert.equal(runtime.tasks.size, 1);
  const liveState = structuredClone(live.state);
  // A group whose sandbox is gone (machine rebooted), and an orphan sandbox nobody owns.
  const lost = group('OnFailure');
  lost.state.provisioningState = 'Succeeded';
  lost.state.sandbox = { groupId: lost.id, ip: '127.0.0.1', hostPorts: {} };
  lost.state.containers.app!.currentState = { state: 'Running', startTime: '2026-01-01T00:00:00Z', detailStatus: '' };
  await runtime.createSandbox({ groupId: 'orphan', ports: [] });
  runtime.calls = [];
  const r2 = new Reconciler(r.o);
  await r2.recover([{ ...live, state: liveState }, lost]);
  assert.ok(runtime.calls.includes('deleteSandbox orphan'));
  await until(lost, (x) => x.containers.app!.events.some((e) => e.name === 'Started') && x.containers.app!.currentState?.state === 'Running');
  assert.equal(runtime.calls.filter((c) => c === 'create app').length, 1, 'only the lost group creates its container again');
  // createSandbox is called for both: it adopts the live one (re-opening its identity endpoint).
  assert.equal(runtime.calls.filter((c) => c.startsWith('sandbox')).length, 2);
  // The adopted container is watched: its exit restarts it per policy.
  runtime.exit('app', 0, 'Completed', live.id);
  await until(live, (x) => x.containers.app!.restartCount >= 1);
  await r2.detachAll();
});

test('events fold repeats into counts and keep the last occurrence last; delays and group states', () => {
  const ev: Parameters<typeof recordEvent>[0] = [];
  recordEvent(ev, 'Pulling', 'pulling image "a"', 'Normal', new Date('2026-01-01T00:00:00.123Z'));
  recordEvent(ev, 'Failed', 'Failed to pull image "a": x', 'Warning', new Date('2026-01-01T00:00:01Z'));
  recordEvent(ev, 'Pulling', 'pulling image "a"', 'Normal', new Date('2026-01-01T00:00:12Z'));
  assert.deepEqual(ev.map((e) => [e.name, e.count, e.firstTimestamp, e.lastTimestamp]), [
    ['Failed', 1, '2026-01-01T00:00:01Z', '2026-01-01T00:00:01Z'], ['Pulling', 2, '2026-01-01T00:00:00Z', '2026-01-01T00:00:12Z']]);
  assert.deepEqual(Object.keys(ev[0]!), ['count', 'firstTimestamp', 'lastTimestamp', 'name', 'message', 'type']);
  assert.deepEqual([1, 2, 3, 6, 10].map((n) => backoffDelay(n)), [10_000, 20_000, 40_000, 300_000, 300_000]);
  const s = initialState(['a', 'b']);
  assert.equal(groupRunState(s, 'Never'), 'Pending');
  s.containers.a!.currentState = { state: 'Terminated', exitCode: 0, detailStatus: 'Completed' };
  s.containers.b!.currentState = { state: 'Running', detailStatus: '' };
  assert.equal(groupRunState(s, 'Never'), 'Running');
  s.containers.b!.currentState = { state: 'Terminated', exitCode: 1, detailStatus: 'Error' };
  assert.equal(groupRunState(s, 'Never'), 'Failed');
  assert.equal(groupRunState(s, 'OnFailure'), 'Succeeded');
  s.stopped = true;
  assert.equal(groupRunState(s, 'Never'), 'Stopped');
});

test('a pull in progress shows in the container\'s detailStatus, and is cleared once the image is in', { timeout: 10_000 }, async () => {
  const { r, until, puller } = setup();
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  const real = puller.pull.bind(puller);
  puller.pull = async (reference, o) => {
    o.progress?.layerStart?.({ digest: 'sha256:a', size: 1024 * 1024 });
    o.progress?.layerStart?.({ digest: 'sha256:b', size: 3 * 1024 * 1024 });
    o.progress?.layerDone?.({ digest: 'sha256:a', size: 1024 * 1024 }, 'downloaded');
    await gate;
    return real(reference, o);
  };
  const g = group('Always');
  const runner = r.run(g);
  const pulling = await until(g, (s) => /^Pulling image:/.test(s.containers.app!.currentState?.detailStatus ?? '') && s.containers.app!.currentState!.detailStatus.includes('1 of 2'));
  assert.equal(pulling.containers.app!.currentState!.state, 'Waiting');
  assert.equal(pulling.containers.app!.currentState!.detailStatus, 'Pulling image: 1.0 MiB of 4.0 MiB, 1 of 2 layers');
  release();
  assert.deepEqual(await runner.provisioned, { ok: true });
  const running = await until(g, (s) => s.containers.app!.currentState?.state === 'Running');
  assert.equal(running.containers.app!.currentState!.detailStatus, '');
  await r.halt(g, { deleteSandbox: true });
});

test('pull progress reports at most every interval, and at every finished layer', async () => {
  const { pullStatusReporter } = await import('../src/instances/pull-progress.js');
  let t = 0;
  const seen: string[] = [];
  const p = pullStatusReporter((s) => seen.push(s), { intervalMs: 500, now: () => t });
  const l = { digest: 'sha256:c', size: 2048 };
  p.layerStart!(l);
  p.layerProgress!(l, 1024);
  t = 600;
  p.layerProgress!(l, 512);
  p.layerDone!(l, 'downloaded');
  assert.deepEqual(seen, ['Pulling image: 0 B of 2.0 KiB, 0 of 1 layers', 'Pulling image: 1.5 KiB of 2.0 KiB, 0 of 1 layers', 'Pulling image: 2.0 KiB of 2.0 KiB, 1 of 1 layers']);
});
