// The HTTP transport to registries: one undici Agent (TLS CA option, timeouts), plain HTTP only for
// loopback or with `insecure`, challenge-driven auth (auth.ts), bounded retries with exponential
// back-off honouring Retry-After on 429/5xx, redirects followed by hand so that the Authorization
// header never leaves the registry's origin, and one re-challenge on 401 after asking the keychain to
// drop the refused credential.
import { readFileSync } from 'node:fs';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { parseChallenge, type Challenge } from '../client/challenge.js';
import { KeychainError, describeCredential, type Keychain, type KeychainTarget, type RegistryCredential } from '../keychain/keychain.js';
import { PullError } from './types.js';
import { TokenCache, basicHeader } from './auth.js';
import { isTransientNetworkError, networkPullError, type NetworkErrorContext } from './net-errors.js';
import { jitteredDelay } from '../lib/backoff.js';
import { isLoopbackHost } from '../lib/loopback.js';

export interface TransportOptions {
  /** Allow plain HTTP to any registry (default: only loopback registries speak plain HTTP). */
  insecure?: boolean;
  /** PEM file with CA certificates to trust besides the system's (self-hosted registries). With it, loopback registries are reached over https too. */
  caFile?: string;
  /**
   * More PEM files with CA certificates to trust (`berth serve --registry-ca`). Unlike caFile they do
   * not switch loopback registries to https; a loopback registry that turns out to speak HTTPS only is
   * reached over https anyway.
   */
  caFiles?: string[];
  /** Connect/headers/body timeouts in ms (default 15 s connect, 60 s headers and idle body). */
  timeoutMs?: number;
  /** Attempts per request on 429/5xx/dropped connections (default 5). */
  maxAttempts?: number;
  /** Base back-off in ms (default 250), doubled per attempt, capped at 8 s. */
  backoffMs?: number;
  /** Longest Retry-After Berth waits for before giving up with TOOMANYREQUESTS (default 60 s). */
  maxRetryAfterSeconds?: number;
  userAgent?: string;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered (after redirects). */
  url: URL;
}

const header = (h: RegistryResponse['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((res, rej) => {
  if (signal?.aborted) return rej(signal.reason);
  const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); res(); }, ms);
  const onAbort = () => { clearTimeout(t); rej(signal!.reason); };
  signal?.addEventListener('abort', onAbort, { once: true });
});

/** Seconds from a Retry-After header (delta-seconds or HTTP date). */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, Math.ceil((t - now) / 1000)) : undefined;
}

/** What to grant when a registry names no fix of its own. */
export const GRANT_PULL = 'Grant it pull access: the AcrPull role on the registry for an identity or service principal, or content/read on the repository in the scope map of a repository-scoped token';

/** The fix a Berth registry names in an error's detail (`[{Type, Name, Action, Fix}]`), if it is a plain one-line command. */
function detailFix(detail: unknown): string | undefined {
  const f = Array.isArray(detail) ? (detail[0] as { Fix?: unknown } | undefined)?.Fix : undefined;
  return typeof f === 'string' && /^berth [\x20-\x7e]{1,400}$/.test(f) ? f : undefined;
}

/** The registry's own error, from a distribution-spec error body. */
export async function readRegistryError(res: RegistryResponse): Promise<{ code?: string; message: string; fix?: string }> {
  let text = '';
  try {
    for await (const c of res.body) {
      text += (c as Buffer).toString('utf8');
      if (text.length > 65536) break;
    }
  } catch { /* body dropped: use the status */ }
  try {
    const j = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }>; message?: string };
    const e = j.errors?.[0];
    const fix = detailFix(e?.detail);
    if (e) return { ...(e.code ? { code: e.code } : {}), message: e.message ?? '', ...(fix ? { fix } : {}) };
  } catch { /* not JSON */ }
  return { message: text.trim().slice(0, 300) || `HTTP ${res.status}` };
}

/** One registry transport per puller: the agent, the token cache and what each registry's challenge said. */
export class Transport {
  readonly dispatcher: Dispatcher;
  readonly tokens: TokenCache;
  readonly challenges = new Map<string, Challenge>();
  /** Loopback registries found to speak HTTPS only (they answered plain HTTP with an HTTPS server's refusal). */
  readonly httpsOnly = new Set<string>();
  /** Hosts that have answered plain HTTP (never probed for TLS after a dropped connection: Berth's own ports speak both). */
  readonly answeredPlain = new Set<string>();
  /** Every CA file trusted besides the system's. */
  readonly caFiles: string[];

  constructor(readonly opts: TransportOptions = {}) {
    const t = opts.timeoutMs ?? 60_000;
    this.caFiles = [...(opts.caFile ? [opts.caFile] : []), ...(opts.caFiles ?? [])];
    const ca = this.caFiles.map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch (e) {
        throw new PullError('TLS', `cannot read the CA file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'Give a readable PEM file.', { source: 'tls' });
      }
    });
    this.dispatcher = new Agent({
      connect: { timeout: Math.min(t, 15_000), ...(ca.length ? { ca: [...ca, ...rootCertificates] } : {}) },
      headersTimeout: t,
      bodyTimeout: t,
      connections: 16,
    });
    this.tokens = new TokenCache(this.dispatcher, { network: (url) => this.netContext(url), ...(opts.insecure ? { insecure: true } : {}) });
  }

  /** What a network failure's diagnosis may say about this transport: its CAs and time limit. */
  netContext(url?: string): NetworkErrorContext {
    return { ...(this.caFiles.length ? { caFiles: this.caFiles } : {}), timeoutMs: this.opts.timeoutMs ?? 60_000, ...(url ? { url } : {}) };
  }

  /** The base URL of a registry: docker.io is served by registry-1.docker.io. */
  baseUrl(registry: string): string {
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    const plain = !this.opts.caFile && !this.httpsOnly.has(host) && (isLoopbackHost(host) || this.opts.insecure);
    return `${plain ? 'http' : 'https'}://${host}`;
  }

  session(registry: string, repository: string, keychain: Keychain, signal?: AbortSignal): RegistrySession {
    return new RegistrySession(this, registry, repository, keychain, signal);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}


/** Requests for one repository of one registry with one keychain; learns the challenge from 401s. */
export class RegistrySession {
  base: URL;
  /** Set when plain HTTP met an HTTPS-only registry and the session moved to https. */
  private upgraded = false;
  private credential: Promise<RegistryCredential> | undefined;
  /** The credential the keychain gave, for diagnoses. */
  resolved: RegistryCredential | undefined;
  /** The credential actually sent (undefined while the registry has asked for none). */
  used: RegistryCredential | undefined;

  constructor(private readonly t: Transport, readonly registry: string, readonly repository: string,
    private readonly keychain: Keychain, private readonly signal?: AbortSignal) {
    this.base = new URL(t.baseUrl(registry));
  }

  private get target(): KeychainTarget {
    return { registry: this.registry, repository: this.repository };
  }

  /** The keychain's credential for this registry (resolved once; again after an invalidate). */
  cred(): Promise<RegistryCredential> {
    this.credential ??= this.keychain.resolve(this.target, this.signal).then((c) => {
      this.resolved = c ?? { kind: 'anonymous', source: 'anonymous' };
      return this.resolved;
    }, (e) => {
      this.credential = undefined;
      if (e instanceof KeychainError) {
        throw new PullError('CREDENTIAL_SOURCE', e.message.startsWith(e.source) ? e.message : `${e.source}: ${e.message}`, `The credential source "${e.source}" failed; fix it or remove it from the keychain.`,
          { credentialSource: e.source, source: e.origin ?? 'keychain' });
      }
      throw e;
    });
    return this.credential;
  }

  private async authorization(scopes: string[]): Promise<string | undefined> {
    const ch = this.t.challenges.get(this.registry);
    if (!ch) return undefined;
    const cred = await this.cred();
    this.used = cred;
    // A registry token (docker config `registrytoken`) goes to the registry as is, never to a realm.
    if (cred.kind === 'registryToken') return `Bearer ${cred.token}`;
    if (ch.scheme === 'basic') return basicHeader(cred);
    if (ch.scheme === 'bearer') return `Bearer ${await this.t.tokens.token(this.registry, ch, scopes, cred, { registryIsPlainHttp: this.base.protocol === 'http:', signal: this.signal })}`;
    return undefined;
  }


  /** The error for a refused credential, with the source and the user that were tried. */
  async unauthorized(res: RegistryResponse | undefined, words?: { code?: string; message: string }): Promise<PullError> {
    const w = words ?? (res ? await readRegistryError(res) : { message: 'authentication required' });
    const cred = this.resolved ?? { kind: 'anonymous', source: 'anonymous' };
    const registryMessage = `${(w.code ?? 'UNAUTHORIZED').toLowerCase()}: ${w.message || 'authentication required'}`;
    if (cred.kind === 'anonymous') {
      return new PullError('UNAUTHORIZED', registryMessage, `No credential was found for ${this.registry} (keychain: ${this.keychain.description || 'none'})`,
        { credentialSource: cred.source, remedy: { kind: 'credentials', registry: this.registry } });
    }
    return new PullError('UNAUTHORIZED', registryMessage, `${this.registry} refused ${describeCredential(cred)}: the password or token is wrong, expired or revoked.`, { credentialSource: cred.source });
  }

  /**
   * Sends a request to `path` (relative to the registry) or an absolute URL on the registry's origin,
   * with auth for `scopes`. Returns the final response for the caller to judge (2xx, 404, ...); throws
   * a PullError for network failures, refused credentials and exhausted retries.
   */
  async send(method: 'GET' | 'HEAD', path: string, scopes: string[], headers: Record<string, string> = {}): Promise<RegistryResponse> {
    const maxAttempts = this.t.opts.maxAttempts ?? 5;
    const backoff = this.t.opts.backoffMs ?? 250;
    let challenged = 0;
    for (let attempt = 1; ; attempt++) {
      let auth: string | undefined;
      let res: RegistryResponse;
      try {
        auth = await this.authorization(scopes).catch(async (e: unknown) => {
          // The token server refused the credential: let the source refresh it and try once more.
          if (!(e instanceof PullError) || e.code !== 'UNAUTHORIZED' || challenged >= 2) throw e;
          const cred = await this.cred();
          if (cred.kind === 'anonymous') throw e;
          this.refused(cred);
          challenged = 2;
          return this.authorization(scopes);
        });
        res = await this.follow(method, new URL(path, this.base), { ...headers, ...(auth ? { authorization: auth } : {}) });
      } catch (e) {
        let pe = networkPullError(e, this.base.host, this.t.netContext());
        if (pe?.opts.source === 'connection' && !this.t.answeredPlain.has(this.base.host) && await this.moveToHttps(() => speaksTls(this.base.host))) {
          attempt--;
          continue;
        }
        if (pe?.code === 'TLS' && this.upgraded) {
          pe = new PullError('TLS', pe.registryMessage, `${this.base.host} speaks HTTPS only (Berth tried plain HTTP first, as it does for loopback registries). ${pe.diagnosis}`, pe.opts);
        }
        if (pe && pe.code === 'UNKNOWN' && isTransientNetworkError(pe) && attempt < maxAttempts) {
          await sleep(this.delay(backoff, attempt), this.signal);
          continue;
        }
        throw pe ?? e;
      }
      const httpsRefusal = res.status === 400 && res.headers['content-type'] === undefined && res.url.origin === this.base.origin;
      if (this.base.protocol === 'http:' && !httpsRefusal) this.t.answeredPlain.add(this.base.host);
      if (httpsRefusal && this.mayMoveToHttps()) {
        // Go's net/http (the reference registry, Harbor, Zot) answers plain HTTP on a TLS port this way.
        const text = (await res.body.text().catch(() => '')).slice(0, 1000);
        if (await this.moveToHttps(async () => /HTTP request to an HTTPS server/i.test(text))) {
          attempt--;
          continue;
        }
        throw new PullError('UNKNOWN', `http 400: ${text.trim().slice(0, 300) || 'Bad Request'}`, `Unexpected answer from ${this.registry} (HTTP 400 without a registry error body)`);
      }
      if (res.status === 401 && res.url.origin === this.base.origin) {
        const ch = parseChallenge(header(res.headers, 'www-authenticate') ?? '');
        if (!ch || (ch.scheme !== 'basic' && ch.scheme !== 'bearer')) {
          throw await this.unauthorized(res);
        }
        const cred = await this.cred();
        if (ch.scheme === 'bearer' && ch.params.error === 'insufficient_scope' && auth && cred.kind !== 'anonymous') {
          const w = await readRegistryError(res);
          throw new PullError('DENIED', `denied: ${w.message || 'insufficient scope'}`,
            `The credential (${describeCredential(cred)}) authenticated, but has no pull permission on ${this.registry}/${this.repository} (or the repository does not exist)${w.fix ? '' : `. ${GRANT_PULL}`}`,
            { credentialSource: cred.source, ...(w.fix ? { fix: w.fix } : {}) });
        }
        if (auth) {
          // The registry refused what we sent: let the source refresh it, then try once more.
          if (challenged >= 2 || cred.kind === 'anonymous') throw await this.unauthorized(res);
          this.refused(cred);
          challenged = 2;
        }
        if (!auth) {
          if (challenged >= 1) throw await this.unauthorized(res);
          challenged = 1;
        }
        await res.body.dump().catch(() => undefined);
        this.t.challenges.set(this.registry, ch);
        attempt--;
        continue;
      }
      if (res.status === 429 || res.status >= 500) {
        const retryAfter = parseRetryAfter(header(res.headers, 'retry-after'));
        const maxWait = this.t.opts.maxRetryAfterSeconds ?? 60;
        if (attempt < maxAttempts && (retryAfter === undefined || retryAfter <= maxWait)) {
          await res.body.dump().catch(() => undefined);
          await sleep(retryAfter !== undefined ? retryAfter * 1000 : this.delay(backoff, attempt), this.signal);
          continue;
        }
        const w = await readRegistryError(res);
        if (res.status === 429) throw await this.rateLimited(w.message, retryAfter, attempt);
        throw new PullError('UNKNOWN', `${w.code ? `${w.code.toLowerCase()}: ` : ''}${w.message} (HTTP ${res.status})`,
          `${this.registry} failed with a server error ${attempt} times in a row; try again later.`, { temporary: true });
      }
      return res;
    }
  }

  /**
   * The error for a 429: with a credential, the registry limits that identity (authenticating again does
   * not help: wait for Retry-After); anonymous pulls get a higher limit by authenticating.
   */
  async rateLimited(message: string, retryAfter: number | undefined, attempts: number): Promise<PullError> {
    const cred = this.used ?? await this.cred().catch(() => undefined);
    const when = retryAfter !== undefined ? `retry after ${retryAfter} s (at ${new Date(Date.now() + retryAfter * 1000).toISOString()})` : 'it sent no Retry-After; retry in a few minutes';
    const diagnosis = cred && cred.kind !== 'anonymous'
      ? `${this.registry} is rate-limiting requests made with ${describeCredential(cred)}; ${when}. Berth tried ${attempts} time${attempts === 1 ? '' : 's'}; authenticating again does not raise this limit`
      : `${this.registry} limits the request rate of anonymous pulls; ${when}. Berth tried ${attempts} time${attempts === 1 ? '' : 's'}. Authenticate to get a higher limit, or use a mirror`;
    return new PullError('TOOMANYREQUESTS', `toomanyrequests: ${message || 'rate limit exceeded'}`, diagnosis,
      { temporary: true, ...(cred ? { credentialSource: cred.source } : {}), ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) });
  }

  /**
   * Moves a plain-HTTP loopback session to https when `speaksHttpsOnly` says the registry is a TLS
   * server; once per session. True when it moved.
   */
  private async moveToHttps(speaksHttpsOnly: () => Promise<boolean>): Promise<boolean> {
    if (!this.mayMoveToHttps() || !(await speaksHttpsOnly())) return false;
    this.t.httpsOnly.add(this.base.host);
    this.base = new URL(this.t.baseUrl(this.registry));
    this.upgraded = true;
    return true;
  }

  /** Whether this session talks plain HTTP to loopback by default (not --insecure) and has not moved to https yet. */
  private mayMoveToHttps(): boolean {
    return !this.upgraded && this.base.protocol === 'http:' && !this.t.opts.insecure && isLoopbackHost(this.base.host);
  }

  /** The registry refused `cred`: the keychain may refresh it; its tokens are dropped. */
  private refused(cred: RegistryCredential): void {
    this.keychain.invalidate?.(this.target, cred);
    this.t.tokens.forget(this.registry, cred);
    this.credential = undefined;
  }

  private delay(base: number, attempt: number): number {
    return jitteredDelay(attempt, base, 8000);
  }

  /** One request, following redirects itself; Authorization only goes to the registry's own origin. */
  private async follow(method: 'GET' | 'HEAD', url: URL, headers: Record<string, string>): Promise<RegistryResponse> {
    const ua = { 'user-agent': this.t.opts.userAgent ?? 'berth/0.1' };
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.base.origin;
      const h: Record<string, string> = { ...ua };
      for (const [k, v] of Object.entries(headers)) if (sameOrigin || k.toLowerCase() !== 'authorization') h[k] = v;
      let r: Dispatcher.ResponseData;
      try {
        r = await request(url, { method, headers: h, dispatcher: this.t.dispatcher, ...(this.signal ? { signal: this.signal } : {}) });
      } catch (e) {
        // Name the host that failed: after a redirect it is not the registry.
        throw networkPullError(e, url.host, this.t.netContext(`${url.origin}${url.pathname}`)) ?? e;
      }
      const loc = header(r.headers, 'location');
      if ([301, 302, 303, 307, 308].includes(r.statusCode) && loc) {
        await r.body.dump().catch(() => undefined);
        if (hop >= 5) throw new PullError('UNKNOWN', `${this.registry}: too many redirects`, `The registry redirected ${url.pathname} more than 5 times.`);
        const next = new URL(loc, url);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new PullError('UNKNOWN', `${this.registry} redirected to ${next.protocol}`, 'Only http(s) redirects are followed.');
        if (url.protocol === 'https:' && next.protocol === 'http:' && !isLoopbackHost(next.host) && !this.t.opts.insecure) {
          throw new PullError('UNKNOWN', `${this.registry} redirected from https to plain http (${next.host})`, 'Berth does not downgrade to plain HTTP', { remedy: { kind: 'plain-http', host: next.host } });
        }
        url = next;
        continue;
      }
      return { status: r.statusCode, headers: r.headers, body: r.body, url };
    }
  }
}

/** Whether `host` (host:port) completes a TLS handshake (any certificate): an HTTPS server that dropped a plain-HTTP request. */
function speaksTls(host: string): Promise<boolean> {
  const port = Number(/:(\d+)$/.exec(host)?.[1] ?? 443);
  const hostname = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return new Promise((res) => {
    const socket = tlsConnect({ host: hostname, port, rejectUnauthorized: false, ...(/^[\d.:]+$/.test(hostname) ? {} : { servername: hostname }) });
    const done = (ok: boolean) => { socket.destroy(); res(ok); };
    socket.setTimeout(3000, () => done(false));
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}
