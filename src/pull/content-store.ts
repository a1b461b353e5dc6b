// The local content-addressed store that all pulls share: <root>/blobs/<alg>/<hex>, read-only files
// that only ever appear there verified (downloads go to <root>/tmp and are renamed in when their digest
// matched). One download per digest at a time however many pulls want it (single-flight).
//
// Garbage collection (collectGarbage) removes blobs nobody needs: not in the caller's `keep` set (what
// existing containers use), not pinned by a pull in progress in this process, not being downloaded, and
// not used for a grace period — a blob's mtime is its last use: a download sets it, and a pull that
// finds the blob cached touches it (which also covers pulls by other processes sharing the store).
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestAlgorithm, digestHex, digestOf, type Digest } from '../oci/digest.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { PinSet } from '../lib/pin-set.js';

export interface ContentGcReport {
  removed: number;
  kept: number;
  bytesFreed: number;
}

const BLOB_NAME: Record<string, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ };

export class ContentStore {
  private readonly inflight = new Map<string, Promise<'downloaded' | 'cached'>>();
  /** Digests pulls in progress hold (a count per digest): never collected. */
  private readonly pins = new PinSet();
  /** Blobs being removed by a collection: lookups of them wait until the file is gone. */
  private readonly removing = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

  path(digest: Digest): string {
    return join(this.root, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  /** True when the store holds `digest` with `size` bytes. */
  async has(digest: Digest, size?: number): Promise<boolean> {
    await this.removing.get(digest);
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
    if (await this.has(digest, bytes.length)) return this.touch(digest);
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
      if (await this.has(digest, size)) {
        await this.touch(digest);
        return 'cached' as const;
      }
      await download();
      return 'downloaded' as const;
    })().finally(() => this.inflight.delete(digest));
    this.inflight.set(digest, p);
    return p;
  }

  /** Records a use of `digest` (its mtime is its last use; the grace period counts from there). */
  async touch(digest: Digest): Promise<void> {
    const now = new Date();
    await utimes(this.path(digest), now, now).catch(() => undefined);
  }

  /** Holds `digests` against collection until the returned function is called. */
  pin(digests: Iterable<string>): () => void {
    return this.pins.pin(digests);
  }

  /**
   * Removes every blob that is not in `keep`, not pinned or being downloaded here, and whose last use
   * (mtime) is at least `graceMs` before `now`. Downloads in progress (<root>/tmp) are left alone.
   */
  async collectGarbage(opts: { graceMs: number; keep: ReadonlySet<string>; now?: number }): Promise<ContentGcReport> {
    const now = opts.now ?? Date.now();
    const report: ContentGcReport = { removed: 0, kept: 0, bytesFreed: 0 };
    for (const alg of await readdir(join(this.root, 'blobs')).catch(() => [] as string[])) {
      const name = BLOB_NAME[alg];
      if (!name) continue;
      for (const hex of await readdir(join(this.root, 'blobs', alg)).catch(() => [] as string[])) {
        if (!name.test(hex)) continue; // a temp file of putBytes, or something not ours
        const digest = `${alg}:${hex}` as Digest;
        const st = await stat(this.path(digest)).catch(() => undefined);
        if (!st?.isFile()) continue;
        // Decided and marked without an await in between: a lookup that starts later waits for the removal.
        if (opts.keep.has(digest) || this.pins.has(digest) || this.inflight.has(digest) || this.removing.has(digest) || now - st.mtimeMs < opts.graceMs) {
          report.kept++;
          continue;
        }
        // Touched since the stat above (a pull in another process found it): it stays.
        const gone = stat(this.path(digest)).then((again) => again.mtimeMs === st.mtimeMs && unlink(this.path(digest)).then(() => true), () => false).catch(() => false);
        this.removing.set(digest, gone.then(() => undefined));
        try {
          if (!(await gone)) {
            report.kept++;
          } else {
            report.removed++;
            if (st.nlink === 1) report.bytesFreed += st.blocks * 512; // else hard-linked into an OCI layout
          }
        } finally {
          this.removing.delete(digest);
        }
      }
    }
    return report;
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
