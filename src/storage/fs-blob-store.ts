// The embedded BlobStore: files under <root>/blobs/<alg>/<2 hex>/<hex>, uploads under <root>/uploads.
// Upload bytes may not cross the filesystem's reserve (./disk-space.ts); when they would, or the
// filesystem refuses a write (ENOSPC, EDQUOT), the upload session's file is removed at once and
// StorageFullError is thrown.
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Hash } from 'node:crypto';
import {
  digestAlgorithm, digestHex, hasherDigest, newHasher, parseDigest,
  type Digest,
} from '../oci/digest.js';
import {
  DigestMismatchError, UploadOffsetError, UploadTooLargeError,
  type BlobInfo, type BlobStore, type ByteRange,
} from './blob-store.js';
import { DiskSpace, StorageFullError, isDiskFull } from './disk-space.js';
import { TooManyBytesError, writeCoalesced } from './coalesce.js';
import { sendFile } from './file-sender.js';

interface HashState {
  /** sha256 of bytes [0, offset). */
  hash: Hash;
  offset: number;
}

/** Blob reads in 1 MiB chunks: a sixteenth of the syscalls and stream callbacks of the 64 KiB default. */
const READ_CHUNK = 1 << 20;
const UPLOAD_ID = /^[A-Za-z0-9_-]{8,64}$/;

export class FsBlobStore implements BlobStore {
  private readonly blobs: string;
  private readonly uploads: string;
  /** Running sha256 of each live upload session, so commit does not re-read the file. */
  private readonly hashes = new Map<string, HashState>();
  /** Serialises appends per session. */
  private readonly busy = new Set<string>();

  private readonly space: DiskSpace;

  constructor(root: string, opts: { space?: DiskSpace } = {}) {
    this.blobs = join(root, 'blobs');
    this.uploads = join(root, 'uploads');
    this.space = opts.space ?? new DiskSpace(root);
  }

  async init(): Promise<void> {
    await mkdir(this.blobs, { recursive: true });
    await mkdir(this.uploads, { recursive: true });
  }

  private blobPath(d: Digest): string {
    const hex = digestHex(d);
    return join(this.blobs, digestAlgorithm(d), hex.slice(0, 2), hex);
  }

  private uploadPath(id: string): string {
    if (!UPLOAD_ID.test(id)) throw new Error(`invalid upload id`);
    return join(this.uploads, id);
  }

  async stat(d: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.blobPath(d));
      return { size: s.size, modifiedAt: s.mtimeMs };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  open(d: Digest, range?: ByteRange): Readable {
    return createReadStream(this.blobPath(d), { highWaterMark: READ_CHUNK, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async sendTo(d: Digest, out: Writable, range?: ByteRange): Promise<void> {
    const path = this.blobPath(d);
    const end = range ? range.end : (await stat(path)).size - 1;
    if (end >= (range?.start ?? 0)) await sendFile(path, out, range?.start ?? 0, end);
  }

  async delete(d: Digest): Promise<void> {
    await rm(this.blobPath(d), { force: true });
  }

  async *list(): AsyncIterable<Digest> {
    for (const alg of await readdirSafe(this.blobs)) {
      for (const prefix of await readdirSafe(join(this.blobs, alg))) {
        for (const hex of await readdirSafe(join(this.blobs, alg, prefix))) {
          if (hex.startsWith('.')) continue;
          try {
            yield parseDigest(`${alg}:${hex}`);
          } catch {
            // A stray file that is not a digest; GC leaves it alone.
          }
        }
      }
    }
  }

  async startUpload(id: string): Promise<void> {
    await this.space.check();
    const path = this.uploadPath(id);
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.close();
    } catch (e) {
      if (!isDiskFull(e)) throw e;
      await rm(path, { force: true });
      throw await this.space.fullError();
    }
    this.hashes.set(id, { hash: newHasher('sha256'), offset: 0 });
  }

  async uploadSize(id: string): Promise<number | undefined> {
    try {
      return (await stat(this.uploadPath(id))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async appendUpload(id: string, offset: number, body: Readable, maxBytes = Number.MAX_SAFE_INTEGER): Promise<number> {
    if (this.busy.has(id)) throw new UploadOffsetError(-1, offset);
    this.busy.add(id);
    try {
      const path = this.uploadPath(id);
      const size = await this.uploadSize(id);
      if (size === undefined) throw Object.assign(new Error('upload unknown'), { code: 'ENOENT' });
      if (size !== offset) throw new UploadOffsetError(size, offset);
      let state = this.hashes.get(id);
      if (!state || state.offset !== size) {
        state = await this.rehash(path);
        this.hashes.set(id, state);
      }
      const st = state;
      const meter = this.space.meter();
      const fh = await open(path, 'r+');
      let written = size;
      const writeback = new Writeback(fh);
      try {
        await writeCoalesced(body, async (piece) => {
          await meter.take(piece.length);
          st.hash.update(piece);
          st.offset += piece.length;
          await writeAll(fh, piece, written);
          written += piece.length;
          writeback.wrote(piece.length);
        }, maxBytes);
        await writeback.settled();
      } catch (e) {
        await writeback.settled();
        // Whatever reached the file stays (resumable); the hash of a partially written piece may be ahead
        // of the file, so forget it and rehash on next use.
        this.hashes.delete(id);
        await fh.close().catch(() => undefined);
        // Out of space: nothing of this upload is kept, so the space is free again at once.
        if (e instanceof StorageFullError || isDiskFull(e)) {
          await rm(path, { force: true });
          throw e instanceof StorageFullError ? e : await this.space.fullError();
        }
        if (e instanceof TooManyBytesError) throw new UploadTooLargeError(`chunk exceeds ${maxBytes} bytes`);
        throw e;
      }
      await fh.close();
      return written;
    } finally {
      this.busy.delete(id);
    }
  }

  private async rehash(path: string): Promise<HashState> {
    const hash = newHasher('sha256');
    let offset = 0;
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      offset += (chunk as Buffer).length;
    }
    return { hash, offset };
  }

  async commitUpload(id: string, digest: Digest): Promise<BlobInfo> {
    const path = this.uploadPath(id);
    const size = await this.uploadSize(id);
    if (size === undefined) throw Object.assign(new Error('upload unknown'), { code: 'ENOENT' });
    const alg = digestAlgorithm(digest);
    let actual: Digest;
    const state = this.hashes.get(id);
    if (alg === 'sha256' && state && state.offset === size) {
      actual = hasherDigest(state.hash, 'sha256');
    } else {
      const h = newHasher(alg);
      for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
      actual = hasherDigest(h, alg);
    }
    this.hashes.delete(id);
    if (actual !== digest) {
      await unlink(path).catch(() => undefined);
      throw new DigestMismatchError(digest, actual);
    }
    const dest = this.blobPath(digest);
    try {
      await mkdir(join(dest, '..'), { recursive: true });
      // Make the bytes durable before they become visible under their digest.
      const fh = await open(path, 'r+');
      try { await fh.sync(); } finally { await fh.close(); }
    } catch (e) {
      if (!isDiskFull(e)) throw e;
      await unlink(path).catch(() => undefined);
      throw await this.space.fullError();
    }
    await rename(path, dest);
    const s = await stat(dest);
    return { size: s.size, modifiedAt: s.mtimeMs };
  }

  async abortUpload(id: string): Promise<void> {
    this.hashes.delete(id);
    await rm(this.uploadPath(id), { force: true });
  }

  async *listUploads(): AsyncIterable<{ id: string; modifiedAt: number }> {
    for (const id of await readdirSafe(this.uploads)) {
      try {
        const s = await stat(join(this.uploads, id));
        yield { id, modifiedAt: s.mtimeMs };
      } catch {
        // removed meanwhile
      }
    }
  }
}

/**
 * Starts the disk writes of an upload while it is still arriving: every WRITEBACK_BYTES written, a
 * datasync of the file runs in the background (not awaited by the writer). Without it the page cache
 * holds the whole blob until commit's fsync, which then waits for all of it (~80 ms per 60 MB here,
 * after the client has sent its last byte); with it that wait overlaps the transfer. A failed
 * background datasync is not an error of the upload: commit's fsync reports what matters.
 */
const WRITEBACK_BYTES = 16 << 20;

class Writeback {
  private pending = 0;
  private running: Promise<void> | undefined;

  constructor(private readonly fh: FileHandle) {}

  wrote(bytes: number): void {
    this.pending += bytes;
    if (this.pending < WRITEBACK_BYTES || this.running) return;
    this.pending = 0;
    this.running = this.fh.datasync().catch(() => undefined).finally(() => { this.running = undefined; });
  }

  /** Resolves once no datasync is in flight (before the file handle closes). */
  async settled(): Promise<void> {
    await this.running;
  }
}

/** Writes all of `b` at `position` (a write may be short). */
async function writeAll(fh: FileHandle, b: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const { bytesWritten } = await fh.write(b, off, b.length - off, position + off);
    off += bytesWritten;
  }
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
