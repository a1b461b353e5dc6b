// A small OCI distribution client for pushes and management calls, with challenge-driven auth (Basic,
// or Bearer tokens from the realm). Tokens come from the pull client's TokenCache (one fetch per scope
// shared by parallel requests, refreshed before expiry, realm validated: no credentials over plain HTTP
// except to a loopback realm of a plain-HTTP loopback registry).
import { getGlobalDispatcher, request, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import { parseChallenge, type Challenge } from './challenge.js';
import { TokenCache, basicHeader } from '../pull/auth.js';
import { PullError } from '../pull/types.js';
import { isLoopbackHost } from '../lib/loopback.js';

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
  private readonly tokens = new TokenCache(getGlobalDispatcher());
  private challenge: Challenge | undefined;
  private basicOnly = false;

  private readonly realmHosts: string[];
  private readonly anyRealm: boolean;

  /**
   * `realmHosts`: token realms on other hosts (`host:port`) that may also receive the credentials; `anyRealm`:
   * whatever realm the registry names may (as docker, podman and the pull client do: for credentials the
   * user gave for this registry, such as Docker Hub's, whose realm is auth.docker.io).
   */
  constructor(readonly loginServer: string, private readonly credential: RegistryCredential, opts: { scheme?: 'http' | 'https'; realmHosts?: string[]; anyRealm?: boolean } = {}) {
    this.realmHosts = opts.realmHosts ?? [];
    this.anyRealm = opts.anyRealm ?? false;
    const scheme = opts.scheme ?? (isLoopbackHost(loginServer) ? 'http' : 'https');
    this.base = `${scheme}://${loginServer}`;
  }

  private basicHeader(): string | undefined {
    return basicHeader({ ...this.credential, source: '' });
  }

  /** Sends a request; on a 401 challenge gets a token for `scope` and retries once. */
  async send(method: string, path: string, scope: string, init: { headers?: Record<string, string>; body?: Buffer | string | Readable | (() => Readable) } = {}): Promise<RegistryResponse> {
    const attempt = async (): Promise<RegistryResponse> => {
      const headers: Record<string, string> = { ...init.headers };
      const auth = this.basicOnly ? this.basicHeader() : this.challenge ? `Bearer ${await this.token(scope)}` : undefined;
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
      // A token we sent was refused (expired early, or a stale scope): fetch fresh ones.
      if (this.challenge) this.tokens.forget(this.loginServer, { ...this.credential, source: '' });
      this.challenge = ch;
    }
    if (typeof init.body !== 'function' && init.body !== undefined && typeof init.body !== 'string' && !Buffer.isBuffer(init.body)) {
      throw new RegistryHttpError(401, 'UNAUTHORIZED', 'authentication required after a streamed body was sent; retry');
    }
    res = await attempt();
    return res;
  }

  private async token(scope: string): Promise<string> {
    // Credentials go to a realm on the registry's own host or one of `realmHosts`; elsewhere the token is asked for anonymously.
    let realmHost = '';
    try { realmHost = new URL(this.challenge!.params.realm ?? '').host; } catch { /* TokenCache names the bad realm */ }
    const trusted = this.anyRealm || realmHost === new URL(this.base).host || this.realmHosts.includes(realmHost);
    const cred = trusted ? { ...this.credential, source: `credentials for ${this.loginServer}` } : { kind: 'anonymous' as const, source: 'anonymous' };
    try {
      return await this.tokens.token(this.loginServer, this.challenge!, [scope], cred, { registryIsPlainHttp: this.base.startsWith('http:') });
    } catch (e) {
      if (e instanceof PullError) throw new RegistryHttpError(401, 'UNAUTHORIZED', `${this.loginServer}: ${e.registryMessage}`);
      throw e;
    }
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
