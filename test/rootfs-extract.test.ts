// Layer extraction: a named table of breakout attempts, each built as a real tar with tar-stream; for
// every case extraction refuses it (LayerError naming the entry) or neutralises it (the write lands
// inside the root), and nothing outside the root changes. Plus the ordinary cases: modes, owners,
// mtimes, links, FIFOs, gzip, whiteouts applied and stored for overlayfs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createHash as hash } from 'node:crypto';
import { pack, type Header as Headers } from 'tar-stream';
import { applyLayer, LayerError } from '../src/runtime/rootfs/apply-layer.js';
import { LayerCache } from '../src/runtime/rootfs/layer-cache.js';
import { resolveInRoot } from '../src/runtime/rootfs/resolve.js';

type Entry = Partial<Headers> & { name: string; body?: string };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((res) => p.on('end', () => res()));
  for (const e of entries) {
    const { body, ...h } = e;
    const header = { type: 'file' as const, mode: 0o644, mtime: new Date(1_600_000_000_000), ...h };
    await new Promise<void>((res, rej) => {
      const cb = (err?: Error | null) => (err ? rej(err) : res());
      if (header.type === 'file') p.entry(header, body ?? '', cb);
      else (p.entry(header, cb) as unknown as { end(): void }).end();
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Type, mode, owner, size, content hash and link target of every path under `dir`. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const n of (await readdir(d)).sort()) {
      const p = join(d, n);
      const st = await lstat(p);
      let extra = '';
      if (st.isSymbolicLink()) extra = `-> ${await readlink(p)}`;
      else if (st.isFile()) extra = createHash('sha256').update(await readFile(p)).digest('hex');
      out.push(`${rel}${n} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.nlink} ${st.size} ${st.mtimeMs} ${extra}`);
      if (st.isDirectory()) await walk(p, `${rel}${n}/`);
    }
  };
  await walk(dir, '');
  return out;
}

const hostPasswd = async () => {
  const st = await lstat('/etc/passwd');
  return `${st.ino} ${st.nlink} ${st.size} ${st.mtimeMs} ${st.mode}`;
};

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

interface BreakoutCase {
  name: string;
  entries: (f: { base: string; sentinel: string }) => Entry[];
  lower?: (root: string, sentinel: string) => Promise<void>;
  mode?: 'apply' | 'overlay';
  /** `refused`: applyLayer rejects naming `entry`; `neutralised`: it succeeds and `check` holds. */
  expect: { refused: string } | { neutralised: (root: string, base: string) => Promise<void> };
}

const insideExists = (rel: string) => async (root: string) => {
  await lstat(join(root, rel));
};

const CASES: BreakoutCase[] = [
  { name: '../ escape', entries: () => [{ name: '../sentinel/pwned', body: 'x' }], expect: { refused: '../sentinel/pwned' } },
  { name: 'nested ../ escape', entries: () => [{ name: 'a/b/../../../sentinel/pwned', body: 'x' }], expect: { refused: 'a/b/../../../sentinel/pwned' } },
  { name: '../ escape of a directory', entries: () => [{ name: '../sentinel/newdir', type: 'directory', mode: 0o755 }], expect: { refused: '../sentinel/newdir' } },
  {
    name: 'absolute path',
    entries: ({ sentinel }) => [{ name: `${sentinel}/pwned`, body: 'x' }],
    expect: { neutralised: async (root, base) => insideExists(`${base}/sentinel/pwned`)(root) },
  },
  {
    name: 'symlink to / then write through it',
    entries: ({ sentinel }) => [{ name: 'evil', type: 'symlink', linkname: '/' }, { name: `evil${sentinel}/pwned`, body: 'x' }],
    expect: { neutralised: async (root, base) => insideExists(`${base}/sentinel/pwned`)(root) },
  },
  {
    name: 'symlink to the sentinel (absolute) then write through it',
    entries: ({ sentinel }) => [{ name: 'evil', type: 'symlink', linkname: sentinel }, { name: 'evil/pwned', body: 'x' }],
    expect: { neutralised: async (root, base) => insideExists(`${base}/sentinel/pwned`)(root) },
  },
  {
    name: 'symlink to .. chain then write through it',
    entries: () => [
      { name: 'a', type: 'directory', mode: 0o755 },
      { name: 'a/up', type: 'symlink', linkname: '../../..' },
      { name: 'a/up2', type: 'symlink', linkname: 'up/../../sentinel' },
      { name: 'a/up/sentinel/pwned', body: 'x' },
      { name: 'a/up2/pwned2', body: 'x' },
    ],
    expect: { neutralised: async (root) => { await insideExists('sentinel/pwned')(root); await insideExists('sentinel/pwned2')(root); } },
  },
  {
    name: 'symlink in a lower layer then write through it',
    lower: async (root, sentinel) => symlink(sentinel, join(root, 'lowerlink')),
    entries: () => [{ name: 'lowerlink/pwned', body: 'x' }, { name: 'lowerlink/file', body: 'overwritten?' }],
    expect: { neutralised: async (root, base) => insideExists(`${base}/sentinel/file`)(root) },
  },
  {
    name: 'file replacing a symlink that points outside',
    lower: async (root, sentinel) => symlink(join(sentinel, 'file'), join(root, 'f')),
    entries: () => [{ name: 'f', body: 'not through the link' }],
    expect: { neutralised: async (root) => assert.equal(await readFile(join(root, 'f'), 'utf8'), 'not through the link') },
  },
  {
    name: 'directory replacing a symlink that points outside',
    lower: async (root, sentinel) => symlink(sentinel, join(root, 'd')),
    entries: () => [{ name: 'd', type: 'directory', mode: 0o755 }, { name: 'd/file', body: 'inside' }],
    expect: { neutralised: async (root) => assert.ok((await lstat(join(root, 'd'))).isDirectory()) },
  },
  { name: 'hard link to /etc/passwd', entries: () => [{ name: 'pw', type: 'link', linkname: '/etc/passwd' }], expect: { refused: 'pw' } },
  { name: 'hard link with ../ to the sentinel', entries: () => [{ name: 'h', type: 'link', linkname: '../sentinel/file' }], expect: { refused: 'h' } },
  {
    name: 'hard link through a symlink',
    entries: ({ sentinel }) => [{ name: 's', type: 'symlink', linkname: sentinel }, { name: 'h', type: 'link', linkname: 's/file' }],
    expect: { refused: 'h' },
  },
  {
    name: 'hard link to a symlink that points outside',
    entries: ({ sentinel }) => [{ name: 's', type: 'symlink', linkname: join(sentinel, 'file') }, { name: 'h', type: 'link', linkname: 's' }, { name: 'h', body: 'replaces the link, not the target' }],
    expect: { neutralised: async (root) => assert.equal(await readFile(join(root, 'h'), 'utf8'), 'replaces the link, not the target') },
  },
  { name: 'character device', entries: () => [{ name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1, mode: 0o666 }], expect: { refused: 'dev/mem' } },
  { name: 'block device', entries: () => [{ name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o666 }], expect: { refused: 'dev/sda' } },
  { name: 'whiteout of a path outside (..)', entries: () => [{ name: '../sentinel/.wh.file' }], expect: { refused: '../sentinel/.wh.file' } },
  {
    name: 'whiteout through a symlink to the outside',
    entries: ({ sentinel }) => [{ name: 'evil', type: 'symlink', linkname: sentinel }, { name: 'evil/.wh.file' }, { name: 'evil/.wh.dir' }],
    expect: { neutralised: async () => undefined },
  },
  {
    name: 'opaque directory through a symlink to the outside',
    entries: ({ sentinel }) => [{ name: 'evil', type: 'symlink', linkname: sentinel }, { name: 'evil/.wh..wh..opq' }],
    expect: { neutralised: async () => undefined },
  },
  {
    name: 'opaque marker of the root itself',
    lower: async (root) => { await writeFile(join(root, 'lowerfile'), 'x'); },
    entries: () => [{ name: 'new', body: 'y' }, { name: '.wh..wh..opq' }],
    expect: { neutralised: async (root) => assert.deepEqual((await readdir(root)).sort(), ['new']) },
  },
  {
    name: 'opaque directory through a symlink (overlay mode)',
    mode: 'overlay',
    entries: ({ sentinel }) => [{ name: 'evil', type: 'symlink', linkname: sentinel }, { name: 'evil/.wh..wh..opq' }, { name: 'evil/.wh.file' }],
    expect: { neutralised: async () => undefined },
  },
];

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
