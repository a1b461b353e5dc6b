// Secrets of a vault, the Key Vault way: every set makes a new version; soft delete keeps a deleted
// secret recoverable for the vault's retention days (then it is purged); values are sealed with the vault's data key.
import { randomUUID } from 'node:crypto';
import type { Sql } from '../storage/sql/sql.js';
import { BerthError, conflict, forbidden, invalid, notFound } from '../lib/errors.js';
import type { Vaults, VaultRecord } from './vaults.js';
import { checkSecretName, isVersionId } from './names.js';

/**
 * A secret's recoveryLevel, as Key Vault names it for its vault: `Recoverable` with the default 90
 * retention days, `CustomizedRecoverable` with fewer; `+Purgeable` unless purge protection is on.
 */
export function recoveryLevel(v: Pick<VaultRecord, 'softDeleteRetentionInDays' | 'enablePurgeProtection'>): string {
  return `${v.softDeleteRetentionInDays < 90 ? 'CustomizedRecoverable' : 'Recoverable'}${v.enablePurgeProtection ? '' : '+Purgeable'}`;
}
export const MAX_RESULTS = 25;
/** Key Vault's limit on a secret value. */
export const MAX_VALUE_BYTES = 25 * 1024;

export interface SecretAttributesInput {
  enabled?: boolean;
  /** UNIX seconds. */
  nbf?: number | null;
  exp?: number | null;
}

export interface SecretVersion {
  name: string;
  version: string;
  value?: string;
  contentType: string | null;
  tags: Record<string, string> | null;
  enabled: boolean;
  nbf: number | null;
  exp: number | null;
  created: number;
  updated: number;
}

export interface DeletedSecret extends SecretVersion {
  deletedDate: number;
  scheduledPurgeDate: number;
}

export interface Page<T> {
  items: T[];
  /** Opaque token for the next page ($skiptoken), absent on the last page. */
  next?: string;
}

export interface Paging {
  maxresults?: string | number | undefined;
  skiptoken?: string | undefined;
}

interface VersionRow {
  name: string; version: string; sealed: string; content_type: string | null; tags: string | null; enabled: number;
  nbf: number | null; exp: number | null; created: number; updated: number; deleted_at?: number | null; purge_at?: number | null;
}

const secretNotFound = (name: string) => notFound('SecretNotFound',
  `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`);
const deletedNotFound = (name: string) => notFound('SecretNotFound', `Deleted Secret not found: ${name}`);

function checkAttributes(a: SecretAttributesInput | undefined): void {
  if (!a) return;
  if (a.enabled !== undefined && typeof a.enabled !== 'boolean') throw invalid('BadParameter', "The attribute 'enabled' must be true or false.");
  for (const k of ['nbf', 'exp'] as const) {
    const v = a[k];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
      throw invalid('BadParameter', `The attribute '${k}' must be a UNIX time in seconds.`);
    }
  }
  if (typeof a.nbf === 'number' && typeof a.exp === 'number' && a.nbf > a.exp) {
    throw invalid('BadParameter', "The attribute 'nbf' (not before) must not be later than 'exp' (expires).");
  }
}

function checkContentType(c: unknown): void {
  if (c === undefined || c === null) return;
  if (typeof c !== 'string') throw invalid('BadParameter', "'contentType' must be a string.");
  if (c.length > 255) throw invalid('BadParameter', `'contentType' is ${c.length} characters long; the maximum is 255.`);
}

function checkTags(t: unknown): Record<string, string> | null | undefined {
  if (t === undefined || t === null) return t;
  if (typeof t !== 'object' || Array.isArray(t) || Object.values(t).some((v) => typeof v !== 'string')) {
    throw invalid('BadParameter', "'tags' must be an object of string values.");
  }
  if (Object.keys(t).length > 15) throw invalid('BadParameter', 'A secret can have at most 15 tags.');
  return t as Record<string, string>;
}

export function parsePaging(p: Paging): { limit: number; offset: number } {
  let limit = MAX_RESULTS;
  if (p.maxresults !== undefined && p.maxresults !== '') {
    limit = Number(p.maxresults);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RESULTS) {
      throw invalid('BadParameter', `The value '${p.maxresults}' of 'maxresults' is not valid: it must be an integer between 1 and ${MAX_RESULTS}.`);
    }
  }
  let offset = 0;
  if (p.skiptoken) {
    try {
      offset = (JSON.parse(Buffer.from(p.skiptoken, 'base64url').toString('utf8')) as { o: number }).o;
    } catch {
      offset = -1;
    }
    if (!Number.isInteger(offset) || offset < 0) throw invalid('BadParameter', 'The $skiptoken is not valid: use the nextLink of the previous page as it is.');
  }
  return { limit, offset };
}

function page<T>(all: T[], p: Paging): Page<T> {
  const { limit, offset } = parsePaging(p);
  const items = all.slice(offset, offset + limit);
  return offset + limit < all.length ? { items, next: Buffer.from(JSON.stringify({ o: offset + limit })).toString('base64url') } : { items };
}

export class Secrets {
  constructor(private readonly db: Sql, private readonly vaults: Vaults, private readonly now: () => number = () => Math.floor(Date.now() / 1000)) {}

  private context(vaultId: string, nameLower: string, version: string): string {
    return `secret:${vaultId}:${nameLower}:${version}`;
  }

  private async toVersion(v: VaultRecord, r: VersionRow, withValue: boolean): Promise<SecretVersion> {
    return {
      name: r.name, version: r.version, contentType: r.content_type, tags: r.tags ? JSON.parse(r.tags) as Record<string, string> : null,
      enabled: r.enabled === 1, nbf: r.nbf, exp: r.exp, created: r.created, updated: r.updated,
      ...(withValue ? { value: (await this.vaults.dataKey(v.id)).open(r.sealed, this.context(v.id, r.name.toLowerCase(), r.version)) } : {}),
    };
  }

  /** Purges soft-deleted secrets whose retention ended. */
  private async purgeExpired(v: VaultRecord): Promise<void> {
    await this.db.eraseForGood('DELETE FROM vault_secrets WHERE vault_id = ? AND purge_at IS NOT NULL AND purge_at <= ?', [v.id, this.now()]);
  }

  private async state(v: VaultRecord, name: string): Promise<{ name: string; deleted_at: number | null; purge_at: number | null } | undefined> {
    await this.purgeExpired(v);
    return this.db.get('SELECT name, deleted_at, purge_at FROM vault_secrets WHERE vault_id = ? AND name_lower = ?', [v.id, name.toLowerCase()]);
  }

  private row(v: VaultRecord, name: string, version?: string): Promise<VersionRow | undefined> {
    const sql = `SELECT s.name, x.* FROM vault_secret_versions x JOIN vault_secrets s ON s.vault_id = x.vault_id AND s.name_lower = x.name_lower
      WHERE x.vault_id = ? AND x.name_lower = ?`;
    return version
      ? this.db.get<VersionRow>(`${sql} AND x.version = ?`, [v.id, name.toLowerCase(), version.toLowerCase()])
      : this.db.get<VersionRow>(`${sql} ORDER BY x.seq DESC LIMIT 1`, [v.id, name.toLowerCase()]);
  }

  /** The live (not deleted) secret's version row, or SecretNotFound. */
  private async live(v: VaultRecord, name: string, version?: string): Promise<VersionRow> {
    checkSecretName(name);
    const s = await this.state(v, name);
    if (!s || s.deleted_at !== null) throw secretNotFound(name);
    if (version !== undefined && !isVersionId(version)) throw secretNotFound(`${name}/${version}`);
    const r = await this.row(v, name, version);
    if (!r) throw secretNotFound(version ? `${name}/${version}` : name);
    return r;
  }

  async set(v: VaultRecord, name: string, input: { value?: unknown; contentType?: unknown; tags?: unknown; attributes?: SecretAttributesInput }): Promise<SecretVersion> {
    checkSecretName(name);
    if (typeof input.value !== 'string') throw invalid('BadParameter', "The request body must have a 'value' property holding the secret value as a string.");
    if (Buffer.byteLength(input.value) > MAX_VALUE_BYTES) throw invalid('BadParameter', `The secret value is too large: it is ${Buffer.byteLength(input.value)} bytes, the maximum is ${MAX_VALUE_BYTES}.`);
    checkContentType(input.contentType);
    const tags = checkTags(input.tags);
    checkAttributes(input.attributes);
    const s = await this.state(v, name);
    if (s?.deleted_at != null) {
      throw conflict('Conflict', `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`);
    }
    const version = randomUUID().replace(/-/g, '');
    const now = this.now();
    const lower = name.toLowerCase();
    const sealed = (await this.vaults.dataKey(v.id)).seal(input.value, this.context(v.id, lower, version));
    // The upsert locks the secret's row, so that two sets at once number their versions one after the other.
    await this.db.transaction(async (tx) => {
      await tx.run(`INSERT INTO vault_secrets (vault_id, name_lower, name) VALUES (?, ?, ?)
        ON CONFLICT (vault_id, name_lower) DO UPDATE SET name = excluded.name`, [v.id, lower, name]);
      const seq = (await tx.get<{ n: number }>('SELECT coalesce(max(seq), 0) + 1 AS n FROM vault_secret_versions WHERE vault_id = ? AND name_lower = ?', [v.id, lower]))!.n;
      await tx.run(`INSERT INTO vault_secret_versions (vault_id, name_lower, version, seq, sealed, content_type, tags, enabled, nbf, exp, created, updated)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [v.id, lower, version, seq, sealed, (input.contentType as string | undefined) ?? null,
        tags ? JSON.stringify(tags) : null, input.attributes?.enabled === false ? 0 : 1, input.attributes?.nbf ?? null, input.attributes?.exp ?? null, now, now]);
    });
    return this.toVersion(v, (await this.row(v, name, version))!, true);
  }

  /**
   * The value of the latest (or a given) version. A disabled version is refused; as Key Vault documents,
   * nbf/exp do not block a get (a not-yet-valid or expired value can still be read for tests or recovery).
   */
  async get(v: VaultRecord, name: string, version?: string): Promise<SecretVersion> {
    const r = await this.live(v, name, version);
    if (r.enabled !== 1) throw new BerthError('forbidden', 'Forbidden', 'Operation get is not allowed on a disabled secret.');
    return this.toVersion(v, r, true);
  }

  /** Updates contentType, tags and attributes of the latest (or a given) version; the value never changes. */
  async update(v: VaultRecord, name: string, version: string | undefined, patch: { contentType?: unknown; tags?: unknown; attributes?: SecretAttributesInput }): Promise<SecretVersion> {
    const r = await this.live(v, name, version);
    checkContentType(patch.contentType);
    const tags = checkTags(patch.tags);
    checkAttributes(patch.attributes);
    const a = patch.attributes ?? {};
    const nbf = a.nbf !== undefined ? a.nbf : r.nbf;
    const exp = a.exp !== undefined ? a.exp : r.exp;
    if (typeof nbf === 'number' && typeof exp === 'number' && nbf > exp) throw invalid('BadParameter', "The attribute 'nbf' (not before) must not be later than 'exp' (expires).");
    await this.db.run(`UPDATE vault_secret_versions SET content_type = ?, tags = ?, enabled = ?, nbf = ?, exp = ?, updated = ?
      WHERE vault_id = ? AND name_lower = ? AND version = ?`, [
      (patch.contentType !== undefined ? patch.contentType : r.content_type) as string | null,
      tags !== undefined ? (tags ? JSON.stringify(tags) : null) : r.tags,
      a.enabled !== undefined ? (a.enabled ? 1 : 0) : r.enabled, nbf ?? null, exp ?? null, this.now(), v.id, name.toLowerCase(), r.version]);
    return this.toVersion(v, (await this.row(v, name, r.version))!, false);
  }

  /** Soft delete of the secret with all its versions; answers the latest version's deleted bundle. */
  async delete(v: VaultRecord, name: string): Promise<DeletedSecret> {
    await this.live(v, name);
    const now = this.now();
    await this.db.run('UPDATE vault_secrets SET deleted_at = ?, purge_at = ? WHERE vault_id = ? AND name_lower = ?',
      [now, now + v.softDeleteRetentionInDays * 86400, v.id, name.toLowerCase()]);
    return this.getDeleted(v, name);
  }

  async getDeleted(v: VaultRecord, name: string): Promise<DeletedSecret> {
    checkSecretName(name);
    const s = await this.state(v, name);
    if (!s || s.deleted_at === null || s.purge_at === null) throw deletedNotFound(name);
    return { ...(await this.toVersion(v, (await this.row(v, name))!, false)), deletedDate: s.deleted_at, scheduledPurgeDate: s.purge_at };
  }

  async recover(v: VaultRecord, name: string): Promise<SecretVersion> {
    await this.getDeleted(v, name);
    await this.db.run('UPDATE vault_secrets SET deleted_at = NULL, purge_at = NULL WHERE vault_id = ? AND name_lower = ?', [v.id, name.toLowerCase()]);
    return this.toVersion(v, (await this.row(v, name))!, false);
  }

  /** Deletes a soft-deleted secret forever. */
  async purge(v: VaultRecord, name: string): Promise<void> {
    await this.getDeleted(v, name);
    if (v.enablePurgeProtection) {
      throw forbidden('Forbidden', 'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.');
    }
    await this.db.eraseForGood('DELETE FROM vault_secrets WHERE vault_id = ? AND name_lower = ?', [v.id, name.toLowerCase()]);
  }

  /** Live secrets (latest version's attributes, no values), ordered by name. */
  async list(v: VaultRecord, p: Paging): Promise<Page<SecretVersion>> {
    parsePaging(p);
    await this.purgeExpired(v);
    const rows = await this.db.all<VersionRow>(`SELECT s.name, x.* FROM vault_secrets s JOIN vault_secret_versions x ON x.vault_id = s.vault_id AND x.name_lower = s.name_lower
      WHERE s.vault_id = ? AND s.deleted_at IS NULL
        AND x.seq = (SELECT max(seq) FROM vault_secret_versions y WHERE y.vault_id = s.vault_id AND y.name_lower = s.name_lower)
      ORDER BY s.name_lower`, [v.id]);
    return page(await Promise.all(rows.map((r) => this.toVersion(v, r, false))), p);
  }

  /** Every version of a live secret (no values), oldest first. */
  async listVersions(v: VaultRecord, name: string, p: Paging): Promise<Page<SecretVersion>> {
    parsePaging(p);
    await this.live(v, name);
    const rows = await this.db.all<VersionRow>(`SELECT s.name, x.* FROM vault_secret_versions x JOIN vault_secrets s ON s.vault_id = x.vault_id AND s.name_lower = x.name_lower
      WHERE x.vault_id = ? AND x.name_lower = ? ORDER BY x.seq`, [v.id, name.toLowerCase()]);
    return page(await Promise.all(rows.map((r) => this.toVersion(v, r, false))), p);
  }

  async listDeleted(v: VaultRecord, p: Paging): Promise<Page<DeletedSecret>> {
    parsePaging(p);
    await this.purgeExpired(v);
    const names = await this.db.all<{ name: string }>('SELECT name FROM vault_secrets WHERE vault_id = ? AND deleted_at IS NOT NULL ORDER BY name_lower', [v.id]);
    return page(await Promise.all(names.map((n) => this.getDeleted(v, n.name))), p);
  }
}
