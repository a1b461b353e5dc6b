// A managed identity (user- or system-assigned) as a pull credential, the way ACI pulls from ACR with
// `imageRegistryCredentials: [{server, identity}]`: an Entra access token for the management audience
// from the identity's token provider → the registry's `/oauth2/exchange` → an ACR refresh token, used
// with the null-GUID user name. The refresh token is cached until shortly before it expires; parallel
// resolves share one exchange; invalidate() drops it.
import type { Dispatcher } from 'undici';

// undici is loaded on the first exchange, not at import: importing it installs its Agent behind Node's
// global fetch for the whole process, and the server imports this module at start-up.
const request: typeof import('undici').request = async (...args) => (await import('undici')).request(...args);
import { KeychainError, formatMs, type Keychain, type KeychainTarget, type RegistryCredential } from './keychain.js';
import { serverKey } from './server-key.js';
import { exchangeAccessToken, exchangeUrl, type ExchangeAnswer } from './acr-exchange.js';

export const NULL_GUID_USER = '00000000-0000-0000-0000-000000000000';
/** The audience ACR's exchange accepts (what `az acr login` sends): Azure Resource Manager. */
export const ARM_RESOURCE = 'https://management.core.windows.net/';

export interface AccessToken {
  token: string;
  expiresOn?: Date;
}

/** Gets an Entra-style access token for `resource` on behalf of the identity. */
export type AccessTokenProvider = (resource: string, signal?: AbortSignal) => Promise<AccessToken>;

export interface ManagedIdentityOptions {
  /** The registry login server the identity is for. */
  server: string;
  /** How the identity is named in the spec (ARM id, client id or 'system'), for diagnoses. */
  identity: string;
  getToken: AccessTokenProvider;
  tenant?: string;
  /** Default ARM_RESOURCE. */
  resource?: string;
  /** Scheme of the registry; default http for loopback hosts, https otherwise. */
  scheme?: 'http' | 'https';
  /** HTTP dispatcher for the exchange (e.g. one that trusts Berth's local CA); default undici's global one. */
  dispatcher?: Dispatcher;
  /** How long the exchange may take to answer; default 30 s. */
  timeoutMs?: number;
  /** Renew this long before the refresh token expires; default 5 minutes. */
  refreshMarginMs?: number;
  now?: () => number;
}

interface Cached { refreshToken: string; expiresAt: Date }

export class ManagedIdentityKeychain implements Keychain {
  readonly description: string;
  private readonly server: string;
  private cached: Cached | undefined;
  private inflight: Promise<Cached> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: ManagedIdentityOptions) {
    this.server = serverKey(opts.server);
    this.description = `managed identity ${opts.identity} for ${this.server}`;
    this.now = opts.now ?? Date.now;
  }

  async resolve(target: KeychainTarget): Promise<RegistryCredential | undefined> {
    if (serverKey(target.registry) !== this.server) return undefined;
    const margin = this.opts.refreshMarginMs ?? 5 * 60_000;
    let c = this.cached;
    if (!c || c.expiresAt.getTime() - margin <= this.now()) {
      // One exchange for every resolve that arrives while it runs (so no one caller's signal cancels it).
      this.inflight ??= this.exchange().finally(() => { this.inflight = undefined; });
      c = await this.inflight;
      this.cached = c;
    }
    return { kind: 'refreshToken', refreshToken: c.refreshToken, username: NULL_GUID_USER, source: this.description, expiresAt: c.expiresAt };
  }

  invalidate(target: KeychainTarget): void {
    if (serverKey(target.registry) === this.server) this.cached = undefined;
  }

  private async exchange(): Promise<Cached> {
    const fail = (what: string) => new KeychainError(this.description, `${this.description}: ${what}`, 'identity');
    const resource = this.opts.resource ?? ARM_RESOURCE;
    let aad: AccessToken;
    try {
      aad = await this.opts.getToken(resource);
    } catch (e) {
      throw fail(`could not get an access token for ${resource}: ${(e as Error).message}`);
    }
    if (!aad?.token) throw fail(`the identity's token endpoint returned no access token for ${resource}`);
    const url = exchangeUrl(this.server, this.opts.scheme);
    const timeout = this.opts.timeoutMs ?? 30_000;
    let answer: ExchangeAnswer;
    try {
      answer = await exchangeAccessToken({ url, service: this.server, accessToken: aad.token, timeoutMs: timeout,
        ...(this.opts.tenant ? { tenant: this.opts.tenant } : {}), ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {}) });
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw fail(`could not reach ${url} to exchange the identity's token (${code && /TIMEOUT/.test(code) ? `no answer within ${formatMs(timeout)}` : code ?? (e as Error).message})`);
    }
    if (answer.status !== 200 || !answer.refreshToken) {
      const e = answer.error;
      const said = e ? `${(e.code ?? '').toLowerCase()}: ${e.message ?? ''}`.slice(0, 500) : `HTTP ${answer.status}`;
      throw fail(`${this.server} refused the token exchange (${said}); check that the identity exists and ${this.server} is a Berth or Azure registry`);
    }
    const rt = answer.refreshToken;
    // The refresh token is a JWT whose `exp` says how long it lasts; without one, trust it for as long as the access token.
    const exp = jwtExpiry(rt) ?? aad.expiresOn ?? new Date(this.now() + 60 * 60_000);
    return { refreshToken: rt, expiresAt: exp };
  }
}

/** The `exp` of a JWT, read without verifying it (only to know when to renew). */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? new Date(exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}


/**
 * A token provider that asks a managed-identity endpoint over HTTP: the App Service style
 * (`IDENTITY_ENDPOINT` + `X-IDENTITY-HEADER`, Berth's `/msi/token`), or IMDS
 * (`http://169.254.169.254/metadata/identity/oauth2/token` with `Metadata: true`) when no secret is given.
 */
export function endpointTokenProvider(opts: { endpoint: string; secret?: string; clientId?: string; dispatcher?: Dispatcher }): AccessTokenProvider {
  return async (resource, signal) => {
    const url = new URL(opts.endpoint);
    url.searchParams.set('api-version', opts.secret ? '2019-08-01' : '2018-02-01');
    url.searchParams.set('resource', resource);
    if (opts.clientId) url.searchParams.set('client_id', opts.clientId);
    const headers: Record<string, string> = opts.secret ? { 'X-IDENTITY-HEADER': opts.secret } : { Metadata: 'true' };
    const res = await request(url, { headers, headersTimeout: 30_000, bodyTimeout: 30_000, ...(signal ? { signal } : {}), ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}) });
    const text = (await res.body.text()).slice(0, 64 * 1024);
    let body: { access_token?: string; expires_on?: string | number; error?: string; error_description?: string } = {};
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    if (res.statusCode !== 200 || !body.access_token) {
      throw new Error(`${url.origin}${url.pathname} answered HTTP ${res.statusCode}${body.error_description ? `: ${body.error_description.slice(0, 300)}` : body.error ? `: ${body.error}` : ''}`);
    }
    const on = Number(body.expires_on);
    return { token: body.access_token, ...(Number.isFinite(on) && on > 0 ? { expiresOn: new Date(on * 1000) } : {}) };
  };
}
