// Opens the metadata database Berth runs on: the embedded SQLite file in the data directory (the
// default), or PostgreSQL when a postgres:// URL is given (several replicas share it). Either way the
// schema is brought up to date before anything reads it.
import { openDatabase, type Db } from '../sqlite.js';
import type { Sql } from './sql.js';
import { SqliteSql } from './sqlite-sql.js';

export interface OpenedMetadata {
  sql: Sql;
  /** The SQLite handle when the metadata is embedded (undefined on PostgreSQL). */
  db?: Db;
  /** Where the metadata is, for the log: the file, or the URL without a password. */
  where: string;
}

/** A postgres:// URL as it may be shown: without its password. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

export async function openMetadata(o: { dbPath: string; database?: string }): Promise<OpenedMetadata> {
  if (!o.database) {
    const db = openDatabase(o.dbPath);
    return { sql: new SqliteSql(db), db, where: o.dbPath };
  }
  const where = redactDatabaseUrl(o.database);
  // node-postgres is loaded only for a PostgreSQL deployment.
  const [{ PostgresSql }, { migratePostgres }] = await Promise.all([import('./postgres-sql.js'), import('./postgres-schema.js')]);
  const sql = PostgresSql.connect(o.database);
  try {
    await migratePostgres(sql);
  } catch (e) {
    await sql.close().catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ECONNREFUSED' ? 'connection refused (is PostgreSQL running there, and listening on that port?)'
      : err.code === 'ENOTFOUND' ? 'no such host'
        : err.code === '3D000' ? 'no such database (create it first: createdb)'
          : err.code === '28P01' || err.code === '28000' ? 'authentication failed (the password comes from PGPASSWORD, ~/.pgpass or BERTH_DATABASE_URL)'
            : err.message;
    throw new Error(`cannot open the metadata database ${where}: ${why}`);
  }
  return { sql, where };
}
