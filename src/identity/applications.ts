// Applications and their service principals (Entra's two objects, kept as one row here: the row id is
// the service principal's object id; the application's object id lives beside it). Secrets are stored
// hashed and shown once, when created.
import { randomUUID } from 'node:crypto';
import type { Db } from '../storage/sqlite.js';
import { nowIso } from '../storage/sqlite.js';
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

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Applications {
  constructor(private readonly db: Db, private readonly tenantId: string) {}

  private toApp(r: Row): Application {
    const props = JSON.parse(r.props) as { appObjectId?: string; hasServicePrincipal?: boolean; localOwner?: number };
    const creds = this.db.prepare('SELECT id, hint, expires_at, created_at, display_name FROM principal_secrets WHERE principal_id = ? ORDER BY created_at').all(r.id) as
      Array<{ id: string; hint: string; expires_at: string | null; created_at: string; display_name: string | null }>;
    return {
      id: r.id, appId: r.app_id, appObjectId: props.appObjectId ?? r.id, displayName: r.display_name,
      hasServicePrincipal: props.hasServicePrincipal ?? true, createdDateTime: r.created_at,
      passwordCredentials: creds.map((c) => ({ keyId: c.id, displayName: c.display_name, hint: c.hint, startDateTime: c.created_at, endDateTime: c.expires_at })),
    };
  }

  list(filter: { displayName?: string; appId?: string } = {}): Application[] {
    const rows = this.db.prepare(`SELECT id, app_id, display_name, created_at, props FROM principals WHERE kind = 'servicePrincipal' ORDER BY created_at`).all() as Row[];
    return rows.map((r) => this.toApp(r)).filter((a) =>
      (filter.displayName === undefined || a.displayName === filter.displayName) && (filter.appId === undefined || a.appId.toLowerCase() === filter.appId.toLowerCase()));
  }

  /** Finds by service principal object id, appId, or application object id. */
  find(id: string): Application | undefined {
    if (!GUID.test(id)) return this.list().find((a) => a.displayName === id);
    const key = id.toLowerCase();
    return this.list().find((a) => a.id === key || a.appId === key || a.appObjectId === key);
  }

  get(id: string): Application {
    const a = this.find(id);
    if (!a) throw notFound('Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    return a;
  }

  createApplication(displayName: string): Application {
    if (!displayName || displayName.length > 256) throw invalid('Request_BadRequest', 'displayName must be 1-256 characters.');
    const id = randomUUID();
    this.db.prepare('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, 'servicePrincipal', displayName, randomUUID(), nowIso(), JSON.stringify({ appObjectId: randomUUID(), hasServicePrincipal: false }));
    return this.get(id);
  }

  createServicePrincipal(appId: string): Application {
    const a = this.list({ appId })[0];
    if (!a) throw invalid('Request_BadRequest', `The appId '${appId}' of the service principal does not reference a valid application object.`);
    this.db.prepare(`UPDATE principals SET props = json_set(props, '$.hasServicePrincipal', json('true')) WHERE id = ?`).run(a.id);
    return this.get(a.id);
  }

  rename(id: string, displayName: string): Application {
    const a = this.get(id);
    this.db.prepare('UPDATE principals SET display_name = ? WHERE id = ?').run(displayName, a.id);
    return this.get(a.id);
  }

  /** Adds a password; the clear value is returned once. */
  async addPassword(id: string, opts: { displayName?: string; endDateTime?: string }): Promise<PasswordCredential & { secretText: string }> {
    const a = this.get(id);
    if (a.id === this.localOwnerId()) throw invalid('Request_BadRequest', 'The local owner credential is managed by berth serve; it cannot be changed here.');
    let end: string | null = null;
    if (opts.endDateTime) {
      const t = Date.parse(opts.endDateTime);
      if (Number.isNaN(t)) throw invalid('Request_BadRequest', `endDateTime '${opts.endDateTime}' is not a date.`);
      end = new Date(t).toISOString();
    }
    const secret = generateSecret(30);
    const keyId = randomUUID();
    const created = nowIso();
    this.db.prepare('INSERT INTO principal_secrets (id, principal_id, hash, hint, expires_at, created_at, display_name) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(keyId, a.id, await hashSecret(secret), secret.slice(0, 3), end, created, opts.displayName ?? null);
    return { keyId, displayName: opts.displayName ?? null, hint: secret.slice(0, 3), startDateTime: created, endDateTime: end, secretText: secret };
  }

  removePassword(id: string, keyId: string): void {
    const a = this.get(id);
    const res = this.db.prepare('DELETE FROM principal_secrets WHERE principal_id = ? AND id = ?').run(a.id, keyId);
    if (res.changes === 0) throw notFound('Request_ResourceNotFound', `No password credential with keyId '${keyId}' on application '${a.appId}'.`);
  }

  removeAllPasswords(id: string): void {
    const a = this.get(id);
    this.db.prepare('DELETE FROM principal_secrets WHERE principal_id = ?').run(a.id);
  }

  /** Deletes the application and its service principal, with its secrets and role assignments. */
  delete(id: string): void {
    const a = this.get(id);
    if (a.id === this.localOwnerId()) throw invalid('Request_BadRequest', 'The local owner principal of berth serve cannot be deleted.');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM role_assignments WHERE principal_id = ?').run(a.id);
      this.db.prepare('DELETE FROM principals WHERE id = ?').run(a.id);
    })();
  }

  private localOwnerId(): string | undefined {
    return (this.db.prepare(`SELECT id FROM principals WHERE kind = 'servicePrincipal' AND json_extract(props, '$.localOwner') = 1`).get() as { id: string } | undefined)?.id;
  }

  get tenant(): string {
    return this.tenantId;
  }
}
