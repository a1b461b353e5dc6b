// Both metadata engines, for tests that hold the Sql surface or a store on it to the same assertions:
// embedded SQLite in a temporary directory, and a throwaway PostgreSQL server (./postgres.ts) with
// Berth's schema. Each open() is a database of its own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migratePostgres } from '../../src/storage/sql/postgres-schema.js';
import { PostgresSql } from '../../src/storage/sql/postgres-sql.js';
import type { Sql } from '../../src/storage/sql/sql.js';
import { SqliteSql } from '../../src/storage/sql/sqlite-sql.js';
import { openDatabase } from '../../src/storage/sqlite.js';
import { postgresUnavailable, startTestPostgres } from './postgres.js';

export interface OpenSql {
  sql: Sql;
  /** Another connection to the same database, as a second replica has (closed with the first). */
  other(): Sql;
  close(): Promise<void>;
}

export interface SqlEngine {
  name: 'sqlite' | 'postgres';
  /** Why this engine's tests are skipped here, or undefined. */
  skip?: string;
  open(): Promise<OpenSql>;
}

/** The two engines; `what` names the tests in the line that says why PostgreSQL's half is skipped. */
export function sqlEngines(what: string): SqlEngine[] {
  const pgSkip = postgresUnavailable();
  if (pgSkip) console.log(`# skipping the PostgreSQL half of ${what}: ${pgSkip}`);
  const opened = (first: Sql, connect: () => Sql, done: () => Promise<void>): OpenSql => {
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
        return opened(connect(), connect, () => rm(dir, { recursive: true, force: true }));
      },
    },
    {
      name: 'postgres',
      ...(pgSkip ? { skip: pgSkip } : {}),
      async open() {
        const server = await startTestPostgres();
        const url = server.database('berth');
        const sql = PostgresSql.connect(url);
        await migratePostgres(sql);
        return opened(sql, () => PostgresSql.connect(url), () => server.stop());
      },
    },
  ];
}
