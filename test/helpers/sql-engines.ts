// The two metadata engines a store's contract test runs against: a fresh SQLite database file, and a
// migrated database on a throwaway PostgreSQL server (skipped where none can start, said once).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migratePostgres } from '../../src/storage/sql/postgres-schema.js';
import { PostgresSql } from '../../src/storage/sql/postgres-sql.js';
import type { Sql } from '../../src/storage/sql/sql.js';
import { SqliteSql } from '../../src/storage/sql/sqlite-sql.js';
import { openDatabase } from '../../src/storage/sqlite.js';
import { postgresUnavailable, startTestPostgres } from './postgres.js';

export interface OpenEngine {
  sql: Sql;
  /** Another connection to the same database (a second replica; closed by close()). */
  other(): Sql;
  close(): Promise<void>;
}

export interface SqlEngine {
  name: 'sqlite' | 'postgres';
  skip?: string;
  open(): Promise<OpenEngine>;
}

/** `what` names the tests in the skip line ("the lease tests"). */
export function sqlEngines(what: string): SqlEngine[] {
  const pgSkip = postgresUnavailable();
  if (pgSkip) console.log(`# skipping the PostgreSQL half of ${what}: ${pgSkip}`);
  const connections = (first: Sql, connect: () => Sql, done: () => Promise<void>): OpenEngine => {
    const others: Sql[] = [];
    return {
      sql: first,
      other: () => { const o = connect(); others.push(o); return o; },
      close: async () => { for (const o of [first, ...others]) await o.close(); await done(); },
    };
  };
  return [
    {
      name: 'sqlite',
      async open() {
        const dir = await mkdtemp(join(tmpdir(), 'berth-sql-'));
        const connect = () => new SqliteSql(openDatabase(join(dir, 'berth.db')));
        return connections(connect(), connect, () => rm(dir, { recursive: true, force: true }));
      },
    },
    {
      name: 'postgres',
      ...(pgSkip ? { skip: pgSkip } : {}),
      async open() {
        const server = await startTestPostgres();
        const url = server.database('contract');
        const connect = () => PostgresSql.connect(url);
        const sql = connect();
        await migratePostgres(sql);
        return connections(sql, connect, () => server.stop());
      },
    },
  ];
}
