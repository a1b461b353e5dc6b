// The two metadata engines a store's tests run against: the embedded SQLite in a temp directory, and
// a throwaway PostgreSQL server (skipped, said why, where none can start). `other()` opens another
// connection to the same database, as a second Berth replica has.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migratePostgres } from '../../src/storage/sql/postgres-schema.js';
import { PostgresSql } from '../../src/storage/sql/postgres-sql.js';
import type { Sql } from '../../src/storage/sql/sql.js';
import { SqliteSql } from '../../src/storage/sql/sqlite-sql.js';
import { openDatabase } from '../../src/storage/sqlite.js';
import { postgresUnavailable, startTestPostgres } from './postgres.js';

export interface OpenedEngine {
  sql: Sql;
  other(): Sql;
  close(): Promise<void>;
}

export interface SqlEngine {
  name: 'sqlite' | 'postgres';
  skip?: string;
  open(): Promise<OpenedEngine>;
}

/** Both engines, each with its schema; `what` names the tests in the skip line and the database. */
export function sqlEngines(what: string): SqlEngine[] {
  const pgSkip = postgresUnavailable();
  if (pgSkip) console.log(`# skipping the PostgreSQL half of the ${what} tests: ${pgSkip}`);
  const connections = (first: Sql, connect: () => Sql) => {
    const others: Sql[] = [];
    return {
      other: () => { const o = connect(); others.push(o); return o; },
      closeAll: async () => { for (const o of [...others, first]) await o.close(); },
    };
  };
  return [
    {
      name: 'sqlite',
      async open() {
        const dir = await mkdtemp(join(tmpdir(), `berth-${what.replace(/\W+/g, '-')}-`));
        const connect = () => new SqliteSql(openDatabase(join(dir, 'berth.db')));
        const sql = connect();
        const c = connections(sql, connect);
        return { sql, other: c.other, close: async () => { await c.closeAll(); await rm(dir, { recursive: true, force: true }); } };
      },
    },
    {
      name: 'postgres',
      ...(pgSkip ? { skip: pgSkip } : {}),
      async open() {
        const server = await startTestPostgres();
        const url = server.database(what.replace(/\W+/g, '_'));
        const sql = PostgresSql.connect(url);
        await migratePostgres(sql);
        const c = connections(sql, () => PostgresSql.connect(url));
        return { sql, other: c.other, close: async () => { await c.closeAll(); await server.stop(); } };
      },
    },
  ];
}
