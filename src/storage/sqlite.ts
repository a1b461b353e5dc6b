// Opens the embedded SQLite metadata database and brings its schema up to date.
import Database from 'better-sqlite3';

export type Db = Database.Database;

// Each entry is one schema version; never edit a released entry, append a new one.
const MIGRATIONS: string[] = [
  `
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE resource_groups (
    subscription TEXT NOT NULL, name TEXT NOT NULL, name_lower TEXT NOT NULL, location TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
    PRIMARY KEY (subscription, name_lower));
  CREATE TABLE registries (
    id TEXT PRIMARY KEY, subscription TEXT NOT NULL, resource_group TEXT NOT NULL, name TEXT NOT NULL,
    name_lower TEXT NOT NULL UNIQUE, location TEXT NOT NULL, sku TEXT NOT NULL,
    admin_enabled INTEGER NOT NULL DEFAULT 0, port INTEGER NOT NULL UNIQUE,
    tags TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
  CREATE TABLE registry_passwords (
    registry_id TEXT NOT NULL REFERENCES registries(id) ON DELETE CASCADE, name TEXT NOT NULL,
    sealed TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (registry_id, name));
  CREATE TABLE repositories (
    registry_id TEXT NOT NULL REFERENCES registries(id) ON DELETE CASCADE, name TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (registry_id, name));
  CREATE TABLE repo_blobs (
    registry_id TEXT NOT NULL, repo TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (registry_id, repo, digest),
    FOREIGN KEY (registry_id, repo) REFERENCES repositories(registry_id, name) ON DELETE CASCADE);
  CREATE INDEX repo_blobs_digest ON repo_blobs(digest);
  CREATE TABLE manifests (
    registry_id TEXT NOT NULL, repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
    size INTEGER NOT NULL, artifact_type TEXT, subject TEXT, annotations TEXT, config_digest TEXT,
    image_size INTEGER NOT NULL DEFAULT 0, platform TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (registry_id, repo, digest),
    FOREIGN KEY (registry_id, repo) REFERENCES repositories(registry_id, name) ON DELETE CASCADE);
  CREATE INDEX manifests_subject ON manifests(registry_id, repo, subject);
  CREATE TABLE manifest_refs (
    registry_id TEXT NOT NULL, repo TEXT NOT NULL, manifest TEXT NOT NULL, child TEXT NOT NULL,
    PRIMARY KEY (registry_id, repo, manifest, child),
    FOREIGN KEY (registry_id, repo, manifest) REFERENCES manifests(registry_id, repo, digest) ON DELETE CASCADE);
  CREATE INDEX manifest_refs_child ON manifest_refs(child);
  CREATE TABLE tags (
    registry_id TEXT NOT NULL, repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (registry_id, repo, tag),
    FOREIGN KEY (registry_id, repo, digest) REFERENCES manifests(registry_id, repo, digest) ON DELETE CASCADE);
  CREATE TABLE uploads (
    id TEXT PRIMARY KEY, registry_id TEXT NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
    repo TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE principals (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, display_name TEXT NOT NULL, app_id TEXT UNIQUE,
    created_at TEXT NOT NULL, props TEXT NOT NULL DEFAULT '{}');
  CREATE TABLE principal_secrets (
    id TEXT PRIMARY KEY, principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    hash TEXT NOT NULL, hint TEXT NOT NULL, expires_at TEXT, created_at TEXT NOT NULL);
  CREATE TABLE role_assignments (
    id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, role_definition_id TEXT NOT NULL,
    scope TEXT NOT NULL, scope_lower TEXT NOT NULL, principal_type TEXT NOT NULL, created_at TEXT NOT NULL,
    UNIQUE (principal_id, role_definition_id, scope_lower));
  `,
  `
  CREATE TABLE scope_maps (
    id TEXT PRIMARY KEY, registry_id TEXT NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
    name TEXT NOT NULL, name_lower TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    actions TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (registry_id, name_lower));
  CREATE TABLE registry_tokens (
    id TEXT PRIMARY KEY, registry_id TEXT NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
    name TEXT NOT NULL, name_lower TEXT NOT NULL, scope_map TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (registry_id, name_lower));
  CREATE TABLE token_passwords (
    token_id TEXT NOT NULL REFERENCES registry_tokens(id) ON DELETE CASCADE, name TEXT NOT NULL,
    hash TEXT NOT NULL, expiry TEXT, created_at TEXT NOT NULL, PRIMARY KEY (token_id, name));
  CREATE INDEX principals_kind ON principals (kind);
  ALTER TABLE principal_secrets ADD COLUMN display_name TEXT;
  CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
  `,
  `
  CREATE INDEX manifests_digest ON manifests (digest);
  `,
  `
  CREATE TABLE vaults (
    id TEXT PRIMARY KEY, subscription TEXT NOT NULL, resource_group TEXT NOT NULL, name TEXT NOT NULL,
    name_lower TEXT NOT NULL UNIQUE, location TEXT NOT NULL, sku TEXT NOT NULL, port INTEGER NOT NULL UNIQUE,
    tags TEXT NOT NULL DEFAULT '{}', wrapped_key TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE vault_secrets (
    vault_id TEXT NOT NULL REFERENCES vaults(id) ON DELETE CASCADE, name_lower TEXT NOT NULL, name TEXT NOT NULL,
    deleted_at INTEGER, purge_at INTEGER, PRIMARY KEY (vault_id, name_lower));
  CREATE TABLE vault_secret_versions (
    vault_id TEXT NOT NULL, name_lower TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER NOT NULL,
    sealed TEXT NOT NULL, content_type TEXT, tags TEXT, enabled INTEGER NOT NULL, nbf INTEGER, exp INTEGER,
    created INTEGER NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (vault_id, name_lower, version),
    FOREIGN KEY (vault_id, name_lower) REFERENCES vault_secrets(vault_id, name_lower) ON DELETE CASCADE);
  CREATE INDEX vault_secret_versions_seq ON vault_secret_versions (vault_id, name_lower, seq);
  `,
  `
  ALTER TABLE repositories ADD COLUMN attributes TEXT;
  ALTER TABLE manifests ADD COLUMN attributes TEXT;
  ALTER TABLE tags ADD COLUMN attributes TEXT;
  `,
  `
  CREATE TABLE container_groups (
    id TEXT PRIMARY KEY, subscription TEXT NOT NULL, resource_group TEXT NOT NULL, rg_lower TEXT NOT NULL,
    name TEXT NOT NULL, name_lower TEXT NOT NULL, location TEXT NOT NULL, spec TEXT NOT NULL,
    secrets TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (subscription, rg_lower, name_lower));
  CREATE TABLE container_group_operations (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    start_time TEXT NOT NULL, end_time TEXT);
  `,
  `
  ALTER TABLE vaults ADD COLUMN rbac INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE vaults ADD COLUMN access_policies TEXT NOT NULL DEFAULT '[]';
  `,
  // A registry's quota usage (distinct blobs with their sizes) read from the index alone.
  `
  CREATE INDEX repo_blobs_registry_usage ON repo_blobs(registry_id, digest, size);
  `,
  `
  ALTER TABLE vaults ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 90;
  ALTER TABLE vaults ADD COLUMN purge_protection INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE vaults ADD COLUMN deleted_at TEXT;
  ALTER TABLE vaults ADD COLUMN purge_at TEXT;
  `,
  // What replicas sharing one database coordinate with (one process here, several on PostgreSQL):
  // leases on periodic jobs, the replicas' heartbeats, and keys every replica must hold the same of.
  `
  CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE replicas (id TEXT PRIMARY KEY, host TEXT NOT NULL, url TEXT NOT NULL, started_at INTEGER NOT NULL, seen_at INTEGER NOT NULL);
  CREATE TABLE shared_keys (name TEXT PRIMARY KEY, sealed TEXT NOT NULL, created_at INTEGER NOT NULL);
  `,
];

/** The schema version openDatabase brings a database to. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

export function openDatabase(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * Runs a DELETE so that what it removes leaves no trace in the database files: SQLite overwrites the
 * freed pages (secure_delete), and when rows went the WAL is checkpointed and emptied, so older copies
 * of those pages go too. For sealed secret values whose purge must be for good.
 */
export function deleteForGood(db: Db, run: () => { changes: number }): number {
  db.pragma('secure_delete = ON');
  let changes: number;
  try {
    changes = run().changes;
  } finally {
    db.pragma('secure_delete = OFF');
  }
  if (changes > 0) db.pragma('wal_checkpoint(TRUNCATE)');
  return changes;
}
