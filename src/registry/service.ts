// The registry's rules, with no HTTP in them: uploads, manifests, tags, referrers, deletes and GC.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { digestOf, isDigest, parseDigest, type Digest, InvalidDigestError } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { MediaTypes, isIndexMediaType } from '../oci/media-types.js';
import { isTag } from '../oci/names.js';
import {
  DigestMismatchError, UploadOffsetError, UploadTooLargeError, StorageFullError,
  type BlobStore, type ByteRange,
} from '../storage/blob-store.js';
import { isDiskFull } from '../storage/disk-space.js';
import { formatBytes } from '../lib/bytes.js';
import { quotaExceeded, type QuotaLookup, type StorageQuota } from './quota.js';
import type {
  AttributeTarget, ChangeableAttributes, ManifestRecord, RegistryMetadataStore, RepositoryRecord, TagRecord, Page,
} from './metadata.js';
import { Readable as ReadableStream } from 'node:stream';

export interface BlobHandle {
  digest: Digest;
  size: number;
  open(range?: ByteRange): Readable;
}

export interface ManifestHandle {
  record: ManifestRecord;
  body: Buffer;
}

export interface GcReport {
  blobsDeleted: number;
  bytesFreed: number;
  linksPruned: number;
  uploadsExpired: number;
}

export interface RegistryServiceOptions {
  /** Abandoned upload sessions older than this are removed by GC. */
  uploadTtlMs?: number;
  /** Blobs younger than this are never collected (a push may be about to reference them). */
  gcGraceMs?: number;
  /** Each registry's storage quota (none when undefined). */
  quota?: QuotaLookup;
}

type Lockable = 'writeEnabled' | 'deleteEnabled' | 'readEnabled';
const ATTRIBUTE_FLAG: Record<Lockable, string> = { writeEnabled: '--write-enabled', deleteEnabled: '--delete-enabled', readEnabled: '--read-enabled' };

/** ACR's answer to an operation its changeable attributes (a lock) forbid. */
function locked(what: string, attr: Lockable): RegistryError {
  return new RegistryError('UNSUPPORTED',
    `The operation is disallowed on this registry, repository or image: ${what} has ${attr} set to false; set it to true first (acr repository update ${ATTRIBUTE_FLAG[attr]} true, or the SDK's update*Properties)`,
    { attribute: attr });
}

/** A write lock forbids deletes too (ACR: a locked image cannot be updated or deleted). */
function checkDeletable(what: string, a: ChangeableAttributes): void {
  if (!a.writeEnabled) throw locked(what, 'writeEnabled');
  if (!a.deleteEnabled) throw locked(what, 'deleteEnabled');
}

/**
 * The registry's answer when the data directory's disk is full or at its reserve: 507 Insufficient
 * Storage (registry clients print that status line; the message is for those that read the body).
 */
export function storageFullError(e: unknown, what: string): RegistryError {
  const why = e instanceof StorageFullError && e.kind === 'reserve'
    ? `it has ${formatBytes(e.free)} free and Berth keeps ${formatBytes(e.reserve)} in reserve for its metadata`
    : 'the filesystem refused a write: no space left';
  return new RegistryError('UNKNOWN',
    `insufficient storage: the disk holding the Berth server's data directory is full (${why}); ${what}. ` +
    'Free space on that disk (delete images you no longer need, then run berth acr gc), or give berth serve a smaller --storage-reserve.',
    { reason: 'StorageFull' }, 507);
}

const isStorageFull = (e: unknown) => e instanceof StorageFullError || isDiskFull(e);

function parseRefDigest(s: string): Digest {
  try {
    return parseDigest(s);
  } catch (e) {
    throw new RegistryError('DIGEST_INVALID', (e as InvalidDigestError).message);
  }
}

export class RegistryService {
  private readonly uploadTtlMs: number;
  private readonly gcGraceMs: number;
  private readonly quota: QuotaLookup;

  constructor(
    private readonly meta: RegistryMetadataStore,
    private readonly blobs: BlobStore,
    opts: RegistryServiceOptions = {},
  ) {
    this.uploadTtlMs = opts.uploadTtlMs ?? 24 * 3600_000;
    this.gcGraceMs = opts.gcGraceMs ?? 3600_000;
    this.quota = opts.quota ?? (() => undefined);
  }

  // ---- storage quota

  /** The registry's quota usage in bytes and its limit (undefined: none). */
  async storageUsage(registryId: string): Promise<{ currentValue: number; limit: number | undefined }> {
    return { currentValue: await this.meta.registryUsage(registryId), limit: this.quota(registryId)?.limit };
  }

  /** The registry's quota with what it uses now, or undefined when it has none. */
  private async quotaState(registryId: string): Promise<{ q: StorageQuota; used: number } | undefined> {
    const q = this.quota(registryId);
    return q ? { q, used: await this.meta.registryUsage(registryId) } : undefined;
  }

  /** Refuses `adding` new bytes for `digest` when they would take the registry past its quota. */
  private async checkQuota(registryId: string, digest: Digest, adding: number): Promise<void> {
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
    return { digest, size, open: (range) => this.blobs.open(digest, range) };
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
      await this.appendChunk(registryId, repo, id, body ?? ReadableStream.from([]), range, contentLength);
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
    canReadFrom: (repo: string) => boolean): Promise<{ digest: Digest; size: number } | undefined> {
    if (!isDigest(digestStr)) return undefined;
    const digest = digestStr as Digest;
    const candidates = from ? [from] : await this.meta.reposWithBlob(registryId, digest);
    for (const src of candidates) {
      if (!canReadFrom(src)) continue;
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

  // ---- manifests

  async resolve(registryId: string, repo: string, reference: string): Promise<ManifestRecord> {
    let digest: Digest;
    if (isTag(reference)) {
      const t = await this.meta.resolveTag(registryId, repo, reference);
      if (!t) throw await this.manifestUnknown(registryId, repo, reference);
      digest = t.digest;
    } else if (!reference.includes(':')) {
      // Not a tag any push could have made, and not a digest: no such manifest (the spec's 404).
      throw await this.manifestUnknown(registryId, repo, reference);
    } else {
      digest = parseRefDigest(reference);
    }
    const m = await this.meta.getManifest(registryId, repo, digest);
    if (!m) throw await this.manifestUnknown(registryId, repo, reference);
    return m;
  }

  private async manifestUnknown(registryId: string, repo: string, reference: string): Promise<RegistryError> {
    const r = await this.meta.getRepository(registryId, repo);
    if (!r) return new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { name: repo });
    return new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in repository ${repo}`, { name: repo, reference });
  }

  async getManifest(registryId: string, repo: string, reference: string): Promise<ManifestHandle> {
    const record = await this.resolve(registryId, repo, reference);
    const r = await this.meta.getRepository(registryId, repo);
    if (r && !r.attributes.readEnabled) throw locked(`repository ${repo}`, 'readEnabled');
    if (!record.attributes.readEnabled) throw locked(`manifest ${record.digest}`, 'readEnabled');
    if (isTag(reference) && !(await this.meta.resolveTag(registryId, repo, reference))?.attributes.readEnabled) {
      throw locked(`tag ${reference}`, 'readEnabled');
    }
    return { record, body: await this.readSmall(record.digest) };
  }

  /**
   * Stores a manifest pushed to `reference` (a tag or its digest). `extraTags` are the spec's optional `tag`
   * query parameters of a push: each is pointed at the manifest too, in the same transaction.
   */
  async putManifest(registryId: string, repo: string, reference: string, body: Buffer,
    contentType: string | undefined, extraTags: readonly string[] = []): Promise<{ digest: Digest; subject?: Digest }> {
    const bad = extraTags.find((t) => !isTag(t));
    if (bad !== undefined) {
      throw new RegistryError('TAG_INVALID', `tag parameter "${bad.slice(0, 200)}" is not a valid tag: use up to 128 of [A-Za-z0-9_.-], not starting with . or -`, { tag: bad.slice(0, 200) });
    }
    let tag: string | undefined;
    let digest: Digest;
    if (isTag(reference)) {
      tag = reference;
      digest = digestOf(body);
    } else if (reference.includes(':')) {
      const expected = parseRefDigest(reference);
      digest = digestOf(body, expected.startsWith('sha512:') ? 'sha512' : 'sha256');
      if (digest !== expected) {
        throw new RegistryError('DIGEST_INVALID', `manifest body hashes to ${digest}, not ${expected}`, { digest: expected });
      }
    } else {
      throw new RegistryError('TAG_INVALID', `"${reference.slice(0, 200)}" is neither a valid tag nor a digest`);
    }
    await this.checkWritable(registryId, repo, digest, [...(tag === undefined ? [] : [tag]), ...extraTags]);
    const parsed = parseManifest(body, contentType);
    let imageSize = 0;
    const missing: Descriptor[] = [];
    for (const b of parsed.blobs) {
      const size = await this.meta.linkedBlobSize(registryId, repo, b.digest);
      if (size === undefined) missing.push(b);
      else imageSize += size;
    }
    for (const m of parsed.manifests) {
      if (!(await this.meta.getManifest(registryId, repo, m.digest))) missing.push(m);
    }
    if (missing.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN',
        `manifest references ${missing.length === 1 ? '' : `${missing.length} `}content not in repository ${repo}: ${missing.slice(0, 3).map((d) => d.digest).join(', ')}${missing.length > 3 ? ', ...' : ''}; push it first`,
        { digest: missing[0]!.digest });
    }
    await this.checkQuota(registryId, digest, body.length);
    // The subject need not exist (referrers may be pushed before their subject).
    try {
      await this.storeBytes(body, digest);
    } catch (e) {
      if (isStorageFull(e)) throw storageFullError(e, 'the manifest was not stored');
      throw e;
    }
    let platform: { os: string; architecture: string } | undefined;
    let artifactType = parsed.artifactType;
    if (parsed.config && !isIndexMediaType(parsed.mediaType)) {
      // What the referrers API lists: the manifest's own artifactType, else its config's media type.
      artifactType ??= parsed.config.mediaType;
      if (parsed.config.mediaType === MediaTypes.ociConfig || parsed.config.mediaType === MediaTypes.dockerConfig) {
        platform = await this.readPlatform(parsed.config.digest, parsed.config.size);
      }
    }
    try {
      await this.meta.putManifest(registryId, repo, {
        digest, mediaType: parsed.mediaType, size: body.length,
        ...(artifactType ? { artifactType } : {}),
        ...(parsed.subject ? { subject: parsed.subject.digest } : {}),
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
        ...(parsed.config ? { configDigest: parsed.config.digest } : {}),
        ...(platform ? { platform } : {}),
        imageSize,
        children: [...parsed.blobs, ...parsed.manifests].map((d) => d.digest),
      }, [...new Set([...(tag === undefined ? [] : [tag]), ...extraTags])]);
    } catch (e) {
      // One transaction: nothing of it is kept; the manifest's blob is unreferenced and GC takes it.
      if (isStorageFull(e)) throw storageFullError(e, 'the manifest was not stored');
      throw e;
    }
    return parsed.subject ? { digest, subject: parsed.subject.digest } : { digest };
  }

  /** A push may not move a write-locked tag, nor write into a write-locked repository. */
  private async checkWritable(registryId: string, repo: string, digest: Digest, tags: string[]): Promise<void> {
    const r = await this.meta.getRepository(registryId, repo);
    if (r && !r.attributes.writeEnabled) throw locked(`repository ${repo}`, 'writeEnabled');
    for (const t of tags) {
      const cur = await this.meta.resolveTag(registryId, repo, t);
      if (cur && cur.digest !== digest && !cur.attributes.writeEnabled) throw locked(`tag ${t}`, 'writeEnabled');
    }
  }

  private async readPlatform(config: Digest, size: number): Promise<{ os: string; architecture: string } | undefined> {
    if (size > 1024 * 1024) return undefined;
    try {
      const doc = JSON.parse((await this.readSmall(config)).toString('utf8')) as { os?: unknown; architecture?: unknown };
      if (typeof doc.os === 'string' && typeof doc.architecture === 'string') return { os: doc.os, architecture: doc.architecture };
    } catch {
      // A config that is not JSON is an artifact's business, not ours.
    }
    return undefined;
  }

  /** Reads small stored content (a manifest or a config) whole; callers bound its size. */
  private async readSmall(digest: Digest): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.blobs.open(digest)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** Stores small in-memory content (a manifest) in the blob store. */
  private async storeBytes(body: Buffer, digest: Digest): Promise<void> {
    if (await this.blobs.stat(digest)) return;
    const id = randomUUID();
    await this.blobs.startUpload(id);
    try {
      await this.blobs.appendUpload(id, 0, ReadableStream.from([body]));
      await this.blobs.commitUpload(id, digest);
    } catch (e) {
      await this.blobs.abortUpload(id);
      throw e;
    }
  }

  async deleteManifest(registryId: string, repo: string, reference: string): Promise<void> {
    const r = await this.meta.getRepository(registryId, repo);
    if (r) checkDeletable(`repository ${repo}`, r.attributes);
    if (isTag(reference) || !reference.includes(':')) {
      const t = isTag(reference) ? await this.meta.resolveTag(registryId, repo, reference) : undefined;
      if (t) checkDeletable(`tag ${reference}`, t.attributes);
      if (!t || !(await this.meta.deleteTag(registryId, repo, reference))) throw await this.manifestUnknown(registryId, repo, reference);
      return;
    }
    const digest = parseRefDigest(reference);
    const m = await this.meta.getManifest(registryId, repo, digest);
    if (m) {
      checkDeletable(`manifest ${digest}`, m.attributes);
      // Deleting a manifest deletes its tags: a locked tag protects it.
      for (const t of (await this.meta.listTags(registryId, repo, undefined, undefined)).items) {
        if (t.digest === digest) checkDeletable(`tag ${t.name}`, t.attributes);
      }
    }
    if (!(await this.meta.deleteManifest(registryId, repo, digest))) throw await this.manifestUnknown(registryId, repo, reference);
  }

  // ---- listing

  async listTags(registryId: string, repo: string, n: number | undefined, last: string | undefined): Promise<Page<TagRecord>> {
    if (!(await this.meta.getRepository(registryId, repo))) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { name: repo });
    }
    return this.meta.listTags(registryId, repo, n, last);
  }

  async catalog(registryId: string, n: number | undefined, last: string | undefined): Promise<Page<string>> {
    return this.meta.listRepositories(registryId, n, last);
  }

  /** The referrers API's image index for `subject`, optionally filtered by artifactType. */
  async referrers(registryId: string, repo: string, subjectStr: string, artifactType?: string): Promise<object> {
    const subject = parseRefDigest(subjectStr);
    let rows = await this.meta.referrers(registryId, repo, subject);
    // Image manifests stored before the artifactType fallback existed: take their config's media type now.
    rows = await Promise.all(rows.map(async (r) => (r.artifactType || isIndexMediaType(r.mediaType) ? r : { ...r, ...(await this.configArtifactType(r.digest)) })));
    if (artifactType) rows = rows.filter((r) => r.artifactType === artifactType);
    return {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: rows.map((r) => ({
        mediaType: r.mediaType, digest: r.digest, size: r.size,
        ...(r.artifactType ? { artifactType: r.artifactType } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      })),
    };
  }

  private async configArtifactType(manifest: Digest): Promise<{ artifactType?: string }> {
    try {
      const mt = parseManifest(await this.readSmall(manifest), undefined).config?.mediaType;
      return mt ? { artifactType: mt } : {};
    } catch {
      return {};
    }
  }

  // ---- ACR metadata

  async repository(registryId: string, repo: string): Promise<RepositoryRecord> {
    const r = await this.meta.getRepository(registryId, repo);
    if (!r) throw new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { name: repo });
    return r;
  }

  /** The manifests an index lists, with their platforms (ACR's `references`); empty for an image manifest. */
  async indexReferences(m: ManifestRecord): Promise<Array<{ digest: Digest; architecture?: string; os?: string }>> {
    if (!isIndexMediaType(m.mediaType)) return [];
    const parsed = parseManifest(await this.readSmall(m.digest), m.mediaType);
    return parsed.manifests.map((d) => ({ digest: d.digest, ...(d.platform ? { architecture: d.platform.architecture, os: d.platform.os } : {}) }));
  }

  /** Changes some of the changeable attributes of a repository, manifest or tag; returns them all. */
  async updateAttributes(registryId: string, repo: string, target: AttributeTarget, change: Partial<ChangeableAttributes>): Promise<ChangeableAttributes> {
    const current = await this.attributesOf(registryId, repo, target);
    const next: ChangeableAttributes = { ...current };
    for (const k of ['deleteEnabled', 'writeEnabled', 'readEnabled', 'listEnabled'] as const) {
      const v = change[k];
      if (v !== undefined) next[k] = v;
    }
    await this.meta.setAttributes(registryId, repo, target, next);
    return next;
  }

  private async attributesOf(registryId: string, repo: string, target: AttributeTarget): Promise<ChangeableAttributes> {
    if (target.kind === 'repository') return (await this.repository(registryId, repo)).attributes;
    if (target.kind === 'tag') {
      const t = await this.meta.resolveTag(registryId, repo, target.tag);
      if (!t) throw await this.manifestUnknown(registryId, repo, target.tag);
      return t.attributes;
    }
    const m = await this.meta.getManifest(registryId, repo, target.digest);
    if (!m) throw await this.manifestUnknown(registryId, repo, target.digest);
    return m.attributes;
  }

  async listManifests(registryId: string, repo: string) {
    await this.repository(registryId, repo);
    return this.meta.listManifests(registryId, repo);
  }

  async deleteRepository(registryId: string, repo: string) {
    const cur = await this.meta.getRepository(registryId, repo);
    if (cur) {
      checkDeletable(`repository ${repo}`, cur.attributes);
      for (const m of await this.meta.listManifests(registryId, repo)) checkDeletable(`manifest ${m.digest}`, m.attributes);
      for (const t of (await this.meta.listTags(registryId, repo, undefined, undefined)).items) checkDeletable(`tag ${t.name}`, t.attributes);
    }
    const r = await this.meta.deleteRepository(registryId, repo);
    if (!r) throw new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { name: repo });
    return r;
  }

  // ---- garbage collection (mark and sweep across all registries; the blob store is shared)

  async collectGarbage(now = Date.now()): Promise<GcReport> {
    const report: GcReport = { blobsDeleted: 0, bytesFreed: 0, linksPruned: 0, uploadsExpired: 0 };
    const graceCutoff = new Date(now - this.gcGraceMs).toISOString();
    report.linksPruned = await this.meta.pruneUnreferencedLinks(graceCutoff);
    const stale = await this.meta.staleUploads(new Date(now - this.uploadTtlMs).toISOString());
    for (const id of stale) {
      await this.blobs.abortUpload(id);
      await this.meta.deleteUpload(id);
      report.uploadsExpired++;
    }
    for await (const u of this.blobs.listUploads()) {
      // Files with no session row (a crash between the two writes) age out the same way.
      if (u.modifiedAt < now - this.uploadTtlMs && !(await this.meta.getUpload(u.id))) {
        await this.blobs.abortUpload(u.id);
        report.uploadsExpired++;
      }
    }
    const marked = await this.meta.referencedDigests();
    for await (const d of this.blobs.list()) {
      if (marked.has(d)) continue;
      const info = await this.blobs.stat(d);
      if (!info || info.modifiedAt > now - this.gcGraceMs) continue;
      // Re-check just before deleting: a push may have linked it since the mark.
      if (await this.meta.isReferenced(d)) continue;
      await this.blobs.delete(d);
      report.blobsDeleted++;
      report.bytesFreed += info.size;
    }
    return report;
  }
}
