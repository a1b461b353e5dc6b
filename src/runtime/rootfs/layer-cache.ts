// The shared, deduplicated layer cache: each layer blob is extracted once (overlay whiteout format)
// into <dataDir>/layers/<hex>/ — into a temp directory first, renamed into place when complete, so a
// crash never leaves a half-extracted layer that looks finished. Concurrent requests for the same
// layer share one extraction.
//
// Garbage collection removes layers nobody uses: not referenced by the caller (existing bundles), not
// pinned (a container being created), not being extracted, not a lowerdir of a live overlay mount, and
// not used for a grace period (a layer directory's mtime is its last use: ensure() touches it; nothing
// else changes the mtime of a layer's root once it is extracted, and a container's overlay shows its own
// upperdir's root, not this one). A layer is first renamed to `.gc-<key>-<rand>` and then removed, so
// a crash part-way leaves a name that is never taken for a layer and that the next sweep removes.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { applyLayer } from './apply-layer.js';
import { PinSet } from '../../lib/pin-set.js';
import type { UnpackMeter } from './unpack-bound.js';

export interface LayerBlob {
  digest: string;
  /** Compressed (or plain) tar on disk. */
  path: string;
}

export function layerKey(digest: string): string {
  const [alg, hex] = digest.split(':');
  if (!hex || !/^[a-f0-9]+$/.test(hex)) throw new Error(`invalid layer digest "${digest}"`);
  return alg === 'sha256' ? hex : `${alg}-${hex}`;
}

export interface LayerGcReport {
  removed: number;
  kept: number;
  bytesFreed: number;
}

export class LayerCache {
  private readonly inflight = new Map<string, Promise<string>>();
  /** Layer keys held by containers being created (a count per key): never collected. */
  private readonly pins = new PinSet();
  /** Layers being renamed away by a collection: ensure() of one waits, then extracts it again. */
  private readonly removing = new Map<string, Promise<void>>();

  constructor(readonly dir: string) {}

  pathOf(digest: string): string {
    return join(this.dir, layerKey(digest));
  }

  /**
   * The extracted directory of `layer`, extracting it first if it is not cached; records the use.
   * `meter` bounds the extraction (a concurrent request for the same layer shares the first one's).
   */
  ensure(layer: LayerBlob, signal?: AbortSignal, meter?: UnpackMeter): Promise<string> {
    const key = layerKey(layer.digest);
    let p = this.inflight.get(key);
    if (!p) {
      const gone = this.removing.get(key);
      p = (gone ? gone.then(() => this.extract(layer, key, signal, meter)) : this.extract(layer, key, signal, meter))
        .then(async (dir) => {
          const now = new Date();
          await utimes(dir, now, now).catch(() => undefined);
          return dir;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** Holds the layers of `digests` against collection until the returned function is called. */
  pin(digests: Iterable<string>): () => void {
    return this.pins.pin([...digests].map(layerKey));
  }

  /** Records a use of the cached layers of `digests` that exist (a container that stopped using them). */
  async touch(digests: Iterable<string>): Promise<void> {
    const now = new Date();
    for (const d of digests) await utimes(this.pathOf(d), now, now).catch(() => undefined);
  }

  /**
   * Removes every cached layer that is not in `referenced` (digests), not pinned or being extracted,
   * not a lowerdir of a live overlay mount, and last used at least `graceMs` before `now`.
   */
  collectGarbage(opts: { graceMs: number; referenced: Iterable<string>; now?: number }): Promise<LayerGcReport> {
    // One collection at a time (two would sweep each other's `.gc-*` directories).
    const run = this.collecting.catch(() => undefined).then(() => this.collectNow(opts));
    this.collecting = run;
    return run;
  }

  private collecting: Promise<unknown> = Promise.resolve();

  private async collectNow(opts: { graceMs: number; referenced: Iterable<string>; now?: number }): Promise<LayerGcReport> {
    const now = opts.now ?? Date.now();
    const report: LayerGcReport = { removed: 0, kept: 0, bytesFreed: 0 };
    await this.sweep({ tmp: false });
    const referenced = new Set([...opts.referenced].map(layerKey));
    const mounted = await this.mountedLayers();
    for (const key of await readdir(this.dir).catch(() => [] as string[])) {
      if (key.startsWith('.')) continue;
      const st = await stat(join(this.dir, key)).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      // Decided and marked without an await in between: an ensure() that starts later waits for the rename.
      if (referenced.has(key) || mounted.has(key) || this.pins.has(key) || this.inflight.has(key) || this.removing.has(key) || now - st.mtimeMs < opts.graceMs) {
        report.kept++;
        continue;
      }
      const doomed = join(this.dir, `.gc-${key.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
      const renamed = rename(join(this.dir, key), doomed).then(() => true, () => false);
      this.removing.set(key, renamed.then(() => undefined));
      try {
        if (!(await renamed)) continue;
      } finally {
        this.removing.delete(key);
      }
      report.bytesFreed += await diskUsage(doomed);
      await rm(doomed, { recursive: true, force: true });
      report.removed++;
    }
    return report;
  }

  /** Keys of this cache's layers that are lowerdirs of overlay mounts in /proc/self/mountinfo. */
  private async mountedLayers(): Promise<Set<string>> {
    const out = new Set<string>();
    const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const sep = line.indexOf(' - ');
      if (sep < 0) continue;
      const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
      if (fstype !== 'overlay') continue;
      const opts = superOpts.split(',');
      const opt = (name: string) => opts.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      const lower = opt('lowerdir');
      if (!lower) continue;
      // Berth mounts with lowerdirs relative to this directory (the mount runs here) and the container's
      // upperdir in a bundle beside it; a relative lowerdir of a mount of another data directory is not
      // one of these layers. Absolute lowerdirs are compared in full.
      const upper = opt('upperdir');
      const ours = !upper || upper.startsWith(dirname(this.dir) + '/');
      for (const d of lower.split(/(?<!\\):/)) {
        if (d.includes('/') ? dirname(d) === this.dir : ours) out.add(basename(d));
      }
    }
    return out;
  }

  private async extract(layer: LayerBlob, key: string, signal?: AbortSignal, meter?: UnpackMeter): Promise<string> {
    const final = join(this.dir, key);
    if (await exists(final)) return final;
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.tmp-${key.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { mode: 0o755 });
    try {
      // The blob is hashed on the way through: a cache entry is only ever named by the digest of what filled it.
      const [alg] = layer.digest.split(':');
      const h = createHash(alg === 'sha512' ? 'sha512' : 'sha256');
      const hashing = new Transform({ transform(chunk: Buffer, _e, cb) { h.update(chunk); cb(null, chunk); } });
      const blob = createReadStream(layer.path);
      blob.on('error', (e) => hashing.destroy(e));
      await applyLayer(tmp, blob.pipe(hashing), { whiteouts: 'overlay', ...(signal ? { signal } : {}), ...(meter ? { meter } : {}) });
      const got = `${alg}:${h.digest('hex')}`;
      if (got !== layer.digest) throw new Error(`layer blob ${layer.path} does not match its digest ${layer.digest} (it hashes to ${got}); pull the image again`);
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      // Another process finished the same layer first: use theirs.
      if (((e as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (e as NodeJS.ErrnoException).code === 'EEXIST') && (await exists(final))) return final;
      throw e;
    }
    return final;
  }

  /**
   * Removes what a crash left: half-removed layers (`.gc-*`) and, when `tmp` (at start-up, when no
   * extraction runs), half-extracted ones (`.tmp-*`).
   */
  async sweep(opts: { tmp?: boolean } = {}): Promise<void> {
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith('.gc-') || (opts.tmp !== false && n.startsWith('.tmp-'))) await rm(join(this.dir, n), { recursive: true, force: true });
    }
  }
}

/** Bytes a directory tree occupies on disk (each inode counted once). */
async function diskUsage(root: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p).catch(() => undefined);
    if (!st) return;
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    total += st.blocks * 512;
    if (st.isDirectory()) for (const n of await readdir(p).catch(() => [] as string[])) await walk(join(p, n));
  };
  await walk(root);
  return total;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
