// Vault resources (Microsoft.KeyVault/vaults): create, update, delete; each vault has its own loopback
// port (its vaultUri) and its own data key, wrapped under the key-encryption key (envelope encryption).
import { randomBytes, randomUUID } from 'node:crypto';
import { Sealer } from '../storage/sealer.js';
import type { Sql } from '../storage/sql/sql.js';
import { conflict, invalid, notFound, resourceNotFound } from '../lib/errors.js';
import type { ResourceGroups } from '../resources/groups.js';
import { checkVaultName } from './names.js';
import { nowIso } from '../lib/time.js';

export const VAULT_TYPE = 'Microsoft.KeyVault/vaults';
/**
 * The DNS suffix under which every vault is also reached by name on Berth's main port
 * (`https://<vault>.vault.localhost:<port>/`), as az builds a vault's URL from `--vault-name` and the
 * cloud's keyvault suffix. Names under `.localhost` resolve to loopback through nss-myhostname.
 */
export const VAULT_DNS_SUFFIX = 'vault.localhost';

/** A vault's host name under VAULT_DNS_SUFFIX (the inverse of vaultNameFromHost). */
export function vaultHostName(name: string): string {
  return `${name.toLowerCase()}.${VAULT_DNS_SUFFIX}`;
}

/** The vault name a request's Host header addresses under VAULT_DNS_SUFFIX, if it does. */
export function vaultNameFromHost(host: string | undefined): string | undefined {
  const m = /^([a-z0-9-]{1,64})\.vault\.localhost(?::\d+)?$/i.exec(host ?? '');
  return m?.[1]?.toLowerCase();
}
export type VaultSku = 'standard' | 'premium';

export interface VaultRecord {
  id: string;
  subscription: string;
  resourceGroup: string;
  name: string;
  location: string;
  sku: VaultSku;
  port: number;
  tags: Record<string, string>;
  createdAt: string;
  /** Data-plane access by role assignments (true) or by the vault's access policies (false), as Azure's enableRbacAuthorization. */
  enableRbacAuthorization: boolean;
  accessPolicies: AccessPolicy[];
  /** How long a deleted vault is kept, recoverable, before it is purged (7-90, Azure's softDeleteRetentionInDays). */
  softDeleteRetentionInDays: number;
  /** A deleted vault cannot be purged before its scheduled purge date (irreversible once set). */
  enablePurgeProtection: boolean;
}

/** A soft-deleted vault: kept with its secrets until `scheduledPurgeDate`, then purged. */
export interface DeletedVaultRecord extends VaultRecord {
  deletionDate: string;
  scheduledPurgeDate: string;
}

/** Secret permissions of an access policy, as Azure names them. */
export const SECRET_PERMISSIONS = ['get', 'list', 'set', 'delete', 'recover', 'backup', 'restore', 'purge'] as const;
export type SecretPermission = typeof SECRET_PERMISSIONS[number];
/** The kinds of permission an access policy entry lists. */
export const POLICY_KINDS = ['keys', 'secrets', 'certificates', 'storage'] as const;

/** One entry of a vault's access policies (Azure's AccessPolicyEntry); keys, certificates and storage are kept as given. */
export interface AccessPolicy {
  tenantId: string;
  objectId: string;
  applicationId?: string | null;
  permissions: { keys?: string[]; secrets?: string[]; certificates?: string[]; storage?: string[] };
}

interface Row {
  id: string; subscription: string; resource_group: string; name: string; location: string; sku: string;
  port: number; tags: string; wrapped_key: string; created_at: string; rbac: number; access_policies: string;
  retention_days: number; purge_protection: number; deleted_at: string | null; purge_at: string | null;
}

const toRecord = (r: Row): VaultRecord => ({
  id: r.id, subscription: r.subscription, resourceGroup: r.resource_group, name: r.name, location: r.location,
  sku: r.sku as VaultSku, port: r.port, tags: JSON.parse(r.tags) as Record<string, string>, createdAt: r.created_at,
  enableRbacAuthorization: r.rbac !== 0, accessPolicies: JSON.parse(r.access_policies) as AccessPolicy[],
  softDeleteRetentionInDays: r.retention_days, enablePurgeProtection: r.purge_protection !== 0,
});
const toDeleted = (r: Row): DeletedVaultRecord => ({ ...toRecord(r), deletionDate: r.deleted_at!, scheduledPurgeDate: r.purge_at! });

const DAY_MS = 86_400_000;
const SOFT_DELETE_LINK = 'https://go.microsoft.com/fwlink/?linkid=2149745';
/** Active vaults only: a deleted vault keeps its row (and its name) until it is purged. */
const ACTIVE = 'deleted_at IS NULL';

export function checkRetentionDays(n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 7 || n > 90) {
    throw invalid('BadRequest', `properties.softDeleteRetentionInDays must be a whole number of days from 7 to 90, not ${JSON.stringify(n)}.`);
  }
  return n;
}

/**
 * Checks and normalises access policy entries: an objectId and tenantId each, permission names known
 * to Azure (any case; 'all' stands for every one), stored lower-case.
 */
export function normaliseAccessPolicies(input: unknown, tenantId: string): AccessPolicy[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) throw invalid('BadRequest', 'properties.accessPolicies must be an array of access policy entries.');
  return input.map((raw, i) => {
    const e = (raw ?? {}) as { tenantId?: unknown; objectId?: unknown; applicationId?: unknown; permissions?: Record<string, unknown> };
    if (typeof e.objectId !== 'string' || !e.objectId) throw invalid('BadRequest', `properties.accessPolicies[${i}].objectId is required: the object id of the user, service principal or managed identity.`);
    if (e.tenantId !== undefined && typeof e.tenantId === 'string' && e.tenantId.toLowerCase() !== tenantId) {
      throw invalid('BadRequest', `properties.accessPolicies[${i}].tenantId '${e.tenantId}' is not this server's tenant (${tenantId}).`);
    }
    const perms = (e.permissions ?? {}) as Record<string, unknown>;
    const list = (k: string): string[] | undefined => {
      const v = perms[k];
      if (v === undefined || v === null) return undefined;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid('BadRequest', `properties.accessPolicies[${i}].permissions.${k} must be an array of permission names.`);
      return (v as string[]).map((x) => x.toLowerCase());
    };
    const secrets = list('secrets');
    const bad = secrets?.find((x) => x !== 'all' && !(SECRET_PERMISSIONS as readonly string[]).includes(x));
    if (bad) throw invalid('BadRequest', `properties.accessPolicies[${i}].permissions.secrets has '${bad}', which is not a secret permission: use ${SECRET_PERMISSIONS.join(', ')} or all.`);
    const out: AccessPolicy = { tenantId, objectId: e.objectId.toLowerCase(), permissions: {} };
    if (typeof e.applicationId === 'string' && e.applicationId) out.applicationId = e.applicationId.toLowerCase();
    for (const k of POLICY_KINDS) {
      const v = k === 'secrets' ? secrets : list(k);
      if (v) out.permissions[k] = v;
    }
    return out;
  });
}

/** Whether the access policies give `objectId` the secret permission `perm`. */
export function policiesAllow(policies: AccessPolicy[], objectId: string, perm: SecretPermission): boolean {
  const id = objectId.toLowerCase();
  return policies.some((p) => p.objectId === id && !p.applicationId && (p.permissions.secrets ?? []).some((x) => x === perm || x === 'all'));
}

export function vaultArmId(v: Pick<VaultRecord, 'subscription' | 'resourceGroup' | 'name'>): string {
  return `/subscriptions/${v.subscription}/resourceGroups/${v.resourceGroup}/providers/${VAULT_TYPE}/${v.name}`;
}

export function parseVaultSku(s: string): VaultSku {
  const m = ['standard', 'premium'].find((k) => k === s.toLowerCase());
  if (!m) throw invalid('InvalidSku', `SKU '${s}' is not valid: use standard or premium.`);
  return m as VaultSku;
}

export interface VaultEvents {
  opened?(v: VaultRecord): Promise<void>;
  closed?(v: VaultRecord): Promise<void>;
}

export class Vaults {
  private readonly listeners: VaultEvents[] = [];
  private readonly dataKeys = new Map<string, Sealer>();

  /** `uriFor(vault)` is the one place the data plane's scheme and host come from. */
  constructor(private readonly db: Sql, private readonly subscriptionId: string, private readonly groups: ResourceGroups,
    private readonly kek: Sealer, private readonly allocatePort: () => Promise<number>,
    private readonly uriFor: (v: Pick<VaultRecord, 'name' | 'port'>) => string) {}

  onChange(l: VaultEvents): void {
    this.listeners.push(l);
  }

  /** The vault's data-plane base URL, with a trailing slash (as Azure's vaultUri). */
  vaultUri(v: VaultRecord): string {
    return this.uriFor(v);
  }

  async list(resourceGroup?: string): Promise<VaultRecord[]> {
    const rows = resourceGroup
      ? await this.db.all<Row>(`SELECT * FROM vaults WHERE subscription = ? AND lower(resource_group) = lower(?) AND ${ACTIVE} ORDER BY name_lower`, [this.subscriptionId, resourceGroup])
      : await this.db.all<Row>(`SELECT * FROM vaults WHERE subscription = ? AND ${ACTIVE} ORDER BY name_lower`, [this.subscriptionId]);
    return rows.map(toRecord);
  }

  async byPort(port: number): Promise<VaultRecord | undefined> {
    const r = await this.db.get<Row>(`SELECT * FROM vaults WHERE port = ? AND ${ACTIVE}`, [port]);
    return r && toRecord(r);
  }

  async byName(name: string): Promise<VaultRecord | undefined> {
    const r = await this.db.get<Row>(`SELECT * FROM vaults WHERE name_lower = ? AND ${ACTIVE}`, [name.toLowerCase()]);
    return r && toRecord(r);
  }

  /** Deleted vaults whose scheduled purge date has passed are purged (on every look at deleted vaults). */
  private async purgeExpired(): Promise<void> {
    const due = await this.db.all<{ id: string }>('SELECT id FROM vaults WHERE deleted_at IS NOT NULL AND purge_at <= ?', [nowIso()]);
    for (const { id } of due) await this.erase(id);
  }

  /** Removes a vault row with its secrets for good (Sql.eraseForGood: no sealed value stays in SQLite's files). */
  private async erase(id: string): Promise<void> {
    await this.db.eraseForGood('DELETE FROM vaults WHERE id = ?', [id]);
    this.dataKeys.delete(id);
  }

  async listDeleted(): Promise<DeletedVaultRecord[]> {
    await this.purgeExpired();
    return (await this.db.all<Row>('SELECT * FROM vaults WHERE subscription = ? AND deleted_at IS NOT NULL ORDER BY name_lower', [this.subscriptionId])).map(toDeleted);
  }

  /** The deleted vault `name` in `location` (any location when undefined). */
  async getDeleted(name: string, location?: string): Promise<DeletedVaultRecord> {
    await this.purgeExpired();
    const r = await this.db.get<Row>('SELECT * FROM vaults WHERE subscription = ? AND name_lower = ? AND deleted_at IS NOT NULL', [this.subscriptionId, name.toLowerCase()]);
    if (!r || (location !== undefined && r.location !== location.toLowerCase().replace(/\s+/g, ''))) {
      throw notFound('ResourceNotFound', `The deleted vault '${name}'${location ? ` in location '${location}'` : ''} was not found. berth keyvault list-deleted shows the deleted vaults.`);
    }
    return toDeleted(r);
  }

  /** Purges a deleted vault and its secrets now; refused while purge protection holds it. */
  async purge(name: string, location: string): Promise<DeletedVaultRecord> {
    const v = await this.getDeleted(name, location);
    if (v.enablePurgeProtection && Date.parse(v.scheduledPurgeDate) > Date.now()) {
      throw conflict('Conflict', `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed (${v.scheduledPurgeDate}); until then it can be recovered (berth keyvault recover -n ${v.name}).`);
    }
    await this.erase(v.id);
    return v;
  }

  /** Brings a deleted vault back (createMode: recover), with its secrets, port and URI. */
  async recover(resourceGroup: string, name: string, location?: string): Promise<VaultRecord> {
    const group = await this.groups.get(resourceGroup);
    await this.purgeExpired();
    const r = await this.db.get<Row>('SELECT * FROM vaults WHERE subscription = ? AND name_lower = ? AND deleted_at IS NOT NULL', [this.subscriptionId, name.toLowerCase()]);
    if (!r || r.resource_group.toLowerCase() !== group.name.toLowerCase() || (location && r.location !== location.toLowerCase().replace(/\s+/g, ''))) {
      throw notFound('SoftDeletedVaultDoesNotExist', `No deleted vault '${name}' exists in resource group '${resourceGroup}'${location ? ` and location '${location}'` : ''} to recover. berth keyvault list-deleted shows the deleted vaults (properties.vaultId names their group). ${SOFT_DELETE_LINK}`);
    }
    await this.db.run('UPDATE vaults SET deleted_at = NULL, purge_at = NULL WHERE id = ?', [r.id]);
    const v = await this.get(resourceGroup, name);
    for (const l of this.listeners) await l.opened?.(v);
    return v;
  }

  async get(resourceGroup: string, name: string): Promise<VaultRecord> {
    await this.groups.get(resourceGroup);
    const r = await this.db.get<Row>(`SELECT * FROM vaults WHERE subscription = ? AND lower(resource_group) = lower(?) AND name_lower = ? AND ${ACTIVE}`,
      [this.subscriptionId, resourceGroup, name.toLowerCase()]);
    if (!r) throw resourceNotFound(VAULT_TYPE, name, resourceGroup);
    return toRecord(r);
  }

  async nameAvailable(name: string): Promise<{ nameAvailable: boolean; reason?: string; message?: string }> {
    try {
      checkVaultName(name);
    } catch (e) {
      return { nameAvailable: false, reason: 'AccountNameInvalid', message: (e as Error).message };
    }
    if (await this.byName(name)) return { nameAvailable: false, reason: 'AlreadyExists', message: `The vault name '${name}' is already in use.` };
    if (await this.heldByDeleted(name)) return { nameAvailable: false, reason: 'AlreadyExists', message: `The vault name '${name}' is held by a deleted vault: recover or purge it.` };
    return { nameAvailable: true };
  }

  async createOrUpdate(resourceGroup: string, name: string, input: { location?: string; sku?: VaultSku; tags?: Record<string, string>;
    enableRbacAuthorization?: boolean; accessPolicies?: AccessPolicy[]; softDeleteRetentionInDays?: number; enablePurgeProtection?: boolean }): Promise<{ vault: VaultRecord; created: boolean }> {
    const group = await this.groups.get(resourceGroup);
    checkVaultName(name);
    const existing = await this.byName(name);
    if (!existing && await this.heldByDeleted(name)) {
      throw conflict('ConflictError', `A vault with the same name already exists in deleted state. You need to either recover or purge existing key vault. Follow this link ${SOFT_DELETE_LINK} for more information on soft delete.`);
    }
    if (existing && existing.enablePurgeProtection && input.enablePurgeProtection === false) {
      throw invalid('BadRequest', 'The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.');
    }
    if (existing) {
      if (existing.resourceGroup.toLowerCase() !== group.name.toLowerCase() || existing.subscription !== this.subscriptionId) {
        throw conflict('VaultAlreadyExists', `The vault name '${name}' is already in use. Vault names are globally unique so it is possible that the name is already taken.`);
      }
      await this.db.run('UPDATE vaults SET sku = ?, tags = ?, rbac = ?, access_policies = ?, retention_days = ?, purge_protection = ? WHERE id = ?', [input.sku ?? existing.sku, JSON.stringify(input.tags ?? existing.tags),
        (input.enableRbacAuthorization ?? existing.enableRbacAuthorization) ? 1 : 0, JSON.stringify(input.accessPolicies ?? existing.accessPolicies),
        input.softDeleteRetentionInDays ?? existing.softDeleteRetentionInDays, (input.enablePurgeProtection ?? existing.enablePurgeProtection) ? 1 : 0, existing.id]);
      return { vault: await this.get(resourceGroup, name), created: false };
    }
    // A deleted vault keeps its port (its URI comes back on recover): never hand that port out again.
    let port = await this.allocatePort();
    for (let i = 0; i < 20 && (await this.db.get('SELECT 1 AS taken FROM vaults WHERE port = ?', [port])) !== undefined; i++) port = await this.allocatePort();
    const rec: VaultRecord = {
      id: randomUUID(), subscription: this.subscriptionId, resourceGroup: group.name, name,
      location: (input.location ?? group.location).toLowerCase().replace(/\s+/g, ''), sku: input.sku ?? 'standard',
      port, tags: input.tags ?? {}, createdAt: nowIso(),
      enableRbacAuthorization: input.enableRbacAuthorization ?? true, accessPolicies: input.accessPolicies ?? [],
      softDeleteRetentionInDays: input.softDeleteRetentionInDays ?? 90, enablePurgeProtection: input.enablePurgeProtection ?? false,
    };
    const wrapped = this.kek.seal(randomBytes(32).toString('base64'), `vault-key:${rec.id}`);
    await this.db.run(`INSERT INTO vaults (id, subscription, resource_group, name, name_lower, location, sku, port, tags, wrapped_key, created_at, rbac, access_policies, retention_days, purge_protection)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [rec.id, rec.subscription, rec.resourceGroup, rec.name, name.toLowerCase(),
      rec.location, rec.sku, rec.port, JSON.stringify(rec.tags), wrapped, rec.createdAt, rec.enableRbacAuthorization ? 1 : 0, JSON.stringify(rec.accessPolicies),
      rec.softDeleteRetentionInDays, rec.enablePurgeProtection ? 1 : 0]);
    for (const l of this.listeners) await l.opened?.(rec);
    return { vault: rec, created: true };
  }

  /** Changes the access policies the way `PUT .../accessPolicies/{add|replace|remove}` does. */
  async updateAccessPolicies(resourceGroup: string, name: string, kind: 'add' | 'replace' | 'remove', entries: AccessPolicy[]): Promise<VaultRecord> {
    const v = await this.get(resourceGroup, name);
    let next = [...v.accessPolicies];
    for (const e of entries) {
      const i = next.findIndex((p) => p.objectId === e.objectId && (p.applicationId ?? null) === (e.applicationId ?? null));
      const cur = i >= 0 ? next[i]! : undefined;
      if (kind === 'replace') {
        if (cur) next[i] = e; else next.push(e);
      } else if (kind === 'add') {
        if (!cur) { next.push(e); continue; }
        const merged: AccessPolicy = { ...cur, permissions: { ...cur.permissions } };
        for (const k of POLICY_KINDS) {
          const add = e.permissions[k];
          if (add) merged.permissions[k] = [...new Set([...(cur.permissions[k] ?? []), ...add])];
        }
        next[i] = merged;
      } else if (cur) {
        const left: AccessPolicy = { ...cur, permissions: { ...cur.permissions } };
        for (const k of POLICY_KINDS) {
          const rm = e.permissions[k];
          if (rm) left.permissions[k] = (cur.permissions[k] ?? []).filter((x) => !rm.includes(x));
        }
        const empty = Object.values(left.permissions).every((x) => !x || x.length === 0);
        const whole = Object.values(e.permissions).every((x) => !x || x.length === 0);
        next = whole || empty ? next.filter((_, j) => j !== i) : next.map((p, j) => (j === i ? left : p));
      }
    }
    await this.db.run('UPDATE vaults SET access_policies = ? WHERE id = ?', [JSON.stringify(next), v.id]);
    return this.get(resourceGroup, name);
  }

  /** Whether a deleted vault (not yet purged) holds this name. */
  private async heldByDeleted(name: string): Promise<boolean> {
    await this.purgeExpired();
    return (await this.db.get('SELECT 1 AS held FROM vaults WHERE name_lower = ? AND deleted_at IS NOT NULL', [name.toLowerCase()])) !== undefined;
  }

  /** Soft-deletes the vault: it stops answering and is kept, with its secrets, for its retention days. */
  async delete(resourceGroup: string, name: string): Promise<VaultRecord> {
    const v = await this.get(resourceGroup, name);
    const now = new Date();
    await this.db.run('UPDATE vaults SET deleted_at = ?, purge_at = ? WHERE id = ?', [now.toISOString(), new Date(now.getTime() + v.softDeleteRetentionInDays * DAY_MS).toISOString(), v.id]);
    this.dataKeys.delete(v.id);
    for (const l of this.listeners) await l.closed?.(v);
    return v;
  }

  /** The vault's data key, unwrapped with the KEK (kept in memory; KEK rotation does not change it). */
  async dataKey(vaultId: string): Promise<Sealer> {
    let k = this.dataKeys.get(vaultId);
    if (!k) {
      const r = await this.db.get<{ wrapped_key: string }>('SELECT wrapped_key FROM vaults WHERE id = ?', [vaultId]);
      if (!r) throw new Error(`vault ${vaultId} does not exist`);
      k = Sealer.fromKey(Buffer.from(this.kek.open(r.wrapped_key, `vault-key:${vaultId}`), 'base64'));
      this.dataKeys.set(vaultId, k);
    }
    return k;
  }
}
