// The local content-addressed store that all pulls share: <root>/blobs/<alg>/<hex>, read-only files
// that only ever appear there verified (downloads go to <root>/tmp and are renamed in when their digest
// matched). One download per digest at a time however many pulls want it (single-flight).
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestAlgorithm, digestHex, digestOf, type Digest } from '../oci/digest.js';
import { writeFileAtomic } from '../platform/fs-atomic.js';

export class ContentStore {
  private readonly inflight = new Map<string, Promise<'downloaded' | 'cached'>>();

  constructor(readonly root: string) {}

  path(digest: Digest): string {
    return join(this.root, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  /** True when the store holds `digest` with `size` bytes. */
  async has(digest: Digest, size?: number): Promise<boolean> {
    const st = await stat(this.path(digest)).catch(() => undefined);
    return Boolean(st?.isFile() && (size === undefined || st.size === size));
  }

  /** A fresh temporary path for a download in progress (same file system as the store). */
  async tempPath(digest: Digest): Promise<string> {
    const dir = join(this.root, 'tmp');
    await mkdir(dir, { recursive: true });
    await (this.swept ??= this.sweep(dir));
    return join(dir, `${digestHex(digest).slice(0, 16)}.${randomBytes(6).toString('hex')}`);
  }

  /** Moves a verified temp file into the store. */
  async commit(tmp: string, digest: Digest): Promise<void> {
    const dest = this.path(digest);
    await mkdir(join(this.root, 'blobs', digestAlgorithm(digest)), { recursive: true });
    await chmod(tmp, 0o444);
    await rename(tmp, dest);
  }

  /** Stores small verified content (manifests). */
  async putBytes(bytes: Buffer, digest: Digest): Promise<void> {
    if (digestOf(bytes, digestAlgorithm(digest)) !== digest) throw new Error(`refusing to store content under the wrong digest ${digest}`);
    if (await this.has(digest, bytes.length)) return;
    await writeFileAtomic(this.path(digest), bytes, 0o444);
  }

  /**
   * Makes sure the store holds `digest`: already there → 'cached'; a download of it in progress →
   * waits for that one; otherwise runs `download` (which must verify and commit) → 'downloaded'.
   */
  ensure(digest: Digest, size: number, download: () => Promise<void>, retry = true): Promise<'downloaded' | 'cached'> {
    const running = this.inflight.get(digest);
    // A waiter whose shared download failed tries once more (its own credential and connection).
    if (running) return running.then(() => 'downloaded' as const, (e: unknown) => (retry ? this.ensure(digest, size, download, false) : Promise.reject(e)));
    const p = (async () => {
      if (await this.has(digest, size)) return 'cached' as const;
      await download();
      return 'downloaded' as const;
    })().finally(() => this.inflight.delete(digest));
    this.inflight.set(digest, p);
    return p;
  }

  private swept: Promise<void> | undefined;

  /**
   * Removes downloads a crashed process left behind. Only old ones: another process (the server and a
   * CLI pull share the store) may be writing a fresh one right now.
   */
  private async sweep(dir: string, maxAgeMs = 24 * 3600_000): Promise<void> {
    const now = Date.now();
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const st = await stat(join(dir, f)).catch(() => undefined);
      if (st && now - st.mtimeMs > maxAgeMs) await rm(join(dir, f), { force: true });
    }
  }

  async discard(tmp: string): Promise<void> {
    await rm(tmp, { force: true });
  }
}
