// The registry metadata store (registry/metadata.ts) in SQL, one text for both engines (storage/sql/).
import type { Digest } from '../oci/digest.js';
import {
  DEFAULT_ATTRIBUTES,
  type AttributeTarget, type ChangeableAttributes, type ManifestRecord, type NewManifest, type Page,
  type RegistryMetadataStore, type RepositoryRecord, type TagRecord,
} from '../registry/metadata.js';
import type { Sql, SqlQueries } from './sql/sql.js';
import { nowIso } from '../lib/time.js';


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

/**
 * A page's LIMIT clause and its parameter: one more row than the page holds (to know whether more
 * follow), or none. The size is a parameter, so that each size is not a statement of its own.
 */
const pageLimit = (n: number | undefined): [string, number[]] => (n === undefined ? ['', []] : [' LIMIT ?', [Math.max(0, Math.floor(n)) + 1]]);

const UPSERT_REPO = `INSERT INTO repositories (registry_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)
  ON CONFLICT (registry_id, name) DO UPDATE SET updated_at = excluded.updated_at`;

export class SqlRegistryMetadata implements RegistryMetadataStore {
  constructor(private readonly sql: Sql) {}

  private ensureRepo(tx: SqlQueries, registryId: string, repo: string, now: string) {
    return tx.run(UPSERT_REPO, [registryId, repo, now, now]);
  }

  async linkedBlobSize(registryId: string, repo: string, digest: Digest): Promise<number | undefined> {
    const r = await this.sql.get<{ size: number }>('SELECT size FROM repo_blobs WHERE registry_id = ? AND repo = ? AND digest = ?', [registryId, repo, digest]);
    return r?.size;
  }

  async linkBlob(registryId: string, repo: string, digest: Digest, size: number): Promise<void> {
    const now = nowIso();
    await this.sql.transaction(async (tx) => {
      await this.ensureRepo(tx, registryId, repo, now);
      await tx.run(
        `INSERT INTO repo_blobs (registry_id, repo, digest, size, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (registry_id, repo, digest) DO UPDATE SET created_at = excluded.created_at`,
        [registryId, repo, digest, size, now],
      );
    });
  }

  async unlinkBlob(registryId: string, repo: string, digest: Digest): Promise<boolean> {
    return (await this.sql.run('DELETE FROM repo_blobs WHERE registry_id = ? AND repo = ? AND digest = ?', [registryId, repo, digest])).changes > 0;
  }

  async registryUsage(registryId: string): Promise<number> {
    const r = await this.sql.get<{ n: number }>(
      `SELECT COALESCE(SUM(size), 0) AS n FROM (
         SELECT digest, MAX(size) AS size FROM (
           SELECT digest, size FROM repo_blobs WHERE registry_id = ?
           UNION ALL SELECT digest, size FROM manifests WHERE registry_id = ?) AS linked
         GROUP BY digest) AS distinct_digests`,
      [registryId, registryId],
    );
    return r?.n ?? 0;
  }

  async inRegistry(registryId: string, digest: Digest): Promise<boolean> {
    return (await this.sql.get(
      `SELECT 1 AS one FROM repo_blobs WHERE registry_id = ? AND digest = ?
       UNION ALL SELECT 1 AS one FROM manifests WHERE registry_id = ? AND digest = ? LIMIT 1`,
      [registryId, digest, registryId, digest],
    )) !== undefined;
  }

  async reposWithBlob(registryId: string, digest: Digest): Promise<string[]> {
    return (await this.sql.all<{ repo: string }>('SELECT repo FROM repo_blobs WHERE registry_id = ? AND digest = ? ORDER BY repo', [registryId, digest])).map((r) => r.repo);
  }

  async createUpload(id: string, registryId: string, repo: string): Promise<void> {
    await this.sql.run('INSERT INTO uploads (id, registry_id, repo, created_at) VALUES (?, ?, ?, ?)', [id, registryId, repo, nowIso()]);
  }

  async getUpload(id: string) {
    const r = await this.sql.get<{ registry_id: string; repo: string; created_at: string }>('SELECT registry_id, repo, created_at FROM uploads WHERE id = ?', [id]);
    return r && { registryId: r.registry_id, repo: r.repo, createdAt: r.created_at };
  }

  async deleteUpload(id: string): Promise<void> {
    await this.sql.run('DELETE FROM uploads WHERE id = ?', [id]);
  }

  async getManifest(registryId: string, repo: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const r = await this.sql.get<ManifestRow>('SELECT * FROM manifests WHERE registry_id = ? AND repo = ? AND digest = ?', [registryId, repo, digest]);
    return r && toManifest(r);
  }

  async putManifest(registryId: string, repo: string, m: NewManifest, tag?: string | readonly string[]): Promise<void> {
    const tags = tag === undefined ? [] : typeof tag === 'string' ? [tag] : tag;
    const now = nowIso();
    await this.sql.transaction(async (tx) => {
      await this.ensureRepo(tx, registryId, repo, now);
      await tx.run(
        `INSERT INTO manifests (registry_id, repo, digest, media_type, size, artifact_type, subject, annotations,
           config_digest, image_size, platform, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (registry_id, repo, digest) DO UPDATE SET updated_at = excluded.updated_at`,
        [registryId, repo, m.digest, m.mediaType, m.size, m.artifactType ?? null, m.subject ?? null,
          m.annotations ? JSON.stringify(m.annotations) : null, m.configDigest ?? null, m.imageSize,
          m.platform ? JSON.stringify(m.platform) : null, now, now],
      );
      for (const c of m.children) {
        await tx.run('INSERT INTO manifest_refs (registry_id, repo, manifest, child) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [registryId, repo, m.digest, c]);
      }
      for (const t of tags) {
        await tx.run(
          `INSERT INTO tags (registry_id, repo, tag, digest, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (registry_id, repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
          [registryId, repo, t, m.digest, now, now],
        );
      }
    });
  }

  async deleteManifest(registryId: string, repo: string, digest: Digest): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      await tx.run('DELETE FROM tags WHERE registry_id = ? AND repo = ? AND digest = ?', [registryId, repo, digest]);
      return (await tx.run('DELETE FROM manifests WHERE registry_id = ? AND repo = ? AND digest = ?', [registryId, repo, digest])).changes > 0;
    });
  }

  async manifestParents(registryId: string, repo: string, digest: Digest): Promise<Digest[]> {
    return (await this.sql.all<{ manifest: string }>(
      `SELECT r.manifest FROM manifest_refs r JOIN manifests m
         ON m.registry_id = r.registry_id AND m.repo = r.repo AND m.digest = r.manifest
       WHERE r.registry_id = ? AND r.repo = ? AND r.child = ? AND m.media_type IN
         ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json')`,
      [registryId, repo, digest],
    )).map((r) => r.manifest as Digest);
  }

  async listManifests(registryId: string, repo: string) {
    const rows = await this.sql.all<ManifestRow>('SELECT * FROM manifests WHERE registry_id = ? AND repo = ? ORDER BY created_at, digest', [registryId, repo]);
    const tagRows = await this.sql.all<{ tag: string; digest: string }>('SELECT tag, digest FROM tags WHERE registry_id = ? AND repo = ? ORDER BY tag', [registryId, repo]);
    return rows.map((r) => ({ ...toManifest(r), tags: tagRows.filter((t) => t.digest === r.digest).map((t) => t.tag) }));
  }

  async referrers(registryId: string, repo: string, subject: Digest): Promise<ManifestRecord[]> {
    return (await this.sql.all<ManifestRow>('SELECT * FROM manifests WHERE registry_id = ? AND repo = ? AND subject = ? ORDER BY digest', [registryId, repo, subject])).map(toManifest);
  }

  async resolveTag(registryId: string, repo: string, tag: string): Promise<TagRecord | undefined> {
    const r = await this.sql.get<TagRow>('SELECT tag, digest, attributes, created_at, updated_at FROM tags WHERE registry_id = ? AND repo = ? AND tag = ?', [registryId, repo, tag]);
    return r && toTag(r);
  }

  async deleteTag(registryId: string, repo: string, tag: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM tags WHERE registry_id = ? AND repo = ? AND tag = ?', [registryId, repo, tag])).changes > 0;
  }

  // Names compare and sort byte by byte: SQLite's default, and the "C" collation of PostgreSQL's columns.
  async listTags(registryId: string, repo: string, n: number | undefined, last: string | undefined): Promise<Page<TagRecord>> {
    const [limit, limitParam] = pageLimit(n);
    const rows = await this.sql.all<TagRow>(
      `SELECT tag, digest, attributes, created_at, updated_at FROM tags WHERE registry_id = ? AND repo = ? AND tag > ?
       ORDER BY tag${limit}`,
      [registryId, repo, last ?? '', ...limitParam],
    );
    return page(rows.map(toTag), n);
  }

  async getRepository(registryId: string, repo: string): Promise<RepositoryRecord | undefined> {
    const r = await this.sql.get<{ name: string; attributes: string | null; created_at: string; updated_at: string; mc: number; tc: number }>(
      `SELECT name, attributes, created_at, updated_at,
         (SELECT COUNT(*) FROM manifests m WHERE m.registry_id = r.registry_id AND m.repo = r.name) AS mc,
         (SELECT COUNT(*) FROM tags t WHERE t.registry_id = r.registry_id AND t.repo = r.name) AS tc
       FROM repositories r WHERE registry_id = ? AND name = ?`,
      [registryId, repo],
    );
    return r && { name: r.name, createdAt: r.created_at, updatedAt: r.updated_at, manifestCount: r.mc, tagCount: r.tc, attributes: attributes(r.attributes) };
  }

  async setAttributes(registryId: string, repo: string, target: AttributeTarget, attrs: ChangeableAttributes): Promise<boolean> {
    const json = JSON.stringify({ deleteEnabled: attrs.deleteEnabled, writeEnabled: attrs.writeEnabled, readEnabled: attrs.readEnabled, listEnabled: attrs.listEnabled });
    const r = target.kind === 'repository'
      ? await this.sql.run('UPDATE repositories SET attributes = ? WHERE registry_id = ? AND name = ?', [json, registryId, repo])
      : target.kind === 'manifest'
        ? await this.sql.run('UPDATE manifests SET attributes = ? WHERE registry_id = ? AND repo = ? AND digest = ?', [json, registryId, repo, target.digest])
        : await this.sql.run('UPDATE tags SET attributes = ? WHERE registry_id = ? AND repo = ? AND tag = ?', [json, registryId, repo, target.tag]);
    return r.changes > 0;
  }

  async listRepositories(registryId: string, n: number | undefined, last: string | undefined): Promise<Page<string>> {
    // A repository is listed once it holds a manifest (blobs alone are an upload in progress), unless
    // its listEnabled attribute is false.
    const [limit, limitParam] = pageLimit(n);
    const rows = await this.sql.all<{ name: string }>(
      `SELECT name FROM repositories r WHERE registry_id = ? AND name > ?
         AND (r.attributes IS NULL OR ${this.sql.dialect.jsonFlag('r.attributes', 'listEnabled')} = 1) AND EXISTS
         (SELECT 1 FROM manifests m WHERE m.registry_id = r.registry_id AND m.repo = r.name)
       ORDER BY name${limit}`,
      [registryId, last ?? '', ...limitParam],
    );
    return page(rows.map((r) => r.name), n);
  }

  async deleteRepository(registryId: string, repo: string) {
    return this.sql.transaction(async (tx) => {
      const manifests = (await tx.all<{ digest: string }>('SELECT digest FROM manifests WHERE registry_id = ? AND repo = ? ORDER BY digest', [registryId, repo])).map((r) => r.digest as Digest);
      const tags = (await tx.all<{ tag: string }>('SELECT tag FROM tags WHERE registry_id = ? AND repo = ? ORDER BY tag', [registryId, repo])).map((r) => r.tag);
      const n = (await tx.run('DELETE FROM repositories WHERE registry_id = ? AND name = ?', [registryId, repo])).changes;
      return n > 0 ? { manifests, tags } : undefined;
    });
  }

  async referencedDigests(): Promise<Set<string>> {
    const rows = await this.sql.all<{ d: string }>(
      'SELECT digest AS d FROM manifests UNION SELECT child AS d FROM manifest_refs UNION SELECT digest AS d FROM repo_blobs',
    );
    return new Set(rows.map((r) => r.d));
  }

  async isReferenced(digest: string): Promise<boolean> {
    const r = await this.sql.get<{ referenced: number }>(
      `SELECT CASE WHEN EXISTS (SELECT 1 FROM manifests WHERE digest = ?) OR EXISTS (SELECT 1 FROM manifest_refs WHERE child = ?)
         OR EXISTS (SELECT 1 FROM repo_blobs WHERE digest = ?) THEN 1 ELSE 0 END AS referenced`,
      [digest, digest, digest],
    );
    return r?.referenced === 1;
  }

  async pruneUnreferencedLinks(before: string): Promise<number> {
    return (await this.sql.run(
      `DELETE FROM repo_blobs WHERE created_at < ? AND NOT EXISTS
         (SELECT 1 FROM manifest_refs r WHERE r.registry_id = repo_blobs.registry_id AND r.repo = repo_blobs.repo
            AND r.child = repo_blobs.digest)`,
      [before],
    )).changes;
  }

  async staleUploads(before: string): Promise<string[]> {
    return (await this.sql.all<{ id: string }>('SELECT id FROM uploads WHERE created_at < ?', [before])).map((r) => r.id);
  }
}
