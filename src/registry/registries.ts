// Registry resources (Microsoft.ContainerRegistry/registries): create, update, delete, admin user.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../storage/sqlite.js';
import { nowIso, statementCache } from '../storage/sqlite.js';
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
  private readonly q: ReturnType<typeof statementCache>;

  constructor(private readonly db: Db, private readonly subscriptionId: string, private readonly groups: ResourceGroups,
    private readonly sealer: Sealer, private readonly allocatePort: () => Promise<number>,
    private readonly loginHost: string) {
    this.q = statementCache(db);
  }

  onChange(l: RegistryEvents): void {
    this.listeners.push(l);
  }

  loginServer(r: RegistryRecord): string {
    return `${this.loginHost}:${r.port}`;
  }

  list(resourceGroup?: string): RegistryRecord[] {
    const rows = resourceGroup
      ? this.q('SELECT * FROM registries WHERE subscription = ? AND lower(resource_group) = lower(?) ORDER BY name_lower').all(this.subscriptionId, resourceGroup)
      : this.q('SELECT * FROM registries WHERE subscription = ? ORDER BY name_lower').all(this.subscriptionId);
    return (rows as Row[]).map(toRecord);
  }

  byPort(port: number): RegistryRecord | undefined {
    const r = this.q('SELECT * FROM registries WHERE port = ?').get(port) as Row | undefined;
    return r && toRecord(r);
  }

  byId(id: string): RegistryRecord | undefined {
    const r = this.q('SELECT * FROM registries WHERE id = ?').get(id) as Row | undefined;
    return r && toRecord(r);
  }

  byName(name: string): RegistryRecord | undefined {
    const r = this.q('SELECT * FROM registries WHERE name_lower = ?').get(name.toLowerCase()) as Row | undefined;
    return r && toRecord(r);
  }

  get(resourceGroup: string, name: string): RegistryRecord {
    this.groups.get(resourceGroup);
    const r = this.q('SELECT * FROM registries WHERE subscription = ? AND lower(resource_group) = lower(?) AND name_lower = ?')
      .get(this.subscriptionId, resourceGroup, name.toLowerCase()) as Row | undefined;
    if (!r) throw resourceNotFound('Microsoft.ContainerRegistry/registries', name, resourceGroup);
    return toRecord(r);
  }

  nameAvailable(name: string): { nameAvailable: boolean; reason?: string; message?: string } {
    try {
      checkRegistryName(name);
    } catch (e) {
      return { nameAvailable: false, reason: 'Invalid', message: (e as Error).message };
    }
    if (this.byName(name)) return { nameAvailable: false, reason: 'AlreadyExists', message: `The registry ${name} is already in use.` };
    return { nameAvailable: true };
  }

  async createOrUpdate(resourceGroup: string, name: string, input: { location?: string; sku: Sku; adminUserEnabled?: boolean; tags?: Record<string, string> }): Promise<{ registry: RegistryRecord; created: boolean }> {
    const group = this.groups.get(resourceGroup)!;
    checkRegistryName(name);
    const existing = this.byName(name);
    if (existing) {
      if (existing.resourceGroup.toLowerCase() !== group.name.toLowerCase()) {
        throw conflict('AlreadyInUse', `The registry DNS name ${name.toLowerCase()} is already in use. You can check if the name is already claimed using following API: /providers/Microsoft.ContainerRegistry/checkNameAvailability`);
      }
      const updated = this.update(resourceGroup, name, { sku: input.sku, ...(input.adminUserEnabled !== undefined ? { adminUserEnabled: input.adminUserEnabled } : {}), ...(input.tags ? { tags: input.tags } : {}) });
      return { registry: updated, created: false };
    }
    const port = await this.allocatePort();
    const rec: RegistryRecord = {
      id: randomUUID(), subscription: this.subscriptionId, resourceGroup: group.name, name,
      location: (input.location ?? group.location).toLowerCase().replace(/\s+/g, ''), sku: input.sku,
      adminUserEnabled: input.adminUserEnabled ?? false, port, tags: input.tags ?? {}, createdAt: nowIso(),
    };
    this.db.transaction(() => {
      this.q(`INSERT INTO registries (id, subscription, resource_group, name, name_lower, location, sku, admin_enabled, port, tags, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(rec.id, rec.subscription, rec.resourceGroup, rec.name, name.toLowerCase(),
        rec.location, rec.sku, rec.adminUserEnabled ? 1 : 0, rec.port, JSON.stringify(rec.tags), rec.createdAt);
      for (const p of PASSWORD_NAMES) this.storePassword(rec.id, p);
    })();
    for (const l of this.listeners) await l.opened?.(rec);
    return { registry: rec, created: true };
  }

  update(resourceGroup: string, name: string, patch: { sku?: Sku; adminUserEnabled?: boolean; tags?: Record<string, string> }): RegistryRecord {
    const r = this.get(resourceGroup, name);
    this.q('UPDATE registries SET sku = ?, admin_enabled = ?, tags = ? WHERE id = ?').run(
      patch.sku ?? r.sku, (patch.adminUserEnabled ?? r.adminUserEnabled) ? 1 : 0, JSON.stringify(patch.tags ?? r.tags), r.id);
    return this.get(resourceGroup, name);
  }

  async delete(resourceGroup: string, name: string): Promise<RegistryRecord> {
    const r = this.get(resourceGroup, name);
    this.q('DELETE FROM registries WHERE id = ?').run(r.id);
    for (const l of this.listeners) await l.closed?.(r);
    return r;
  }

  private storePassword(registryId: string, name: PasswordName): void {
    const value = randomBytes(39).toString('base64');
    this.q(`INSERT INTO registry_passwords (registry_id, name, sealed, created_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (registry_id, name) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at`)
      .run(registryId, name, this.sealer.seal(value, `registry:${registryId}:${name}`), nowIso());
  }

  /** listCredentials: the admin user's name and both passwords. Refused while the admin user is disabled. */
  credentials(resourceGroup: string, name: string): { username: string; passwords: Array<{ name: PasswordName; value: string }> } {
    const r = this.get(resourceGroup, name);
    if (!r.adminUserEnabled) {
      throw invalid('AdminUserDisabled', `Admin user is disabled. Enable it with 'berth acr update -n ${r.name} --admin-enabled true'.`);
    }
    return { username: r.name, passwords: this.passwords(r.id) };
  }

  regenerate(resourceGroup: string, name: string, which: string) {
    if (!PASSWORD_NAMES.includes(which as PasswordName)) {
      throw invalid('InvalidPasswordName', `Password name '${which}' is not valid: use 'password' or 'password2'.`);
    }
    const r = this.get(resourceGroup, name);
    if (!r.adminUserEnabled) {
      throw invalid('AdminUserDisabled', `Admin user is disabled. Enable it with 'berth acr update -n ${r.name} --admin-enabled true'.`);
    }
    this.storePassword(r.id, which as PasswordName);
    return this.credentials(resourceGroup, name);
  }

  private passwords(registryId: string): Array<{ name: PasswordName; value: string }> {
    const rows = this.q('SELECT name, sealed FROM registry_passwords WHERE registry_id = ? ORDER BY name').all(registryId) as
      Array<{ name: PasswordName; sealed: string }>;
    return rows.map((p) => ({ name: p.name, value: this.sealer.open(p.sealed, `registry:${registryId}:${p.name}`) }));
  }

  /** Checks an admin-user login: enabled, name matches (case-insensitive), either password matches. */
  checkAdmin(r: RegistryRecord, username: string, password: string): 'ok' | 'disabled' | 'bad' {
    if (username.toLowerCase() !== r.name.toLowerCase()) return 'bad';
    let ok = false;
    for (const p of this.passwords(r.id)) ok = safeEqual(p.value, password) || ok;
    if (!ok) return 'bad';
    return r.adminUserEnabled ? 'ok' : 'disabled';
  }
}
