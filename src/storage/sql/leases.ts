// Leases in the metadata database: a named job (garbage collection, a purge sweep) runs only where its
// lease is held, so that replicas sharing one PostgreSQL take turns instead of racing. A lease expires
// unless its holder renews it, so a replica that dies (kill -9) hands the job on after one term. Times
// come from the database server's clock, the one clock every replica shares.
import type { Sql } from './sql.js';

export interface LeaseOptions {
  /** How long a lease lasts without renewal. */
  ttlMs: number;
  /** How often a held lease is renewed while its job runs (default: a third of the term). */
  renewEveryMs?: number;
}

export class Leases {
  constructor(private readonly sql: Sql, readonly holder: string) {}

  /** Takes the lease when it is free, expired or already ours (then extends it); whether we now hold it. */
  async acquire(name: string, ttlMs: number): Promise<boolean> {
    const now = this.sql.dialect.nowMs;
    const r = await this.sql.run(
      `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ${now} + ?)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.holder = excluded.holder OR leases.expires_at <= ${now}`,
      [name, this.holder, Math.ceil(ttlMs)],
    );
    return r.changes > 0;
  }

  /** Gives the lease up at once, if we hold it. */
  async release(name: string): Promise<void> {
    await this.sql.run('DELETE FROM leases WHERE name = ? AND holder = ?', [name, this.holder]);
  }

  /** Who holds the lease now (undefined when free or expired). */
  async holderOf(name: string): Promise<string | undefined> {
    const r = await this.sql.get<{ holder: string }>(`SELECT holder FROM leases WHERE name = ? AND expires_at > ${this.sql.dialect.nowMs}`, [name]);
    return r?.holder;
  }

  /**
   * Runs `job` if the lease can be taken, renewing it while the job runs; `signal` aborts when a renewal
   * finds the lease lost (another holder took it after we stalled past its term), and the job should
   * stop. Resolves to undefined when another holder has it.
   */
  async runExclusive<T>(name: string, opts: LeaseOptions, job: (signal: AbortSignal) => Promise<T>): Promise<{ result: T } | undefined> {
    if (!(await this.acquire(name, opts.ttlMs))) return undefined;
    const lost = new AbortController();
    const every = opts.renewEveryMs ?? Math.max(1, Math.floor(opts.ttlMs / 3));
    let renewing: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      renewing = this.acquire(name, opts.ttlMs)
        .then((held) => { if (!held) lost.abort(new Error(`the lease on ${name} was lost`)); })
        .catch((e: Error) => lost.abort(e));
    }, every);
    timer.unref();
    try {
      return { result: await job(lost.signal) };
    } finally {
      clearInterval(timer);
      await renewing.catch(() => undefined);
      if (!lost.signal.aborted) await this.release(name);
    }
  }
}
