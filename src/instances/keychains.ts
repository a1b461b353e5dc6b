// The keychain a container's pull uses, built from its group's imageRegistryCredentials and identities:
// inline username/password entries, then managed-identity entries, then the platform's defaults. Each
// entry answers only for its own server (credentials never go to another host). The credential
// sources themselves (InlineKeychain, ManagedIdentityKeychain, ...) come from the keychain module
// through a KeychainFactory, so this file only decides which sources apply and in which order.
import { MultiKeychain, type Keychain, type KeychainTarget, type RegistryCredential } from '../keychain/keychain.js';
import { tryServerKey } from '../keychain/server-key.js';
import { isSecretRef, type GroupSpec, type SecretRef } from './spec.js';
import { invalid } from '../lib/errors.js';

/** A managed identity the group holds, as the keychain needs it. */
export interface GroupIdentity {
  principalId: string;
  clientId: string;
  /** ARM id of a user-assigned identity; undefined for the system-assigned one. */
  resourceId?: string;
}

/** Makes the credential sources; the coordinator plugs in the keychain module's classes. */
export interface KeychainFactory {
  /** InlineKeychain: username/password for `server` (source "inline" / "group credential"). */
  inline(server: string, username: string, password: string): Keychain;
  /** ManagedIdentityKeychain: identity token → /oauth2/exchange → registry refresh token. */
  managedIdentity(server: string, identity: GroupIdentity): Keychain;
  /**
   * VaultSecretKeychain: username and/or password from Key Vault secrets, read at pull time. With only
   * a password reference, that secret's value is JSON {"username","password"}.
   */
  vaultSecret?(server: string, ref: { username?: string | SecretRef; password: string | SecretRef }): Keychain;
  /** Platform defaults (DockerConfigKeychain over the server's docker config, ...), tried last. */
  platformDefaults?(): Keychain[];
}

/** Whether two ways of writing a registry server name the same server (the keychain's one rule: serverKey). */
export function sameServer(a: string, b: string): boolean {
  const ka = tryServerKey(a);
  return ka !== undefined && ka === tryServerKey(b);
}

/** Restricts a keychain to one server: it is not asked about any other host. */
export class ServerScopedKeychain implements Keychain {
  readonly description: string;
  constructor(private readonly server: string, private readonly inner: Keychain) {
    this.description = inner.description;
  }
  private mine(t: KeychainTarget): boolean {
    return sameServer(t.registry, this.server);
  }
  async resolve(t: KeychainTarget, signal?: AbortSignal): Promise<RegistryCredential | undefined> {
    return this.mine(t) ? this.inner.resolve(t, signal) : undefined;
  }
  invalidate(t: KeychainTarget, c: RegistryCredential): void {
    if (this.mine(t)) this.inner.invalidate?.(t, c);
  }
}

/**
 * The keychain for a group's pulls. `identities` resolves an imageRegistryCredentials `identity` value
 * (a user-assigned identity's ARM id, or `[system]`) to the identity the group holds.
 */
export async function groupKeychain(spec: GroupSpec, factory: KeychainFactory, identities: (ref: string) => Promise<GroupIdentity | undefined>): Promise<MultiKeychain> {
  const chain: Keychain[] = [];
  for (const c of spec.imageRegistryCredentials) {
    if (typeof c.username === 'string' && typeof c.password === 'string') {
      chain.push(new ServerScopedKeychain(c.server, factory.inline(c.server, c.username, c.password)));
    } else if (isSecretRef(c.username) || isSecretRef(c.password)) {
      if (!factory.vaultSecret) throw invalid('VaultNotConfigured', `imageRegistryCredentials for ${c.server} reference a Key Vault secret, but this Berth server has no vault to read it from.`);
      chain.push(new ServerScopedKeychain(c.server, factory.vaultSecret(c.server, { ...(c.username !== undefined ? { username: c.username } : {}), password: c.password! })));
    }
  }
  for (const c of spec.imageRegistryCredentials) {
    if (!c.identity) continue;
    const id = await identities(c.identity);
    if (id) chain.push(new ServerScopedKeychain(c.server, factory.managedIdentity(c.server, id)));
  }
  chain.push(...(factory.platformDefaults?.() ?? []));
  return new MultiKeychain(chain);
}
