// PostgreSQL's schema for Berth's metadata, one entry per version as for SQLite (storage/sqlite.ts):
// the same tables, columns and keys, with 64-bit integers and byte-order ("C") text, so that paging by
// name and sizes past 2 GiB behave as in the embedded engine. Never edit a released entry; append.
// Replicas starting together migrate one at a time under an advisory lock.
import type { PostgresSql } from './postgres-sql.js';

const MIGRATIONS: string[] = [
  // Version 1: the embedded schema as of its version 9.
  `
  CREATE TABLE settings (key TEXT COLLATE "C" PRIMARY KEY, value TEXT COLLATE "C" NOT NULL);
  CREATE TABLE resource_groups (
        subscription TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, location TEXT COLLATE "C" NOT NULL,
        tags TEXT COLLATE "C" NOT NULL DEFAULT '{}', created_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (subscription, name_lower));
  CREATE TABLE registries (
        id TEXT COLLATE "C" PRIMARY KEY, subscription TEXT COLLATE "C" NOT NULL, resource_group TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        name_lower TEXT COLLATE "C" NOT NULL UNIQUE, location TEXT COLLATE "C" NOT NULL, sku TEXT COLLATE "C" NOT NULL,
        admin_enabled BIGINT NOT NULL DEFAULT 0, port BIGINT NOT NULL UNIQUE,
        tags TEXT COLLATE "C" NOT NULL DEFAULT '{}', created_at TEXT COLLATE "C" NOT NULL);
  CREATE TABLE registry_passwords (
        registry_id TEXT COLLATE "C" NOT NULL REFERENCES registries(id) ON DELETE CASCADE, name TEXT COLLATE "C" NOT NULL,
        sealed TEXT COLLATE "C" NOT NULL, created_at TEXT COLLATE "C" NOT NULL, PRIMARY KEY (registry_id, name));
  CREATE TABLE repositories (
        registry_id TEXT COLLATE "C" NOT NULL REFERENCES registries(id) ON DELETE CASCADE, name TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL, updated_at TEXT COLLATE "C" NOT NULL, attributes TEXT COLLATE "C", PRIMARY KEY (registry_id, name));
  CREATE TABLE repo_blobs (
        registry_id TEXT COLLATE "C" NOT NULL, repo TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, size BIGINT NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL, PRIMARY KEY (registry_id, repo, digest),
        FOREIGN KEY (registry_id, repo) REFERENCES repositories(registry_id, name) ON DELETE CASCADE);
  CREATE INDEX repo_blobs_digest ON repo_blobs(digest);
  CREATE TABLE manifests (
        registry_id TEXT COLLATE "C" NOT NULL, repo TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, media_type TEXT COLLATE "C" NOT NULL,
        size BIGINT NOT NULL, artifact_type TEXT COLLATE "C", subject TEXT COLLATE "C", annotations TEXT COLLATE "C", config_digest TEXT COLLATE "C",
        image_size BIGINT NOT NULL DEFAULT 0, platform TEXT COLLATE "C",
        created_at TEXT COLLATE "C" NOT NULL, updated_at TEXT COLLATE "C" NOT NULL, attributes TEXT COLLATE "C", PRIMARY KEY (registry_id, repo, digest),
        FOREIGN KEY (registry_id, repo) REFERENCES repositories(registry_id, name) ON DELETE CASCADE);
  CREATE INDEX manifests_subject ON manifests(registry_id, repo, subject);
  CREATE TABLE manifest_refs (
        registry_id TEXT COLLATE "C" NOT NULL, repo TEXT COLLATE "C" NOT NULL, manifest TEXT COLLATE "C" NOT NULL, child TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (registry_id, repo, manifest, child),
        FOREIGN KEY (registry_id, repo, manifest) REFERENCES manifests(registry_id, repo, digest) ON DELETE CASCADE);
  CREATE INDEX manifest_refs_child ON manifest_refs(child);
  CREATE TABLE tags (
        registry_id TEXT COLLATE "C" NOT NULL, repo TEXT COLLATE "C" NOT NULL, tag TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL, updated_at TEXT COLLATE "C" NOT NULL, attributes TEXT COLLATE "C", PRIMARY KEY (registry_id, repo, tag),
        FOREIGN KEY (registry_id, repo, digest) REFERENCES manifests(registry_id, repo, digest) ON DELETE CASCADE);
  CREATE TABLE uploads (
        id TEXT COLLATE "C" PRIMARY KEY, registry_id TEXT COLLATE "C" NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
        repo TEXT COLLATE "C" NOT NULL, created_at TEXT COLLATE "C" NOT NULL);
  CREATE TABLE principals (
        id TEXT COLLATE "C" PRIMARY KEY, kind TEXT COLLATE "C" NOT NULL, display_name TEXT COLLATE "C" NOT NULL, app_id TEXT COLLATE "C" UNIQUE,
        created_at TEXT COLLATE "C" NOT NULL, props TEXT COLLATE "C" NOT NULL DEFAULT '{}');
  CREATE TABLE principal_secrets (
        id TEXT COLLATE "C" PRIMARY KEY, principal_id TEXT COLLATE "C" NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
        hash TEXT COLLATE "C" NOT NULL, hint TEXT COLLATE "C" NOT NULL, expires_at TEXT COLLATE "C", created_at TEXT COLLATE "C" NOT NULL, display_name TEXT COLLATE "C");
  CREATE TABLE role_assignments (
        id TEXT COLLATE "C" PRIMARY KEY, principal_id TEXT COLLATE "C" NOT NULL, role_definition_id TEXT COLLATE "C" NOT NULL,
        scope TEXT COLLATE "C" NOT NULL, scope_lower TEXT COLLATE "C" NOT NULL, principal_type TEXT COLLATE "C" NOT NULL, created_at TEXT COLLATE "C" NOT NULL,
        UNIQUE (principal_id, role_definition_id, scope_lower));
  CREATE TABLE scope_maps (
        id TEXT COLLATE "C" PRIMARY KEY, registry_id TEXT COLLATE "C" NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
        name TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, description TEXT COLLATE "C" NOT NULL DEFAULT '',
        actions TEXT COLLATE "C" NOT NULL, created_at TEXT COLLATE "C" NOT NULL, UNIQUE (registry_id, name_lower));
  CREATE TABLE registry_tokens (
        id TEXT COLLATE "C" PRIMARY KEY, registry_id TEXT COLLATE "C" NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
        name TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, scope_map TEXT COLLATE "C" NOT NULL, status TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL, UNIQUE (registry_id, name_lower));
  CREATE TABLE token_passwords (
        token_id TEXT COLLATE "C" NOT NULL REFERENCES registry_tokens(id) ON DELETE CASCADE, name TEXT COLLATE "C" NOT NULL,
        hash TEXT COLLATE "C" NOT NULL, expiry TEXT COLLATE "C", created_at TEXT COLLATE "C" NOT NULL, PRIMARY KEY (token_id, name));
  CREATE INDEX principals_kind ON principals (kind);
  CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
  CREATE INDEX manifests_digest ON manifests (digest);
  CREATE TABLE vaults (
        id TEXT COLLATE "C" PRIMARY KEY, subscription TEXT COLLATE "C" NOT NULL, resource_group TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        name_lower TEXT COLLATE "C" NOT NULL UNIQUE, location TEXT COLLATE "C" NOT NULL, sku TEXT COLLATE "C" NOT NULL, port BIGINT NOT NULL UNIQUE,
        tags TEXT COLLATE "C" NOT NULL DEFAULT '{}', wrapped_key TEXT COLLATE "C" NOT NULL, created_at TEXT COLLATE "C" NOT NULL, rbac BIGINT NOT NULL DEFAULT 1, access_policies TEXT COLLATE "C" NOT NULL DEFAULT '[]', retention_days BIGINT NOT NULL DEFAULT 90, purge_protection BIGINT NOT NULL DEFAULT 0, deleted_at TEXT COLLATE "C", purge_at TEXT COLLATE "C");
  CREATE TABLE vault_secrets (
        vault_id TEXT COLLATE "C" NOT NULL REFERENCES vaults(id) ON DELETE CASCADE, name_lower TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        deleted_at BIGINT, purge_at BIGINT, PRIMARY KEY (vault_id, name_lower));
  CREATE TABLE vault_secret_versions (
        vault_id TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, version TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
        sealed TEXT COLLATE "C" NOT NULL, content_type TEXT COLLATE "C", tags TEXT COLLATE "C", enabled BIGINT NOT NULL, nbf BIGINT, exp BIGINT,
        created BIGINT NOT NULL, updated BIGINT NOT NULL, PRIMARY KEY (vault_id, name_lower, version),
        FOREIGN KEY (vault_id, name_lower) REFERENCES vault_secrets(vault_id, name_lower) ON DELETE CASCADE);
  CREATE INDEX vault_secret_versions_seq ON vault_secret_versions (vault_id, name_lower, seq);
  CREATE TABLE container_groups (
        id TEXT COLLATE "C" PRIMARY KEY, subscription TEXT COLLATE "C" NOT NULL, resource_group TEXT COLLATE "C" NOT NULL, rg_lower TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL, name_lower TEXT COLLATE "C" NOT NULL, location TEXT COLLATE "C" NOT NULL, spec TEXT COLLATE "C" NOT NULL,
        secrets TEXT COLLATE "C" NOT NULL, state TEXT COLLATE "C" NOT NULL, created_at TEXT COLLATE "C" NOT NULL, updated_at TEXT COLLATE "C" NOT NULL,
        UNIQUE (subscription, rg_lower, name_lower));
  CREATE TABLE container_group_operations (
        id TEXT COLLATE "C" PRIMARY KEY, group_id TEXT COLLATE "C" NOT NULL, status TEXT COLLATE "C" NOT NULL, error TEXT COLLATE "C",
        start_time TEXT COLLATE "C" NOT NULL, end_time TEXT COLLATE "C");
  CREATE INDEX repo_blobs_registry_usage ON repo_blobs(registry_id, digest, size);
  `,
  // Version 2: leases on periodic jobs, the replicas' heartbeats, keys every replica holds the same of.
  `
  CREATE TABLE leases (name TEXT COLLATE "C" PRIMARY KEY, holder TEXT COLLATE "C" NOT NULL, expires_at BIGINT NOT NULL);
  CREATE TABLE replicas (id TEXT COLLATE "C" PRIMARY KEY, host TEXT COLLATE "C" NOT NULL, url TEXT COLLATE "C" NOT NULL,
    started_at BIGINT NOT NULL, seen_at BIGINT NOT NULL);
  CREATE TABLE shared_keys (name TEXT COLLATE "C" PRIMARY KEY, sealed TEXT COLLATE "C" NOT NULL, created_at BIGINT NOT NULL);
  `,
];

/** The embedded (SQLite) schema version whose tables and columns the newest version here mirrors. */
export const MIRRORS_SQLITE_VERSION = 10;

/** Key of the advisory lock that serialises migrations between replicas ("berth" in ASCII). */
const MIGRATION_LOCK = 0x6265727468;

export async function migratePostgres(sql: PostgresSql): Promise<void> {
  await sql.transaction(async (tx) => {
    await tx.run('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK]);
    await tx.run('CREATE TABLE IF NOT EXISTS berth_schema (version BIGINT NOT NULL)');
    const row = await tx.get<{ version: number }>('SELECT version FROM berth_schema');
    const from = row?.version ?? 0;
    if (from > MIGRATIONS.length) {
      throw new Error(`the PostgreSQL database holds Berth schema version ${from}, newer than this Berth knows (${MIGRATIONS.length}): upgrade Berth`);
    }
    for (let v = from; v < MIGRATIONS.length; v++) await tx.run(MIGRATIONS[v]!);
    if (row) await tx.run('UPDATE berth_schema SET version = ?', [MIGRATIONS.length]);
    else await tx.run('INSERT INTO berth_schema (version) VALUES (?)', [MIGRATIONS.length]);
  });
}
