// Builds a keychain from plain data: what a container group's spec (or `berth pull`'s flags) says about
// credentials, plus the platform's defaults. Order (SPEC §4.4): the group's inline credentials, its
// expiring passwords, its vault secrets, its managed identities, its Docker config files, and last the
// platform-level defaults. The first source that has a credential for the server wins.
import { MultiKeychain, type Keychain } from './keychain.js';
import { InlineKeychain, type InlineCredential } from './inline.js';
import { DockerConfigKeychain } from './docker-config.js';
import { VaultSecretKeychain, type SecretReader, type VaultSecretRef } from './vault-secret.js';
import { ManagedIdentityKeychain, type AccessTokenProvider } from './managed-identity.js';
import { ExpiringPasswordKeychain, type ExpiringPasswordOptions } from './refreshing.js';
import { KeychainError } from './keychain.js';
import type { Dispatcher } from 'undici';

export interface IdentityCredentialSpec {
  server: string;
  /** The identity as the spec names it (ARM id, client id, `system`). */
  identity: string;
  getToken: AccessTokenProvider;
  tenant?: string;
  scheme?: 'http' | 'https';
  dispatcher?: Dispatcher;
}

export interface KeychainSpec {
  /** `imageRegistryCredentials` entries with username/password, `--creds`; `label` names the entry in messages. */
  inline?: Array<InlineCredential & { label?: string }>;
  /** Passwords with an expiry and maybe a refresher (ECR). */
  expiring?: ExpiringPasswordOptions[];
  /** Vault secrets by name, resolved at pull time (needs `deps.secrets`). */
  vaultSecrets?: VaultSecretRef[];
  /** `imageRegistryCredentials` entries with an identity. */
  identities?: IdentityCredentialSpec[];
  /** Docker config.json / auth.json files (`--registry-config`); a missing file is an error. */
  dockerConfig?: string | string[];
}

export interface KeychainDeps {
  /** The vault, for vaultSecrets. */
  secrets?: SecretReader;
  /** Platform-level defaults, tried after everything the spec gives (e.g. DockerConfigKeychain.defaults()). */
  defaults?: Keychain[];
  /** Environment for credential helpers; default process.env. */
  env?: NodeJS.ProcessEnv;
  helperTimeoutMs?: number;
}

export function keychainFor(spec: KeychainSpec, deps: KeychainDeps = {}): MultiKeychain {
  const chain: Keychain[] = [];
  (spec.inline ?? []).forEach((c, i) => chain.push(new InlineKeychain(c, c.label ?? (spec.inline!.length > 1 ? `inline credentials #${i + 1}` : 'inline credentials'))));
  for (const e of spec.expiring ?? []) chain.push(new ExpiringPasswordKeychain(e));
  if (spec.vaultSecrets?.length) {
    if (!deps.secrets) throw new KeychainError('keychain', 'credentials from vault secrets were asked for, but no vault is available to read them');
    for (const ref of spec.vaultSecrets) chain.push(new VaultSecretKeychain(ref, deps.secrets));
  }
  for (const id of spec.identities ?? []) {
    chain.push(new ManagedIdentityKeychain({ server: id.server, identity: id.identity, getToken: id.getToken,
      ...(id.tenant ? { tenant: id.tenant } : {}), ...(id.scheme ? { scheme: id.scheme } : {}), ...(id.dispatcher ? { dispatcher: id.dispatcher } : {}) }));
  }
  const configs = typeof spec.dockerConfig === 'string' ? [spec.dockerConfig] : spec.dockerConfig ?? [];
  for (const path of configs) {
    chain.push(new DockerConfigKeychain({ path, ...(deps.env ? { env: deps.env } : {}), ...(deps.helperTimeoutMs ? { helperTimeoutMs: deps.helperTimeoutMs } : {}) }));
  }
  chain.push(...(deps.defaults ?? []));
  return new MultiKeychain(chain);
}
