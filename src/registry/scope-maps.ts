// Repository-scoped permissions: scope maps (sets of `repositories/<repo>/<action>`) and the tokens that
// use them (username = token name, two passwords with optional expiry, enabled or disabled).
import { randomUUID } from 'node:crypto';
import type { Sql } from '../storage/sql/sql.js';
import { nowIso } from '../lib/time.js';
import { invalid, notFound } from '../lib/errors.js';
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

interface MapRow { name: string; description: string; actions: string; created_at: string }
interface TokenRow { id: string; registry_id: string; name: string; scope_map: string; status: string; created_at: string }
interface PasswordRow { name: string; hash: string; expiry: string | null; created_at: string }

const isSystemMap = (name: string) => SYSTEM_SCOPE_MAPS.some((s) => s.name.toLowerCase() === name.toLowerCase());
const toMap = (x: MapRow): ScopeMap => ({ name: x.name, description: x.description, actions: JSON.parse(x.actions) as string[], type: 'UserDefined', createdAt: x.created_at });
/** A token as registry auth checks it on every request: without its passwords. */
export type TokenSummary = Omit<RegistryToken, 'passwords'>;
const toSummary = (row: TokenRow): TokenSummary => ({
  id: row.id, registryId: row.registry_id, name: row.name, scopeMap: row.scope_map, status: row.status as TokenStatus, createdAt: row.created_at,
});
const toToken = (row: TokenRow, pw: PasswordRow[]): RegistryToken => ({
  ...toSummary(row), passwords: pw.map((p) => ({ name: p.name, creationTime: p.created_at, expiry: p.expiry })),
});
const TOKEN_PASSWORDS = 'SELECT name, hash, expiry, created_at FROM token_passwords WHERE token_id = ? ORDER BY name';

export class ScopeMapsAndTokens {
  constructor(private readonly db: Sql) {}

  // ---- scope maps
  async listScopeMaps(r: RegistryRecord): Promise<ScopeMap[]> {
    const rows = await this.db.all<MapRow>('SELECT name, description, actions, created_at FROM scope_maps WHERE registry_id = ? ORDER BY name_lower', [r.id]);
    return [...SYSTEM_SCOPE_MAPS, ...rows.map(toMap)];
  }

  async getScopeMap(r: RegistryRecord, name: string): Promise<ScopeMap> {
    const m = await this.findScopeMap(r, name);
    if (!m) throw notFound('ResourceNotFound', `The scope map '${name}' could not be found in registry '${r.name}'.`);
    return m;
  }

  /** A system scope map by name, else the registry's own (one indexed look-up), else undefined. */
  private async findScopeMap(r: RegistryRecord, name: string): Promise<ScopeMap | undefined> {
    const system = SYSTEM_SCOPE_MAPS.find((s) => s.name.toLowerCase() === name.toLowerCase());
    if (system) return system;
    const row = await this.db.get<MapRow>('SELECT name, description, actions, created_at FROM scope_maps WHERE registry_id = ? AND name_lower = ?', [r.id, name.toLowerCase()]);
    return row && toMap(row);
  }

  scopeMapId(r: RegistryRecord, name: string): string {
    return `${armId(r)}/scopeMaps/${name}`;
  }

  async createOrUpdateScopeMap(r: RegistryRecord, name: string, actions: string[], description?: string): Promise<{ map: ScopeMap; created: boolean }> {
    if (!/^[a-zA-Z0-9-_]{5,50}$/.test(name)) throw invalid('InvalidScopeMapName', `Scope map name '${name}' is invalid: use 5-50 letters, digits, '-' or '_'.`);
    if (isSystemMap(name)) throw invalid('CannotModifySystemScopeMap', `'${name}' is a system scope map and cannot be changed.`);
    if (actions.length === 0) throw invalid('InvalidScopeMapAction', 'A scope map needs at least one action: --repository REPO ACTION...');
    const norm = JSON.stringify([...new Map(actions.map(parseScopeAction).map((a) => [a.toLowerCase(), a])).values()]);
    // Insert, or (the map exists, perhaps since a moment ago) update: no read-then-write race.
    const ins = await this.db.run(`INSERT INTO scope_maps (id, registry_id, name, name_lower, description, actions, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (registry_id, name_lower) DO NOTHING`, [randomUUID(), r.id, name, name.toLowerCase(), description ?? '', norm, nowIso()]);
    if (ins.changes === 0) {
      await this.db.run('UPDATE scope_maps SET actions = ?, description = COALESCE(?, description) WHERE registry_id = ? AND name_lower = ?',
        [norm, description ?? null, r.id, name.toLowerCase()]);
    }
    return { map: await this.getScopeMap(r, name), created: ins.changes > 0 };
  }

  async deleteScopeMap(r: RegistryRecord, name: string): Promise<void> {
    if (isSystemMap(name)) throw invalid('CannotModifySystemScopeMap', `'${name}' is a system scope map and cannot be deleted.`);
    const res = await this.db.run('DELETE FROM scope_maps WHERE registry_id = ? AND name_lower = ?', [r.id, name.toLowerCase()]);
    if (res.changes === 0) throw notFound('ResourceNotFound', `The scope map '${name}' could not be found in registry '${r.name}'.`);
  }

  // ---- tokens
  private tokenRow(registryId: string, name: string): Promise<TokenRow | undefined> {
    return this.db.get<TokenRow>('SELECT * FROM registry_tokens WHERE registry_id = ? AND name_lower = ?', [registryId, name.toLowerCase()]);
  }

  private async withPasswords(row: TokenRow): Promise<RegistryToken> {
    return toToken(row, await this.db.all<PasswordRow>(TOKEN_PASSWORDS, [row.id]));
  }

  async listTokens(r: RegistryRecord): Promise<RegistryToken[]> {
    const rows = await this.db.all<TokenRow>('SELECT * FROM registry_tokens WHERE registry_id = ? ORDER BY name_lower', [r.id]);
    return Promise.all(rows.map((x) => this.withPasswords(x)));
  }

  async getToken(r: RegistryRecord, name: string): Promise<RegistryToken> {
    const row = await this.tokenRow(r.id, name);
    if (!row) throw notFound('ResourceNotFound', `The token '${name}' could not be found in registry '${r.name}'.`);
    return this.withPasswords(row);
  }

  async tokenById(id: string): Promise<RegistryToken | undefined> {
    const row = await this.db.get<TokenRow>('SELECT * FROM registry_tokens WHERE id = ?', [id]);
    return row ? this.withPasswords(row) : undefined;
  }

  /** The token as it is now, without its passwords (registry auth, per request): one indexed look-up. */
  async tokenSummary(id: string): Promise<TokenSummary | undefined> {
    const row = await this.db.get<TokenRow>('SELECT * FROM registry_tokens WHERE id = ?', [id]);
    return row && toSummary(row);
  }

  async createOrUpdateToken(r: RegistryRecord, name: string, opts: { scopeMap?: string; status?: TokenStatus }): Promise<{ token: RegistryToken; created: boolean }> {
    if (!TOKEN_NAME.test(name)) throw invalid('InvalidTokenName', `Token name '${name}' is invalid: use 5-50 letters, digits, '-' or '_'.`);
    if (opts.status !== undefined && opts.status !== 'enabled' && opts.status !== 'disabled') throw invalid('InvalidTokenStatus', `Token status '${String(opts.status)}' is invalid: use enabled or disabled.`);
    const existing = await this.tokenRow(r.id, name);
    const mapName = opts.scopeMap !== undefined ? (await this.getScopeMap(r, opts.scopeMap)).name : undefined;
    if (!existing && !mapName) throw invalid('ScopeMapRequired', 'A token needs a scope map: --scope-map NAME, or --repository REPO ACTION... to make one.');
    // Insert, or (the token exists, perhaps since a moment ago) update: no read-then-write race.
    const ins = existing ? { changes: 0 } : await this.db.run(`INSERT INTO registry_tokens (id, registry_id, name, name_lower, scope_map, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (registry_id, name_lower) DO NOTHING`, [randomUUID(), r.id, name, name.toLowerCase(), mapName!, opts.status ?? 'enabled', nowIso()]);
    if (ins.changes === 0) {
      await this.db.run('UPDATE registry_tokens SET scope_map = COALESCE(?, scope_map), status = COALESCE(?, status) WHERE registry_id = ? AND name_lower = ?',
        [mapName ?? null, opts.status ?? null, r.id, name.toLowerCase()]);
    }
    return { token: await this.getToken(r, name), created: ins.changes > 0 };
  }

  async deleteToken(r: RegistryRecord, name: string): Promise<void> {
    const res = await this.db.run('DELETE FROM registry_tokens WHERE registry_id = ? AND name_lower = ?', [r.id, name.toLowerCase()]);
    if (res.changes === 0) throw notFound('ResourceNotFound', `The token '${name}' could not be found in registry '${r.name}'.`);
  }

  /** Generates one or both passwords; returns them in clear once (they are stored hashed). */
  async generateCredentials(r: RegistryRecord, tokenName: string, opts: { name?: string; expiry?: string }): Promise<{ username: string; passwords: Array<{ name: string; value: string; expiry: string | null; creationTime: string }> }> {
    const token = await this.getToken(r, tokenName);
    const names = opts.name ? [opts.name] : [...TOKEN_PASSWORD_NAMES];
    for (const n of names) if (!(TOKEN_PASSWORD_NAMES as readonly string[]).includes(n)) throw invalid('InvalidPasswordName', `Password name '${n}' is invalid: use password1 or password2.`);
    let expiry: string | null = null;
    if (opts.expiry) {
      const t = Date.parse(opts.expiry);
      if (Number.isNaN(t)) throw invalid('InvalidExpiry', `Expiry '${opts.expiry}' is not a date and time (use ISO 8601, e.g. 2030-01-31T00:00:00Z).`);
      if (t <= Date.now()) throw invalid('InvalidExpiry', `Expiry '${opts.expiry}' is in the past.`);
      expiry = new Date(t).toISOString();
    }
    const out: Array<{ name: string; value: string; expiry: string | null; creationTime: string; hash: string }> = [];
    for (const n of names) {
      const value = generateSecret(32);
      const created = nowIso();
      out.push({ name: n, value, expiry, creationTime: created, hash: await hashSecret(value) });
    }
    // Hashed first (scrypt is slow), then stored together.
    await this.db.transaction(async (tx) => {
      for (const p of out) {
        await tx.run('INSERT INTO token_passwords (token_id, name, hash, expiry, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_id, name) DO UPDATE SET hash = excluded.hash, expiry = excluded.expiry, created_at = excluded.created_at',
          [token.id, p.name, p.hash, p.expiry, p.creationTime]);
      }
    });
    return { username: token.name, passwords: out.map(({ hash: _hash, ...p }) => p) };
  }

  async deletePassword(r: RegistryRecord, tokenName: string, name: string): Promise<void> {
    const token = await this.getToken(r, tokenName);
    await this.db.run('DELETE FROM token_passwords WHERE token_id = ? AND name = ?', [token.id, name]);
  }

  /** Checks a token's username/password for registry `r`; undefined when no such token exists. */
  async checkPassword(r: RegistryRecord, username: string, password: string): Promise<TokenCheck | undefined> {
    const row = await this.tokenRow(r.id, username);
    if (!row) return undefined;
    const hashes = await this.db.all<PasswordRow>(TOKEN_PASSWORDS, [row.id]);
    const token = toToken(row, hashes);
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
  async tokenActions(r: RegistryRecord, token: Pick<RegistryToken, 'scopeMap'>): Promise<string[]> {
    return (await this.findScopeMap(r, token.scopeMap))?.actions ?? [];
  }
}
