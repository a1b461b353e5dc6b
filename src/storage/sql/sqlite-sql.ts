// The Sql surface over the embedded SQLite database (better-sqlite3, synchronous underneath).
import type Database from 'better-sqlite3';
import { deleteForGood, type Db } from '../sqlite.js';
import type { Sql, SqlDialect, SqlQueries, SqlRunResult, SqlValue } from './sql.js';

const SQLITE: SqlDialect = {
  name: 'sqlite',
  jsonFlag: (column, member) => `json_extract(${column}, '$.${member}')`,
  nowMs: `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`,
};

type Params = readonly SqlValue[];
const bind = (params: Params) => params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));

export class SqliteSql implements Sql {
  readonly dialect = SQLITE;
  /** Prepared once per statement text: preparing is most of the cost of a small query. */
  private readonly statements = new Map<string, Database.Statement<unknown[]>>();
  /** The transaction in progress: statements from outside it wait for it, so they are not swept into it. */
  private running?: Promise<unknown>;
  private readonly inside: SqlQueries;

  constructor(readonly db: Db) {
    // Inside a transaction statements run at once (the transaction holds the connection).
    this.inside = {
      dialect: SQLITE,
      get: async (t, p) => this.getNow(t, p), all: async (t, p) => this.allNow(t, p), run: async (t, p) => this.runNow(t, p),
    };
  }

  private stmt(text: string) {
    let s = this.statements.get(text);
    if (!s) {
      s = this.db.prepare<unknown[]>(text);
      this.statements.set(text, s);
    }
    return s;
  }

  private async outside<T>(f: () => T): Promise<T> {
    while (this.running) await this.running.catch(() => undefined);
    return f();
  }

  private getNow<T>(text: string, params: Params = []) { return this.stmt(text).get(...bind(params)) as T | undefined; }
  private allNow<T>(text: string, params: Params = []) { return this.stmt(text).all(...bind(params)) as T[]; }
  private runNow(text: string, params: Params = []): SqlRunResult { return { changes: this.stmt(text).run(...bind(params)).changes }; }

  get<T>(text: string, params: Params = []) { return this.outside(() => this.getNow<T>(text, params)); }
  all<T>(text: string, params: Params = []) { return this.outside(() => this.allNow<T>(text, params)); }
  run(text: string, params: Params = []) { return this.outside(() => this.runNow(text, params)); }

  async transaction<T>(fn: (tx: SqlQueries) => Promise<T>): Promise<T> {
    while (this.running) await this.running.catch(() => undefined);
    const done = (async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const r = await fn(this.inside);
        this.db.exec('COMMIT');
        return r;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    })();
    this.running = done;
    try {
      return await done;
    } finally {
      if (this.running === done) this.running = undefined;
    }
  }

  eraseForGood(text: string, params: Params = []): Promise<SqlRunResult> {
    return this.outside(() => ({ changes: deleteForGood(this.db, () => this.stmt(text).run(...bind(params))) }));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
