// The shared, deduplicated layer cache: each layer blob is extracted once (overlay whiteout format)
// into <dataDir>/layers/<hex>/ — into a temp directory first, renamed into place when complete, so a
// crash never leaves a half-extracted layer that looks finished. Concurrent requests for the same
// layer share one extraction.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { applyLayer } from './apply-layer.js';

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

export class LayerCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(readonly dir: string) {}

  pathOf(digest: string): string {
    return join(this.dir, layerKey(digest));
  }

  /** The extracted directory of `layer`, extracting it first if it is not cached. */
  ensure(layer: LayerBlob, signal?: AbortSignal): Promise<string> {
    const key = layerKey(layer.digest);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.extract(layer, key, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async extract(layer: LayerBlob, key: string, signal?: AbortSignal): Promise<string> {
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
      await applyLayer(tmp, blob.pipe(hashing), { whiteouts: 'overlay', signal });
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

  /** Removes temp directories left by a crash during extraction. */
  async sweep(): Promise<void> {
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith('.tmp-')) await rm(join(this.dir, n), { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
