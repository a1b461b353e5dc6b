// The decompressed-size bound: a small gzip layer that expands past a (tiny) configured bound stops
// the unpacking with an error naming the layer digest and the bound, and nothing of the layer stays —
// per layer and per image, in the layer cache (overlay) and in a container's own copy, and at the
// disk's reserve. The layers are generated here, streamed (64 MiB of zeros gzips to ~64 KiB).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LayerCache } from '../src/runtime/rootfs/layer-cache.js';
import { buildRootfs } from '../src/runtime/rootfs/rootfs.js';
import { UnpackError, imageMeters } from '../src/runtime/rootfs/unpack-bound.js';
import { DiskSpace } from '../src/storage/disk-space.js';
import { zeroFileLayer } from './helpers/runtime-images.js';
import { mountTmpfs } from './helpers/tmpfs.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'berth-unpack-'));
  dirs.push(d);
  return d;
}

/** A gzip layer of one file `name` of `bytes` zeros (generated, streamed; checked to be small). */
async function zeroLayer(dir: string, name: string, bytes: number): Promise<{ path: string; digest: string }> {
  const l = await zeroFileLayer(dir, name, bytes);
  assert.ok(l.size < bytes / 100, 'the layer is a small gzip');
  return l;
}

const rejectsNaming = (digest: string, bound: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UnpackError, String(e));
  assert.equal(e.digest, digest);
  assert.ok(e.message.includes(digest), e.message);
  assert.match(e.message, bound);
  return true;
};

test('a layer that expands past the per-layer bound is refused and leaves nothing in the layer cache', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const bomb = await zeroLayer(dir, 'bomb', 64 * MiB);
  const cache = new LayerCache(join(dir, 'layers'));
  const meter = imageMeters({ maxLayerBytes: 8 * MiB, maxImageBytes: 100 * MiB }).layer(bomb.digest);
  await assert.rejects(cache.ensure(bomb, undefined, meter), rejectsNaming(bomb.digest, /more than the 8\.0 MiB a layer may unpack to \(berth serve --max-layer-unpacked\)/));
  assert.deepEqual(await readdir(join(dir, 'layers')), [], 'no partial layer directory is left');
  // Under the bound the same layer unpacks.
  const ok = imageMeters({ maxLayerBytes: 65 * MiB, maxImageBytes: 100 * MiB }).layer(bomb.digest);
  const layerDir = await cache.ensure(bomb, undefined, ok);
  assert.equal((await stat(join(layerDir, 'bomb'))).size, 64 * MiB);
});

test('the per-image bound counts every layer unpacked for the image (copy and overlay)', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const a = await zeroLayer(dir, 'a', 6 * MiB);
  const b = await zeroLayer(dir, 'b', 6 * MiB);
  const limits = { maxLayerBytes: 8 * MiB, maxImageBytes: 10 * MiB };
  const image = /more than the 10 MiB an image may unpack to \(berth serve --max-image-unpacked\), at layer/;
  const copy = join(dir, 'bundle-copy');
  await assert.rejects(buildRootfs('copy', new LayerCache(join(dir, 'unused')), [a, b], copy, undefined, limits), rejectsNaming(b.digest, image));
  const cache = new LayerCache(join(dir, 'layers'));
  const overlay = join(dir, 'bundle-overlay');
  await assert.rejects(buildRootfs('overlay', cache, [a, b], overlay, undefined, limits), rejectsNaming(b.digest, image));
  // The first layer was complete and stays cached; the second left nothing.
  assert.deepEqual((await readdir(join(dir, 'layers'))).sort(), [a.digest.slice(7)]);
});

test('unpacking stops at the disk reserve', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const bomb = await zeroLayer(dir, 'bomb', 64 * MiB);
  const space = new DiskSpace(dir, { reserve: 0 });
  const { free } = await space.read();
  // A reserve that leaves 4 MiB to write.
  const tight = new DiskSpace(dir, { reserve: free - 4 * MiB, refreshBytes: MiB });
  await mkdir(join(dir, 'layers'));
  const meter = imageMeters({ maxLayerBytes: 1024 * MiB, maxImageBytes: 1024 * MiB, space: tight }).layer(bomb.digest);
  await assert.rejects(new LayerCache(join(dir, 'layers')).ensure(bomb, undefined, meter),
    rejectsNaming(bomb.digest, /would fill the data directory's disk .*kept in reserve/));
  assert.deepEqual(await readdir(join(dir, 'layers')), []);
});

test('a disk that fills while a layer is unpacked fails naming the layer, and the partial layer goes', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir();
  const bomb = await zeroLayer(dir, 'bomb', 64 * MiB);
  const small = await mountTmpfs('8m');
  if (typeof small === 'string') return t.skip(small);
  try {
    // No reserve watched: the filesystem's ENOSPC is what stops it.
    const limits = { maxLayerBytes: 1024 * MiB, maxImageBytes: 1024 * MiB };
    const cache = new LayerCache(join(small.dir, 'layers'));
    await assert.rejects(buildRootfs('overlay', cache, [bomb], join(small.dir, 'bundle'), undefined, limits),
      rejectsNaming(bomb.digest, /the disk holding Berth's data directory is full; the partial layer was removed/));
    assert.deepEqual(await readdir(join(small.dir, 'layers')), []);
  } finally {
    await small.unmount();
  }
});
