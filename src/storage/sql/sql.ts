// One asynchronous SQL surface over the metadata engines Berth runs on: embedded SQLite (the default)
// and PostgreSQL (scale-out). Stores write their statements once, with `?` placeholders, in the SQL
// both engines accept; where the engines differ, a store asks the dialect for the fragment.

export type SqlValue = string | number | bigint | boolean | null | Buffer;

export interface SqlRunResult {
  /** Rows the statement inserted, updated or deleted. */
  changes: number;
}

/** The SQL fragments that differ between engines. */
export interface SqlDialect {
  readonly name: 'sqlite' | 'postgres';
  /** A boolean member of a JSON object kept in a TEXT column (true/false, or the numbers 1/0), as 1/0/NULL. */
  jsonFlag(column: string, member: string): string;
  /** The database server's clock in milliseconds since the epoch (one clock for every replica). */
  readonly nowMs: string;
}

export interface SqlQueries {
  readonly dialect: SqlDialect;
  get<T>(text: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  all<T>(text: string, params?: readonly SqlValue[]): Promise<T[]>;
  run(text: string, params?: readonly SqlValue[]): Promise<SqlRunResult>;
}

export interface Sql extends SqlQueries {
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. Hold only
   * statements inside it (no network or file I/O): the embedded engine has one writer at a time.
   */
  transaction<T>(fn: (tx: SqlQueries) => Promise<T>): Promise<T>;
  /**
   * Runs a DELETE of sealed values so that, as far as the engine allows, no copy of them stays in the
   * database files: SQLite overwrites the freed pages and empties its WAL. PostgreSQL keeps dead rows
   * until a VACUUM and has no such mode; the values are sealed either way.
   */
  eraseForGood(text: string, params?: readonly SqlValue[]): Promise<SqlRunResult>;
  close(): Promise<void>;
}

/** Rewrites `?` placeholders as `$1, $2, ...` (outside quoted text), for engines that number them. */
export function numberPlaceholders(text: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}
