// Safe extraction of one image layer (a tar, gzipped or not) into a root directory. Every entry is
// resolved inside the root component by component (src/lib/root-path.ts), so nothing — `..` names, absolute
// names, writes through symlinks, hard links — can create, change or delete anything outside it:
//   - a name that climbs above the root with `..` is refused (LayerError naming the entry);
//   - an absolute name is taken from the root (as every container runtime does);
//   - symlinks already on disk are followed the way the container will see them (absolute targets and
//     `..` chains stay inside the root), so "symlink to /, then write through it" lands inside the root;
//   - a hard link's target is resolved the same way and must already exist in the root; `..` targets
//     that climb out are refused;
//   - character and block devices are refused; FIFOs are created (mkfifo);
//   - OCI whiteouts: `.wh.<name>` and `.wh..wh..opq`, either applied (mode `apply`: delete the lower
//     entry / empty the directory of lower entries, for layers applied in sequence into one root) or
//     stored the overlayfs way (mode `overlay`: a 0/0 character device / `trusted.overlay.opaque=y`,
//     for a layer directory that will be an overlay lowerdir).
// Modes, owners (when running as root), mtimes, symlinks and hard links are kept.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Header as Headers } from 'tar-stream';
import { cleanInRoot, resolveInRoot } from '../../lib/root-path.js';
import type { UnpackMeter } from './unpack-bound.js';
import { CodedError, type RuntimeErrorCode } from '../../lib/errors.js';

const run = promisify(execFile);

export class LayerError extends CodedError<RuntimeErrorCode> {
  constructor(readonly entry: string, reason: string) {
    super('LayerRefused', `layer entry "${entry}" refused: ${reason}`, 'LayerError');
  }
}

export interface ApplyLayerOptions {
  /** `apply`: whiteouts delete what lower layers put in `root`; `overlay`: whiteouts stored for overlayfs. */
  whiteouts: 'apply' | 'overlay';
  signal?: AbortSignal;
  /** Counts the layer's uncompressed tar bytes; its refusal stops the extraction (./unpack-bound.ts). */
  meter?: UnpackMeter;
}

export interface ApplyLayerResult {
  entries: number;
}

const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** Reads the first bytes of a stream and returns them with a stream that replays them before the rest. */
async function sniff(input: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < n) {
    const r = await it.next();
    if (r.done) { done = true; break; }
    head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value);
    }
  }
  return { head, stream: Readable.from(replay(), { objectMode: false }) };
}

const startsWith = (b: Buffer, magic: number[]) => magic.every((m, i) => b[i] === m);

/** Applies a layer tar stream (gzip detected by its magic bytes) onto `root`, which must exist. */
export async function applyLayer(root: string, input: Readable, opts: ApplyLayerOptions): Promise<ApplyLayerResult> {
  const { head, stream } = await sniff(input, 4);
  if (startsWith(head, ZSTD_MAGIC)) throw new LayerError('(layer)', 'zstd-compressed layers are not supported; push the image with gzip layers');
  const stages: NodeJS.ReadWriteStream[] = startsWith(head, GZIP_MAGIC) ? [createGunzip()] : [];
  const meter = opts.meter;
  if (meter) {
    stages.push(new Transform({
      transform(chunk: Buffer, _e, cb) { meter.take(chunk.length).then(() => cb(null, chunk), cb); },
    }));
  }
  const ex = tarExtract();
  const feeding = pipeline([stream, ...stages, ex] as unknown as [Readable, NodeJS.WritableStream], { signal: opts.signal });
  feeding.catch(() => undefined); // observed below
  const state: LayerState = { root, opts, created: new Set(), parents: new Map(), dirTimes: [], entries: 0, asRoot: process.getuid?.() === 0 };
  try {
    for await (const entry of ex) {
      opts.signal?.throwIfAborted();
      try {
        await applyEntry(state, entry.header, entry as unknown as Readable);
      } finally {
        entry.resume();
      }
      state.entries++;
    }
    await feeding;
  } catch (e) {
    ex.destroy();
    stream.destroy();
    throw e;
  }
  // Directory mtimes last: creating their children changed them.
  for (const d of state.dirTimes.reverse()) await utimes(d.path, d.mtime, d.mtime);
  return { entries: state.entries };
}

interface LayerState {
  root: string;
  opts: ApplyLayerOptions;
  /** Host paths this layer created (an opaque marker must not delete them). */
  created: Set<string>;
  /** Parent directory (as named in the layer) → its resolved host path, known to exist. */
  parents: Map<string, string>;
  dirTimes: Array<{ path: string; mtime: Date }>;
  entries: number;
  asRoot: boolean;
}

async function lstatOrUndefined(p: string) {
  try {
    return await lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * The host path for an entry: the parent resolved inside the root (created if missing), then the name.
 * Resolved parents are remembered until something that could change a resolution (a symlink created,
 * a directory or symlink removed) happens.
 */
async function placeEntry(state: LayerState, name: string, rel: string): Promise<string> {
  const dirRel = dirname(rel) === '.' ? '' : dirname(rel);
  let parent = state.parents.get(dirRel);
  if (parent === undefined) {
    parent = await resolveInRoot(state.root, dirRel, { followFinal: true });
    if (parent !== state.root && !parent.startsWith(state.root + '/')) throw new LayerError(name, 'resolves outside the root');
    try {
      await mkdir(parent, { recursive: true });
    } catch (e) {
      throw new LayerError(name, `its parent directory cannot be created (${(e as Error).message})`);
    }
    state.parents.set(dirRel, parent);
  }
  return join(parent, basename(rel));
}

/** Removes a path; forgets resolved parents when the removal could change how a path resolves. */
async function remove(state: LayerState, target: string, was?: { isDirectory(): boolean; isSymbolicLink(): boolean }): Promise<void> {
  if (!was || was.isDirectory() || was.isSymbolicLink()) state.parents.clear();
  await rm(target, { recursive: true, force: true });
}

async function applyEntry(state: LayerState, h: Headers, body: Readable): Promise<void> {
  const name = h.name;
  const type: string = h.type ?? 'file';
  if (type === 'pax-global-header' || type === 'pax-header') return;
  const rel = cleanInRoot(name);
  if (rel === undefined) throw new LayerError(name, 'its path climbs out of the root with ".."');
  if (rel === '') return; // "./": the root itself
  const base = basename(rel);
  if (base.startsWith(WH_PREFIX)) return applyWhiteout(state, name, rel, base);

  if (type === 'character-device' || type === 'block-device') throw new LayerError(name, `device nodes are not allowed in layers (${type})`);
  const target = await placeEntry(state, name, rel);
  const existing = await lstatOrUndefined(target);
  if (existing && !(existing.isDirectory() && type === 'directory')) await remove(state, target, existing);

  const mode = (h.mode ?? 0o644) & 0o7777;
  switch (type) {
    case 'directory':
      if (!existing?.isDirectory()) await mkdir(target, { mode: 0o700 });
      break;
    case 'file':
    case 'contiguous-file': {
      const fh = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      await pipeline(body, fh.createWriteStream()); // closes the handle
      break;
    }
    case 'symlink':
      if (!h.linkname) throw new LayerError(name, 'symlink without a target');
      state.parents.clear();
      await symlink(h.linkname, target);
      break;
    case 'link': {
      const linkRel = cleanInRoot(h.linkname ?? '');
      if (!linkRel) throw new LayerError(name, `hard link target "${h.linkname}" is outside the root`);
      const source = await resolveInRoot(state.root, linkRel, { followFinal: false });
      const st = await lstatOrUndefined(source);
      if (!st) throw new LayerError(name, `hard link target "${h.linkname}" does not exist inside the root`);
      if (st.isDirectory()) throw new LayerError(name, `hard link target "${h.linkname}" is a directory`);
      await link(source, target);
      state.created.add(target);
      return; // a hard link shares its target's inode: its metadata is the target's
    }
    case 'fifo':
      await run('mkfifo', ['-m', '600', target]);
      break;
    default:
      throw new LayerError(name, `unsupported entry type ${type}`);
  }
  state.created.add(target);
  const mtime = h.mtime ?? new Date(0);
  if (state.asRoot) await lchown(target, h.uid ?? 0, h.gid ?? 0);
  if (type !== 'symlink') await chmod(target, mode);
  if (type === 'directory') state.dirTimes.push({ path: target, mtime });
  else await lutimes(target, mtime, mtime);
}

async function applyWhiteout(state: LayerState, name: string, rel: string, base: string): Promise<void> {
  const dirRel = dirname(rel) === '.' ? '' : dirname(rel);
  if (base === WH_OPAQUE) {
    const dir = await resolveInRoot(state.root, dirRel, { followFinal: true });
    if (dir !== state.root && !dir.startsWith(state.root + '/')) throw new LayerError(name, 'resolves outside the root');
    await mkdir(dir, { recursive: true });
    if (state.opts.whiteouts === 'overlay') {
      await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir]).catch((e: Error) => {
        throw new LayerError(name, `cannot mark ${dirRel || '/'} opaque for overlayfs (setfattr: ${e.message.trim()}); install the attr package`);
      });
      return;
    }
    for (const child of await readdir(dir)) {
      const p = join(dir, child);
      if (!state.created.has(p)) await remove(state, p);
    }
    return;
  }
  if (base.startsWith(WH_PREFIX + WH_PREFIX)) return; // other AUFS metadata (.wh..wh.plnk, ...): not content
  const victim = base.slice(WH_PREFIX.length);
  if (victim === '' || victim === '.' || victim === '..') throw new LayerError(name, 'whiteout of an invalid name');
  const target = await placeEntry(state, name, dirRel ? `${dirRel}/${victim}` : victim);
  await remove(state, target);
  if (state.opts.whiteouts === 'apply') return;
  await run('mknod', ['-m', '000', target, 'c', '0', '0']).catch((e: Error) => {
    throw new LayerError(name, `cannot create the overlay whiteout for ${victim} (mknod: ${e.message.trim()})`);
  });
  state.created.add(target);
}
