// What the registry service needs to remember about repositories, separate from the bytes.
// One implementation in SQL serves both engines (storage/sql-registry-metadata.ts on storage/sql/):
// embedded SQLite and PostgreSQL; test/registry-metadata-contract.test.ts holds each to this contract.
import type { Digest } from '../oci/digest.js';

/** ACR's changeable attributes of a repository, manifest or tag (all true unless changed). */
export interface ChangeableAttributes {
  deleteEnabled: boolean;
  writeEnabled: boolean;
  readEnabled: boolean;
  listEnabled: boolean;
}

export const DEFAULT_ATTRIBUTES: Readonly<ChangeableAttributes> = Object.freeze({ deleteEnabled: true, writeEnabled: true, readEnabled: true, listEnabled: true });

/** What a set of changeable attributes belongs to, inside one repository. */
export type AttributeTarget = { kind: 'repository' } | { kind: 'manifest'; digest: Digest } | { kind: 'tag'; tag: string };

/** What a manifest's record says about it, as stored and as returned. */
interface ManifestFields {
  digest: Digest;
  mediaType: string;
  size: number;
  artifactType?: string;
  subject?: Digest;
  annotations?: Record<string, string>;
  configDigest?: Digest;
  /** Total bytes of config and layers (for ACR's imageSize). */
  imageSize: number;
  platform?: { os: string; architecture: string };
}

export interface ManifestRecord extends ManifestFields {
  repo: string;
  attributes: ChangeableAttributes;
  createdAt: string;
  updatedAt: string;
}

export interface NewManifest extends ManifestFields {
  /** Blobs and child manifests this manifest references. */
  children: Digest[];
}

export interface TagRecord {
  name: string;
  digest: Digest;
  attributes: ChangeableAttributes;
  createdAt: string;
  updatedAt: string;
}

export interface RepositoryRecord {
  name: string;
  createdAt: string;
  updatedAt: string;
  manifestCount: number;
  tagCount: number;
  attributes: ChangeableAttributes;
}

export interface Page<T> {
  items: T[];
  /** True when more items follow the last one returned. */
  more: boolean;
}

export interface RegistryMetadataStore {
  linkedBlobSize(registryId: string, repo: string, digest: Digest): Promise<number | undefined>;
  linkBlob(registryId: string, repo: string, digest: Digest, size: number): Promise<void>;
  unlinkBlob(registryId: string, repo: string, digest: Digest): Promise<boolean>;
  /** Repositories of this registry that hold the blob. */
  reposWithBlob(registryId: string, digest: Digest): Promise<string[]>;
  /** Bytes of the distinct blobs and manifests the registry's repositories link (its quota usage). */
  registryUsage(registryId: string): Promise<number>;
  /** Whether some repository of the registry links `digest` (as a blob or a manifest): it counts in registryUsage already. */
  inRegistry(registryId: string, digest: Digest): Promise<boolean>;

  createUpload(id: string, registryId: string, repo: string): Promise<void>;
  getUpload(id: string): Promise<{ registryId: string; repo: string; createdAt: string } | undefined>;
  deleteUpload(id: string): Promise<void>;

  getManifest(registryId: string, repo: string, digest: Digest): Promise<ManifestRecord | undefined>;
  /** Stores a manifest (and its repository) and points the given tag(s) at it; one transaction. */
  putManifest(registryId: string, repo: string, m: NewManifest, tag?: string | readonly string[]): Promise<void>;
  deleteManifest(registryId: string, repo: string, digest: Digest): Promise<boolean>;
  /** Manifests in the repository that reference `digest` as a child (an index listing it). */
  manifestParents(registryId: string, repo: string, digest: Digest): Promise<Digest[]>;
  listManifests(registryId: string, repo: string): Promise<Array<ManifestRecord & { tags: string[] }>>;
  referrers(registryId: string, repo: string, subject: Digest): Promise<ManifestRecord[]>;

  resolveTag(registryId: string, repo: string, tag: string): Promise<TagRecord | undefined>;
  deleteTag(registryId: string, repo: string, tag: string): Promise<boolean>;
  listTags(registryId: string, repo: string, n: number | undefined, last: string | undefined): Promise<Page<TagRecord>>;

  getRepository(registryId: string, repo: string): Promise<RepositoryRecord | undefined>;
  /** Replaces the changeable attributes of a repository, manifest or tag; false when it does not exist. */
  setAttributes(registryId: string, repo: string, target: AttributeTarget, attributes: ChangeableAttributes): Promise<boolean>;
  listRepositories(registryId: string, n: number | undefined, last: string | undefined): Promise<Page<string>>;
  deleteRepository(registryId: string, repo: string): Promise<{ manifests: Digest[]; tags: string[] } | undefined>;

  /** Every digest that some manifest or repository link references, across all registries (GC mark). */
  referencedDigests(): Promise<Set<string>>;
  /** Whether one digest is referenced as `referencedDigests` would say, by indexed look-ups (GC re-check). */
  isReferenced(digest: string): Promise<boolean>;
  /** Drops repository links to blobs no manifest references and that were linked before `before`. */
  pruneUnreferencedLinks(before: string): Promise<number>;
  /** Upload sessions created before `before`. */
  staleUploads(before: string): Promise<string[]>;
}
