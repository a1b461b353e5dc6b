// Registry resources (Microsoft.ContainerRegistry/registries): create, update, delete, admin user.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Sql, SqlQueries } from '../storage/sql/sql.js';
import { nowIso } from '../lib/time.js';
import type { Sealer } from '../storage/sealer.js';
import { conflict, invalid, resourceNotFound } from '../lib/errors.js';
import type { ResourceGroups } from '../resources/groups.js';
import { safeEqual } from '../identity/secrets.js';

export type Sku = 'Basic' | 'Standard' | 'Premium';
export const PASSWORD_NAMES = ['password', 'password2'] as const;
export type PasswordName = (typeof PASSWORD_NAMES)[number];

export interface RegistryRecord {
  id: string;
  subscription: string;
  resourceGroup: string;
  name: string;
  location: string;
  sku: Sku;
  adminUserEnabled: boolean;
  port: number;
  tags: Record<string, string>;
  createdAt: string;
}

interface Row {
  id: string; subscription: string; resource_group: string; name: string; location: string; sku: string;
  admin_enabled: number; port: number; tags: string; created_at: string;
}

interface StoredPassword { registryId: string; name: PasswordName; sealed: string; createdAt: string }

const toRecord = (r: Row): RegistryRecord => ({
  id: r.id, subscription: r.subscription, resourceGroup: r.resource_group, name: r.name, location: r.location,
  sku: r.sku as Sku, adminUserEnabled: r.admin_enabled === 1, port: r.port, tags: JSON.parse(r.tags) as Record<string, string>,
  createdAt: r.created_at,
});

export function armId(r: Pick<RegistryRecord, 'subscription' | 'resourceGroup' | 'name'>): string {
  return `/subscriptions/${r.subscription}/resourceGroups/${r.resourceGroup}/providers/Microsoft.ContainerRegistry/registries/${r.name}`;
}

export function checkRegistryName(name: string): void {
  if (!/^[a-zA-Z0-9]{5,50}$/.test(name)) {
    throw invalid('InvalidRegistryName',
      `Registry name '${name}' is invalid: it must contain 5-50 alphanumeric characters (letters and digits only, no hyphens).`);
  }
}

export function parseSku(s: string): Sku {
  const m = ['Basic', 'Standard', 'Premium'].find((k) => k.toLowerCase() === s.toLowerCase());
  if (!m) throw invalid('InvalidSku', `SKU '${s}' is not valid: use Basic, Standard or Premium.`);
  return m as Sku;
}

export interface RegistryEvents {
  /** A registry needs its login server listening (created, or found at start-up). */
  opened?(r: RegistryRecord): Promise<void>;
  closed?(r: RegistryRecord): Promise<void>;
}

export class Registries {
  private readonly listeners: RegistryEvents[] = [];

  constructor(private readonly db: Sql, private readonly subscriptionId: string, private readonly groups: ResourceGroups,
    private readonly sealer: Sealer, private readonly allocatePort: () => Promise<number>,
    private readonly loginHost: string) {}

  onChange(l: RegistryEvents): void {
    this.listeners.push(l);
  }

  loginServer(r: RegistryRecord): string {
    return `${this.loginHost}:${r.port}`;
  }

  async list(resourceGroup?: string): Promise<RegistryRecord[]> {
    const rows = resourceGroup
      ? await this.db.all<Row>('SELECT * FROM registries WHERE subscription = ? AND lower(resource_group) = lower(?) ORDER BY name_lower', [this.subscriptionId, resourceGroup])
      : await this.db.all<Row>('SELECT * FROM registries WHERE subscription = ? ORDER BY name_lower', [this.subscriptionId]);
    return rows.map(toRecord);
  }

  /** The registry whose login server is `port` (every data-plane request asks: one indexed look-up, no copy kept). */
  async byPort(port: number): Promise<RegistryRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM registries WHERE port = ?', [port]);
    return r && toRecord(r);
  }

  async byId(id: string): Promise<RegistryRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM registries WHERE id = ?', [id]);
    return r && toRecord(r);
  }

  async byName(name: string): Promise<RegistryRecord | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM registries WHERE name_lower = ?', [name.toLowerCase()]);
    return r && toRecord(r);
  }

  async get(resourceGroup: string, name: string): Promise<RegistryRecord> {
    await this.groups.get(resourceGroup);
    const r = await this.db.get<Row>('SELECT * FROM registries WHERE subscription = ? AND lower(resource_group) = lower(?) AND name_lower = ?',
      [this.subscriptionId, resourceGroup, name.toLowerCase()]);
    if (!r) throw resourceNotFound('Microsoft.ContainerRegistry/registries', name, resourceGroup);
    return toRecord(r);
  }

  async nameAvailable(name: string): Promise<{ nameAvailable: boolean; reason?: string; message?: string }> {
    try {
      checkRegistryName(name);
    } catch (e) {
      return { nameAvailable: false, reason: 'Invalid', message: (e as Error).message };
    }
    if (await this.byName(name)) return { nameAvailable: false, reason: 'AlreadyExists', message: `The registry ${name} is already in use.` };
    return { nameAvailable: true };
  }

  async createOrUpdate(resourceGroup: string, name: string, input: { location?: string; sku: Sku; adminUserEnabled?: boolean; tags?: Record<string, string> }): Promise<{ registry: RegistryRecord; created: boolean }> {
    const group = await this.groups.get(resourceGroup);
    checkRegistryName(name);
    const existing = await this.byName(name);
    if (existing) {
      if (existing.resourceGroup.toLowerCase() !== group.name.toLowerCase()) {
        throw conflict('AlreadyInUse', `The registry DNS name ${name.toLowerCase()} is already in use. You can check if the name is already claimed using following API: /providers/Microsoft.ContainerRegistry/checkNameAvailability`);
      }
      const updated = await this.update(resourceGroup, name, { sku: input.sku, ...(input.adminUserEnabled !== undefined ? { adminUserEnabled: input.adminUserEnabled } : {}), ...(input.tags ? { tags: input.tags } : {}) });
      return { registry: updated, created: false };
    }
    const port = await this.allocatePort();
    const rec: RegistryRecord = {
      id: randomUUID(), subscription: this.subscriptionId, resourceGroup: group.name, name,
      location: (input.location ?? group.location).toLowerCase().replace(/\s+/g, ''), sku: input.sku,
      adminUserEnabled: input.adminUserEnabled ?? false, port, tags: input.tags ?? {}, createdAt: nowIso(),
    };
    const passwords = PASSWORD_NAMES.map((p) => this.newPassword(rec.id, p));
    const inserted = await this.db.transaction(async (tx) => {
      const ins = await tx.run(`INSERT INTO registries (id, subscription, resource_group, name, name_lower, location, sku, admin_enabled, port, tags, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name_lower) DO NOTHING`, [rec.id, rec.subscription, rec.resourceGroup, rec.name, name.toLowerCase(),
        rec.location, rec.sku, rec.adminUserEnabled ? 1 : 0, rec.port, JSON.stringify(rec.tags), rec.createdAt]);
      if (ins.changes === 0) return false;
      for (const p of passwords) await this.storePassword(tx, p);
      return true;
    });
    // Another request (or replica) created the name first: this one is an update of it, or refused.
    if (!inserted) return this.createOrUpdate(resourceGroup, name, input);
    for (const l of this.listeners) await l.opened?.(rec);
    return { registry: rec, created: true };
  }

  async update(resourceGroup: string, name: string, patch: { sku?: Sku; adminUserEnabled?: boolean; tags?: Record<string, string> }): Promise<RegistryRecord> {
    const r = await this.get(resourceGroup, name);
    await this.db.run('UPDATE registries SET sku = ?, admin_enabled = ?, tags = ? WHERE id = ?', [
      patch.sku ?? r.sku, (patch.adminUserEnabled ?? r.adminUserEnabled) ? 1 : 0, JSON.stringify(patch.tags ?? r.tags), r.id]);
    return this.get(resourceGroup, name);
  }

  async delete(resourceGroup: string, name: string): Promise<RegistryRecord> {
    const r = await this.get(resourceGroup, name);
    await this.db.run('DELETE FROM registries WHERE id = ?', [r.id]);
    for (const l of this.listeners) await l.closed?.(r);
    return r;
  }

  /** A new admin password, sealed (sealing happens outside the transaction that stores it). */
  private newPassword(registryId: string, name: PasswordName): StoredPassword {
    const value = randomBytes(39).toString('base64');
    return { registryId, name, sealed: this.sealer.seal(value, `registry:${registryId}:${name}`), createdAt: nowIso() };
  }

  private async storePassword(q: SqlQueries, p: StoredPassword): Promise<void> {
    await q.run(`INSERT INTO registry_passwords (registry_id, name, sealed, created_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (registry_id, name) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at`,
    [p.registryId, p.name, p.sealed, p.createdAt]);
  }

  /** listCredentials: the admin user's name and both passwords. Refused while the admin user is disabled. */
  async credentials(resourceGroup: string, name: string): Promise<{ username: string; passwords: Array<{ name: PasswordName; value: string }> }> {
    const r = await this.get(resourceGroup, name);
    if (!r.adminUserEnabled) {
      throw invalid('AdminUserDisabled', `Admin user is disabled. Enable it with 'berth acr update -n ${r.name} --admin-enabled true'.`);
    }
    return { username: r.name, passwords: await this.passwords(r.id) };
  }

  async regenerate(resourceGroup: string, name: string, which: string): Promise<{ username: string; passwords: Array<{ name: PasswordName; value: string }> }> {
    if (!PASSWORD_NAMES.includes(which as PasswordName)) {
      throw invalid('InvalidPasswordName', `Password name '${which}' is not valid: use 'password' or 'password2'.`);
    }
    const r = await this.get(resourceGroup, name);
    if (!r.adminUserEnabled) {
      throw invalid('AdminUserDisabled', `Admin user is disabled. Enable it with 'berth acr update -n ${r.name} --admin-enabled true'.`);
    }
    await this.storePassword(this.db, this.newPassword(r.id, which as PasswordName));
    return this.credentials(resourceGroup, name);
  }

  private async passwords(registryId: string): Promise<Array<{ name: PasswordName; value: string }>> {
    const rows = await this.db.all<{ name: PasswordName; sealed: string }>('SELECT name, sealed FROM registry_passwords WHERE registry_id = ? ORDER BY name', [registryId]);
    return rows.map((p) => ({ name: p.name, value: this.sealer.open(p.sealed, `registry:${registryId}:${p.name}`) }));
  }

  /** Checks an admin-user login: enabled, name matches (case-insensitive), either password matches. */
  async checkAdmin(r: RegistryRecord, username: string, password: string): Promise<'ok' | 'disabled' | 'bad'> {
    if (username.toLowerCase() !== r.name.toLowerCase()) return 'bad';
    let ok = false;
    for (const p of await this.passwords(r.id)) ok = safeEqual(p.value, password) || ok;
    if (!ok) return 'bad';
    return r.adminUserEnabled ? 'ok' : 'disabled';
  }
}
