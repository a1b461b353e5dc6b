// Manifests, with no HTTP in them: resolve by tag or digest, get (read locks), put (digest check,
// referenced content present, quota, tags in one transaction), delete (locks), referrers, index references.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestOf, type Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { MediaTypes, isIndexMediaType } from '../oci/media-types.js';
import { isTag } from '../oci/names.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { ManifestRecord, RegistryMetadataStore, TagRecord } from './metadata.js';
import { ContentCache } from './content-cache.js';
import { checkDeletable, isStorageFull, locked, nameUnknown, parseRefDigest, storageFullError } from './rules.js';

export interface ManifestHandle {
  record: ManifestRecord;
  body: Buffer;
}

/** NAME_UNKNOWN when the repository does not exist, else MANIFEST_UNKNOWN for `reference`. */
export async function manifestUnknown(meta: RegistryMetadataStore, registryId: string, repo: string, reference: string): Promise<RegistryError> {
  if (!(await meta.getRepository(registryId, repo))) return nameUnknown(repo);
  return new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in repository ${repo}`, { name: repo, reference });
}

export class Manifests {
  /** Manifests and configs read lately: a pull reads the same few again and again. */
  private readonly recent = new ContentCache();

  constructor(
    private readonly meta: RegistryMetadataStore,
    private readonly blobs: BlobStore,
    /** Refuses `adding` new bytes for `digest` past the registry's quota. */
    private readonly checkQuota: (registryId: string, digest: Digest, adding: number) => Promise<void>,
  ) {}

  async resolve(registryId: string, repo: string, reference: string): Promise<ManifestRecord> {
    return (await this.lookUp(registryId, repo, reference)).record;
  }

  /** The manifest `reference` names, and the tag it went through (if it is a tag). */
  private async lookUp(registryId: string, repo: string, reference: string): Promise<{ record: ManifestRecord; tag?: TagRecord }> {
    let digest: Digest;
    let tag: TagRecord | undefined;
    if (isTag(reference)) {
      tag = await this.meta.resolveTag(registryId, repo, reference);
      if (!tag) throw await manifestUnknown(this.meta, registryId, repo, reference);
      digest = tag.digest;
    } else if (!reference.includes(':')) {
      // Not a tag any push could have made, and not a digest: no such manifest (the spec's 404).
      throw await manifestUnknown(this.meta, registryId, repo, reference);
    } else {
      digest = parseRefDigest(reference);
    }
    const record = await this.meta.getManifest(registryId, repo, digest);
    if (!record) throw await manifestUnknown(this.meta, registryId, repo, reference);
    return tag ? { record, tag } : { record };
  }

  async getManifest(registryId: string, repo: string, reference: string): Promise<ManifestHandle> {
    const { record, tag } = await this.lookUp(registryId, repo, reference);
    const r = await this.meta.getRepository(registryId, repo);
    if (r && !r.attributes.readEnabled) throw locked(`repository ${repo}`, 'readEnabled');
    if (!record.attributes.readEnabled) throw locked(`manifest ${record.digest}`, 'readEnabled');
    if (tag && !tag.attributes.readEnabled) throw locked(`tag ${reference}`, 'readEnabled');
    return { record, body: await this.readSmall(record.digest, record.size) };
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

  /**
   * Reads small stored content (a manifest or a config) whole; callers bound its size. `size`, when
   * given, is the stored size from the metadata (never a descriptor's claim): the read then allocates
   * just that (a blob stream's default is a 1 MiB buffer per read).
   */
  private async readSmall(digest: Digest, size?: number): Promise<Buffer> {
    const cached = this.recent.get(digest);
    if (cached) return cached;
    if (size === 0) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    for await (const c of this.blobs.open(digest, size === undefined ? undefined : { start: 0, end: size - 1 })) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    this.recent.put(digest, body);
    return body;
  }

  /** Stores small in-memory content (a manifest) in the blob store. */
  private async storeBytes(body: Buffer, digest: Digest): Promise<void> {
    if (await this.blobs.stat(digest)) return;
    const id = randomUUID();
    await this.blobs.startUpload(id);
    try {
      await this.blobs.appendUpload(id, 0, Readable.from([body]));
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
      if (!t || !(await this.meta.deleteTag(registryId, repo, reference))) throw await manifestUnknown(this.meta, registryId, repo, reference);
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
    if (!(await this.meta.deleteManifest(registryId, repo, digest))) throw await manifestUnknown(this.meta, registryId, repo, reference);
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

  /** The manifests an index lists, with their platforms (ACR's `references`); empty for an image manifest. */
  async indexReferences(m: ManifestRecord): Promise<Array<{ digest: Digest; architecture?: string; os?: string }>> {
    if (!isIndexMediaType(m.mediaType)) return [];
    const parsed = parseManifest(await this.readSmall(m.digest, m.size), m.mediaType);
    return parsed.manifests.map((d) => ({ digest: d.digest, ...(d.platform ? { architecture: d.platform.architecture, os: d.platform.os } : {}) }));
  }
}
