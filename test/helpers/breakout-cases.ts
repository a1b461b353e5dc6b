// The named table of breakout attempts on an extractor (symlink chains, `..`, absolute names, writes
// through symlinks, hard links pointing out, devices, whiteouts), shared by the runtime's layer
// extraction test (test/rootfs-extract.test.ts) and the image archive push test
// (test/image-push-breakout.test.ts); plus how to build each as a real tar and check nothing changed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack, type Header as Headers } from 'tar-stream';

export type Entry = Partial<Headers> & { name: string; body?: string | Buffer };

export async function tarOf(entries: Entry[]): Promise<Buffer> {
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
export async function snapshot(dir: string): Promise<string[]> {
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

export const hostPasswd = async () => {
  const st = await lstat('/etc/passwd');
  return `${st.ino} ${st.nlink} ${st.size} ${st.mtimeMs} ${st.mode}`;
};

export interface BreakoutCase {
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

export const CASES: BreakoutCase[] = [
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
    name: 'symlink chain climbing one more level per link then write through it',
    entries: () => [
      { name: 'd/l', type: 'symlink', linkname: '..' },
      { name: 'd/l/l2', type: 'symlink', linkname: '..' },
      { name: 'd/l/l2/sentinel/pwned', body: 'x' },
    ],
    expect: { neutralised: async (root) => insideExists('sentinel/pwned')(root) },
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

