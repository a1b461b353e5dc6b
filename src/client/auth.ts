// Challenge-driven registry auth (the registry's 401 tells how to authenticate): Basic, or Bearer tokens
// from the challenge's realm, fetched with the credential (GET with Basic for a password, POST
// grant_type=refresh_token for a refresh token) or anonymously. Tokens are cached per registry, scope
// and credential, refreshed before they expire, and parallel requests share one token fetch.
import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { undiciWire, type Wire, type WireResponse } from './wire.js';
import type { Challenge } from './challenge.js';
import { describeCredential, type RegistryCredential } from '../keychain/keychain.js';
import { PullError } from './errors.js';
import { networkPullError, type NetworkErrorContext } from './net-errors.js';
import { isLoopbackHost } from '../lib/loopback.js';

/** A cached bearer token. */
interface Token {
  value: string;
  /** When to stop using it (epoch ms): a margin before the registry's expiry. */
  refreshAt: number;
}

const ACR_NULL_USER = '00000000-0000-0000-0000-000000000000';


/** A key that changes when the secret changes, without holding the secret. */
export function credentialKey(c: RegistryCredential): string {
  if (c.kind === 'anonymous') return 'anonymous';
  const secret = c.kind === 'basic' ? `${c.username}\0${c.password}` : c.kind === 'refreshToken' ? `${c.username ?? ''}\0${c.refreshToken}` : c.token;
  return `${c.kind}:${createHash('sha256').update(secret).digest('hex').slice(0, 24)}`;
}

export function basicHeader(c: RegistryCredential): string | undefined {
  if (c.kind === 'basic') return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
  if (c.kind === 'refreshToken') return 'Basic ' + Buffer.from(`${c.username ?? ACR_NULL_USER}:${c.refreshToken}`).toString('base64');
  return undefined;
}

export class TokenCache {
  private readonly tokens = new Map<string, Token>();
  private readonly inflight = new Map<string, { p: Promise<string>; signal: AbortSignal | undefined }>();
  /** Number of token requests actually sent (for tests and diagnostics). */
  fetches = 0;

  private readonly wire: Wire;

  /** `via`: the transport's wire, or an undici dispatcher to send through. */
  constructor(via: Wire | Dispatcher, private readonly opts: { insecure?: boolean; /** What a network failure's diagnosis may say (CAs, time limit) for `url`. */ network?: (url: string) => NetworkErrorContext } = {}) {
    this.wire = typeof via === 'function' ? via : undiciWire(via);
  }

  /** The bearer token for `scopes` on `registry` with `cred`, from the cache or one shared fetch. */
  async token(registry: string, challenge: Challenge, scopes: string[], cred: RegistryCredential, opts: { registryIsPlainHttp: boolean; signal?: AbortSignal | undefined }): Promise<string> {
    const key = `${registry}|${challenge.params.realm ?? ''}|${challenge.params.service ?? ''}|${[...scopes].sort().join(' ')}|${credentialKey(cred)}`;
    const t = this.tokens.get(key);
    if (t && t.refreshAt > Date.now()) return t.value;
    const shared = this.inflight.get(key);
    if (shared) {
      // The fetch belongs to another pull: when that pull was cancelled, this one asks again itself.
      return shared.p.catch((e: unknown) => {
        if (opts.signal?.aborted || !shared.signal?.aborted) throw e;
        return this.token(registry, challenge, scopes, cred, opts);
      });
    }
    const p = this.fetch(registry, challenge, scopes, cred, opts).then((tok) => {
      this.tokens.set(key, tok);
      return tok.value;
    }).finally(() => this.inflight.delete(key));
    this.inflight.set(key, { p, signal: opts.signal });
    return p;
  }

  /** Drops every token obtained with `cred` for `registry` (after the registry refused one). */
  forget(registry: string, cred: RegistryCredential): void {
    const suffix = `|${credentialKey(cred)}`;
    for (const k of this.tokens.keys()) if (k.startsWith(`${registry}|`) && k.endsWith(suffix)) this.tokens.delete(k);
  }

  private realmUrl(registry: string, realm: string | undefined, registryIsPlainHttp: boolean): URL {
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new PullError('UNAUTHORIZED', `${registry} sent a Bearer challenge with an invalid realm "${(realm ?? '').slice(0, 200)}"`,
        'The registry\'s authentication is misconfigured: its token realm must be an absolute https URL.');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new PullError('UNAUTHORIZED', `${registry} sent a token realm with scheme ${url.protocol}`, 'Only http(s) token realms are supported.');
    }
    // Credentials travel over plain HTTP only with --insecure, or when the registry itself is a plain-HTTP
    // loopback registry and the realm is on loopback too; never as a downgrade from an https registry.
    if (url.protocol === 'http:' && !this.opts.insecure && !(registryIsPlainHttp && isLoopbackHost(url.host))) {
      throw new PullError('UNAUTHORIZED', `${registry} asks for credentials at ${url.origin} over plain HTTP`,
        'Berth does not send credentials to a token server over plain HTTP (nor downgrade from https)', { remedy: { kind: 'plain-http', host: url.host } });
    }
    if (url.username || url.password) {
      throw new PullError('UNAUTHORIZED', `${registry} sent a token realm with embedded credentials`, 'The token realm is refused.');
    }
    return url;
  }

  private async fetch(registry: string, ch: Challenge, scopes: string[], cred: RegistryCredential, opts: { registryIsPlainHttp: boolean; signal?: AbortSignal | undefined }): Promise<Token> {
    this.fetches++;
    const signal = opts.signal;
    const url = this.realmUrl(registry, ch.params.realm, opts.registryIsPlainHttp);
    const service = ch.params.service ?? '';
    let res: WireResponse;
    try {
      if (cred.kind === 'refreshToken') {
        const form = new URLSearchParams({ grant_type: 'refresh_token', service, refresh_token: cred.refreshToken, client_id: 'berth' });
        for (const s of scopes) form.append('scope', s);
        res = await this.wire(url, { method: 'POST', signal, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      } else {
        if (service) url.searchParams.set('service', service);
        for (const s of scopes) url.searchParams.append('scope', s);
        const auth = basicHeader(cred);
        res = await this.wire(url, { method: 'GET', signal, headers: auth ? { authorization: auth } : {} });
      }
    } catch (e) {
      throw networkPullError(e, url.host, this.opts.network?.(url.origin + url.pathname) ?? { url: url.origin + url.pathname }) ?? e;
    }
    const text = await res.body.text().catch(() => '');
    let json: { token?: string; access_token?: string; expires_in?: number; issued_at?: string; errors?: Array<{ code?: string; message?: string }>; error?: string; error_description?: string } = {};
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    const value = json.access_token ?? json.token;
    if (res.statusCode !== 200 || !value) {
      const e = json.errors?.[0];
      const words = e?.message ?? json.error_description ?? json.error ?? `token request failed with HTTP ${res.statusCode}`;
      const code = res.statusCode === 403 ? 'DENIED' : res.statusCode === 429 ? 'TOOMANYREQUESTS' : 'UNAUTHORIZED';
      throw new PullError(code, `${(e?.code ?? (res.statusCode === 403 ? 'denied' : 'unauthorized')).toLowerCase()}: ${words}`,
        `The token server ${url.origin}${url.pathname} refused ${describeCredential(cred)}.`,
        { credentialSource: cred.source, source: 'token-server', ...(cred.kind === 'anonymous' ? { remedy: { kind: 'credentials', registry } } : {}) });
    }
    // Docker's token spec: expires_in defaults to 60 seconds; issued_at, when present, is the start.
    const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
    const issued = json.issued_at ? Date.parse(json.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() + 60_000 ? Math.min(issued, Date.now()) : Date.now();
    const margin = Math.min(30, expiresIn / 5) * 1000;
    return { value, refreshAt: start + expiresIn * 1000 - margin };
  }
}
