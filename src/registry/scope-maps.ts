// Repository-scoped permissions: scope maps (sets of `repositories/<repo>/<action>`) and the tokens that
// use them (username = token name, two passwords with optional expiry, enabled or disabled).
import { randomUUID } from 'node:crypto';
import type { Db } from '../storage/sqlite.js';
import { nowIso } from '../storage/sqlite.js';
import { BerthError, invalid, notFound } from '../lib/errors.js';
import { generateSecret, hashSecret, verifySecretCached } from '../identity/secrets.js';
import { armId, type RegistryRecord } from './registries.js';

export const SCOPE_ACTIONS = ['content/read', 'content/write', 'content/delete', 'metadata/read', 'metadata/write'] as const;

/** The scope-map action each data-plane action needs. */
export const SCOPE_ACTION_FOR: Record<string, string> = {
  pull: 'content/read',
  push: 'content/write',
  delete: 'content/delete',
  metadataRead: 'metadata/read',
  metadataWrite: 'metadata/write',
};

export interface ScopeMap {
  name: string;
  description: string;
  actions: string[];
  type: 'SystemDefined' | 'UserDefined';
  createdAt: string;
}

const all = (...acts: string[]) => acts.map((a) => `repositories/*/${a}`);
export const SYSTEM_SCOPE_MAPS: ScopeMap[] = [
  { name: '_repositories_admin', type: 'SystemDefined', createdAt: '2020-01-01T00:00:00Z', description: 'Can perform all read, write and delete operations on the registry',
    actions: all('metadata/read', 'metadata/write', 'content/read', 'content/write', 'content/delete') },
  { name: '_repositories_pull', type: 'SystemDefined', createdAt: '2020-01-01T00:00:00Z', description: 'Can pull any repository of the registry', actions: all('content/read') },
  { name: '_repositories_pull_metadata_read', type: 'SystemDefined', createdAt: '2020-01-01T00:00:00Z', description: 'Can perform all read operations on the registry', actions: all('content/read', 'metadata/read') },
  { name: '_repositories_push', type: 'SystemDefined', createdAt: '2020-01-01T00:00:00Z', description: 'Can push to any repository of the registry', actions: all('content/read', 'content/write') },
  { name: '_repositories_push_metadata_write', type: 'SystemDefined', createdAt: '2020-01-01T00:00:00Z', description: 'Can perform all read and write operations on the registry',
    actions: all('metadata/read', 'metadata/write', 'content/read', 'content/write') },
];

const REPO_PATTERN = /^(\*|[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*(?:\/\*)?)$/;

/** Validates and normalises one `repositories/<repo>/<action>` entry. */
export function parseScopeAction(a: string): string {
  const g = /^gateway\/([a-zA-Z0-9-_]{1,50})\/(config|message)\/(read|write)$/i.exec(a.trim());
  if (g) return `gateway/${g[1]}/${g[2]!.toLowerCase()}/${g[3]!.toLowerCase()}`;
  const m = /^repositories\/(.+)\/(content|metadata)\/(read|write|delete)$/i.exec(a.trim());
  if (!m) throw invalid('InvalidScopeMapAction', `'${a}' is not a scope-map action: write repositories/<repository>/<action> with one of ${SCOPE_ACTIONS.join(', ')}`);
  const repo = m[1]!;
  const action = `${m[2]!.toLowerCase()}/${m[3]!.toLowerCase()}`;
  if (!(SCOPE_ACTIONS as readonly string[]).includes(action)) throw invalid('InvalidScopeMapAction', `'${action}' is not an action; use one of ${SCOPE_ACTIONS.join(', ')}`);
  if (!REPO_PATTERN.test(repo)) throw invalid('InvalidScopeMapAction', `'${repo}' is not a repository name (lower case, "/"-separated; "*" or "prefix/*" for wildcards)`);
  return `repositories/${repo}/${action}`;
}

function repoMatches(pattern: string, repo: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('/*')) return repo.startsWith(pattern.slice(0, -1));
  return pattern === repo;
}

/** Whether a scope map's actions grant `scopeAction` (e.g. content/read) on `repo`. */
export function scopeMapAllows(actions: string[], repo: string, scopeAction: string): boolean {
  return actions.some((a) => {
    const i = a.lastIndexOf('/', a.lastIndexOf('/') - 1);
    return a.slice(i + 1) === scopeAction && repoMatches(a.slice('repositories/'.length, i), repo);
  });
}

export type TokenStatus = 'enabled' | 'disabled';
export const TOKEN_PASSWORD_NAMES = ['password1', 'password2'] as const;

export interface RegistryToken {
  id: string;
  registryId: string;
  name: string;
  scopeMap: string;
  status: TokenStatus;
  createdAt: string;
  passwords: Array<{ name: string; creationTime: string; expiry: string | null }>;
}

export type TokenCheck =
  | { ok: true; token: RegistryToken }
  | { ok: false; reason: string };

const TOKEN_NAME = /^[a-zA-Z0-9-_]{5,50}$/;

export class ScopeMapsAndTokens {
  constructor(private readonly db: Db) {}

  // ---- scope maps
  listScopeMaps(r: RegistryRecord): ScopeMap[] {
    const rows = this.db.prepare('SELECT * FROM scope_maps WHERE registry_id = ? ORDER BY name_lower').all(r.id) as Array<{ name: string; description: string; actions: string; created_at: string }>;
    return [...SYSTEM_SCOPE_MAPS, ...rows.map((x) => ({ name: x.name, description: x.description, actions: JSON.parse(x.actions) as string[], type: 'UserDefined' as const, createdAt: x.created_at }))];
  }

  getScopeMap(r: RegistryRecord, name: string): ScopeMap {
    const m = this.listScopeMaps(r).find((s) => s.name.toLowerCase() === name.toLowerCase());
    if (!m) throw notFound('ResourceNotFound', `The scope map '${name}' could not be found in registry '${r.name}'.`);
    return m;
  }

  scopeMapId(r: RegistryRecord, name: string): string {
    return `${armId(r)}/scopeMaps/${name}`;
  }

  createOrUpdateScopeMap(r: RegistryRecord, name: string, actions: string[], description?: string): { map: ScopeMap; created: boolean } {
    if (!/^[a-zA-Z0-9-_]{5,50}$/.test(name)) throw invalid('InvalidScopeMapName', `Scope map name '${name}' is invalid: use 5-50 letters, digits, '-' or '_'.`);
    if (SYSTEM_SCOPE_MAPS.some((s) => s.name.toLowerCase() === name.toLowerCase())) throw invalid('CannotModifySystemScopeMap', `'${name}' is a system scope map and cannot be changed.`);
    if (actions.length === 0) throw invalid('InvalidScopeMapAction', 'A scope map needs at least one action: --repository REPO ACTION...');
    const norm = [...new Map(actions.map(parseScopeAction).map((a) => [a.toLowerCase(), a])).values()];
    const existing = this.db.prepare('SELECT name, description, created_at FROM scope_maps WHERE registry_id = ? AND name_lower = ?').get(r.id, name.toLowerCase()) as { name: string; description: string; created_at: string } | undefined;
    if (existing) {
      this.db.prepare('UPDATE scope_maps SET actions = ?, description = ? WHERE registry_id = ? AND name_lower = ?')
        .run(JSON.stringify(norm), description ?? existing.description, r.id, name.toLowerCase());
    } else {
      this.db.prepare('INSERT INTO scope_maps (id, registry_id, name, name_lower, description, actions, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(randomUUID(), r.id, name, name.toLowerCase(), description ?? '', JSON.stringify(norm), nowIso());
    }
    return { map: this.getScopeMap(r, name), created: !existing };
  }

  deleteScopeMap(r: RegistryRecord, name: string): void {
    if (SYSTEM_SCOPE_MAPS.some((s) => s.name.toLowerCase() === name.toLowerCase())) throw invalid('CannotModifySystemScopeMap', `'${name}' is a system scope map and cannot be deleted.`);
    const res = this.db.prepare('DELETE FROM scope_maps WHERE registry_id = ? AND name_lower = ?').run(r.id, name.toLowerCase());
    if (res.changes === 0) throw notFound('ResourceNotFound', `The scope map '${name}' could not be found in registry '${r.name}'.`);
  }

  // ---- tokens
  private tokenRow(registryId: string, name: string): { id: string; registry_id: string; name: string; scope_map: string; status: string; created_at: string } | undefined {
    return this.db.prepare('SELECT * FROM registry_tokens WHERE registry_id = ? AND name_lower = ?').get(registryId, name.toLowerCase()) as never;
  }

  private toToken(row: { id: string; registry_id: string; name: string; scope_map: string; status: string; created_at: string }): RegistryToken {
    const pw = this.db.prepare('SELECT name, created_at, expiry FROM token_passwords WHERE token_id = ? ORDER BY name').all(row.id) as Array<{ name: string; created_at: string; expiry: string | null }>;
    return { id: row.id, registryId: row.registry_id, name: row.name, scopeMap: row.scope_map, status: row.status as TokenStatus, createdAt: row.created_at,
      passwords: pw.map((p) => ({ name: p.name, creationTime: p.created_at, expiry: p.expiry })) };
  }

  listTokens(r: RegistryRecord): RegistryToken[] {
    return (this.db.prepare('SELECT * FROM registry_tokens WHERE registry_id = ? ORDER BY name_lower').all(r.id) as never[]).map((x) => this.toToken(x));
  }

  getToken(r: RegistryRecord, name: string): RegistryToken {
    const row = this.tokenRow(r.id, name);
    if (!row) throw notFound('ResourceNotFound', `The token '${name}' could not be found in registry '${r.name}'.`);
    return this.toToken(row);
  }

  tokenById(id: string): RegistryToken | undefined {
    const row = this.db.prepare('SELECT * FROM registry_tokens WHERE id = ?').get(id) as never;
    return row ? this.toToken(row) : undefined;
  }

  createOrUpdateToken(r: RegistryRecord, name: string, opts: { scopeMap?: string; status?: TokenStatus }): { token: RegistryToken; created: boolean } {
    if (!TOKEN_NAME.test(name)) throw invalid('InvalidTokenName', `Token name '${name}' is invalid: use 5-50 letters, digits, '-' or '_'.`);
    if (opts.status !== undefined && opts.status !== 'enabled' && opts.status !== 'disabled') throw invalid('InvalidTokenStatus', `Token status '${String(opts.status)}' is invalid: use enabled or disabled.`);
    const existing = this.tokenRow(r.id, name);
    const mapName = opts.scopeMap !== undefined ? this.getScopeMap(r, opts.scopeMap).name : undefined;
    if (existing) {
      this.db.prepare('UPDATE registry_tokens SET scope_map = ?, status = ? WHERE id = ?')
        .run(mapName ?? existing.scope_map, opts.status ?? existing.status, existing.id);
      return { token: this.toToken(this.tokenRow(r.id, name)!), created: false };
    }
    if (!mapName) throw invalid('ScopeMapRequired', 'A token needs a scope map: --scope-map NAME, or --repository REPO ACTION... to make one.');
    this.db.prepare('INSERT INTO registry_tokens (id, registry_id, name, name_lower, scope_map, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(randomUUID(), r.id, name, name.toLowerCase(), mapName, opts.status ?? 'enabled', nowIso());
    return { token: this.toToken(this.tokenRow(r.id, name)!), created: true };
  }

  deleteToken(r: RegistryRecord, name: string): void {
    const res = this.db.prepare('DELETE FROM registry_tokens WHERE registry_id = ? AND name_lower = ?').run(r.id, name.toLowerCase());
    if (res.changes === 0) throw notFound('ResourceNotFound', `The token '${name}' could not be found in registry '${r.name}'.`);
  }

  /** Generates one or both passwords; returns them in clear once (they are stored hashed). */
  async generateCredentials(r: RegistryRecord, tokenName: string, opts: { name?: string; expiry?: string }): Promise<{ username: string; passwords: Array<{ name: string; value: string; expiry: string | null; creationTime: string }> }> {
    const token = this.getToken(r, tokenName);
    const names = opts.name ? [opts.name] : [...TOKEN_PASSWORD_NAMES];
    for (const n of names) if (!(TOKEN_PASSWORD_NAMES as readonly string[]).includes(n)) throw invalid('InvalidPasswordName', `Password name '${n}' is invalid: use password1 or password2.`);
    let expiry: string | null = null;
    if (opts.expiry) {
      const t = Date.parse(opts.expiry);
      if (Number.isNaN(t)) throw invalid('InvalidExpiry', `Expiry '${opts.expiry}' is not a date and time (use ISO 8601, e.g. 2030-01-31T00:00:00Z).`);
      if (t <= Date.now()) throw invalid('InvalidExpiry', `Expiry '${opts.expiry}' is in the past.`);
      expiry = new Date(t).toISOString();
    }
    const out: Array<{ name: string; value: string; expiry: string | null; creationTime: string }> = [];
    for (const n of names) {
      const value = generateSecret(32);
      const created = nowIso();
      const hash = await hashSecret(value);
      this.db.prepare('INSERT INTO token_passwords (token_id, name, hash, expiry, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_id, name) DO UPDATE SET hash = excluded.hash, expiry = excluded.expiry, created_at = excluded.created_at')
        .run(token.id, n, hash, expiry, created);
      out.push({ name: n, value, expiry, creationTime: created });
    }
    return { username: token.name, passwords: out };
  }

  deletePassword(r: RegistryRecord, tokenName: string, name: string): void {
    const token = this.getToken(r, tokenName);
    this.db.prepare('DELETE FROM token_passwords WHERE token_id = ? AND name = ?').run(token.id, name);
  }

  /** Checks a token's username/password for registry `r`; undefined when no such token exists. */
  async checkPassword(r: RegistryRecord, username: string, password: string): Promise<TokenCheck | undefined> {
    const row = this.tokenRow(r.id, username);
    if (!row) return undefined;
    const token = this.toToken(row);
    const hashes = this.db.prepare('SELECT name, hash, expiry FROM token_passwords WHERE token_id = ?').all(row.id) as Array<{ name: string; hash: string; expiry: string | null }>;
    for (const h of hashes) {
      if (!(await verifySecretCached(password, h.hash))) continue;
      if (h.expiry && Date.parse(h.expiry) <= Date.now()) return { ok: false, reason: `the ${h.name} of token ${token.name} expired at ${h.expiry}; generate a new one with: berth acr token credential generate -r ${r.name} -n ${token.name} --${h.name}` };
      if (token.status !== 'enabled') return { ok: false, reason: `token ${token.name} is disabled; enable it with: berth acr token update -r ${r.name} -n ${token.name} --status enabled` };
      return { ok: true, token };
    }
    if (hashes.length === 0) return { ok: false, reason: `token ${token.name} has no passwords; generate one with: berth acr token credential generate -r ${r.name} -n ${token.name}` };
    return { ok: false, reason: `incorrect password for token ${token.name}` };
  }

  /** The actions of the token's scope map right now (empty when the map was deleted). */
  tokenActions(r: RegistryRecord, token: RegistryToken): string[] {
    try {
      return this.getScopeMap(r, token.scopeMap).actions;
    } catch (e) {
      if (e instanceof BerthError && e.kind === 'notFound') return [];
      throw e;
    }
  }
}
