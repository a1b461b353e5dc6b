// Vault resources (Microsoft.KeyVault/vaults): create, update, delete; each vault has its own loopback
// port (its vaultUri) and its own data key, wrapped under the key-encryption key (envelope encryption).
import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../storage/sqlite.js';
import { nowIso } from '../storage/sqlite.js';
import { Sealer } from '../storage/sealer.js';
import { conflict, invalid, resourceNotFound } from '../platform/errors.js';
import type { ResourceGroups } from '../resources/groups.js';
import { checkVaultName } from './names.js';

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
}

const toRecord = (r: Row): VaultRecord => ({
  id: r.id, subscription: r.subscription, resourceGroup: r.resource_group, name: r.name, location: r.location,
  sku: r.sku as VaultSku, port: r.port, tags: JSON.parse(r.tags) as Record<string, string>, createdAt: r.created_at,
  enableRbacAuthorization: r.rbac !== 0, accessPolicies: JSON.parse(r.access_policies) as AccessPolicy[],
});

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
  constructor(private readonly db: Db, private readonly subscriptionId: string, private readonly groups: ResourceGroups,
    private readonly kek: Sealer, private readonly allocatePort: () => Promise<number>,
    private readonly uriFor: (v: Pick<VaultRecord, 'name' | 'port'>) => string) {}

  onChange(l: VaultEvents): void {
    this.listeners.push(l);
  }

  /** The vault's data-plane base URL, with a trailing slash (as Azure's vaultUri). */
  vaultUri(v: VaultRecord): string {
    return this.uriFor(v);
  }

  list(resourceGroup?: string): VaultRecord[] {
    const rows = resourceGroup
      ? this.db.prepare('SELECT * FROM vaults WHERE subscription = ? AND lower(resource_group) = lower(?) ORDER BY name_lower').all(this.subscriptionId, resourceGroup)
      : this.db.prepare('SELECT * FROM vaults WHERE subscription = ? ORDER BY name_lower').all(this.subscriptionId);
    return (rows as Row[]).map(toRecord);
  }

  byPort(port: number): VaultRecord | undefined {
    const r = this.db.prepare('SELECT * FROM vaults WHERE port = ?').get(port) as Row | undefined;
    return r && toRecord(r);
  }

  byName(name: string): VaultRecord | undefined {
    const r = this.db.prepare('SELECT * FROM vaults WHERE name_lower = ?').get(name.toLowerCase()) as Row | undefined;
    return r && toRecord(r);
  }

  get(resourceGroup: string, name: string): VaultRecord {
    this.groups.get(resourceGroup);
    const r = this.db.prepare('SELECT * FROM vaults WHERE subscription = ? AND lower(resource_group) = lower(?) AND name_lower = ?')
      .get(this.subscriptionId, resourceGroup, name.toLowerCase()) as Row | undefined;
    if (!r) throw resourceNotFound(VAULT_TYPE, name, resourceGroup);
    return toRecord(r);
  }

  nameAvailable(name: string): { nameAvailable: boolean; reason?: string; message?: string } {
    try {
      checkVaultName(name);
    } catch (e) {
      return { nameAvailable: false, reason: 'AccountNameInvalid', message: (e as Error).message };
    }
    if (this.byName(name)) return { nameAvailable: false, reason: 'AlreadyExists', message: `The vault name '${name}' is already in use.` };
    return { nameAvailable: true };
  }

  async createOrUpdate(resourceGroup: string, name: string, input: { location?: string; sku?: VaultSku; tags?: Record<string, string>;
    enableRbacAuthorization?: boolean; accessPolicies?: AccessPolicy[] }): Promise<{ vault: VaultRecord; created: boolean }> {
    const group = this.groups.get(resourceGroup)!;
    checkVaultName(name);
    const existing = this.byName(name);
    if (existing) {
      if (existing.resourceGroup.toLowerCase() !== group.name.toLowerCase() || existing.subscription !== this.subscriptionId) {
        throw conflict('VaultAlreadyExists', `The vault name '${name}' is already in use. Vault names are globally unique so it is possible that the name is already taken.`);
      }
      this.db.prepare('UPDATE vaults SET sku = ?, tags = ?, rbac = ?, access_policies = ? WHERE id = ?').run(input.sku ?? existing.sku, JSON.stringify(input.tags ?? existing.tags),
        (input.enableRbacAuthorization ?? existing.enableRbacAuthorization) ? 1 : 0, JSON.stringify(input.accessPolicies ?? existing.accessPolicies), existing.id);
      return { vault: this.get(resourceGroup, name), created: false };
    }
    const port = await this.allocatePort();
    const rec: VaultRecord = {
      id: randomUUID(), subscription: this.subscriptionId, resourceGroup: group.name, name,
      location: (input.location ?? group.location).toLowerCase().replace(/\s+/g, ''), sku: input.sku ?? 'standard',
      port, tags: input.tags ?? {}, createdAt: nowIso(),
      enableRbacAuthorization: input.enableRbacAuthorization ?? true, accessPolicies: input.accessPolicies ?? [],
    };
    const wrapped = this.kek.seal(randomBytes(32).toString('base64'), `vault-key:${rec.id}`);
    this.db.prepare(`INSERT INTO vaults (id, subscription, resource_group, name, name_lower, location, sku, port, tags, wrapped_key, created_at, rbac, access_policies)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(rec.id, rec.subscription, rec.resourceGroup, rec.name, name.toLowerCase(),
      rec.location, rec.sku, rec.port, JSON.stringify(rec.tags), wrapped, rec.createdAt, rec.enableRbacAuthorization ? 1 : 0, JSON.stringify(rec.accessPolicies));
    for (const l of this.listeners) await l.opened?.(rec);
    return { vault: rec, created: true };
  }

  /** Changes the access policies the way `PUT .../accessPolicies/{add|replace|remove}` does. */
  updateAccessPolicies(resourceGroup: string, name: string, kind: 'add' | 'replace' | 'remove', entries: AccessPolicy[]): VaultRecord {
    const v = this.get(resourceGroup, name);
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
    this.db.prepare('UPDATE vaults SET access_policies = ? WHERE id = ?').run(JSON.stringify(next), v.id);
    return this.get(resourceGroup, name);
  }

  /** Deletes the vault with all its secrets (Berth keeps no soft-deleted vaults). */
  async delete(resourceGroup: string, name: string): Promise<VaultRecord> {
    const v = this.get(resourceGroup, name);
    this.db.prepare('DELETE FROM vaults WHERE id = ?').run(v.id);
    this.dataKeys.delete(v.id);
    for (const l of this.listeners) await l.closed?.(v);
    return v;
  }

  /** The vault's data key, unwrapped with the KEK (kept in memory; KEK rotation does not change it). */
  dataKey(vaultId: string): Sealer {
    let k = this.dataKeys.get(vaultId);
    if (!k) {
      const r = this.db.prepare('SELECT wrapped_key FROM vaults WHERE id = ?').get(vaultId) as { wrapped_key: string } | undefined;
      if (!r) throw new Error(`vault ${vaultId} does not exist`);
      k = Sealer.fromKey(Buffer.from(this.kek.open(r.wrapped_key, `vault-key:${vaultId}`), 'base64'));
      this.dataKeys.set(vaultId, k);
    }
    return k;
  }
}
