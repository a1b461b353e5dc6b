import type { Digest } from '../oci/digest.js';
import {
  DEFAULT_ATTRIBUTES,
  type AttributeTarget, type ChangeableAttributes, type ManifestRecord, type NewManifest, type Page,
  type RegistryMetadataStore, type RepositoryRecord, type TagRecord,
} from '../registry/metadata.js';
import { nowIso, statementCache, type Db } from './sqlite.js';

interface ManifestRow {
  repo: string; digest: string; media_type: string; size: number; artifact_type: string | null;
  subject: string | null; annotations: string | null; config_digest: string | null; image_size: number;
  platform: string | null; attributes: string | null; created_at: string; updated_at: string;
}

interface TagRow { tag: string; digest: string; attributes: string | null; created_at: string; updated_at: string }

/** Stored as JSON, NULL while every attribute is still at its default. */
function attributes(json: string | null): ChangeableAttributes {
  return json ? { ...DEFAULT_ATTRIBUTES, ...(JSON.parse(json) as Partial<ChangeableAttributes>) } : { ...DEFAULT_ATTRIBUTES };
}

function toTag(r: TagRow): TagRecord {
  return { name: r.tag, digest: r.digest as Digest, attributes: attributes(r.attributes), createdAt: r.created_at, updatedAt: r.updated_at };
}

function toManifest(r: ManifestRow): ManifestRecord {
  const m: ManifestRecord = {
    repo: r.repo, digest: r.digest as Digest, mediaType: r.media_type, size: r.size, imageSize: r.image_size,
    attributes: attributes(r.attributes), createdAt: r.created_at, updatedAt: r.updated_at,
  };
  if (r.artifact_type) m.artifactType = r.artifact_type;
  if (r.subject) m.subject = r.subject as Digest;
  if (r.annotations) m.annotations = JSON.parse(r.annotations) as Record<string, string>;
  if (r.config_digest) m.configDigest = r.config_digest as Digest;
  if (r.platform) m.platform = JSON.parse(r.platform) as { os: string; architecture: string };
  return m;
}

function page<T>(rows: T[], n: number | undefined): Page<T> {
  if (n === undefined || rows.length <= n) return { items: rows, more: false };
  return { items: rows.slice(0, n), more: true };
}

export class SqliteRegistryMetadata implements RegistryMetadataStore {
  private readonly q: ReturnType<typeof statementCache>;

  constructor(private readonly db: Db) {
    this.q = statementCache(db);
  }

  private ensureRepo(registryId: string, repo: string, now: string): void {
    this.q(
      `INSERT INTO repositories (registry_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (registry_id, name) DO UPDATE SET updated_at = excluded.updated_at`,
    ).run(registryId, repo, now, now);
  }

  async linkedBlobSize(registryId: string, repo: string, digest: Digest): Promise<number | undefined> {
    const r = this.q('SELECT size FROM repo_blobs WHERE registry_id = ? AND repo = ? AND digest = ?')
      .get(registryId, repo, digest) as { size: number } | undefined;
    return r?.size;
  }

  async linkBlob(registryId: string, repo: string, digest: Digest, size: number): Promise<void> {
    const now = nowIso();
    this.db.transaction(() => {
      this.ensureRepo(registryId, repo, now);
      this.q(
        `INSERT INTO repo_blobs (registry_id, repo, digest, size, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET created_at = excluded.created_at`,
      ).run(registryId, repo, digest, size, now);
    })();
  }

  async unlinkBlob(registryId: string, repo: string, digest: Digest): Promise<boolean> {
    return this.q('DELETE FROM repo_blobs WHERE registry_id = ? AND repo = ? AND digest = ?')
      .run(registryId, repo, digest).changes > 0;
  }

  async registryUsage(registryId: string): Promise<number> {
    const r = this.q(
      `SELECT COALESCE(SUM(size), 0) AS n FROM (
         SELECT digest, MAX(size) AS size FROM (
           SELECT digest, size FROM repo_blobs WHERE registry_id = ?
           UNION ALL SELECT digest, size FROM manifests WHERE registry_id = ?)
         GROUP BY digest)`,
    ).get(registryId, registryId) as { n: number };
    return r.n;
  }

  async inRegistry(registryId: string, digest: Digest): Promise<boolean> {
    return this.q(
      `SELECT 1 FROM repo_blobs WHERE registry_id = ? AND digest = ?
       UNION ALL SELECT 1 FROM manifests WHERE registry_id = ? AND digest = ? LIMIT 1`,
    ).get(registryId, digest, registryId, digest) !== undefined;
  }

  async reposWithBlob(registryId: string, digest: Digest): Promise<string[]> {
    return (this.q('SELECT repo FROM repo_blobs WHERE registry_id = ? AND digest = ? ORDER BY repo')
      .all(registryId, digest) as Array<{ repo: string }>).map((r) => r.repo);
  }

  async createUpload(id: string, registryId: string, repo: string): Promise<void> {
    this.q('INSERT INTO uploads (id, registry_id, repo, created_at) VALUES (?, ?, ?, ?)')
      .run(id, registryId, repo, nowIso());
  }

  async getUpload(id: string) {
    const r = this.q('SELECT registry_id, repo, created_at FROM uploads WHERE id = ?').get(id) as
      { registry_id: string; repo: string; created_at: string } | undefined;
    return r && { registryId: r.registry_id, repo: r.repo, createdAt: r.created_at };
  }

  async deleteUpload(id: string): Promise<void> {
    this.q('DELETE FROM uploads WHERE id = ?').run(id);
  }

  async getManifest(registryId: string, repo: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const r = this.q('SELECT * FROM manifests WHERE registry_id = ? AND repo = ? AND digest = ?')
      .get(registryId, repo, digest) as ManifestRow | undefined;
    return r && toManifest(r);
  }

  async putManifest(registryId: string, repo: string, m: NewManifest, tag?: string | readonly string[]): Promise<void> {
    const tags = tag === undefined ? [] : typeof tag === 'string' ? [tag] : tag;
    const now = nowIso();
    this.db.transaction(() => {
      this.ensureRepo(registryId, repo, now);
      this.q(
        `INSERT INTO manifests (registry_id, repo, digest, media_type, size, artifact_type, subject, annotations,
           config_digest, image_size, platform, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (registry_id, repo, digest) DO UPDATE SET updated_at = excluded.updated_at`,
      ).run(registryId, repo, m.digest, m.mediaType, m.size, m.artifactType ?? null, m.subject ?? null,
        m.annotations ? JSON.stringify(m.annotations) : null, m.configDigest ?? null, m.imageSize,
        m.platform ? JSON.stringify(m.platform) : null, now, now);
      const ref = this.q('INSERT OR IGNORE INTO manifest_refs (registry_id, repo, manifest, child) VALUES (?, ?, ?, ?)');
      for (const c of m.children) ref.run(registryId, repo, m.digest, c);
      const setTag = this.q(
        `INSERT INTO tags (registry_id, repo, tag, digest, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (registry_id, repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
      );
      for (const t of tags) setTag.run(registryId, repo, t, m.digest, now, now);
    })();
  }

  async deleteManifest(registryId: string, repo: string, digest: Digest): Promise<boolean> {
    return this.db.transaction(() => {
      this.q('DELETE FROM tags WHERE registry_id = ? AND repo = ? AND digest = ?').run(registryId, repo, digest);
      return this.q('DELETE FROM manifests WHERE registry_id = ? AND repo = ? AND digest = ?')
        .run(registryId, repo, digest).changes > 0;
    })();
  }

  async manifestParents(registryId: string, repo: string, digest: Digest): Promise<Digest[]> {
    return (this.q(
      `SELECT r.manifest FROM manifest_refs r JOIN manifests m
         ON m.registry_id = r.registry_id AND m.repo = r.repo AND m.digest = r.manifest
       WHERE r.registry_id = ? AND r.repo = ? AND r.child = ? AND m.media_type IN
         ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json')`,
    ).all(registryId, repo, digest) as Array<{ manifest: string }>).map((r) => r.manifest as Digest);
  }

  async listManifests(registryId: string, repo: string) {
    const rows = this.q('SELECT * FROM manifests WHERE registry_id = ? AND repo = ? ORDER BY created_at, digest')
      .all(registryId, repo) as ManifestRow[];
    const tagRows = this.q('SELECT tag, digest FROM tags WHERE registry_id = ? AND repo = ? ORDER BY tag COLLATE BINARY')
      .all(registryId, repo) as Array<{ tag: string; digest: string }>;
    return rows.map((r) => ({ ...toManifest(r), tags: tagRows.filter((t) => t.digest === r.digest).map((t) => t.tag) }));
  }

  async referrers(registryId: string, repo: string, subject: Digest): Promise<ManifestRecord[]> {
    return (this.q('SELECT * FROM manifests WHERE registry_id = ? AND repo = ? AND subject = ? ORDER BY digest')
      .all(registryId, repo, subject) as ManifestRow[]).map(toManifest);
  }

  async resolveTag(registryId: string, repo: string, tag: string): Promise<TagRecord | undefined> {
    const r = this.q('SELECT tag, digest, attributes, created_at, updated_at FROM tags WHERE registry_id = ? AND repo = ? AND tag = ?')
      .get(registryId, repo, tag) as TagRow | undefined;
    return r && toTag(r);
  }

  async deleteTag(registryId: string, repo: string, tag: string): Promise<boolean> {
    return this.q('DELETE FROM tags WHERE registry_id = ? AND repo = ? AND tag = ?').run(registryId, repo, tag).changes > 0;
  }

  async listTags(registryId: string, repo: string, n: number | undefined, last: string | undefined): Promise<Page<TagRecord>> {
    const limit = n === undefined ? -1 : n + 1;
    const rows = this.q(
      `SELECT tag, digest, attributes, created_at, updated_at FROM tags WHERE registry_id = ? AND repo = ? AND tag > ?
       ORDER BY tag COLLATE BINARY LIMIT ?`,
    ).all(registryId, repo, last ?? '', limit) as TagRow[];
    return page(rows.map(toTag), n);
  }

  async getRepository(registryId: string, repo: string): Promise<RepositoryRecord | undefined> {
    const r = this.q(
      `SELECT name, attributes, created_at, updated_at,
         (SELECT COUNT(*) FROM manifests m WHERE m.registry_id = r.registry_id AND m.repo = r.name) AS mc,
         (SELECT COUNT(*) FROM tags t WHERE t.registry_id = r.registry_id AND t.repo = r.name) AS tc
       FROM repositories r WHERE registry_id = ? AND name = ?`,
    ).get(registryId, repo) as { name: string; attributes: string | null; created_at: string; updated_at: string; mc: number; tc: number } | undefined;
    return r && { name: r.name, createdAt: r.created_at, updatedAt: r.updated_at, manifestCount: r.mc, tagCount: r.tc, attributes: attributes(r.attributes) };
  }

  async setAttributes(registryId: string, repo: string, target: AttributeTarget, attrs: ChangeableAttributes): Promise<boolean> {
    const json = JSON.stringify({ deleteEnabled: attrs.deleteEnabled, writeEnabled: attrs.writeEnabled, readEnabled: attrs.readEnabled, listEnabled: attrs.listEnabled });
    const stmt = target.kind === 'repository'
      ? this.db.prepare('UPDATE repositories SET attributes = ? WHERE registry_id = ? AND name = ?').bind(json, registryId, repo)
      : target.kind === 'manifest'
        ? this.db.prepare('UPDATE manifests SET attributes = ? WHERE registry_id = ? AND repo = ? AND digest = ?').bind(json, registryId, repo, target.digest)
        : this.db.prepare('UPDATE tags SET attributes = ? WHERE registry_id = ? AND repo = ? AND tag = ?').bind(json, registryId, repo, target.tag);
    return stmt.run().changes > 0;
  }

  async listRepositories(registryId: string, n: number | undefined, last: string | undefined): Promise<Page<string>> {
    const limit = n === undefined ? -1 : n + 1;
    // A repository is listed once it holds a manifest (blobs alone are an upload in progress), unless
    // its listEnabled attribute is false.
    const rows = this.q(
      `SELECT name FROM repositories r WHERE registry_id = ? AND name > ?
         AND (r.attributes IS NULL OR json_extract(r.attributes, '$.listEnabled') = 1) AND EXISTS
         (SELECT 1 FROM manifests m WHERE m.registry_id = r.registry_id AND m.repo = r.name)
       ORDER BY name COLLATE BINARY LIMIT ?`,
    ).all(registryId, last ?? '', limit) as Array<{ name: string }>;
    return page(rows.map((r) => r.name), n);
  }

  async deleteRepository(registryId: string, repo: string) {
    return this.db.transaction(() => {
      const manifests = (this.q('SELECT digest FROM manifests WHERE registry_id = ? AND repo = ? ORDER BY digest')
        .all(registryId, repo) as Array<{ digest: string }>).map((r) => r.digest as Digest);
      const tags = (this.q('SELECT tag FROM tags WHERE registry_id = ? AND repo = ? ORDER BY tag')
        .all(registryId, repo) as Array<{ tag: string }>).map((r) => r.tag);
      const n = this.q('DELETE FROM repositories WHERE registry_id = ? AND name = ?').run(registryId, repo).changes;
      return n > 0 ? { manifests, tags } : undefined;
    })();
  }

  async referencedDigests(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of this.q('SELECT DISTINCT digest FROM manifests').iterate() as Iterable<{ digest: string }>) out.add(r.digest);
    for (const r of this.q('SELECT DISTINCT child FROM manifest_refs').iterate() as Iterable<{ child: string }>) out.add(r.child);
    for (const r of this.q('SELECT DISTINCT digest FROM repo_blobs').iterate() as Iterable<{ digest: string }>) out.add(r.digest);
    return out;
  }

  async isReferenced(digest: string): Promise<boolean> {
    return this.db.prepare(
      `SELECT EXISTS (SELECT 1 FROM manifests WHERE digest = ?) OR EXISTS (SELECT 1 FROM manifest_refs WHERE child = ?)
         OR EXISTS (SELECT 1 FROM repo_blobs WHERE digest = ?) AS referenced`,
    ).pluck().get(digest, digest, digest) === 1;
  }

  async pruneUnreferencedLinks(before: string): Promise<number> {
    return this.q(
      `DELETE FROM repo_blobs WHERE created_at < ? AND NOT EXISTS
         (SELECT 1 FROM manifest_refs r WHERE r.registry_id = repo_blobs.registry_id AND r.repo = repo_blobs.repo
            AND r.child = repo_blobs.digest)`,
    ).run(before).changes;
  }

  async staleUploads(before: string): Promise<string[]> {
    return (this.q('SELECT id FROM uploads WHERE created_at < ?').all(before) as Array<{ id: string }>).map((r) => r.id);
  }
}
