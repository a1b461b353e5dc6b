// PostgreSQL's schema mirrors the embedded one: the same tables, columns and primary keys, at the
// embedded version it says it mirrors. A migration added to one engine and not the other fails here.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { migratePostgres, MIRRORS_SQLITE_VERSION } from '../src/storage/sql/postgres-schema.js';
import { PostgresSql } from '../src/storage/sql/postgres-sql.js';
import { openDatabase, SQLITE_SCHEMA_VERSION } from '../src/storage/sqlite.js';
import { postgresUnavailable, startTestPostgres } from './helpers/postgres.js';

const skip = postgresUnavailable();
if (skip) console.log(`# skipping the schema parity test: ${skip}`);

test('every table, column and primary key of the embedded schema is in PostgreSQL\'s, and no other', { skip, timeout: 120_000 }, async () => {
  assert.equal(MIRRORS_SQLITE_VERSION, SQLITE_SCHEMA_VERSION, 'a new embedded migration needs its PostgreSQL counterpart (src/storage/sql/postgres-schema.ts)');
  const dir = await mkdtemp(join(tmpdir(), 'berth-parity-'));
  const server = await startTestPostgres();
  const pg = PostgresSql.connect(server.url);
  try {
    const db = openDatabase(join(dir, 'berth.db'));
    const embedded: Record<string, { columns: string[]; key: string[] }> = {};
    for (const { name } of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as Array<{ name: string }>) {
      const cols = db.prepare('SELECT name, pk FROM pragma_table_info(?)').all(name) as Array<{ name: string; pk: number }>;
      embedded[name] = { columns: cols.map((c) => c.name).sort(), key: cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name) };
    }
    db.close();
    await migratePostgres(pg);
    const columns = await pg.all<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'berth_schema'`);
    const keys = await pg.all<{ table_name: string; column_name: string; ordinal_position: number }>(
      `SELECT k.table_name, k.column_name, k.ordinal_position FROM information_schema.table_constraints c
         JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema
       WHERE c.table_schema = 'public' AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.table_name, k.ordinal_position`);
    const postgres: Record<string, { columns: string[]; key: string[] }> = {};
    for (const c of columns) (postgres[c.table_name] ??= { columns: [], key: [] }).columns.push(c.column_name);
    for (const t of Object.values(postgres)) t.columns.sort();
    for (const k of keys) postgres[k.table_name]!.key.push(k.column_name);
    assert.deepEqual(postgres, embedded);
  } finally {
    await pg.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
