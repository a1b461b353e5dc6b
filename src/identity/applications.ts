// Applications and their service principals (Entra's two objects, kept as one row here: the row id is
// the service principal's object id; the application's object id lives beside it). Secrets are stored
// hashed and shown once, when created.
import { randomUUID } from 'node:crypto';
import type { Sql } from '../storage/sql/sql.js';
import { nowIso } from '../lib/time.js';
import { invalid, notFound } from '../lib/errors.js';
import { generateSecret, hashSecret } from './secrets.js';

export interface PasswordCredential {
  keyId: string;
  displayName: string | null;
  hint: string;
  startDateTime: string;
  endDateTime: string | null;
}

export interface Application {
  /** Service principal object id. */
  id: string;
  appId: string;
  /** Application object id. */
  appObjectId: string;
  displayName: string;
  hasServicePrincipal: boolean;
  createdDateTime: string;
  passwordCredentials: PasswordCredential[];
}

interface Row { id: string; app_id: string; display_name: string; created_at: string; props: string }
interface SecretRow { principal_id: string; id: string; hint: string; expires_at: string | null; created_at: string; display_name: string | null }
interface Props { appObjectId?: string; hasServicePrincipal?: boolean; localOwner?: number }

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const toApp = (r: Row, creds: SecretRow[]): Application => {
  const props = JSON.parse(r.props) as Props;
  return {
    id: r.id, appId: r.app_id, appObjectId: props.appObjectId ?? r.id, displayName: r.display_name,
    hasServicePrincipal: props.hasServicePrincipal ?? true, createdDateTime: r.created_at,
    passwordCredentials: creds.map((c) => ({ keyId: c.id, displayName: c.display_name, hint: c.hint, startDateTime: c.created_at, endDateTime: c.expires_at })),
  };
};

export class Applications {
  constructor(private readonly db: Sql, private readonly tenantId: string) {}

  async list(filter: { displayName?: string; appId?: string } = {}): Promise<Application[]> {
    // Two statements for the whole directory: the applications, then every one's credentials.
    const rows = await this.db.all<Row>(`SELECT id, app_id, display_name, created_at, props FROM principals WHERE kind = 'servicePrincipal' ORDER BY created_at`);
    const secrets = await this.db.all<SecretRow>(`SELECT s.principal_id, s.id, s.hint, s.expires_at, s.created_at, s.display_name FROM principal_secrets s
      JOIN principals p ON p.id = s.principal_id WHERE p.kind = 'servicePrincipal' ORDER BY s.created_at`);
    const byPrincipal = new Map<string, SecretRow[]>();
    for (const s of secrets) {
      const list = byPrincipal.get(s.principal_id);
      if (list) list.push(s);
      else byPrincipal.set(s.principal_id, [s]);
    }
    return rows.map((r) => toApp(r, byPrincipal.get(r.id) ?? [])).filter((a) =>
      (filter.displayName === undefined || a.displayName === filter.displayName) && (filter.appId === undefined || a.appId.toLowerCase() === filter.appId.toLowerCase()));
  }

  /** Finds by service principal object id, appId, or application object id. */
  async find(id: string): Promise<Application | undefined> {
    if (!GUID.test(id)) return (await this.list()).find((a) => a.displayName === id);
    const key = id.toLowerCase();
    return (await this.list()).find((a) => a.id === key || a.appId === key || a.appObjectId === key);
  }

  async get(id: string): Promise<Application> {
    const a = await this.find(id);
    if (!a) throw notFound('Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    return a;
  }

  async createApplication(displayName: string): Promise<Application> {
    if (!displayName || displayName.length > 256) throw invalid('Request_BadRequest', 'displayName must be 1-256 characters.');
    const id = randomUUID();
    await this.db.run('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)',
      [id, 'servicePrincipal', displayName, randomUUID(), nowIso(), JSON.stringify({ appObjectId: randomUUID(), hasServicePrincipal: false } satisfies Props)]);
    return this.get(id);
  }

  async createServicePrincipal(appId: string): Promise<Application> {
    const a = (await this.list({ appId }))[0];
    if (!a) throw invalid('Request_BadRequest', `The appId '${appId}' of the service principal does not reference a valid application object.`);
    // The JSON is changed here, not in SQL (the engines' JSON functions differ); read and written in one transaction.
    await this.db.transaction(async (tx) => {
      const row = await tx.get<{ props: string }>('SELECT props FROM principals WHERE id = ?', [a.id]);
      if (!row) return;
      await tx.run('UPDATE principals SET props = ? WHERE id = ?', [JSON.stringify({ ...(JSON.parse(row.props) as Props), hasServicePrincipal: true }), a.id]);
    });
    return this.get(a.id);
  }

  async rename(id: string, displayName: string): Promise<Application> {
    const a = await this.get(id);
    await this.db.run('UPDATE principals SET display_name = ? WHERE id = ?', [displayName, a.id]);
    return this.get(a.id);
  }

  /** Adds a password; the clear value is returned once. */
  async addPassword(id: string, opts: { displayName?: string; endDateTime?: string }): Promise<PasswordCredential & { secretText: string }> {
    const a = await this.get(id);
    if (a.id === await this.localOwnerId()) throw invalid('Request_BadRequest', 'The local owner credential is managed by berth serve; it cannot be changed here.');
    let end: string | null = null;
    if (opts.endDateTime) {
      const t = Date.parse(opts.endDateTime);
      if (Number.isNaN(t)) throw invalid('Request_BadRequest', `endDateTime '${opts.endDateTime}' is not a date.`);
      end = new Date(t).toISOString();
    }
    const secret = generateSecret(30);
    const keyId = randomUUID();
    const created = nowIso();
    const hash = await hashSecret(secret);
    await this.db.run('INSERT INTO principal_secrets (id, principal_id, hash, hint, expires_at, created_at, display_name) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [keyId, a.id, hash, secret.slice(0, 3), end, created, opts.displayName ?? null]);
    return { keyId, displayName: opts.displayName ?? null, hint: secret.slice(0, 3), startDateTime: created, endDateTime: end, secretText: secret };
  }

  async removePassword(id: string, keyId: string): Promise<void> {
    const a = await this.get(id);
    const res = await this.db.run('DELETE FROM principal_secrets WHERE principal_id = ? AND id = ?', [a.id, keyId]);
    if (res.changes === 0) throw notFound('Request_ResourceNotFound', `No password credential with keyId '${keyId}' on application '${a.appId}'.`);
  }

  async removeAllPasswords(id: string): Promise<void> {
    const a = await this.get(id);
    await this.db.run('DELETE FROM principal_secrets WHERE principal_id = ?', [a.id]);
  }

  /** Deletes the application and its service principal, with its secrets and role assignments. */
  async delete(id: string): Promise<void> {
    const a = await this.get(id);
    if (a.id === await this.localOwnerId()) throw invalid('Request_BadRequest', 'The local owner principal of berth serve cannot be deleted.');
    await this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM role_assignments WHERE principal_id = ?', [a.id]);
      await tx.run('DELETE FROM principals WHERE id = ?', [a.id]);
    });
  }

  private async localOwnerId(): Promise<string | undefined> {
    return (await this.db.get<{ id: string }>(`SELECT id FROM principals WHERE kind = 'servicePrincipal' AND ${this.db.dialect.jsonFlag('props', 'localOwner')} = 1`))?.id;
  }

  get tenant(): string {
    return this.tenantId;
  }
}
