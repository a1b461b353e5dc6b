// A container group whose image holds a decompression bomb (a small gzip layer that expands past the
// runtime's configured per-layer bound) fails to deploy on the real runc runtime with a diagnosis that
// names the layer digest and the bound, and leaves no partial layer in the layer cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningBerth } from '../src/platform/berth.js';
import { runcUnavailable, type RuncRuntime } from '../src/runtime/runc/runc-runtime.js';
import type { ImagePuller, PulledImage } from '../src/pull/types.js';
import type { BuiltLayer } from '../src/image/layer.js';
import { busyboxLayer, busyboxPath, imageWorkDir, pulledImage, zeroFileLayer } from './helpers/runtime-images.js';
import { openTestRuntime, startBerthOn, stopRuncBerth } from './helpers/runc-berth.js';

const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed');
if (skip) console.log(`# skipping instances-unpack-bound tests: ${skip}`);

const MiB = 1024 * 1024;
let b: RunningBerth;
let dir: string;
let work: string;
let runtime: RuncRuntime;
let base: BuiltLayer;
let bomb: BuiltLayer;

const puller: ImagePuller = {
  async pull(reference: string): Promise<PulledImage> {
    return pulledImage([base, bomb], { cmd: ['/bin/true'] }, reference);
  },
};

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  work = await imageWorkDir();
  base = await busyboxLayer(work);
  bomb = await zeroFileLayer(work, 'bomb', 48 * MiB);
  runtime = await openTestRuntime(dir, { unpack: { maxLayerBytes: 16 * MiB } });
  b = await startBerthOn(dir, runtime, puller);
});
after(async () => {
  if (skip) return;
  await stopRuncBerth(b, runtime, [dir, work]);
});

test('a layer that expands past the bound fails the group with the digest and the bound; no partial layer stays', { skip, timeout: 60_000 }, async () => {
  const { operation } = await b.containerGroups.createOrUpdate('rg', 'bomb', {
    location: 'westus',
    properties: { osType: 'Linux', restartPolicy: 'Never',
      containers: [{ name: 'app', properties: { image: 'localhost/bomb:1', resources: { requests: { cpu: 0.5, memoryInGB: 0.25 } } } }] },
  });
  const deadline = Date.now() + 50_000;
  while (b.containerGroups.operation(operation.id)!.status === 'InProgress') {
    assert.ok(Date.now() < deadline, 'the deployment finishes');
    await new Promise((r) => setTimeout(r, 50));
  }
  const op = b.containerGroups.operation(operation.id)!;
  assert.equal(op.status, 'Failed');
  const message = JSON.stringify(op);
  assert.ok(message.includes(bomb.digest), `the failure names the layer: ${message}`);
  assert.match(message, /more than the 16 MiB a layer may unpack to \(berth serve --max-layer-unpacked\)/);
  const events = (await b.containerGroups.get('rg', 'bomb')).state.containers.app!.events;
  assert.ok(events.some((e) => e.name === 'Failed' && e.message.includes(bomb.digest)), JSON.stringify(events));
  // The layer cache holds the base layer only: nothing of the bomb, no temp directory.
  const cached = await readdir(join(dir, 'runtime', 'layers'));
  assert.deepEqual(cached.filter((n) => !n.startsWith('.overlay-probe')), [base.digest.slice('sha256:'.length)]);
});
