// The Key Vault secrets data plane as data: each operation's method, path, RBAC data action and scope
// (the vault, or one secret in it), first match wins. vault/http.ts matches, authorizes and runs them.
import type { VaultRecord } from './vaults.js';
import type { DeletedSecret, Page, SecretVersion, Secrets } from './secrets.js';

const ACTION = 'Microsoft.KeyVault/vaults/secrets';

export type VaultMethod = 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST';

export interface SecretRouteContext {
  vault: VaultRecord;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
  body: () => Promise<Record<string, unknown>>;
}

export interface SecretRoute {
  method: VaultMethod;
  /**
   * Segments: a literal, `:name` (any one segment), `:name?` (optional; empty counts as absent); a
   * trailing `/` allows one empty segment at the end.
   */
  path: string;
  /** The RBAC data action the operation needs. */
  action: string;
  /** What the authorization message names: the vault, or the secret `:name` in it. */
  scope: 'vault' | 'secret';
  run(c: SecretRouteContext): Promise<[number, unknown?]> | [number, unknown?];
}

/** How the routes shape answers (SecretBundle, SecretItem, DeletedSecretBundle, a page). */
export interface SecretShapes {
  bundle(v: VaultRecord, s: SecretVersion, versioned?: boolean): unknown;
  deleted(v: VaultRecord, s: DeletedSecret, versioned?: boolean): unknown;
  list<T>(v: VaultRecord, path: string, q: URLSearchParams, p: Page<T>, shape: (x: T) => unknown): unknown;
}

export function secretRoutes(s: Secrets, sh: SecretShapes): SecretRoute[] {
  const paging = (q: URLSearchParams) => ({ maxresults: q.get('maxresults') ?? undefined, skiptoken: q.get('$skiptoken') ?? undefined });
  const name = (c: SecretRouteContext) => c.params.name!;
  return [
    { method: 'GET', path: '/secrets', action: `${ACTION}/readMetadata/action`, scope: 'vault',
      run: async ({ vault: v, query: q }) => [200, sh.list(v, '/secrets', q, await s.list(v, paging(q)), (x) => sh.bundle(v, x, false))] },
    { method: 'GET', path: '/secrets/:name/versions', action: `${ACTION}/readMetadata/action`, scope: 'secret',
      run: async (c) => [200, sh.list(c.vault, `/secrets/${name(c)}/versions`, c.query, await s.listVersions(c.vault, name(c), paging(c.query)), (x) => sh.bundle(c.vault, x))] },
    { method: 'PUT', path: '/secrets/:name', action: `${ACTION}/setSecret/action`, scope: 'secret',
      run: async (c) => [200, sh.bundle(c.vault, await s.set(c.vault, name(c), await c.body()))] },
    { method: 'GET', path: '/secrets/:name/:version?', action: `${ACTION}/getSecret/action`, scope: 'secret',
      run: async (c) => [200, sh.bundle(c.vault, await s.get(c.vault, name(c), c.params.version))] },
    { method: 'PATCH', path: '/secrets/:name/:version?', action: `${ACTION}/update/action`, scope: 'secret',
      run: async (c) => [200, sh.bundle(c.vault, await s.update(c.vault, name(c), c.params.version, await c.body()))] },
    { method: 'DELETE', path: '/secrets/:name', action: `${ACTION}/delete`, scope: 'secret',
      run: async (c) => [200, sh.deleted(c.vault, await s.delete(c.vault, name(c)))] },
    { method: 'GET', path: '/deletedsecrets', action: `${ACTION}/readMetadata/action`, scope: 'vault',
      run: async ({ vault: v, query: q }) => [200, sh.list(v, '/deletedsecrets', q, await s.listDeleted(v, paging(q)), (x) => sh.deleted(v, x, false))] },
    { method: 'POST', path: '/deletedsecrets/:name/recover', action: `${ACTION}/recover/action`, scope: 'secret',
      run: async (c) => [200, sh.bundle(c.vault, await s.recover(c.vault, name(c)))] },
    { method: 'GET', path: '/deletedsecrets/:name/', action: `${ACTION}/readMetadata/action`, scope: 'secret',
      run: async (c) => [200, sh.deleted(c.vault, await s.getDeleted(c.vault, name(c)))] },
    { method: 'DELETE', path: '/deletedsecrets/:name/', action: `${ACTION}/purge/action`, scope: 'secret',
      run: async (c) => { await s.purge(c.vault, name(c)); return [204]; } },
  ];
}

/** The params of `parts` (the decoded path segments) under `pattern`, or undefined when it does not match. */
export function matchPath(pattern: string, parts: string[]): Record<string, string | undefined> | undefined {
  const trailing = pattern.endsWith('/');
  const segs = pattern.replace(/^\/+|\/+$/g, '').split('/');
  const rest = trailing && parts.length === segs.length + 1 && parts[parts.length - 1] === '' ? parts.slice(0, -1) : parts;
  const params: Record<string, string | undefined> = {};
  for (let i = 0; i < Math.max(segs.length, rest.length); i++) {
    const seg = segs[i];
    const part = rest[i];
    if (seg === undefined) return undefined;
    if (seg.startsWith(':') && seg.endsWith('?')) {
      params[seg.slice(1, -1)] = part === '' ? undefined : part;
    } else if (seg.startsWith(':')) {
      if (part === undefined) return undefined;
      params[seg.slice(1)] = part;
    } else if (part !== seg) {
      return undefined;
    }
  }
  return params;
}
