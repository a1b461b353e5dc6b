// Container groups in SQLite. The spec is stored without its secrets; secure environment values and
// registry passwords are sealed together (AES-GCM, src/storage/sealer.ts) in their own column, bound
// to the group's id, and only the reconciler opens them.
import { randomUUID } from 'node:crypto';
import type { Db } from '../storage/sqlite.js';
import { nowIso } from '../storage/sqlite.js';
import type { Sealer } from '../storage/sealer.js';
import type { GroupSpec } from './spec.js';
import type { GroupState } from './state.js';

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
  constructor(private readonly db: Db, private readonly subscriptionId: string, private readonly sealer: Sealer) {}

  private toGroup(r: Row): StoredGroup {
    const secrets = JSON.parse(this.sealer.open(r.secrets, `container-group:${r.id}`)) as Secrets;
    return { id: r.id, resourceGroup: r.resource_group, name: r.name, location: r.location,
      spec: joinSecrets(JSON.parse(r.spec) as GroupSpec, secrets), state: JSON.parse(r.state) as GroupState, createdAt: r.created_at };
  }

  find(rg: string, name: string): StoredGroup | undefined {
    const r = this.db.prepare('SELECT * FROM container_groups WHERE subscription = ? AND rg_lower = ? AND name_lower = ?')
      .get(this.subscriptionId, rg.toLowerCase(), name.toLowerCase()) as Row | undefined;
    return r && this.toGroup(r);
  }

  byId(id: string): StoredGroup | undefined {
    const r = this.db.prepare('SELECT * FROM container_groups WHERE id = ?').get(id) as Row | undefined;
    return r && this.toGroup(r);
  }

  list(rg?: string): StoredGroup[] {
    const rows = (rg === undefined
      ? this.db.prepare('SELECT * FROM container_groups WHERE subscription = ? ORDER BY rg_lower, name_lower').all(this.subscriptionId)
      : this.db.prepare('SELECT * FROM container_groups WHERE subscription = ? AND rg_lower = ? ORDER BY name_lower').all(this.subscriptionId, rg.toLowerCase())) as Row[];
    return rows.map((r) => this.toGroup(r));
  }

  /** Inserts a new group or replaces the spec of an existing one (same id). */
  save(g: { id?: string; resourceGroup: string; name: string; location: string; spec: GroupSpec; state: GroupState }): StoredGroup {
    const { bare, secrets } = splitSecrets(g.spec);
    const id = g.id ?? randomUUID();
    const sealed = this.sealer.seal(JSON.stringify(secrets), `container-group:${id}`);
    const now = nowIso();
    this.db.prepare(`INSERT INTO container_groups (id, subscription, resource_group, rg_lower, name, name_lower, location, spec, secrets, state, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, secrets = excluded.secrets, state = excluded.state, location = excluded.location, updated_at = excluded.updated_at`)
      .run(id, this.subscriptionId, g.resourceGroup, g.resourceGroup.toLowerCase(), g.name, g.name.toLowerCase(), g.location, JSON.stringify(bare), sealed,
        JSON.stringify(g.state), now, now);
    return this.byId(id)!;
  }

  saveState(id: string, state: GroupState): void {
    this.db.prepare('UPDATE container_groups SET state = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(state), nowIso(), id);
  }

  delete(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM container_groups WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM container_group_operations WHERE group_id = ?').run(id);
    })();
  }

  // ---- long-running operations
  startOperation(groupId: string): Operation {
    const op: Operation = { id: randomUUID(), groupId, status: 'InProgress', startTime: new Date().toISOString() };
    this.db.prepare('INSERT INTO container_group_operations (id, group_id, status, start_time) VALUES (?, ?, ?, ?)').run(op.id, groupId, op.status, op.startTime);
    return op;
  }

  finishOperation(id: string, status: 'Succeeded' | 'Failed', error?: { code: string; message: string }): void {
    this.db.prepare('UPDATE container_group_operations SET status = ?, error = ?, end_time = ? WHERE id = ? AND status = ?')
      .run(status, error ? JSON.stringify(error) : null, new Date().toISOString(), id, 'InProgress');
  }

  operation(id: string): Operation | undefined {
    const r = this.db.prepare('SELECT * FROM container_group_operations WHERE id = ?').get(id) as
      { id: string; group_id: string; status: Operation['status']; error: string | null; start_time: string; end_time: string | null } | undefined;
    if (!r) return undefined;
    return { id: r.id, groupId: r.group_id, status: r.status, startTime: r.start_time, ...(r.error ? { error: JSON.parse(r.error) } : {}), ...(r.end_time ? { endTime: r.end_time } : {}) };
  }

  /** Operations still in progress (after a server restart they are settled by the reconciler). */
  pendingOperations(groupId: string): Operation[] {
    return (this.db.prepare(`SELECT id FROM container_group_operations WHERE group_id = ? AND status = 'InProgress'`).all(groupId) as Array<{ id: string }>)
      .map((r) => this.operation(r.id)!);
  }
}
