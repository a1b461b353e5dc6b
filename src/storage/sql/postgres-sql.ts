// The Sql surface over PostgreSQL (node-postgres pool). Statements keep the stores' `?` placeholders
// and are numbered here; 64-bit counts and sums come back as numbers, as they do from SQLite.
import pg from 'pg';
import type { Sql, SqlDialect, SqlQueries, SqlRunResult, SqlValue } from './sql.js';
import { numberPlaceholders } from './sql.js';

const POSTGRES: SqlDialect = {
  name: 'postgres',
  // A flag written as the number 1 or 0 reads as SQLite's json_extract reads it.
  jsonFlag: (column, member) => `(CASE (${column})::jsonb->'${member}' WHEN 'true'::jsonb THEN 1 WHEN '1'::jsonb THEN 1 WHEN 'false'::jsonb THEN 0 WHEN '0'::jsonb THEN 0 END)`,
  nowMs: `(extract(epoch from clock_timestamp()) * 1000)::bigint`,
};

const INT8 = 20;
const NUMERIC = 1700;
/** Sizes and counts: exact as numbers up to 2^53 bytes, which no blob store reaches. */
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

type Queryable = pg.Pool | pg.PoolClient;
type Params = readonly SqlValue[];

function queries(on: Queryable, numbered: (text: string) => string): SqlQueries {
  // Flags are integer columns in both schemas: a boolean goes in as 1 or 0.
  const q = (text: string, params: Params) => on.query(numbered(text), params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p)));
  return {
    dialect: POSTGRES,
    get: async <T>(text: string, params: Params = []) => (await q(text, params)).rows[0] as T | undefined,
    all: async <T>(text: string, params: Params = []) => (await q(text, params)).rows as T[],
    run: async (text: string, params: Params = []): Promise<SqlRunResult> => ({ changes: (await q(text, params)).rowCount ?? 0 }),
  };
}

export class PostgresSql implements Sql {
  readonly dialect = POSTGRES;
  private readonly texts = new Map<string, string>();
  private readonly direct: SqlQueries;
  readonly get: SqlQueries['get'];
  readonly all: SqlQueries['all'];
  readonly run: SqlQueries['run'];

  constructor(readonly pool: pg.Pool) {
    this.direct = queries(pool, (t) => this.numbered(t));
    this.get = this.direct.get;
    this.all = this.direct.all;
    this.run = this.direct.run;
  }

  /** A pool for a `postgres://` URL (the password in the URL or in PGPASSWORD / ~/.pgpass, as libpq does). */
  static connect(url: string, opts: { max?: number } = {}): PostgresSql {
    const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, types });
    // An idle connection the server dropped must not take the process down.
    pool.on('error', () => undefined);
    return new PostgresSql(pool);
  }

  private numbered(text: string): string {
    let t = this.texts.get(text);
    if (t === undefined) {
      t = numberPlaceholders(text);
      this.texts.set(text, t);
    }
    return t;
  }

  async transaction<T>(fn: (tx: SqlQueries) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const r = await fn(queries(client, (t) => this.numbered(t)));
      await client.query('COMMIT');
      return r;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  eraseForGood(text: string, params: Params = []): Promise<SqlRunResult> {
    return this.run(text, params);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
