// The registry's rules, with no HTTP in them: one facade over the modules that do each job — blobs and
// uploads (./uploads.ts), manifests (./manifests.ts), repositories and their locks (./repositories.ts),
// garbage collection (./gc.ts).
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { QuotaLookup } from './quota.js';
import type {
  AttributeTarget, ChangeableAttributes, ManifestRecord, RegistryMetadataStore, RepositoryRecord, TagRecord, Page,
} from './metadata.js';
import { Uploads, type BlobHandle } from './uploads.js';
import { Manifests, type ManifestHandle } from './manifests.js';
import { Repositories } from './repositories.js';
import { collectGarbage, type GcReport } from './gc.js';

export type { BlobHandle } from './uploads.js';
export type { ManifestHandle } from './manifests.js';
export type { GcReport } from './gc.js';
export { storageFullError } from './rules.js';

export interface RegistryServiceOptions {
  /** Abandoned upload sessions older than this are removed by GC. */
  uploadTtlMs?: number;
  /** Blobs younger than this are never collected (a push may be about to reference them). */
  gcGraceMs?: number;
  /** Each registry's storage quota (none when undefined). */
  quota?: QuotaLookup;
}

type Range = { start: number; end: number };

export class RegistryService {
  private readonly uploadTtlMs: number;
  private readonly gcGraceMs: number;
  private readonly uploads: Uploads;
  private readonly manifests: Manifests;
  private readonly repos: Repositories;

  constructor(
    private readonly meta: RegistryMetadataStore,
    private readonly blobs: BlobStore,
    opts: RegistryServiceOptions = {},
  ) {
    this.uploadTtlMs = opts.uploadTtlMs ?? 24 * 3600_000;
    this.gcGraceMs = opts.gcGraceMs ?? 3600_000;
    this.uploads = new Uploads(meta, blobs, opts.quota ?? (async () => undefined));
    this.manifests = new Manifests(meta, blobs, (r, d, n) => this.uploads.checkQuota(r, d, n));
    this.repos = new Repositories(meta);
  }

  // ---- storage quota, blobs and uploads

  storageUsage(registryId: string): Promise<{ currentValue: number; limit: number | undefined }> {
    return this.uploads.storageUsage(registryId);
  }

  getBlob(registryId: string, repo: string, digest: string): Promise<BlobHandle> {
    return this.uploads.getBlob(registryId, repo, digest);
  }

  deleteBlob(registryId: string, repo: string, digest: string): Promise<void> {
    return this.uploads.deleteBlob(registryId, repo, digest);
  }

  startUpload(registryId: string, repo: string): Promise<string> {
    return this.uploads.startUpload(registryId, repo);
  }

  uploadStatus(registryId: string, repo: string, id: string): Promise<number> {
    return this.uploads.uploadStatus(registryId, repo, id);
  }

  appendChunk(registryId: string, repo: string, id: string, body: Readable, range?: Range, contentLength?: number): Promise<number> {
    return this.uploads.appendChunk(registryId, repo, id, body, range, contentLength);
  }

  completeUpload(registryId: string, repo: string, id: string, digest: string | undefined,
    body?: Readable, contentLength?: number, range?: Range): Promise<{ digest: Digest; size: number }> {
    return this.uploads.completeUpload(registryId, repo, id, digest, body, contentLength, range);
  }

  cancelUpload(registryId: string, repo: string, id: string): Promise<void> {
    return this.uploads.cancelUpload(registryId, repo, id);
  }

  mountBlob(registryId: string, repo: string, digest: string, from: string | undefined,
    canReadFrom: (repo: string) => Promise<boolean>): Promise<{ digest: Digest; size: number } | undefined> {
    return this.uploads.mountBlob(registryId, repo, digest, from, canReadFrom);
  }

  // ---- manifests

  resolve(registryId: string, repo: string, reference: string): Promise<ManifestRecord> {
    return this.manifests.resolve(registryId, repo, reference);
  }

  getManifest(registryId: string, repo: string, reference: string): Promise<ManifestHandle> {
    return this.manifests.getManifest(registryId, repo, reference);
  }

  putManifest(registryId: string, repo: string, reference: string, body: Buffer,
    contentType: string | undefined, extraTags: readonly string[] = []): Promise<{ digest: Digest; subject?: Digest }> {
    return this.manifests.putManifest(registryId, repo, reference, body, contentType, extraTags);
  }

  deleteManifest(registryId: string, repo: string, reference: string): Promise<void> {
    return this.manifests.deleteManifest(registryId, repo, reference);
  }

  referrers(registryId: string, repo: string, subject: string, artifactType?: string): Promise<object> {
    return this.manifests.referrers(registryId, repo, subject, artifactType);
  }

  indexReferences(m: ManifestRecord): Promise<Array<{ digest: Digest; architecture?: string; os?: string }>> {
    return this.manifests.indexReferences(m);
  }

  // ---- repositories: listing, ACR metadata, locks

  listTags(registryId: string, repo: string, n: number | undefined, last: string | undefined): Promise<Page<TagRecord>> {
    return this.repos.listTags(registryId, repo, n, last);
  }

  catalog(registryId: string, n: number | undefined, last: string | undefined): Promise<Page<string>> {
    return this.repos.catalog(registryId, n, last);
  }

  repository(registryId: string, repo: string): Promise<RepositoryRecord> {
    return this.repos.repository(registryId, repo);
  }

  updateAttributes(registryId: string, repo: string, target: AttributeTarget, change: Partial<ChangeableAttributes>): Promise<ChangeableAttributes> {
    return this.repos.updateAttributes(registryId, repo, target, change);
  }

  listManifests(registryId: string, repo: string) {
    return this.repos.listManifests(registryId, repo);
  }

  deleteRepository(registryId: string, repo: string) {
    return this.repos.deleteRepository(registryId, repo);
  }

  // ---- garbage collection

  collectGarbage(now = Date.now()): Promise<GcReport> {
    return collectGarbage(this.meta, this.blobs, { uploadTtlMs: this.uploadTtlMs, gcGraceMs: this.gcGraceMs }, now);
  }
}
