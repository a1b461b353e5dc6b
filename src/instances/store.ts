// Container groups and their long-running operations, over the Sql surface (SQLite or PostgreSQL).
// The spec is stored without its secrets; secure environment values and registry passwords are sealed
// together (AES-GCM, src/storage/sealer.ts) in their own column, bound to the group's id, and only the
// reconciler opens them. A group's writes run one at a time in call order (the reconciler saves its
// state several times a second, and PostgreSQL's pool could otherwise land an older save last).
import { randomUUID } from 'node:crypto';
import type { Sealer } from '../storage/sealer.js';
import type { Sql } from '../storage/sql/sql.js';
import { KeyedQueue } from '../lib/keyed-queue.js';
import type { GroupSpec } from './spec.js';
import type { GroupState } from './state.js';
import { nowIso } from '../lib/time.js';

export interface StoredGroup {
  /** Stable id; the runtime's groupId. */
  id: string;
  resourceGroup: string;
  name: string;
  location: string;
  /** The spec with secureValue and password values in place (opened from the sealed column). */
  spec: GroupSpec;
  state: GroupState;
  createdAt: string;
}

export interface Operation {
  id: string;
  groupId: string;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  error?: { code: string; message: string };
  startTime: string;
  endTime?: string;
}

interface OperationRow { id: string; group_id: string; status: Operation['status']; error: string | null; start_time: string; end_time: string | null }
interface Row { id: string; resource_group: string; name: string; location: string; spec: string; secrets: string; state: string; created_at: string }
interface Secrets { env: Record<string, string>; passwords: Record<string, string> }

/** Splits the secrets out of a spec: the spec without them, and the sealed-to-be map. */
export function splitSecrets(spec: GroupSpec): { bare: GroupSpec; secrets: Secrets } {
  const secrets: Secrets = { env: {}, passwords: {} };
  const bare: GroupSpec = {
    ...spec,
    containers: spec.containers.map((c) => ({ ...c, environmentVariables: c.environmentVariables.map((e) => {
      if (e.secureValue === undefined) return e;
      secrets.env[`${c.name}/${e.name}`] = e.secureValue;
      return { name: e.name, secureValue: '' };
    }) })),
    imageRegistryCredentials: spec.imageRegistryCredentials.map((r, i) => {
      // A Key Vault reference is not a secret: it stays in the spec and is resolved at pull time.
      if (typeof r.password !== 'string') return r;
      secrets.passwords[String(i)] = r.password;
      const { password: _p, ...rest } = r;
      return { ...rest, password: '' };
    }),
  };
  return { bare, secrets };
}


function joinSecrets(bare: GroupSpec, s: Secrets): GroupSpec {
  return {
    ...bare,
    containers: bare.containers.map((c) => ({ ...c, environmentVariables: c.environmentVariables.map((e) =>
      e.secureValue === undefined ? e : { name: e.name, secureValue: s.env[`${c.name}/${e.name}`] ?? '' }) })),
    imageRegistryCredentials: bare.imageRegistryCredentials.map((r, i) => (typeof r.password !== 'string' ? r : { ...r, password: s.passwords[String(i)] ?? '' })),
  };
}

export class GroupStore {
  private readonly writes = new KeyedQueue();
  /** Per group, a state save queued and not yet begun: a newer save replaces its snapshot (only the latest state matters). */
  private readonly queuedSave = new Map<string, { json: string; done: Promise<void> }>();

  constructor(private readonly sql: Sql, private readonly subscriptionId: string, private readonly sealer: Sealer) {}

  private toGroup(r: Row): StoredGroup {
    const secrets = JSON.parse(this.sealer.open(r.secrets, `container-group:${r.id}`)) as Secrets;
    return { id: r.id, resourceGroup: r.resource_group, name: r.name, location: r.location,
      spec: joinSecrets(JSON.parse(r.spec) as GroupSpec, secrets), state: JSON.parse(r.state) as GroupState, createdAt: r.created_at };
  }

  /** Queues a write of group `id` behind the ones before it; a state save queued before it is no longer replaced by later ones. */
  private write<T>(id: string, fn: () => Promise<T>): Promise<T> {
    this.queuedSave.delete(id);
    return this.writes.run(id, fn);
  }

  async find(rg: string, name: string): Promise<StoredGroup | undefined> {
    const r = await this.sql.get<Row>('SELECT * FROM container_groups WHERE subscription = ? AND rg_lower = ? AND name_lower = ?',
      [this.subscriptionId, rg.toLowerCase(), name.toLowerCase()]);
    return r && this.toGroup(r);
  }

  async byId(id: string): Promise<StoredGroup | undefined> {
    const r = await this.sql.get<Row>('SELECT * FROM container_groups WHERE id = ?', [id]);
    return r && this.toGroup(r);
  }

  async list(rg?: string): Promise<StoredGroup[]> {
    const rows = rg === undefined
      ? await this.sql.all<Row>('SELECT * FROM container_groups WHERE subscription = ? ORDER BY rg_lower, name_lower', [this.subscriptionId])
      : await this.sql.all<Row>('SELECT * FROM container_groups WHERE subscription = ? AND rg_lower = ? ORDER BY name_lower', [this.subscriptionId, rg.toLowerCase()]);
    return rows.map((r) => this.toGroup(r));
  }

  /** Inserts a new group or replaces the spec and state of an existing one (same id). */
  save(g: { id?: string; resourceGroup: string; name: string; location: string; spec: GroupSpec; state: GroupState }): Promise<StoredGroup> {
    const id = g.id ?? randomUUID();
    const { bare, sealed } = this.sealSpec(id, g.spec);
    const state = JSON.stringify(g.state);
    const now = nowIso();
    return this.write(id, async () => {
      await this.sql.run(`INSERT INTO container_groups (id, subscription, resource_group, rg_lower, name, name_lower, location, spec, secrets, state, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, secrets = excluded.secrets, state = excluded.state, location = excluded.location, updated_at = excluded.updated_at`,
      [id, this.subscriptionId, g.resourceGroup, g.resourceGroup.toLowerCase(), g.name, g.name.toLowerCase(), g.location, bare, sealed, state, now, now]);
      return (await this.byId(id))!;
    });
  }

  /** Replaces the spec of an existing group and leaves its state as the reconciler last saved it; undefined when there is none. */
  saveSpec(id: string, spec: GroupSpec): Promise<StoredGroup | undefined> {
    const { bare, sealed } = this.sealSpec(id, spec);
    return this.write(id, async () => {
      await this.sql.run('UPDATE container_groups SET spec = ?, secrets = ?, updated_at = ? WHERE id = ?', [bare, sealed, nowIso(), id]);
      return this.byId(id);
    });
  }

  private sealSpec(id: string, spec: GroupSpec): { bare: string; sealed: string } {
    const { bare, secrets } = splitSecrets(spec);
    return { bare: JSON.stringify(bare), sealed: this.sealer.seal(JSON.stringify(secrets), `container-group:${id}`) };
  }

  /** Saves the group's state as it is now (the snapshot is taken at the call). */
  saveState(id: string, state: GroupState): Promise<void> {
    const json = JSON.stringify(state);
    const queued = this.queuedSave.get(id);
    if (queued) {
      queued.json = json;
      return queued.done;
    }
    const entry = { json, done: Promise.resolve() };
    entry.done = this.writes.run(id, async () => {
      if (this.queuedSave.get(id) === entry) this.queuedSave.delete(id);
      await this.sql.run('UPDATE container_groups SET state = ?, updated_at = ? WHERE id = ?', [entry.json, nowIso(), id]);
    });
    this.queuedSave.set(id, entry);
    return entry.done;
  }

  /**
   * Changes the stored state with `change` (no I/O in it) as one read-modify-write: after the saves
   * queued before it, and under the row's lock, so no other writer's save falls between the read and
   * the write. The group as written, or undefined when there is none.
   */
  updateState(id: string, change: (state: GroupState) => void): Promise<StoredGroup | undefined> {
    return this.write(id, () => this.sql.transaction(async (tx) => {
      // The UPDATE takes the row's lock first (PostgreSQL's row lock, SQLite's write lock).
      if ((await tx.run('UPDATE container_groups SET updated_at = ? WHERE id = ?', [nowIso(), id])).changes === 0) return undefined;
      const g = this.toGroup((await tx.get<Row>('SELECT * FROM container_groups WHERE id = ?', [id]))!);
      change(g.state);
      await tx.run('UPDATE container_groups SET state = ? WHERE id = ?', [JSON.stringify(g.state), id]);
      return g;
    }));
  }

  /** Resolves once the writes of group `id` asked for so far have landed. */
  settled(id: string): Promise<void> {
    return this.writes.settled(id);
  }

  /** Resolves once every write asked for so far has landed (before the database is closed). */
  idle(): Promise<void> {
    return this.writes.idle();
  }

  delete(id: string): Promise<void> {
    return this.write(id, () => this.sql.transaction(async (tx) => {
      await tx.run('DELETE FROM container_groups WHERE id = ?', [id]);
      await tx.run('DELETE FROM container_group_operations WHERE group_id = ?', [id]);
    }));
  }

  // ---- long-running operations
  async startOperation(groupId: string): Promise<Operation> {
    const op: Operation = { id: randomUUID(), groupId, status: 'InProgress', startTime: new Date().toISOString() };
    await this.sql.run('INSERT INTO container_group_operations (id, group_id, status, start_time) VALUES (?, ?, ?, ?)', [op.id, groupId, op.status, op.startTime]);
    return op;
  }

  /** Ends an operation still in progress (one that has ended keeps its outcome). */
  async finishOperation(id: string, status: 'Succeeded' | 'Failed', error?: { code: string; message: string }): Promise<void> {
    await this.sql.run('UPDATE container_group_operations SET status = ?, error = ?, end_time = ? WHERE id = ? AND status = ?',
      [status, error ? JSON.stringify(error) : null, new Date().toISOString(), id, 'InProgress']);
  }

  /** Fails every operation of the group still in progress (stop; after a server restart); how many there were. */
  async failPendingOperations(groupId: string, error: { code: string; message: string }): Promise<number> {
    const r = await this.sql.run(`UPDATE container_group_operations SET status = 'Failed', error = ?, end_time = ? WHERE group_id = ? AND status = 'InProgress'`,
      [JSON.stringify(error), new Date().toISOString(), groupId]);
    return r.changes;
  }

  async operation(id: string): Promise<Operation | undefined> {
    const r = await this.sql.get<OperationRow>('SELECT * FROM container_group_operations WHERE id = ?', [id]);
    if (!r) return undefined;
    return { id: r.id, groupId: r.group_id, status: r.status, startTime: r.start_time, ...(r.error ? { error: JSON.parse(r.error) } : {}), ...(r.end_time ? { endTime: r.end_time } : {}) };
  }
}
