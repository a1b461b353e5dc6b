// The CLI's client for the management API: gets an Entra-style token with the client credential, then
// calls ARM paths. Errors become CliError with az's wording and exit codes.
import { simpleRequest, type HeaderView, type SimpleResponse } from './http.js';
import { CliError } from './errors.js';
import type { CliContext } from './context.js';
import { cachedToken, storeToken } from './token-cache.js';

const MANAGEMENT = 'https://management.core.windows.net/';

/** Thrown by send() when a token taken from the cache is refused, so request() can get a new one and retry. */
class StaleToken extends Error {}

export const API_VERSION = '2023-07-01';

export class ArmClient {
  private token?: Promise<string>;
  /** The management token came from the on-disk cache (a 401 then means: get a new one). */
  private tokenFromCache = false;

  constructor(readonly ctx: CliContext) {}

  get subscriptionId(): string {
    return this.ctx.credential.subscriptionId;
  }

  get tenantId(): string {
    return this.ctx.credential.tenantId;
  }

  /** An access token for `resource` (default: the management API). */
  async accessToken(resource = MANAGEMENT): Promise<string> {
    if (resource !== MANAGEMENT) return this.newToken(resource);
    if (!this.token) {
      const cached = cachedToken(this.ctx);
      this.tokenFromCache = cached !== undefined;
      this.token = cached !== undefined ? Promise.resolve(cached) : this.newToken(resource);
    }
    return this.token;
  }

  private async newToken(resource: string): Promise<string> {
    const c = this.ctx.credential;
    const res = await this.fetch(`${this.ctx.server}/${c.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, scope: `${resource}/.default` }).toString(),
    });
    const body = (await res.text().then((t) => JSON.parse(t) as unknown).catch(() => ({}))) as { access_token?: string; expires_in?: number | string; error_description?: string };
    if (!res.ok || !body.access_token) {
      throw new CliError(`Authentication with ${this.ctx.server} failed: ${body.error_description ?? `HTTP ${res.status}`}. Check BERTH_DATA_DIR points at the server's data directory.`);
    }
    if (resource === MANAGEMENT) await storeToken(this.ctx, body.access_token, Number(body.expires_in) || 0);
    return body.access_token;
  }

  private async fetch(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<SimpleResponse> {
    try {
      return await simpleRequest(url, init);
    } catch (e) {
      const cause = (e as { code?: string }).code;
      throw new CliError(`Cannot reach the Berth server at ${this.ctx.server}${cause ? ` (${cause})` : ''}. Start it with \`berth serve\`, or set BERTH_SERVER to its URL.`);
    }
  }

  async request<T = unknown>(method: string, path: string, body?: unknown,
    opts: { notFoundOk?: boolean; apiVersion?: string; onHeaders?: (h: HeaderView) => void } = {}): Promise<T | undefined> {
    const sep = path.includes('?') ? '&' : '?';
    const url = `${this.ctx.server}${path}${sep}api-version=${opts.apiVersion ?? API_VERSION}`;
    const token = await this.accessToken();
    if (!this.tokenFromCache) return this.send<T>(method, url, token, body, opts);
    try {
      return await this.send<T>(method, url, token, body, { ...opts, staleToken: true });
    } catch (e) {
      if (!(e instanceof StaleToken)) throw e;
      // The server refused the cached token (restarted with new keys, say): forget it and get a new one.
      this.tokenFromCache = false;
      this.token = undefined;
      await storeToken(this.ctx, undefined);
      return this.send<T>(method, url, await this.accessToken(), body, opts);
    }
  }

  /** Calls any Berth URL (a vault's data plane, say) with a bearer token; errors as for ARM calls. */
  async send<T = unknown>(method: string, url: string, token: string, body?: unknown,
    opts: { notFoundOk?: boolean; onHeaders?: (h: HeaderView) => void; staleToken?: boolean } = {}): Promise<T | undefined> {
    const res = await this.fetch(url, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (res.status === 401 && opts.staleToken) {
      await res.text().catch(() => undefined);
      throw new StaleToken();
    }
    opts.onHeaders?.(res.headers);
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status === 404 && opts.notFoundOk) return undefined;
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      const code = err?.code ?? `HTTP${res.status}`;
      const message = err?.message ?? (text.slice(0, 500) || res.statusText);
      throw new CliError(`(${code}) ${message}\nCode: ${code}\nMessage: ${message}`, res.status === 404 ? 3 : 1, code);
    }
    return json as T;
  }

  sub(path = ''): string {
    return `/subscriptions/${this.subscriptionId}${path}`;
  }
}

/** az's view of an ARM resource: properties flattened to the top, plus resourceGroup. */
export function flatten(r: Record<string, unknown>): Record<string, unknown> {
  const { properties, ...rest } = r as { properties?: Record<string, unknown> } & Record<string, unknown>;
  const out: Record<string, unknown> = { ...rest, ...(properties ?? {}) };
  const m = typeof r.id === 'string' ? /\/resourceGroups\/([^/]+)/i.exec(r.id) : null;
  if (m) out.resourceGroup = m[1];
  return out;
}
