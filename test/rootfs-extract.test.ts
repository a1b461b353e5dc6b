// Layer extraction: the named table of breakout attempts (./helpers/breakout-cases.ts), each built as a real tar with tar-stream; for
// every case extraction refuses it (LayerError naming the entry) or neutralises it (the write lands
// inside the root), and nothing outside the root changes. Plus the ordinary cases: modes, owners,
// mtimes, links, FIFOs, gzip, whiteouts applied and stored for overlayfs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createHash as hash } from 'node:crypto';
import { CASES, hostPasswd, snapshot, tarOf } from './helpers/breakout-cases.js';
import { applyLayer, LayerError } from '../src/runtime/rootfs/apply-layer.js';
import { LayerCache } from '../src/runtime/rootfs/layer-cache.js';
import { resolveInRoot } from '../src/lib/root-path.js';

const bases: string[] = [];
after(async () => {
  for (const b of bases) await rm(b, { recursive: true, force: true });
});

/** A fresh root with a sentinel directory beside it, and optional lower content in the root. */
async function fixture(lower?: (root: string, sentinel: string) => Promise<void>) {
  const base = await mkdtemp(join(tmpdir(), 'berth-extract-'));
  bases.push(base);
  const root = join(base, 'root');
  const sentinel = join(base, 'sentinel');
  await mkdir(join(sentinel, 'dir'), { recursive: true });
  await writeFile(join(sentinel, 'file'), 'keep me');
  await writeFile(join(sentinel, 'dir', 'x'), 'keep me too');
  await mkdir(root);
  if (lower) await lower(root, sentinel);
  return { base, root, sentinel };
}

describe('malicious layers', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const f = await fixture(c.lower);
      const before = await snapshot(f.sentinel);
      const passwdBefore = await hostPasswd();
      const tar = await tarOf(c.entries(f));
      const p = applyLayer(f.root, Readable.from([tar]), { whiteouts: c.mode ?? 'apply' });
      if ('refused' in c.expect) {
        const entry = c.expect.refused;
        await assert.rejects(p, (e: Error) => e instanceof LayerError && e.message.includes(`"${entry}"`));
      } else {
        await p;
        await c.expect.neutralised(f.root, f.base);
      }
      assert.deepEqual(await snapshot(f.sentinel), before, 'the sentinel directory outside the root changed');
      assert.deepEqual((await readdir(f.base)).sort(), ['root', 'sentinel'], 'something was created beside the root');
      assert.equal(await hostPasswd(), passwdBefore);
    });
  }
});

describe('ordinary layers', () => {
  test('modes, owners, mtimes, symlinks, hard links, FIFOs; gzip detected by magic', async () => {
    const f = await fixture();
    const mtime = new Date(1_500_000_000_000);
    const tar = await tarOf([
      { name: 'usr/', type: 'directory', mode: 0o755, mtime },
      { name: 'usr/bin/', type: 'directory', mode: 0o750, uid: 12, gid: 34, mtime },
      { name: 'usr/bin/tool', body: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 1001, mtime },
      { name: 'usr/bin/tool2', type: 'link', linkname: 'usr/bin/tool' },
      { name: 'bin', type: 'symlink', linkname: 'usr/bin', mtime },
      { name: 'bin/viasymlink', body: 'inside' },
      { name: './etc/fifo', type: 'fifo', mode: 0o640 },
    ]);
    const r = await applyLayer(f.root, Readable.from([gzipSync(tar)]), { whiteouts: 'apply' });
    assert.equal(r.entries, 7);
    const tool = await lstat(join(f.root, 'usr/bin/tool'));
    assert.equal(tool.mode & 0o7777, 0o4755);
    assert.equal(tool.uid, 1000);
    assert.equal(tool.gid, 1001);
    assert.equal(tool.nlink, 2);
    assert.equal(tool.mtimeMs, mtime.getTime());
    const bin = await lstat(join(f.root, 'usr/bin'));
    assert.equal(bin.mode & 0o7777, 0o750);
    assert.equal(bin.uid, 12);
    assert.equal(bin.mtimeMs, mtime.getTime(), 'directory mtimes are set after their children');
    assert.equal(await readlink(join(f.root, 'bin')), 'usr/bin');
    assert.equal(await readFile(join(f.root, 'usr/bin/viasymlink'), 'utf8'), 'inside');
    assert.ok((await lstat(join(f.root, 'etc/fifo'))).isFIFO());
  });

  test('whiteouts applied: file and directory deleted, opaque directory emptied of lower entries', async () => {
    const f = await fixture(async (root) => {
      await mkdir(join(root, 'a/b'), { recursive: true });
      await writeFile(join(root, 'a/gone'), 'x');
      await writeFile(join(root, 'a/b/old'), 'x');
      await writeFile(join(root, 'keep'), 'x');
      await mkdir(join(root, 'o/deep'), { recursive: true });
      await writeFile(join(root, 'o/lower'), 'x');
    });
    const tar = await tarOf([
      { name: 'a/.wh.gone' },
      { name: 'a/.wh.b' },
      { name: 'o/', type: 'directory', mode: 0o755 },
      { name: 'o/upper', body: 'new' },
      { name: 'o/.wh..wh..opq' },
    ]);
    await applyLayer(f.root, Readable.from([tar]), { whiteouts: 'apply' });
    assert.deepEqual((await readdir(join(f.root, 'a'))).sort(), []);
    assert.deepEqual((await readdir(join(f.root, 'o'))).sort(), ['upper']);
    assert.deepEqual((await readdir(f.root)).sort(), ['a', 'keep', 'o']);
  });

  test('whiteouts stored for overlayfs: 0/0 character device and trusted.overlay.opaque', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to create overlay whiteouts');
    const f = await fixture();
    const tar = await tarOf([{ name: 'a/.wh.gone' }, { name: 'o/', type: 'directory', mode: 0o755 }, { name: 'o/.wh..wh..opq' }]);
    await applyLayer(f.root, Readable.from([tar]), { whiteouts: 'overlay' });
    const wh = await lstat(join(f.root, 'a/gone'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    const attr = execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(f.root, 'o')]).toString();
    assert.equal(attr, 'y');
  });

  test('resolveInRoot follows symlinks as the container sees them', async () => {
    const f = await fixture(async (root) => {
      await mkdir(join(root, 'usr/lib'), { recursive: true });
      await symlink('usr/lib', join(root, 'lib'));
      await symlink('/usr', join(root, 'abs'));
      await symlink('../../../../..', join(root, 'usr/lib/up'));
    });
    assert.equal(await resolveInRoot(f.root, 'lib/x'), join(f.root, 'usr/lib/x'));
    assert.equal(await resolveInRoot(f.root, '/abs/lib/x'), join(f.root, 'usr/lib/x'));
    assert.equal(await resolveInRoot(f.root, 'lib/up/etc/passwd'), join(f.root, 'etc/passwd'));
    assert.equal(await resolveInRoot(f.root, 'lib', { followFinal: false }), join(f.root, 'lib'));
  });

  test('zstd layers are refused with a clear message', async () => {
    const f = await fixture();
    await assert.rejects(applyLayer(f.root, Readable.from([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])]), { whiteouts: 'apply' }), /zstd/);
  });
});

describe('layer cache', () => {
  test('extracts once into <dir>/<hex>, shares concurrent requests, refuses a blob that does not match its digest', async () => {
    const f = await fixture();
    const blob = gzipSync(await tarOf([{ name: 'hello', body: 'world' }]));
    const path = join(f.base, 'blob.tgz');
    await writeFile(path, blob);
    const digest = `sha256:${hash('sha256').update(blob).digest('hex')}`;
    const cache = new LayerCache(join(f.root, 'layers'));
    const [a, b] = await Promise.all([cache.ensure({ digest, path }), cache.ensure({ digest, path })]);
    assert.equal(a, b);
    assert.equal(a, join(f.root, 'layers', digest.slice(7)));
    assert.equal(await readFile(join(a, 'hello'), 'utf8'), 'world');
    const wrong = `sha256:${'a'.repeat(64)}`;
    await assert.rejects(cache.ensure({ digest: wrong, path }), /does not match its digest/);
    assert.deepEqual((await readdir(join(f.root, 'layers'))).sort(), [digest.slice(7)], 'nothing half-extracted is left');
  });
});
