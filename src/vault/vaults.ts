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
}

interface Row {
  id: string; subscription: string; resource_group: string; name: string; location: string; sku: string;
  port: number; tags: string; wrapped_key: string; created_at: string;
}

const toRecord = (r: Row): VaultRecord => ({
  id: r.id, subscription: r.subscription, resourceGroup: r.resource_group, name: r.name, location: r.location,
  sku: r.sku as VaultSku, port: r.port, tags: JSON.parse(r.tags) as Record<string, string>, createdAt: r.created_at,
});

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

  /** `vaultUri(port)` is the one place the data plane's scheme and host come from. */
  constructor(private readonly db: Db, private readonly subscriptionId: string, private readonly groups: ResourceGroups,
    private readonly kek: Sealer, private readonly allocatePort: () => Promise<number>,
    private readonly uriForPort: (port: number) => string) {}

  onChange(l: VaultEvents): void {
    this.listeners.push(l);
  }

  /** The vault's data-plane base URL, with a trailing slash (as Azure's vaultUri). */
  vaultUri(v: VaultRecord): string {
    return this.uriForPort(v.port);
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

  async createOrUpdate(resourceGroup: string, name: string, input: { location?: string; sku?: VaultSku; tags?: Record<string, string> }): Promise<{ vault: VaultRecord; created: boolean }> {
    const group = this.groups.get(resourceGroup)!;
    checkVaultName(name);
    const existing = this.byName(name);
    if (existing) {
      if (existing.resourceGroup.toLowerCase() !== group.name.toLowerCase() || existing.subscription !== this.subscriptionId) {
        throw conflict('VaultAlreadyExists', `The vault name '${name}' is already in use. Vault names are globally unique so it is possible that the name is already taken.`);
      }
      this.db.prepare('UPDATE vaults SET sku = ?, tags = ? WHERE id = ?').run(input.sku ?? existing.sku, JSON.stringify(input.tags ?? existing.tags), existing.id);
      return { vault: this.get(resourceGroup, name), created: false };
    }
    const port = await this.allocatePort();
    const rec: VaultRecord = {
      id: randomUUID(), subscription: this.subscriptionId, resourceGroup: group.name, name,
      location: (input.location ?? group.location).toLowerCase().replace(/\s+/g, ''), sku: input.sku ?? 'standard',
      port, tags: input.tags ?? {}, createdAt: nowIso(),
    };
    const wrapped = this.kek.seal(randomBytes(32).toString('base64'), `vault-key:${rec.id}`);
    this.db.prepare(`INSERT INTO vaults (id, subscription, resource_group, name, name_lower, location, sku, port, tags, wrapped_key, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(rec.id, rec.subscription, rec.resourceGroup, rec.name, name.toLowerCase(),
      rec.location, rec.sku, rec.port, JSON.stringify(rec.tags), wrapped, rec.createdAt);
    for (const l of this.listeners) await l.opened?.(rec);
    return { vault: rec, created: true };
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
