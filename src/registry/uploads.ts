// Blobs and upload sessions, with no HTTP in them: start, chunk (Content-Range order), complete with
// digest verification, cancel, cross-repository mount, and the storage quota each of them is held to.
import { randomUUID } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { isDigest, type Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import {
  DigestMismatchError, UploadOffsetError, UploadTooLargeError,
  type BlobStore, type ByteRange,
} from '../storage/blob-store.js';
import { quotaExceeded, type QuotaLookup, type StorageQuota } from './quota.js';
import type { RegistryMetadataStore } from './metadata.js';
import { isStorageFull, parseRefDigest, storageFullError } from './rules.js';

export interface BlobHandle {
  digest: Digest;
  size: number;
  open(range?: ByteRange): Readable;
  /** Writes the blob (or a range) to `out` through reused buffers, when the blob store can. */
  sendTo?: (out: Writable, range?: ByteRange) => Promise<void>;
}

export class Uploads {
  constructor(
    private readonly meta: RegistryMetadataStore,
    private readonly blobs: BlobStore,
    private readonly quota: QuotaLookup,
  ) {}

  // ---- storage quota

  /** The registry's quota usage in bytes and its limit (undefined: none). */
  async storageUsage(registryId: string): Promise<{ currentValue: number; limit: number | undefined }> {
    return { currentValue: await this.meta.registryUsage(registryId), limit: (await this.quota(registryId))?.limit };
  }

  /** The registry's quota with what it uses now, or undefined when it has none. */
  private async quotaState(registryId: string): Promise<{ q: StorageQuota; used: number } | undefined> {
    const q = await this.quota(registryId);
    return q ? { q, used: await this.meta.registryUsage(registryId) } : undefined;
  }

  /** Refuses `adding` new bytes for `digest` when they would take the registry past its quota. */
  async checkQuota(registryId: string, digest: Digest, adding: number): Promise<void> {
    const st = await this.quotaState(registryId);
    if (!st || st.used + adding <= st.q.limit || (await this.meta.inRegistry(registryId, digest))) return;
    throw quotaExceeded(st.q, st.used, adding);
  }

  // ---- blobs

  async getBlob(registryId: string, repo: string, digestStr: string): Promise<BlobHandle> {
    const digest = parseRefDigest(digestStr);
    const size = await this.meta.linkedBlobSize(registryId, repo, digest);
    if (size === undefined || !(await this.blobs.stat(digest))) {
      throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${repo}`, { digest });
    }
    const store = this.blobs;
    return {
      digest, size, open: (range) => store.open(digest, range),
      ...(store.sendTo ? { sendTo: (out: Writable, range?: ByteRange) => store.sendTo!(digest, out, range) } : {}),
    };
  }

  async deleteBlob(registryId: string, repo: string, digestStr: string): Promise<void> {
    const digest = parseRefDigest(digestStr);
    if (!(await this.meta.unlinkBlob(registryId, repo, digest))) {
      throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${repo}`, { digest });
    }
  }

  // ---- uploads

  async startUpload(registryId: string, repo: string): Promise<string> {
    const st = await this.quotaState(registryId);
    if (st && st.used >= st.q.limit) throw quotaExceeded(st.q, st.used, undefined);
    const id = randomUUID();
    try {
      await this.blobs.startUpload(id);
    } catch (e) {
      if (isStorageFull(e)) throw storageFullError(e, 'no upload was started');
      throw e;
    }
    try {
      await this.meta.createUpload(id, registryId, repo);
    } catch (e) {
      await this.blobs.abortUpload(id);
      if (isStorageFull(e)) throw storageFullError(e, 'no upload was started');
      throw e;
    }
    return id;
  }

  /** Ends an upload session that has no room (disk or quota): its bytes, then its row. */
  private async discard(id: string): Promise<void> {
    await this.blobs.abortUpload(id).catch(() => undefined);
    await this.meta.deleteUpload(id).catch(() => undefined);
  }

  private async discardFull(id: string, e: unknown): Promise<RegistryError> {
    await this.discard(id);
    return storageFullError(e, 'the upload was discarded; push again once there is room');
  }

  private async checkUpload(registryId: string, repo: string, id: string): Promise<number> {
    const u = /^[0-9a-f-]{36}$/.test(id) ? await this.meta.getUpload(id) : undefined;
    const size = u ? await this.blobs.uploadSize(id) : undefined;
    if (!u || u.registryId !== registryId || u.repo !== repo || size === undefined) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 64)} is unknown in repository ${repo}; start a new one with POST /v2/${repo}/blobs/uploads/`);
    }
    return size;
  }

  async uploadStatus(registryId: string, repo: string, id: string): Promise<number> {
    return this.checkUpload(registryId, repo, id);
  }

  /**
   * Appends a chunk. `range` is the Content-Range the client sent (if any): its start must equal the bytes
   * received so far, else 416.
   */
  async appendChunk(registryId: string, repo: string, id: string, body: Readable,
    range?: { start: number; end: number }, contentLength?: number): Promise<number> {
    const size = await this.checkUpload(registryId, repo, id);
    if (range) {
      if (range.start !== size) {
        throw new RegistryError('RANGE_INVALID', `chunk starts at ${range.start} but the upload has ${size} bytes; send the chunk starting at ${size}`, { offset: size });
      }
      if (contentLength !== undefined && range.end - range.start + 1 !== contentLength) {
        throw new RegistryError('RANGE_INVALID', `Content-Range covers ${range.end - range.start + 1} bytes but Content-Length is ${contentLength}`, { offset: size });
      }
    }
    // What the quota leaves for this session: a chunk that would pass it ends the session.
    const st = await this.quotaState(registryId);
    const quotaLeft = st ? st.q.limit - st.used - size : Number.MAX_SAFE_INTEGER;
    const rangeLen = range ? range.end - range.start + 1 : Number.MAX_SAFE_INTEGER;
    const overQuota = async () => {
      await this.discard(id);
      return quotaExceeded(st!.q, st!.used, contentLength ?? (range ? rangeLen : undefined));
    };
    if (quotaLeft < 0 || (st && contentLength !== undefined && contentLength > quotaLeft)) throw await overQuota();
    try {
      return await this.blobs.appendUpload(id, size, body, Math.min(rangeLen, quotaLeft));
    } catch (e) {
      if (e instanceof UploadTooLargeError && quotaLeft < rangeLen) throw await overQuota();
      if (e instanceof UploadOffsetError) {
        throw new RegistryError('RANGE_INVALID', 'another chunk for this upload is being written; retry after it completes', { offset: size });
      }
      if (e instanceof UploadTooLargeError) throw new RegistryError('SIZE_INVALID', 'chunk is longer than its Content-Range');
      if (isStorageFull(e)) throw await this.discardFull(id, e);
      throw e;
    }
  }

  /**
   * Finishes an upload: appends the optional last chunk (whose Content-Range, if sent, is held to the same
   * ordering rule as a PATCH), verifies the digest, links the blob.
   */
  async completeUpload(registryId: string, repo: string, id: string, digestStr: string | undefined,
    body?: Readable, contentLength?: number, range?: { start: number; end: number }): Promise<{ digest: Digest; size: number }> {
    const size = await this.checkUpload(registryId, repo, id);
    if (!digestStr) {
      throw new RegistryError('DIGEST_INVALID', 'the "digest" query parameter is required to complete an upload');
    }
    const digest = parseRefDigest(digestStr);
    if (range || (body && (contentLength === undefined || contentLength > 0))) {
      await this.appendChunk(registryId, repo, id, body ?? Readable.from([]), range, contentLength);
    }
    // Usage may have grown since the chunks were taken (other pushes): check again with what it is now.
    try {
      await this.checkQuota(registryId, digest, (await this.blobs.uploadSize(id)) ?? 0);
    } catch (e) {
      await this.discard(id);
      throw e;
    }
    let info;
    try {
      info = await this.blobs.commitUpload(id, digest);
    } catch (e) {
      if (e instanceof DigestMismatchError) {
        await this.meta.deleteUpload(id);
        throw new RegistryError('DIGEST_INVALID', `uploaded content does not match digest ${digest}; the upload was discarded`, { digest });
      }
      if (isStorageFull(e)) throw await this.discardFull(id, e);
      throw e;
    }
    try {
      await this.meta.linkBlob(registryId, repo, digest, info.size);
    } catch (e) {
      // The blob stays unlinked (GC takes it); the session is over either way.
      if (isStorageFull(e)) throw await this.discardFull(id, e);
      throw e;
    }
    await this.meta.deleteUpload(id);
    void size;
    return { digest, size: info.size };
  }

  async cancelUpload(registryId: string, repo: string, id: string): Promise<void> {
    await this.checkUpload(registryId, repo, id);
    await this.blobs.abortUpload(id);
    await this.meta.deleteUpload(id);
  }

  /**
   * Cross-repository mount. `canReadFrom(repo)` says whether the caller may pull from that repository.
   * Returns false when the blob cannot be mounted (the caller then starts a normal upload).
   */
  async mountBlob(registryId: string, repo: string, digestStr: string, from: string | undefined,
    canReadFrom: (repo: string) => Promise<boolean>): Promise<{ digest: Digest; size: number } | undefined> {
    if (!isDigest(digestStr)) return undefined;
    const digest = digestStr as Digest;
    const candidates = from ? [from] : await this.meta.reposWithBlob(registryId, digest);
    for (const src of candidates) {
      if (!await canReadFrom(src)) continue;
      const size = await this.meta.linkedBlobSize(registryId, src, digest);
      if (size !== undefined && (await this.blobs.stat(digest))) {
        try {
          await this.meta.linkBlob(registryId, repo, digest, size);
        } catch (e) {
          if (isStorageFull(e)) throw storageFullError(e, 'the blob was not mounted');
          throw e;
        }
        return { digest, size };
      }
    }
    return undefined;
  }
}
