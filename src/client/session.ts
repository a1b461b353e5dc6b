// One registry conversation: requests for one repository of one registry with one keychain, through
// the chain every registry call takes (pull, push, the CLI's registry calls): the keychain's credential,
// challenge-driven auth (Basic, or Bearer tokens from the realm, auth.ts), one re-challenge on 401 after
// the keychain drops the refused credential, bounded retries with back-off honouring Retry-After on
// 429/5xx and dropped connections (GET and HEAD only: they are safe to repeat), redirects followed by
// hand so that the Authorization header never leaves the registry's origin, and plain-HTTP loopback
// registries that turn out to speak HTTPS only moved to https.
import { connect as tlsConnect } from 'node:tls';
import type { Readable } from 'node:stream';
import { parseChallenge } from './challenge.js';
import { KeychainError, describeCredential, type Keychain, type KeychainTarget, type RegistryCredential } from '../keychain/keychain.js';
import { PullError } from './errors.js';
import { basicHeader } from './auth.js';
import { isTransientNetworkError, networkPullError } from './net-errors.js';
import { GRANT_PULL, readRegistryError, type RegistryResponse } from './registry-error.js';
import { parseRetryAfter, retryDelay, sleep } from './retry.js';
import type { Transport } from './transport.js';
import type { WireResponse } from './wire.js';
import { isLoopbackHost } from '../lib/loopback.js';

export interface SessionOptions {
  /**
   * Whether the credential may go to a token realm on `realmHost` (host:port); when not, the token is
   * asked for anonymously. Default: any realm the registry names (as docker and podman do).
   */
  realmTrust?: (realmHost: string) => boolean;
}

/** A request body: a stream factory is called once per attempt, so a re-challenge can send it again. */
export type RequestBody = Buffer | string | Readable | (() => Readable);

export interface SendOptions {
  body?: RequestBody;
  /**
   * Hand the caller the registry's refusal (a 401 after the re-challenge, an insufficient scope) and
   * the last 429/5xx answer instead of throwing: the push client judges every answer itself.
   */
  answerRefusals?: boolean;
}

const header = (h: RegistryResponse['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

const REPEATABLE = new Set(['GET', 'HEAD']);

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
    private readonly keychain: Keychain, private readonly signal?: AbortSignal, private readonly opts: SessionOptions = {}) {
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
    if (ch.scheme === 'bearer') {
      const tokenCred = this.opts.realmTrust && !this.opts.realmTrust(realmHost(ch.params.realm)) ? { kind: 'anonymous' as const, source: 'anonymous' } : cred;
      return `Bearer ${await this.t.tokens.token(this.registry, ch, scopes, tokenCred, { registryIsPlainHttp: this.base.protocol === 'http:', signal: this.signal })}`;
    }
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
  async send(method: string, path: string, scopes: string[], headers: Record<string, string> = {}, init: SendOptions = {}): Promise<RegistryResponse> {
    const repeatable = REPEATABLE.has(method);
    const maxAttempts = repeatable ? this.t.opts.maxAttempts ?? 5 : 1;
    const answer = init.answerRefusals === true;
    let sentOnce = false;
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
        if (sentOnce && init.body !== undefined && typeof init.body !== 'function' && typeof init.body !== 'string' && !Buffer.isBuffer(init.body)) {
          throw new PullError('UNAUTHORIZED', 'unauthorized: authentication required after a streamed body was sent', 'Retry: the stream cannot be sent twice.');
        }
        sentOnce = true;
        const body = typeof init.body === 'function' ? init.body() : init.body;
        res = await this.follow(method, new URL(path, this.base), { ...headers, ...(auth ? { authorization: auth } : {}) }, body);
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
          await sleep(retryDelay(backoff, attempt), this.signal);
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
          if (answer) return res;
          throw await this.unauthorized(res);
        }
        const cred = await this.cred();
        if (ch.scheme === 'bearer' && ch.params.error === 'insufficient_scope' && auth && cred.kind !== 'anonymous') {
          if (answer) return res;
          const w = await readRegistryError(res);
          throw new PullError('DENIED', `denied: ${w.message || 'insufficient scope'}`,
            `The credential (${describeCredential(cred)}) authenticated, but has no pull permission on ${this.registry}/${this.repository} (or the repository does not exist)${w.fix ? '' : `. ${GRANT_PULL}`}`,
            { credentialSource: cred.source, ...(w.fix ? { fix: w.fix } : {}) });
        }
        if (auth) {
          // The registry refused what we sent: let the source refresh it, then try once more.
          if (challenged >= 2 || cred.kind === 'anonymous') {
            if (answer) return res;
            throw await this.unauthorized(res);
          }
          this.refused(cred);
          challenged = 2;
        }
        if (!auth) {
          if (challenged >= 1) {
            if (answer) return res;
            throw await this.unauthorized(res);
          }
          challenged = 1;
        }
        await res.body.dump().catch(() => undefined);
        this.t.challenges.set(this.registry, ch);
        attempt--;
        continue;
      }
      if (repeatable && (res.status === 429 || res.status >= 500)) {
        const retryAfter = parseRetryAfter(header(res.headers, 'retry-after'));
        const maxWait = this.t.opts.maxRetryAfterSeconds ?? 60;
        if (attempt < maxAttempts && (retryAfter === undefined || retryAfter <= maxWait)) {
          await res.body.dump().catch(() => undefined);
          await sleep(retryAfter !== undefined ? retryAfter * 1000 : retryDelay(backoff, attempt), this.signal);
          continue;
        }
        if (answer) return res;
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
    return !this.upgraded && this.base.protocol === 'http:' && !this.t.opts.insecure && !this.t.opts.scheme && isLoopbackHost(this.base.host);
  }

  /** The registry refused `cred`: the keychain may refresh it; its tokens are dropped. */
  private refused(cred: RegistryCredential): void {
    this.keychain.invalidate?.(this.target, cred);
    this.t.tokens.forget(this.registry, cred);
    this.credential = undefined;
  }

  /**
   * One request, following the redirects of a GET or HEAD itself; Authorization only goes to the
   * registry's own origin. Other methods get their redirect answered as it is.
   */
  private async follow(method: string, url: URL, headers: Record<string, string>, body?: Buffer | string | Readable): Promise<RegistryResponse> {
    const ua = { 'user-agent': this.t.opts.userAgent ?? 'berth/0.1' };
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.base.origin;
      const h: Record<string, string> = { ...ua };
      for (const [k, v] of Object.entries(headers)) if (sameOrigin || k.toLowerCase() !== 'authorization') h[k] = v;
      let r: WireResponse;
      try {
        r = await this.t.wire(url, { method, headers: h, ...(body !== undefined ? { body } : {}), signal: this.signal });
      } catch (e) {
        // Name the host that failed: after a redirect it is not the registry.
        throw networkPullError(e, url.host, this.t.netContext(`${url.origin}${url.pathname}`)) ?? e;
      }
      const loc = header(r.headers, 'location');
      if (REPEATABLE.has(method) && [301, 302, 303, 307, 308].includes(r.statusCode) && loc) {
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

/** The host:port of a token realm ('' when it is no URL: TokenCache names the bad realm). */
function realmHost(realm: string | undefined): string {
  try {
    return new URL(realm ?? '').host;
  } catch {
    return '';
  }
}
