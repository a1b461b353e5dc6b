// The registry client's transport: one undici Agent (TLS CA option, timeouts) or the dispatcher it is
// given, where each registry answers (hosts.ts: plain HTTP only for loopback or with `insecure`), the
// token cache (auth.ts) and what each registry's challenge said. The request chain itself (auth,
// retries, redirect guard, re-challenge) is a RegistrySession (session.ts), one per repository.
import { readFileSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import type { Challenge } from './challenge.js';
import type { Keychain } from '../keychain/keychain.js';
import { PullError } from './errors.js';
import { TokenCache } from './auth.js';
import type { NetworkErrorContext } from './net-errors.js';
import { registryEndpoint } from './hosts.js';
import { RegistrySession, type SessionOptions } from './session.js';
import { nodeWire, undiciWire, type Wire } from './wire.js';

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
  /** Send through this dispatcher instead of an Agent of the transport's own (the CLI's, which trusts Berth's CA); not closed by close(). */
  dispatcher?: Dispatcher;
  /** Always this scheme (no plain-HTTP-first for loopback, no move to https). */
  scheme?: 'http' | 'https';
}

/** One registry transport per puller or pusher: the agent, the token cache and what each registry's challenge said. */
export class Transport {
  /** How requests go out: node:http(s) with agents of the transport's own, or the dispatcher it was given. */
  readonly wire: Wire;
  readonly tokens: TokenCache;
  readonly challenges = new Map<string, Challenge>();
  /** Loopback registries found to speak HTTPS only (they answered plain HTTP with an HTTPS server's refusal). */
  readonly httpsOnly = new Set<string>();
  /** Hosts that have answered plain HTTP (never probed for TLS after a dropped connection: Berth's own ports speak both). */
  readonly answeredPlain = new Set<string>();
  /** Every CA file trusted besides the system's. */
  readonly caFiles: string[];
  private readonly closeWire: () => void;

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
    if (opts.dispatcher) {
      this.wire = undiciWire(opts.dispatcher);
      this.closeWire = () => undefined;
    } else {
      const w = nodeWire({ ...(ca.length ? { ca } : {}), connectTimeoutMs: Math.min(t, 15_000), timeoutMs: t, connections: 16 });
      this.wire = w.wire;
      this.closeWire = w.close;
    }
    this.tokens = new TokenCache(this.wire, { network: (url) => this.netContext(url), ...(opts.insecure ? { insecure: true } : {}) });
  }

  /** What a network failure's diagnosis may say about this transport: its CAs and time limit. */
  netContext(url?: string): NetworkErrorContext {
    return { ...(this.caFiles.length ? { caFiles: this.caFiles } : {}), timeoutMs: this.opts.timeoutMs ?? 60_000, ...(url ? { url } : {}) };
  }

  /** The base URL of a registry (the host rules: docker.io is served by registry-1.docker.io, loopback speaks plain HTTP). */
  baseUrl(registry: string): string {
    const { host, plainHttp } = registryEndpoint(registry);
    if (this.opts.scheme) return `${this.opts.scheme}://${host}`;
    const plain = !this.opts.caFile && !this.httpsOnly.has(host) && (plainHttp || this.opts.insecure);
    return `${plain ? 'http' : 'https'}://${host}`;
  }

  session(registry: string, repository: string, keychain: Keychain, signal?: AbortSignal, opts: SessionOptions = {}): RegistrySession {
    return new RegistrySession(this, registry, repository, keychain, signal, opts);
  }

  async close(): Promise<void> {
    this.closeWire();
  }
}
