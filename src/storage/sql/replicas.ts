// The replicas of one Berth: each records itself (its host and URL) and beats while it runs. A replica
// whose beat is older than the grace is gone (crashed, killed, its machine lost): the container groups
// its host ran are shown as such instead of "Running". Times are the database server's clock.
import type { Sql } from './sql.js';

export interface ReplicaRecord {
  id: string;
  host: string;
  url: string;
  startedAt: number;
  seenAt: number;
  /** Beat within the grace given to list(). */
  alive: boolean;
}

export class Replicas {
  constructor(private readonly sql: Sql) {}

  /** Records a replica as started now (again, after a restart with the same id). */
  async register(r: { id: string; host: string; url: string }): Promise<void> {
    const now = this.sql.dialect.nowMs;
    await this.sql.run(
      `INSERT INTO replicas (id, host, url, started_at, seen_at) VALUES (?, ?, ?, ${now}, ${now})
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, url = excluded.url, started_at = excluded.started_at, seen_at = excluded.seen_at`,
      [r.id, r.host, r.url],
    );
  }

  /** A heartbeat; false when the replica's record is gone (removed as dead by an operator). */
  async beat(id: string): Promise<boolean> {
    return (await this.sql.run(`UPDATE replicas SET seen_at = ${this.sql.dialect.nowMs} WHERE id = ?`, [id])).changes > 0;
  }

  /** A clean shutdown: the replica's record goes. */
  async remove(id: string): Promise<void> {
    await this.sql.run('DELETE FROM replicas WHERE id = ?', [id]);
  }

  async list(graceMs: number): Promise<ReplicaRecord[]> {
    const rows = await this.sql.all<{ id: string; host: string; url: string; started_at: number; seen_at: number; alive: number }>(
      `SELECT id, host, url, started_at, seen_at, CASE WHEN seen_at > ${this.sql.dialect.nowMs} - ? THEN 1 ELSE 0 END AS alive
       FROM replicas ORDER BY id`,
      [Math.ceil(graceMs)],
    );
    return rows.map((r) => ({ id: r.id, host: r.host, url: r.url, startedAt: r.started_at, seenAt: r.seen_at, alive: r.alive === 1 }));
  }

  /** Whether a replica beat within the grace (false for one never registered). */
  async alive(id: string, graceMs: number): Promise<boolean> {
    const r = await this.sql.get(`SELECT 1 AS alive FROM replicas WHERE id = ? AND seen_at > ${this.sql.dialect.nowMs} - ?`, [id, Math.ceil(graceMs)]);
    return r !== undefined;
  }
}
