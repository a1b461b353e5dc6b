// Copies an embedded (SQLite) metadata database into PostgreSQL, for `berth migrate`: every table in
// the order the schema created it (parents before the rows that reference them), in batches, inside
// one PostgreSQL transaction, so that a failure leaves the target as it was. Sealed values are copied
// sealed: the replicas need the same key-encryption key as the data directory had.
import type { Db } from '../sqlite.js';
import { SQLITE_SCHEMA_VERSION } from '../sqlite.js';
import { migratePostgres, MIRRORS_SQLITE_VERSION } from './postgres-schema.js';
import type { PostgresSql } from './postgres-sql.js';
import type { SqlQueries, SqlValue } from './sql.js';
import { CodedError, type StorageErrorCode } from '../../lib/errors.js';

/** Process state, not data: a lease means nothing to another database. */
const SKIPPED = new Set(['leases']);
/** PostgreSQL takes at most 65535 parameters in one statement. */
const MAX_PARAMS = 60_000;

export interface CopyReport {
  tables: Array<{ table: string; rows: number }>;
}

export class CopyRefused extends CodedError<StorageErrorCode> {
  constructor(message: string) { super('CopyRefused', message); }
}

function quote(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new CopyRefused(`unexpected table or column name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

async function existingRows(tx: SqlQueries, tables: string[]): Promise<string[]> {
  const held: string[] = [];
  for (const t of tables) {
    const r = await tx.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${quote(t)}`);
    if (r && r.n > 0) held.push(`${t} (${r.n})`);
  }
  return held;
}

export async function copySqliteToPostgres(db: Db, pg: PostgresSql, opts: { batchRows?: number } = {}): Promise<CopyReport> {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version !== SQLITE_SCHEMA_VERSION || version !== MIRRORS_SQLITE_VERSION) {
    throw new CopyRefused(`the data directory's schema is version ${version}; this Berth copies version ${MIRRORS_SQLITE_VERSION} into PostgreSQL. Start berth serve on it once with this Berth (it migrates), stop it, and run berth migrate again`);
  }
  await migratePostgres(pg);
  const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid`).all() as Array<{ name: string }>)
    .map((r) => r.name).filter((t) => !SKIPPED.has(t));
  return pg.transaction(async (tx) => {
    const held = await existingRows(tx, tables);
    if (held.length) throw new CopyRefused(`the PostgreSQL database already holds Berth data: ${held.join(', ')}. Migrate into an empty database`);
    const report: CopyReport = { tables: [] };
    for (const table of tables) {
      const columns = (db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY cid`).all(table) as Array<{ name: string }>).map((c) => c.name);
      const batch = Math.max(1, Math.min(opts.batchRows ?? 500, Math.floor(MAX_PARAMS / columns.length)));
      const select = db.prepare(`SELECT rowid AS "__rowid", ${columns.map(quote).join(', ')} FROM ${quote(table)} WHERE rowid > ? ORDER BY rowid LIMIT ?`);
      const row = `(${columns.map(() => '?').join(', ')})`;
      let last = Number.MIN_SAFE_INTEGER;
      let rows = 0;
      for (;;) {
        const got = select.all(last, batch) as Array<Record<string, SqlValue>>;
        if (got.length === 0) break;
        const params: SqlValue[] = [];
        for (const r of got) for (const c of columns) params.push(r[c] ?? null);
        await tx.run(`INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES ${got.map(() => row).join(', ')}`, params);
        last = got[got.length - 1]!.__rowid as number;
        rows += got.length;
      }
      report.tables.push({ table, rows });
    }
    return report;
  });
}
