// A container's root filesystem from an image's layer stack. Two ways:
//   overlay — the cached layer directories as overlayfs lowerdirs (top layer first), with the
//             container's own upperdir/workdir: nothing is copied, writes stay with the container;
//   copy    — the layers applied one after the other (whiteouts applied) into the container's own
//             directory, for machines where overlay mounts fail. Costs a full copy per container.
// The overlay mount runs `mount` with its working directory in the layer cache and relative lowerdirs,
// so dozens of layers still fit in the kernel's one-page mount options.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { applyLayer } from './apply-layer.js';
import type { LayerBlob, LayerCache } from './layer-cache.js';
import { DEFAULT_UNPACK_LIMITS, UnpackError, imageMeters, type UnpackLimits } from './unpack-bound.js';
import { isDiskFull } from '../../storage/disk-space.js';

const run = promisify(execFile);

export type RootfsMode = 'overlay' | 'copy';

/** 64-hex relative lowerdirs: 60 of them stay well inside the kernel's 4096-byte mount options. */
const MAX_OVERLAY_LAYERS = 60;

/** True when an overlay mount works in `workDir` (it is mounted and unmounted again). */
export async function overlayWorks(workDir: string): Promise<boolean> {
  await mkdir(workDir, { recursive: true });
  const dir = await mkdtemp(join(workDir, '.overlay-probe-'));
  const m = join(dir, 'm');
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'l', 'f'), 'x');
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${join(dir, 'l')},upperdir=${join(dir, 'u')},workdir=${join(dir, 'w')}`, m]);
    const ok = (await readFile(join(m, 'f'), 'utf8')) === 'x';
    await run('umount', [m]);
    return ok;
  } catch {
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Paths of a container's filesystem pieces inside its bundle directory. */
export function rootfsPaths(bundleDir: string) {
  return { rootfs: join(bundleDir, 'rootfs'), upper: join(bundleDir, 'upper'), work: join(bundleDir, 'work') };
}

/**
 * Builds `<bundleDir>/rootfs` from `layers` (bottom first), unpacking no more than `limits` allow
 * (layers already in the cache were bounded when they were unpacked).
 */
export async function buildRootfs(mode: RootfsMode, cache: LayerCache, layers: LayerBlob[], bundleDir: string, signal?: AbortSignal,
  limits: UnpackLimits = DEFAULT_UNPACK_LIMITS): Promise<string> {
  const p = rootfsPaths(bundleDir);
  const meters = imageMeters(limits);
  const opts = (l: LayerBlob) => ({ ...(signal ? { signal } : {}), meter: meters.layer(l.digest) });
  await mkdir(p.rootfs, { recursive: true, mode: 0o755 });
  // Mount options are limited to one page: an image with very many layers is copied instead.
  if (mode === 'copy' || layers.length > MAX_OVERLAY_LAYERS) {
    for (const l of layers) await unpacking(l, () => applyLayer(p.rootfs, createReadStream(l.path), { whiteouts: 'apply', ...opts(l) }));
    return p.rootfs;
  }
  const dirs: string[] = [];
  for (const l of layers) dirs.push(await unpacking(l, () => cache.ensure(l, signal, opts(l).meter)));
  if (dirs.length === 0) {
    const empty = join(bundleDir, 'empty');
    await mkdir(empty, { recursive: true });
    dirs.push(empty);
  }
  await mkdir(p.upper, { recursive: true, mode: 0o755 });
  await mkdir(p.work, { recursive: true, mode: 0o700 });
  const lower = dirs.map((d) => relative(cache.dir, d)).reverse().join(':');
  if (lower.includes(',')) throw new Error(`layer directory names may not contain ","`);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${p.upper},workdir=${p.work}`, p.rootfs], { cwd: cache.dir });
  return p.rootfs;
}

/** Runs the unpacking of `layer`; the filesystem's own ENOSPC/EDQUOT becomes an error naming the layer. */
async function unpacking<T>(layer: LayerBlob, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (!isDiskFull(e)) throw e;
    throw new UnpackError(layer.digest, `unpacking layer ${layer.digest} failed: the disk holding Berth's data directory is full; the partial layer was removed. Free space on it (berth container prune-images)`);
  }
}

/** Mount points under `prefix` in /proc/self/mountinfo (octal escapes decoded). */
export async function mountsUnder(prefix: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp === prefix || mp.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')) out.push(mp);
  }
  return out;
}

/** Unmounts everything mounted at or below `dir`, deepest first. */
export async function unmountAll(dir: string): Promise<void> {
  const mps = (await mountsUnder(dir)).sort((a, b) => b.length - a.length);
  for (const mp of mps) {
    await run('umount', [mp]).catch(async () => {
      await run('umount', ['-l', mp]);
    });
  }
}
