// A small OCI distribution client with challenge-driven auth (Basic, or Bearer tokens fetched from the
// realm with Basic credentials or a refresh token). Credentials are sent only to the registry host
// they were given for, and to a token realm on that same host.
import { request, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import { parseChallenge } from './challenge.js';

export type RegistryCredential =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'refreshToken'; refreshToken: string };

export class RegistryHttpError extends Error {
  constructor(readonly status: number, readonly code: string | undefined, message: string) {
    super(message);
  }
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export class RegistryClient {
  readonly base: string;
  private readonly tokens = new Map<string, string>();
  private basicOnly = false;

  private readonly realmHosts: string[];

  /** `realmHosts`: token realms on other hosts (`host:port`) that may also receive the credentials. */
  constructor(readonly loginServer: string, private readonly credential: RegistryCredential, opts: { scheme?: 'http' | 'https'; realmHosts?: string[] } = {}) {
    this.realmHosts = opts.realmHosts ?? [];
    const scheme = opts.scheme ?? (/^(localhost|127\.|\[::1\])/.test(loginServer) ? 'http' : 'https');
    this.base = `${scheme}://${loginServer}`;
  }

  private basicHeader(): string | undefined {
    if (this.credential.kind === 'basic') {
      return 'Basic ' + Buffer.from(`${this.credential.username}:${this.credential.password}`).toString('base64');
    }
    if (this.credential.kind === 'refreshToken') {
      return 'Basic ' + Buffer.from(`00000000-0000-0000-0000-000000000000:${this.credential.refreshToken}`).toString('base64');
    }
    return undefined;
  }

  /** Sends a request; on a 401 challenge gets a token for `scope` and retries once. */
  async send(method: string, path: string, scope: string, init: { headers?: Record<string, string>; body?: Buffer | string | Readable | (() => Readable) } = {}): Promise<RegistryResponse> {
    const attempt = async (): Promise<RegistryResponse> => {
      const headers: Record<string, string> = { ...init.headers };
      const auth = this.basicOnly ? this.basicHeader() : this.tokens.get(scope) ? `Bearer ${this.tokens.get(scope)}` : undefined;
      if (auth) headers.authorization = auth;
      const body = typeof init.body === 'function' ? init.body() : init.body;
      const res = await request(`${this.base}${path}`, { method: method as Dispatcher.HttpMethod, headers, ...(body !== undefined ? { body } : {}) });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    };
    let res = await attempt();
    if (res.status !== 401) return res;
    const wa = res.headers['www-authenticate'];
    await res.body.dump();
    const ch = parseChallenge(Array.isArray(wa) ? wa[0]! : wa ?? '');
    if (!ch) throw new RegistryHttpError(401, 'UNAUTHORIZED', `${this.loginServer} refused the request and offered no way to authenticate`);
    if (ch.scheme === 'basic') {
      this.basicOnly = true;
    } else if (ch.scheme === 'bearer') {
      this.tokens.set(scope, await this.fetchToken(ch.params.realm ?? '', ch.params.service ?? '', scope));
    }
    if (typeof init.body !== 'function' && init.body !== undefined && typeof init.body !== 'string' && !Buffer.isBuffer(init.body)) {
      throw new RegistryHttpError(401, 'UNAUTHORIZED', 'authentication required after a streamed body was sent; retry');
    }
    res = await attempt();
    return res;
  }

  private async fetchToken(realm: string, service: string, scope: string): Promise<string> {
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new RegistryHttpError(401, 'UNAUTHORIZED', `${this.loginServer} sent an invalid token realm`);
    }
    const sameHost = realmUrl.host === new URL(this.base).host || this.realmHosts.includes(realmUrl.host);
    let res;
    if (this.credential.kind === 'refreshToken') {
      res = await request(realmUrl.toString(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', service, scope, refresh_token: this.credential.refreshToken }).toString(),
      });
    } else {
      realmUrl.searchParams.set('service', service);
      if (scope) realmUrl.searchParams.set('scope', scope);
      const basic = this.basicHeader();
      // Credentials go to the realm only when it is on the registry's own host.
      res = await request(realmUrl.toString(), { method: 'GET', headers: basic && sameHost ? { authorization: basic } : {} });
    }
    const text = await res.body.text();
    let json: { token?: string; access_token?: string; errors?: Array<{ code: string; message: string }> } = {};
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    const token = json.access_token ?? json.token;
    if (res.statusCode !== 200 || !token) {
      const e = json.errors?.[0];
      throw new RegistryHttpError(res.statusCode, e?.code ?? 'UNAUTHORIZED', `${this.loginServer}: ${e?.message ?? `token request failed with HTTP ${res.statusCode}`}`);
    }
    return token;
  }

  /** GETs JSON or throws RegistryHttpError with the registry's own error code and message. */
  async getJson<T>(path: string, scope: string): Promise<{ body: T; headers: RegistryResponse['headers'] }> {
    const res = await this.send('GET', path, scope, { headers: { accept: 'application/json' } });
    return { body: (await expectOk(res, this.loginServer).then(() => res.body.json())) as T, headers: res.headers };
  }
}

export async function expectOk(res: RegistryResponse, server: string, ok: number[] = [200, 201, 202, 204, 206]): Promise<void> {
  if (ok.includes(res.status)) return;
  const text = await res.body.text().catch(() => '');
  let code: string | undefined;
  let message = `HTTP ${res.status}`;
  try {
    const e = (JSON.parse(text) as { errors?: Array<{ code: string; message: string }> }).errors?.[0];
    if (e) { code = e.code; message = e.message; }
  } catch { /* not JSON */ }
  throw new RegistryHttpError(res.status, code, `${server}: ${code ? `${code.toLowerCase().replace(/_/g, ' ')}: ` : ''}${message}`);
}
