// The Key Vault secrets data plane (REST api-version 7.4 and later) of one vault, on its own port:
// challenge-based Bearer auth, RBAC data actions, SecretBundle JSON and KeyVaultError bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { IdentityService } from '../identity/service.js';
import type { Principal } from '../identity/principals.js';
import { policiesAllow, vaultArmId, type SecretPermission, type VaultRecord, type Vaults } from './vaults.js';
import { corsHeaders, preflight } from '../lib/cors.js';
import { recoveryLevel, type DeletedSecret, type Page, type SecretVersion, type Secrets } from './secrets.js';

/** The audience of vault tokens; the challenge names it as `resource`. */
export const VAULT_RESOURCE = 'https://vault.azure.net';
const AUDIENCES = [VAULT_RESOURCE, `${VAULT_RESOURCE}/`];

/** The access-policy permission each data action needs on a vault that does not use RBAC. */
const POLICY_PERMISSION: Record<string, SecretPermission> = {
  'readMetadata/action': 'list', 'getSecret/action': 'get', 'setSecret/action': 'set', 'update/action': 'set',
  delete: 'delete', 'recover/action': 'recover', 'purge/action': 'purge', 'backup/action': 'backup', 'restore/action': 'restore',
};

/**
 * The challenge's `resource` for a request addressed to `host`. A vault reached by name under a DNS
 * suffix (`<vault>.vault.localhost:8080`) names the suffix (`https://vault.localhost:8080`): the Key
 * Vault SDKs (and so az) accept a resource only when the vault's host is a subdomain of it. A vault on
 * its own port names Azure's resource (SDKs there need their challenge-verification option off).
 */
export function challengeResource(host: string | undefined, vaultName: string): string {
  const h = (host ?? '').toLowerCase();
  const prefix = `${vaultName.toLowerCase()}.`;
  return h.startsWith(prefix) && h.length > prefix.length ? `https://${h.slice(prefix.length)}` : VAULT_RESOURCE;
}
const ACTION = 'Microsoft.KeyVault/vaults/secrets';
const BODY_LIMIT = 256 * 1024;
const STATUS: Record<BerthError['kind'], number> = { invalid: 400, unauthenticated: 401, forbidden: 403, notFound: 404, conflict: 409, internal: 500 };

export interface VaultHttpDeps {
  vaults: Vaults;
  secrets: Secrets;
  identity: IdentityService;
  log: Logger;
  /** Base URL of Berth's identity endpoint (the challenge's authorization URL is <base>/<tenant>). */
  identityBase: () => string;
  /** Origins whose pages may call vaults from a browser (Berth's portal). */
  browserOrigins?: () => readonly string[];
}

interface Route {
  /** The RBAC data action the operation needs. */
  action: string;
  secret?: string;
  run: (v: VaultRecord, body: () => Promise<Record<string, unknown>>, q: URLSearchParams) => Promise<[number, unknown?]> | [number, unknown?];
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly inner?: string) {
    super(message);
  }
}

/**
 * Key Vault's api-versions: `7.x[-preview[.n]]` from 7.0 (az 2.45's SDK sends 7.3) and the date forms the
 * service took up after 7.6 (`2025-07-01`, `YYYY-MM-DD-preview`), which current SDKs send. The secrets
 * surface Berth serves is the same in all of them.
 */
export function checkApiVersion(q: URLSearchParams): void {
  const v = q.get('api-version');
  if (!v) throw new HttpError(400, 'BadParameter', "The 'api-version' query parameter is missing: use api-version=7.4 or later.");
  const dotted = /^(\d+)\.(\d+)(-preview(\.\d+)?)?$/.exec(v);
  const dated = /^(\d{4})-(\d{2})-(\d{2})(-preview)?$/.exec(v);
  const ok = dotted ? Number(dotted[1]) === 7 : dated ? Number(dated[1]) >= 2025 && Number(dated[2]) >= 1 && Number(dated[2]) <= 12 && Number(dated[3]) >= 1 && Number(dated[3]) <= 31 : false;
  if (!ok) {
    throw new HttpError(400, 'BadParameter', `The specified version (${v}) is not recognized: use a Key Vault api-version such as 7.4, 7.6 or 2025-07-01.`);
  }
}

export class VaultHttp {
  constructor(private readonly d: VaultHttpDeps) {}

  private base(v: VaultRecord): string {
    return this.d.vaults.vaultUri(v).replace(/\/+$/, '');
  }

  private attributes(v: VaultRecord, s: SecretVersion) {
    return {
      enabled: s.enabled, ...(s.nbf !== null ? { nbf: s.nbf } : {}), ...(s.exp !== null ? { exp: s.exp } : {}),
      created: s.created, updated: s.updated, recoveryLevel: recoveryLevel(v), recoverableDays: v.softDeleteRetentionInDays,
    };
  }

  /** SecretBundle (with `value` when the operation returns it) or SecretItem (`versioned` false: id without version). */
  bundle(v: VaultRecord, s: SecretVersion, versioned = true) {
    return {
      ...(s.value !== undefined ? { value: s.value } : {}),
      id: `${this.base(v)}/secrets/${s.name}${versioned ? `/${s.version}` : ''}`,
      ...(s.contentType !== null ? { contentType: s.contentType } : {}),
      attributes: this.attributes(v, s),
      ...(s.tags !== null ? { tags: s.tags } : {}),
    };
  }

  deleted(v: VaultRecord, s: DeletedSecret, versioned = true) {
    return { recoveryId: `${this.base(v)}/deletedsecrets/${s.name}`, deletedDate: s.deletedDate, scheduledPurgeDate: s.scheduledPurgeDate, ...this.bundle(v, s, versioned) };
  }

  private list<T>(v: VaultRecord, path: string, q: URLSearchParams, p: Page<T>, shape: (x: T) => unknown) {
    let nextLink: string | null = null;
    if (p.next) {
      const max = q.get('maxresults');
      nextLink = `${this.base(v)}${path}?api-version=${encodeURIComponent(q.get('api-version')!)}&$skiptoken=${p.next}${max ? `&maxresults=${encodeURIComponent(max)}` : ''}`;
    }
    return { value: p.items.map(shape), nextLink };
  }

  private route(method: string, parts: string[]): Route | undefined {
    const s = this.d.secrets;
    const paging = (q: URLSearchParams) => ({ maxresults: q.get('maxresults') ?? undefined, skiptoken: q.get('$skiptoken') ?? undefined });
    const [coll, name, rest, extra] = parts;
    if (coll === 'secrets') {
      if (name === undefined) {
        if (method === 'GET') return { action: `${ACTION}/readMetadata/action`, run: (v, _b, q) => [200, this.list(v, '/secrets', q, s.list(v, paging(q)), (x) => this.bundle(v, x, false))] };
        return undefined;
      }
      if (rest === 'versions' && extra === undefined && method === 'GET') {
        return { action: `${ACTION}/readMetadata/action`, secret: name,
          run: (v, _b, q) => [200, this.list(v, `/secrets/${name}/versions`, q, s.listVersions(v, name, paging(q)), (x) => this.bundle(v, x))] };
      }
      if (extra !== undefined) return undefined;
      const version = rest === '' ? undefined : rest;
      switch (method) {
        case 'PUT':
          if (rest !== undefined) return undefined;
          return { action: `${ACTION}/setSecret/action`, secret: name, run: async (v, body) => [200, this.bundle(v, s.set(v, name, await body()))] };
        case 'GET':
          return { action: `${ACTION}/getSecret/action`, secret: name, run: (v) => [200, this.bundle(v, s.get(v, name, version))] };
        case 'PATCH':
          return { action: `${ACTION}/update/action`, secret: name, run: async (v, body) => [200, this.bundle(v, s.update(v, name, version, await body()))] };
        case 'DELETE':
          if (rest !== undefined) return undefined;
          return { action: `${ACTION}/delete`, secret: name, run: (v) => [200, this.deleted(v, s.delete(v, name))] };
      }
      return undefined;
    }
    if (coll === 'deletedsecrets') {
      if (name === undefined) {
        if (method === 'GET') return { action: `${ACTION}/readMetadata/action`, run: (v, _b, q) => [200, this.list(v, '/deletedsecrets', q, s.listDeleted(v, paging(q)), (x) => this.deleted(v, x, false))] };
        return undefined;
      }
      if (rest === 'recover' && extra === undefined && method === 'POST') {
        return { action: `${ACTION}/recover/action`, secret: name, run: (v) => [200, this.bundle(v, s.recover(v, name))] };
      }
      if (rest !== undefined && rest !== '') return undefined;
      if (method === 'GET') return { action: `${ACTION}/readMetadata/action`, secret: name, run: (v) => [200, this.deleted(v, s.getDeleted(v, name))] };
      if (method === 'DELETE') return { action: `${ACTION}/purge/action`, secret: name, run: (v) => { s.purge(v, name); return [204]; } };
    }
    return undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse, vault: VaultRecord | undefined): Promise<void> {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://vault.invalid');
    const origins = this.d.browserOrigins?.() ?? [];
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      const h: Record<string, string> = {
        'Cache-Control': 'no-cache', Pragma: 'no-cache', Expires: '-1', 'x-ms-request-id': requestId,
        'x-ms-keyvault-service-version': '1.9.0.0', ...corsHeaders(req, origins), ...headers,
      };
      const cid = req.headers['x-ms-client-request-id'];
      if (typeof cid === 'string') h['x-ms-client-request-id'] = cid;
      if (body === undefined) {
        res.writeHead(status, h).end();
      } else {
        const text = JSON.stringify(body);
        res.writeHead(status, { ...h, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) }).end(text);
      }
      this.d.log.info('vault request', { vault: vault?.name, method: req.method, path: url.pathname, status });
    };
    const fail = (e: HttpError, headers: Record<string, string> = {}) =>
      send(e.status, { error: { code: e.code, message: e.message, ...(e.inner ? { innererror: { code: e.inner } } : {}) } }, headers);

    const pre = preflight(req, origins);
    if (pre) return send(pre.status, undefined, pre.headers);
    try {
      if (!vault) throw new HttpError(404, 'VaultNotFound', 'This vault no longer exists.');
      // Authenticate first, before looking at the body: the SDK's first request carries no token and no body.
      const resource = challengeResource(req.headers.host, vault.name);
      const principal = await this.authenticate(req, resource);
      if (principal instanceof HttpError) {
        return fail(principal, { 'WWW-Authenticate': `Bearer authorization="${this.d.identityBase()}/${this.d.identity.ids.tenantId}", resource="${resource}"` });
      }
      const q = url.searchParams;
      checkApiVersion(q);
      const parts = url.pathname.replace(/^\/+/, '').split('/').map(decodeURIComponent);
      const r = this.route(req.method ?? 'GET', parts);
      if (!r) throw new HttpError(parts[0] === 'secrets' || parts[0] === 'deletedsecrets' ? 405 : 404, 'BadParameter', `The operation ${req.method} ${url.pathname} is not supported by this vault.`);
      this.authorize(principal, vault, r);
      const [status, body] = await r.run(vault, () => readJson(req), q);
      send(status, body);
    } catch (e) {
      if (e instanceof HttpError) return fail(e);
      if (e instanceof BerthError) return fail(new HttpError(STATUS[e.kind], e.code, e.message));
      this.d.log.error('vault internal error', { vault: vault?.name, path: url.pathname, error: String((e as Error)?.stack ?? e) });
      return fail(new HttpError(500, 'InternalServerError', 'Internal error; see the server log.'));
    } finally {
      if (!req.readableEnded) req.resume();
    }
  }

  /** The caller, or an Unauthorized error whose answer carries the challenge. */
  private async authenticate(req: IncomingMessage, resource: string): Promise<Principal | HttpError> {
    const h = req.headers.authorization;
    let message = 'AKV10000: Request is missing a Bearer or PoP token.';
    if (h && /^bearer\s+/i.test(h)) {
      const p = await this.d.identity.verifyAccessToken(h.replace(/^bearer\s+/i, '').trim(), [...AUDIENCES, resource, `${resource}/`]);
      if (p) return p;
      message = `AKV10022: Invalid audience, issuer, signature or expired token: the access token must be issued by ${this.d.identity.issuer()} for resource ${resource}.`;
    }
    return new HttpError(401, 'Unauthorized', message);
  }

  private authorize(p: Principal, v: VaultRecord, r: Route): void {
    const scope = vaultArmId(v);
    if (!v.enableRbacAuthorization) {
      const perm = POLICY_PERMISSION[r.action.slice(ACTION.length + 1)]!;
      if (policiesAllow(v.accessPolicies, p.id, perm)) return;
      throw new HttpError(403, 'Forbidden',
        `The user, group or application 'appid=${p.appId ?? p.id};oid=${p.id};iss=${this.d.identity.issuer()}' does not have secrets ${perm} permission on key vault '${v.name};location=${v.location}'. ` +
        `For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287 (Berth: az keyvault set-policy -n ${v.name} --object-id ${p.id} --secret-permissions ${perm})`, 'AccessDenied');
    }
    if (this.d.identity.can(p, r.action, scope, true)) return;
    const resource = `${scope}${r.secret ? `/secrets/${r.secret}` : ''}`.toLowerCase();
    throw new HttpError(403, 'Forbidden',
      'Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n' +
      `Caller: appid=${p.appId ?? p.id};oid=${p.id};iss=${this.d.identity.issuer()}\r\nAction: '${r.action}'\r\nResource: '${resource}'\r\n` +
      `Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: ${v.name};location=${v.location}\r\n`, 'ForbiddenByRbac');
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > BODY_LIMIT) throw new HttpError(413, 'BadParameter', `The request body is larger than ${BODY_LIMIT} bytes.`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw new HttpError(400, 'BadParameter', 'The request body is empty: send a JSON object.');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'BadParameter', 'The request body is not valid JSON.');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'BadParameter', 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}
