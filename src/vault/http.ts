// The Key Vault secrets data plane (REST api-version 7.4 and later) of one vault, on its own port:
// challenge-based Bearer auth, RBAC data actions, SecretBundle JSON and KeyVaultError bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { BerthError, httpStatus, type ErrorKind } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { IdentityService } from '../identity/service.js';
import type { Principal } from '../identity/principals.js';
import { policiesAllow, vaultArmId, type SecretPermission, type VaultRecord, type Vaults } from './vaults.js';
import { corsHeaders, preflight } from '../lib/cors.js';
import { recoveryLevel, type DeletedSecret, type Page, type SecretVersion, type Secrets } from './secrets.js';
import { isKnownAction } from '../identity/actions.js';
import { matchPath, secretRoutes, type SecretRoute } from './secret-routes.js';

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

/** A KeyVaultError: its kind gives the status (lib/errors.ts); `inner` is the innererror code. */
const kvError = (kind: ErrorKind, code: 'BadParameter' | 'Unauthorized' | 'Forbidden' | 'VaultNotFound' | 'InternalServerError', message: string, inner?: string) =>
  new BerthError(kind, code, message, inner);

/**
 * Key Vault's api-versions: `7.x[-preview[.n]]` from 7.0 (az 2.45's SDK sends 7.3) and the date forms the
 * service took up after 7.6 (`2025-07-01`, `YYYY-MM-DD-preview`), which current SDKs send. The secrets
 * surface Berth serves is the same in all of them.
 */
export function checkApiVersion(q: URLSearchParams): void {
  const v = q.get('api-version');
  if (!v) throw kvError('invalid', 'BadParameter', "The 'api-version' query parameter is missing: use api-version=7.4 or later.");
  const dotted = /^(\d+)\.(\d+)(-preview(\.\d+)?)?$/.exec(v);
  const dated = /^(\d{4})-(\d{2})-(\d{2})(-preview)?$/.exec(v);
  const ok = dotted ? Number(dotted[1]) === 7 : dated ? Number(dated[1]) >= 2025 && Number(dated[2]) >= 1 && Number(dated[2]) <= 12 && Number(dated[3]) >= 1 && Number(dated[3]) <= 31 : false;
  if (!ok) {
    throw kvError('invalid', 'BadParameter', `The specified version (${v}) is not recognized: use a Key Vault api-version such as 7.4, 7.6 or 2025-07-01.`);
  }
}

export class VaultHttp {
  private readonly routes: readonly SecretRoute[];

  constructor(private readonly d: VaultHttpDeps) {
    this.routes = secretRoutes(d.secrets, this);
    // Fail closed at start-up: every operation names a data action of the catalogue.
    const bad = this.routes.filter((r) => !r.action || !isKnownAction(r.action)).map((r) => `${r.method} ${r.path} (${r.action || 'no action'})`);
    if (bad.length) throw new Error(`Vault routes without a known action: ${bad.join(', ')}`);
  }

  /** The data plane's routes as declared, for the route-listing test. */
  declaredRoutes(): Array<{ method: string; path: string; action: string; scope: string }> {
    return this.routes.map((r) => ({ method: r.method, path: r.path, action: r.action, scope: r.scope }));
  }

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

  list<T>(v: VaultRecord, path: string, q: URLSearchParams, p: Page<T>, shape: (x: T) => unknown) {
    let nextLink: string | null = null;
    if (p.next) {
      const max = q.get('maxresults');
      nextLink = `${this.base(v)}${path}?api-version=${encodeURIComponent(q.get('api-version')!)}&$skiptoken=${p.next}${max ? `&maxresults=${encodeURIComponent(max)}` : ''}`;
    }
    return { value: p.items.map(shape), nextLink };
  }

  private match(method: string, parts: string[]): { route: SecretRoute; params: Record<string, string | undefined> } | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const params = matchPath(route.path, parts);
      if (params) return { route, params };
    }
    return undefined;
  }

  /** `find`: the vault the request addresses (by its port or its host name). */
  async handle(req: IncomingMessage, res: ServerResponse, find: () => Promise<VaultRecord | undefined>): Promise<void> {
    let vault: VaultRecord | undefined;
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
    const fail = (e: BerthError, headers: Record<string, string> = {}) =>
      send(httpStatus(e), { error: { code: e.code, message: e.message, ...(e.inner ? { innererror: { code: e.inner } } : {}) } }, headers);

    const pre = preflight(req, origins);
    if (pre) return send(pre.status, undefined, pre.headers);
    try {
      vault = await find();
      if (!vault) throw kvError('notFound', 'VaultNotFound', 'This vault no longer exists.');
      // Authenticate first, before looking at the body: the SDK's first request carries no token and no body.
      const resource = challengeResource(req.headers.host, vault.name);
      const principal = await this.authenticate(req, resource);
      if (principal instanceof BerthError) {
        return fail(principal, { 'WWW-Authenticate': `Bearer authorization="${this.d.identityBase()}/${this.d.identity.ids.tenantId}", resource="${resource}"` });
      }
      const q = url.searchParams;
      checkApiVersion(q);
      const parts = url.pathname.replace(/^\/+/, '').split('/').map(decodeURIComponent);
      const m = this.match(req.method ?? 'GET', parts);
      if (!m) throw kvError(parts[0] === 'secrets' || parts[0] === 'deletedsecrets' ? 'unsupported' : 'notFound', 'BadParameter', `The operation ${req.method} ${url.pathname} is not supported by this vault.`);
      await this.authorize(principal, vault, m.route, m.params.name);
      const [status, body] = await m.route.run({ vault, params: m.params, query: q, body: () => readJson(req) });
      send(status, body);
    } catch (e) {
      if (e instanceof BerthError) return fail(e);
      this.d.log.error('vault internal error', { vault: vault?.name, path: url.pathname, error: String((e as Error)?.stack ?? e) });
      return fail(kvError('internal', 'InternalServerError', 'Internal error; see the server log.'));
    } finally {
      if (!req.readableEnded) req.resume();
    }
  }

  /** The caller, or an Unauthorized error whose answer carries the challenge. */
  private async authenticate(req: IncomingMessage, resource: string): Promise<Principal | BerthError> {
    const h = req.headers.authorization;
    let message = 'AKV10000: Request is missing a Bearer or PoP token.';
    if (h && /^bearer\s+/i.test(h)) {
      const p = await this.d.identity.verifyAccessToken(h.replace(/^bearer\s+/i, '').trim(), [...AUDIENCES, resource, `${resource}/`]);
      if (p) return p;
      message = `AKV10022: Invalid audience, issuer, signature or expired token: the access token must be issued by ${this.d.identity.issuer()} for resource ${resource}.`;
    }
    return kvError('unauthenticated', 'Unauthorized', message);
  }

  private async authorize(p: Principal, v: VaultRecord, r: SecretRoute, secret: string | undefined): Promise<void> {
    const scope = vaultArmId(v);
    if (!v.enableRbacAuthorization) {
      const perm = POLICY_PERMISSION[r.action.slice(ACTION.length + 1)]!;
      if (policiesAllow(v.accessPolicies, p.id, perm)) return;
      throw kvError('forbidden', 'Forbidden',
        `The user, group or application 'appid=${p.appId ?? p.id};oid=${p.id};iss=${this.d.identity.issuer()}' does not have secrets ${perm} permission on key vault '${v.name};location=${v.location}'. ` +
        `For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287 (Berth: az keyvault set-policy -n ${v.name} --object-id ${p.id} --secret-permissions ${perm})`, 'AccessDenied');
    }
    if (await this.d.identity.can(p, r.action, scope, true)) return;
    const resource = `${scope}${r.scope === 'secret' && secret ? `/secrets/${secret}` : ''}`.toLowerCase();
    throw kvError('forbidden', 'Forbidden',
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
    if (size > BODY_LIMIT) throw kvError('tooLarge', 'BadParameter', `The request body is larger than ${BODY_LIMIT} bytes.`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw kvError('invalid', 'BadParameter', 'The request body is empty: send a JSON object.');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw kvError('invalid', 'BadParameter', 'The request body is not valid JSON.');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw kvError('invalid', 'BadParameter', 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}
