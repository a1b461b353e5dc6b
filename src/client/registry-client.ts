// The registry client for pushes and the CLI's registry calls (acr repository, login checks): the same
// request chain as the pull (session.ts: keychain credential, challenge-driven auth, re-challenge,
// retries of GET and HEAD, redirect guard, host rules), one session per repository, with every answer
// handed back for the caller to judge (expectOk) and every failure as a RegistryHttpError in the
// registry's words.
import { getGlobalDispatcher, type Dispatcher } from 'undici';
import { Transport } from './transport.js';
import type { RegistrySession, RequestBody } from './session.js';
import { PullError } from './errors.js';
import { RegistryHttpError, expectOk, type RegistryResponse } from './registry-error.js';
import type { Keychain, RegistryCredential as KeychainCredential } from '../keychain/keychain.js';

export { RegistryHttpError, expectOk };
export type { RegistryResponse };

/** A credential given by hand (the keychain's credential without a source). */
export type RegistryCredential =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'refreshToken'; refreshToken: string };

export interface RegistryClientOptions {
  /** Always this scheme (default: the host rules, plain HTTP for loopback). */
  scheme?: 'http' | 'https';
  /** Token realms on other hosts (`host:port`) that may also receive the credentials. */
  realmHosts?: string[];
  /**
   * Whatever realm the registry names may receive them (as docker, podman and the pull client do: for
   * credentials the user gave for this registry, such as Docker Hub's, whose realm is auth.docker.io).
   */
  anyRealm?: boolean;
  /** Default: undici's global dispatcher (the CLI's, which trusts Berth's CA). */
  dispatcher?: Dispatcher;
}

const NETWORK_SOURCES = new Set(['dns', 'refused', 'connection', 'tls', 'timeout']);

/** A keychain of one credential given by hand. */
function fixedKeychain(loginServer: string, c: RegistryCredential): Keychain {
  const source = `credentials for ${loginServer}`;
  return { description: source, resolve: async () => (c.kind === 'anonymous' ? undefined : { ...c, source } as KeychainCredential) };
}

export class RegistryClient {
  private readonly transport: Transport;
  private readonly keychain: Keychain;
  private readonly sessions = new Map<string, RegistrySession>();
  private readonly realmTrust: ((host: string) => boolean) | undefined;

  /** `credential`: one given by hand, or a keychain to ask (as pulls do). */
  constructor(readonly loginServer: string, credential: RegistryCredential | Keychain, opts: RegistryClientOptions = {}) {
    this.transport = new Transport({ dispatcher: opts.dispatcher ?? getGlobalDispatcher(), ...(opts.scheme ? { scheme: opts.scheme } : {}) });
    this.keychain = 'resolve' in credential ? credential : fixedKeychain(loginServer, credential);
    const realmHosts = opts.realmHosts ?? [];
    // Credentials go to a realm on the registry's own host or one of `realmHosts`; elsewhere the token is asked for anonymously.
    this.realmTrust = opts.anyRealm ? undefined : (h) => h === new URL(this.base).host || realmHosts.includes(h);
  }

  /** The registry's base URL (https once a loopback registry turned out to speak HTTPS only). */
  get base(): string {
    return this.transport.baseUrl(this.loginServer);
  }

  /** Sends a request with auth for `scope` (re-challenged once on a 401) and returns the registry's answer, whatever it is. */
  async send(method: string, path: string, scope: string, init: { headers?: Record<string, string>; body?: RequestBody } = {}): Promise<RegistryResponse> {
    try {
      return await this.session(scope).send(method, path, [scope], init.headers ?? {}, { ...(init.body !== undefined ? { body: init.body } : {}), answerRefusals: true });
    } catch (e) {
      throw this.translate(e);
    }
  }

  /** GETs JSON or throws RegistryHttpError with the registry's own error code and message. */
  async getJson<T>(path: string, scope: string): Promise<{ body: T; headers: RegistryResponse['headers'] }> {
    const res = await this.send('GET', path, scope, { headers: { accept: 'application/json' } });
    await expectOk(res, this.loginServer);
    return { body: (await res.body.json()) as T, headers: res.headers };
  }

  /** One session per repository (the keychain may hold credentials per repository namespace). */
  private session(scope: string): RegistrySession {
    const repository = /^repository:(.+):[^:]*$/.exec(scope)?.[1] ?? '';
    let s = this.sessions.get(repository);
    if (!s) {
      s = this.transport.session(this.loginServer, repository, this.keychain, undefined, this.realmTrust ? { realmTrust: this.realmTrust } : {});
      this.sessions.set(repository, s);
    }
    return s;
  }

  /** The chain's errors (a refused token, a failed credential source, an unreachable host) in the push client's terms. */
  private translate(e: unknown): unknown {
    if (!(e instanceof PullError)) return e;
    if (e.opts.source && NETWORK_SOURCES.has(e.opts.source)) return new RegistryHttpError(0, e.code, `${this.loginServer} is not reachable (${e.registryMessage})`);
    return new RegistryHttpError(401, 'UNAUTHORIZED', `${this.loginServer}: ${e.registryMessage}`);
  }
}
