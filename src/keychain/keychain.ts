// The keychain contract: given the registry a pull is for (and the repository), find the credential to
// use. One small interface, one class per credential source (inline, vault secret, managed identity,
// docker config.json, platform defaults), composed in order. Not found means "try the next source";
// a real failure (a vault secret that does not parse, a credential helper that crashes, an identity
// without a token) throws a KeychainError that says which source failed and why.
import { CodedError, type KeychainErrorCode } from '../lib/errors.js';

/** What a registry client sends. `source` names where it came from, for diagnoses (never the secret). */
export type RegistryCredential =
  | { kind: 'anonymous'; source: string }
  /** Username + password (or an ACR token name + password, an SP appId + secret, the admin user). */
  | { kind: 'basic'; username: string; password: string; source: string; expiresAt?: Date }
  /**
   * An OAuth2 refresh token for the registry's token endpoint (docker config `identitytoken`, or the
   * result of ACR's `/oauth2/exchange`). Sent as `grant_type=refresh_token` to the challenge realm.
   */
  | { kind: 'refreshToken'; refreshToken: string; username?: string; source: string; expiresAt?: Date }
  /**
   * A bearer token for the registry itself (docker config `registrytoken`): sent as
   * `Authorization: Bearer` to the registry, never to a token realm.
   */
  | { kind: 'registryToken'; token: string; source: string; expiresAt?: Date };

/** What a diagnosis may say about a credential: its kind, user and source, never the secret. */
export function describeCredential(c: RegistryCredential): string {
  switch (c.kind) {
    case 'anonymous': return 'no credentials (anonymous)';
    case 'basic': return `user ${c.username} from ${c.source}`;
    case 'refreshToken': return `a refresh token${c.username ? ` for ${c.username}` : ''} from ${c.source}`;
    case 'registryToken': return `a registry token from ${c.source}`;
  }
}

export interface KeychainTarget {
  /** Registry host as written in references: `localhost:5000`, `docker.io`, `myreg.azurecr.io`. */
  registry: string;
  /** Repository path inside the registry, when known (`library/busybox`). */
  repository?: string;
}

export interface Keychain {
  /** The credential for the target, or undefined when this keychain has none for it. */
  resolve(target: KeychainTarget, signal?: AbortSignal): Promise<RegistryCredential | undefined>;
  /** Short human description for diagnoses, e.g. `docker config /root/.docker/config.json`. */
  readonly description: string;
  /**
   * Optional: called when the registry refused a credential this keychain produced (expired or
   * rotated password). A source that can refresh (managed identity, an expiring password with a
   * refresher) drops its cache so the next resolve gets a new one.
   */
  invalidate?(target: KeychainTarget, credential: RegistryCredential): void;
}

/** What kind of source failed, so that a diagnosis can say who said it (Key Vault, a credential helper, an identity). */
export type KeychainOrigin = 'vault' | 'helper' | 'identity';

export class KeychainError extends CodedError<KeychainErrorCode> {
  constructor(readonly source: string, message: string, readonly origin?: KeychainOrigin) {
    super('CredentialSourceFailed', message, 'KeychainError');
  }
}

/** A time limit for messages: `300 ms`, `30 s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

export const ANONYMOUS: RegistryCredential = { kind: 'anonymous', source: 'anonymous' };

/** Tries each keychain in order; the first that has a credential wins; none → anonymous. */
export class MultiKeychain implements Keychain {
  readonly description: string;
  constructor(private readonly chain: Keychain[]) {
    this.description = chain.map((k) => k.description).join(', ') || 'anonymous';
  }
  async resolve(target: KeychainTarget, signal?: AbortSignal): Promise<RegistryCredential> {
    for (const k of this.chain) {
      const c = await k.resolve(target, signal);
      if (c) return c;
    }
    return ANONYMOUS;
  }
  invalidate(target: KeychainTarget, credential: RegistryCredential): void {
    for (const k of this.chain) k.invalidate?.(target, credential);
  }
}
