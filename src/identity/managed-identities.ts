// Managed identities: user-assigned ones are ARM resources (Microsoft.ManagedIdentity/
// userAssignedIdentities) in a resource group; system-assigned ones belong to one resource (a
// container group) and live and die with it. Either is a principal that role assignments name.
import { randomUUID } from 'node:crypto';
import type { Sql, SqlQueries } from '../storage/sql/sql.js';
import { nowIso } from '../lib/time.js';
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

/** Whether a principal row's props make it the system-assigned identity of `resourceId` (any casing). */
const systemAssignedTo = (props: string, resourceId: string) =>
  (JSON.parse(props) as Props).systemAssignedFor?.toLowerCase() === resourceId.toLowerCase();

const TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';

/**
 * Makes a transaction's look-up and insert of an identity one step for every connection (replica):
 * this write takes a row lock a second such transaction waits for on PostgreSQL (whose next statement
 * then sees what the first wrote); SQLite has one writer at a time anyway. The row exists from the first start.
 */
const lockIdentities = (tx: SqlQueries) => tx.run(`UPDATE settings SET value = value WHERE key = 'subscriptionId'`);

export class ManagedIdentities {
  constructor(private readonly db: Sql, private readonly subscriptionId: string, private readonly tenantId: string,
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

  private rows(q: SqlQueries = this.db): Promise<Row[]> {
    return q.all<Row>(`SELECT id, app_id, display_name, created_at, props FROM principals WHERE kind = 'managedIdentity' AND ${this.db.dialect.jsonFlag('props', 'userAssigned')} = 1 ORDER BY created_at`);
  }

  async list(rg?: string): Promise<UserAssignedIdentity[]> {
    return (await this.rows()).map((r) => this.toIdentity(r)).filter((i) => rg === undefined || i.resourceGroup.toLowerCase() === rg.toLowerCase());
  }

  async find(rg: string, name: string): Promise<UserAssignedIdentity | undefined> {
    return (await this.list(rg)).find((i) => i.name.toLowerCase() === name.toLowerCase());
  }

  async get(rg: string, name: string): Promise<UserAssignedIdentity> {
    await this.groups.get(rg);
    const i = await this.find(rg, name);
    if (!i) throw resourceNotFound(TYPE, name, rg);
    return i;
  }

  /** By ARM id (any casing), client id or principal id. */
  async resolve(ref: string): Promise<UserAssignedIdentity | undefined> {
    const k = ref.toLowerCase();
    return (await this.list()).find((i) => i.id.toLowerCase() === k || i.clientId === k || i.principalId === k);
  }

  async createOrUpdate(rg: string, name: string, opts: { location?: string; tags?: Record<string, string> }): Promise<{ identity: UserAssignedIdentity; created: boolean }> {
    const group = await this.groups.get(rg);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(name)) {
      throw invalid('InvalidResourceName', `Resource name '${name}' is invalid: use 3-128 letters, digits, '-' or '_', starting with a letter or digit.`);
    }
    const created = await this.db.transaction(async (tx) => {
      await lockIdentities(tx);
      const existing = (await this.rows(tx)).map((r) => this.toIdentity(r))
        .find((i) => i.resourceGroup.toLowerCase() === group.name.toLowerCase() && i.name.toLowerCase() === name.toLowerCase());
      if (existing) {
        const props: Props = { userAssigned: true, resourceGroup: existing.resourceGroup, name: existing.name, location: existing.location, tags: opts.tags ?? existing.tags };
        await tx.run('UPDATE principals SET props = ? WHERE id = ?', [JSON.stringify(props), existing.principalId]);
        return false;
      }
      const props: Props = { userAssigned: true, resourceGroup: group.name, name, location: opts.location || group.location, tags: opts.tags ?? {} };
      await tx.run('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)',
        [randomUUID(), 'managedIdentity', name, randomUUID(), nowIso(), JSON.stringify(props)]);
      return true;
    });
    return { identity: await this.get(group.name, name), created };
  }

  /** Deletes the identity and its role assignments. Returns false when there was none. */
  async delete(rg: string, name: string): Promise<boolean> {
    await this.groups.get(rg);
    const i = await this.find(rg, name);
    if (!i) return false;
    await this.deletePrincipal(i.principalId);
    return true;
  }

  private deletePrincipal(id: string): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM role_assignments WHERE principal_id = ?', [id]);
      await tx.run('DELETE FROM principals WHERE id = ?', [id]);
    });
  }

  /** The system-assigned identities (which resource each belongs to is read from props here, not in SQL: the engines' JSON functions differ). */
  private systemAssignedRows(tx: SqlQueries = this.db): Promise<Array<{ id: string; app_id: string; props: string }>> {
    return tx.all(`SELECT id, app_id, props FROM principals WHERE kind = 'managedIdentity' ORDER BY created_at`);
  }

  /** The system-assigned identity of `resourceId`, created on first use. */
  async ensureSystemAssigned(resourceId: string, displayName: string): Promise<Principal & { appId: string }> {
    return this.db.transaction(async (tx) => {
      await lockIdentities(tx);
      const row = (await this.systemAssignedRows(tx)).find((r) => systemAssignedTo(r.props, resourceId));
      if (row) return { kind: 'managedIdentity', id: row.id, appId: row.app_id, displayName };
      const id = randomUUID();
      const appId = randomUUID();
      await tx.run('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)',
        [id, 'managedIdentity', displayName, appId, nowIso(), JSON.stringify({ systemAssignedFor: resourceId } satisfies Props)]);
      return { kind: 'managedIdentity', id, appId, displayName };
    });
  }

  /** A system-assigned identity by principal (object) id or client (app) id, with the resource it belongs to. */
  async findSystemAssigned(ref: string): Promise<{ principalId: string; clientId: string; displayName: string; resourceId: string } | undefined> {
    const row = await this.db.get<{ id: string; app_id: string; display_name: string; props: string }>(
      `SELECT id, app_id, display_name, props FROM principals WHERE kind = 'managedIdentity' AND (id = ? OR app_id = ?)`, [ref.toLowerCase(), ref.toLowerCase()]);
    const resourceId = row && (JSON.parse(row.props) as Props).systemAssignedFor;
    if (!row || typeof resourceId !== 'string') return undefined;
    return { principalId: row.id, clientId: row.app_id, displayName: row.display_name, resourceId };
  }

  async deleteSystemAssigned(resourceId: string): Promise<void> {
    const row = (await this.systemAssignedRows()).find((r) => systemAssignedTo(r.props, resourceId));
    if (row) await this.deletePrincipal(row.id);
  }
}
