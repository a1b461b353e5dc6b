// Managed identities: user-assigned ones are ARM resources (Microsoft.ManagedIdentity/
// userAssignedIdentities) in a resource group; system-assigned ones belong to one resource (a
// container group) and live and die with it. Either is a principal that role assignments name.
import { randomUUID } from 'node:crypto';
import type { Db } from '../storage/sqlite.js';
import { nowIso } from '../storage/sqlite.js';
import { invalid, resourceNotFound } from '../lib/errors.js';
import type { ResourceGroups } from '../resources/groups.js';
import type { Principal } from './principals.js';

export interface UserAssignedIdentity {
  id: string;
  name: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  principalId: string;
  clientId: string;
  tenantId: string;
  createdAt: string;
}

interface Props { userAssigned?: boolean; resourceGroup?: string; name?: string; location?: string; tags?: Record<string, string>; systemAssignedFor?: string }
interface Row { id: string; app_id: string; display_name: string; created_at: string; props: string }

const TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';

export class ManagedIdentities {
  constructor(private readonly db: Db, private readonly subscriptionId: string, private readonly tenantId: string,
    private readonly groups: ResourceGroups) {}

  armId(rg: string, name: string): string {
    // ARM returns these ids with a lower-case "resourcegroups", as Azure does.
    return `/subscriptions/${this.subscriptionId}/resourcegroups/${rg}/providers/${TYPE}/${name}`;
  }

  private toIdentity(r: Row): UserAssignedIdentity {
    const p = JSON.parse(r.props) as Props;
    return { id: this.armId(p.resourceGroup!, p.name!), name: p.name!, resourceGroup: p.resourceGroup!, location: p.location ?? '', tags: p.tags ?? {},
      principalId: r.id, clientId: r.app_id, tenantId: this.tenantId, createdAt: r.created_at };
  }

  private rows(): Row[] {
    return this.db.prepare(`SELECT id, app_id, display_name, created_at, props FROM principals WHERE kind = 'managedIdentity' AND json_extract(props, '$.userAssigned') = 1 ORDER BY created_at`).all() as Row[];
  }

  list(rg?: string): UserAssignedIdentity[] {
    return this.rows().map((r) => this.toIdentity(r)).filter((i) => rg === undefined || i.resourceGroup.toLowerCase() === rg.toLowerCase());
  }

  find(rg: string, name: string): UserAssignedIdentity | undefined {
    return this.list(rg).find((i) => i.name.toLowerCase() === name.toLowerCase());
  }

  async get(rg: string, name: string): Promise<UserAssignedIdentity> {
    await this.groups.get(rg);
    const i = this.find(rg, name);
    if (!i) throw resourceNotFound(TYPE, name, rg);
    return i;
  }

  /** By ARM id (any casing), client id or principal id. */
  resolve(ref: string): UserAssignedIdentity | undefined {
    const k = ref.toLowerCase();
    return this.list().find((i) => i.id.toLowerCase() === k || i.clientId === k || i.principalId === k);
  }

  async createOrUpdate(rg: string, name: string, opts: { location?: string; tags?: Record<string, string> }): Promise<{ identity: UserAssignedIdentity; created: boolean }> {
    const group = await this.groups.get(rg);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(name)) {
      throw invalid('InvalidResourceName', `Resource name '${name}' is invalid: use 3-128 letters, digits, '-' or '_', starting with a letter or digit.`);
    }
    const existing = this.find(group.name, name);
    if (existing) {
      const props: Props = { userAssigned: true, resourceGroup: existing.resourceGroup, name: existing.name, location: existing.location, tags: opts.tags ?? existing.tags };
      this.db.prepare('UPDATE principals SET props = ? WHERE id = ?').run(JSON.stringify(props), existing.principalId);
      return { identity: await this.get(group.name, name), created: false };
    }
    const props: Props = { userAssigned: true, resourceGroup: group.name, name, location: opts.location || group.location, tags: opts.tags ?? {} };
    this.db.prepare('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)')
      .run(randomUUID(), 'managedIdentity', name, randomUUID(), nowIso(), JSON.stringify(props));
    return { identity: await this.get(group.name, name), created: true };
  }

  /** Deletes the identity and its role assignments. Returns false when there was none. */
  async delete(rg: string, name: string): Promise<boolean> {
    await this.groups.get(rg);
    const i = this.find(rg, name);
    if (!i) return false;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM role_assignments WHERE principal_id = ?').run(i.principalId);
      this.db.prepare('DELETE FROM principals WHERE id = ?').run(i.principalId);
    })();
    return true;
  }

  /** The system-assigned identity of `resourceId`, created on first use. */
  ensureSystemAssigned(resourceId: string, displayName: string): Principal & { appId: string } {
    const row = this.db.prepare(`SELECT id, app_id FROM principals WHERE kind = 'managedIdentity' AND lower(json_extract(props, '$.systemAssignedFor')) = ?`)
      .get(resourceId.toLowerCase()) as { id: string; app_id: string } | undefined;
    if (row) return { kind: 'managedIdentity', id: row.id, appId: row.app_id, displayName };
    const id = randomUUID();
    const appId = randomUUID();
    this.db.prepare('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, 'managedIdentity', displayName, appId, nowIso(), JSON.stringify({ systemAssignedFor: resourceId } satisfies Props));
    return { kind: 'managedIdentity', id, appId, displayName };
  }

  /** A system-assigned identity by principal (object) id or client (app) id, with the resource it belongs to. */
  findSystemAssigned(ref: string): { principalId: string; clientId: string; displayName: string; resourceId: string } | undefined {
    const row = this.db.prepare(`SELECT id, app_id, display_name, props FROM principals WHERE kind = 'managedIdentity' AND json_extract(props, '$.systemAssignedFor') IS NOT NULL AND (id = ? OR app_id = ?)`)
      .get(ref.toLowerCase(), ref.toLowerCase()) as { id: string; app_id: string; display_name: string; props: string } | undefined;
    if (!row) return undefined;
    return { principalId: row.id, clientId: row.app_id, displayName: row.display_name, resourceId: (JSON.parse(row.props) as Props).systemAssignedFor! };
  }

  deleteSystemAssigned(resourceId: string): void {
    const row = this.db.prepare(`SELECT id FROM principals WHERE kind = 'managedIdentity' AND lower(json_extract(props, '$.systemAssignedFor')) = ?`)
      .get(resourceId.toLowerCase()) as { id: string } | undefined;
    if (!row) return;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM role_assignments WHERE principal_id = ?').run(row.id);
      this.db.prepare('DELETE FROM principals WHERE id = ?').run(row.id);
    })();
  }
}
