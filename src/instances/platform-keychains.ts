// The KeychainFactory Berth runs with: the keychain module's sources (InlineKeychain,
// VaultSecretKeychain, ManagedIdentityKeychain, DockerConfigKeychain defaults) over Berth's own
// services — tokens for a group's managed identities are issued in-process, vault secrets are read
// through the vault's SecretReader.
import { InlineKeychain } from '../keychain/inline.js';
import { VaultSecretKeychain, type SecretReader } from '../keychain/vault-secret.js';
import { ManagedIdentityKeychain } from '../keychain/managed-identity.js';
import { KeychainError, type Keychain } from '../keychain/keychain.js';
import type { IdentityService } from '../identity/service.js';
import type { KeychainFactory } from './keychains.js';
import { isSecretRef, type SecretRef } from './spec.js';

export interface PlatformKeychainDeps {
  identity: IdentityService;
  /** The vault, for Key Vault references in imageRegistryCredentials. */
  secrets?: SecretReader;
  /** Platform-level defaults tried last (e.g. DockerConfigKeychain.defaults()). */
  defaults?: () => Keychain[];
}

const vaultName = (r: SecretRef) => r.reference.keyVault.id.split('/').pop()!;

export function platformKeychainFactory(d: PlatformKeychainDeps): KeychainFactory {
  return {
    inline: (server, username, password) => new InlineKeychain({ server, username, password }, "imageRegistryCredentials"),
    managedIdentity: (server, id) => new ManagedIdentityKeychain({
      server,
      identity: id.resourceId ?? `system-assigned (client id ${id.clientId})`,
      tenant: d.identity.ids.tenantId,
      getToken: async (resource) => {
        const p = await d.identity.principalById(id.principalId);
        if (!p) throw new KeychainError(`managed identity ${id.clientId}`, 'the identity no longer exists; assign an existing identity to the group', 'identity');
        return { token: await d.identity.issueAccessToken(p, resource) };
      },
    }),
    vaultSecret: (server, ref) => {
      if (!d.secrets) throw new KeychainError('vault secret', 'this Berth server has no vault to read secrets from', 'vault');
      const { username, password } = ref;
      if (isSecretRef(password) && username === undefined) {
        return new VaultSecretKeychain({ server, vault: vaultName(password), secret: password.reference.secretName }, d.secrets);
      }
      if (isSecretRef(password) && isSecretRef(username)) {
        if (vaultName(username) !== vaultName(password)) throw new KeychainError('vault secret', `the username and password secrets for ${server} must be in the same vault`, 'vault');
        return new VaultSecretKeychain({ server, vault: vaultName(password), usernameSecret: username.reference.secretName, passwordSecret: password.reference.secretName }, d.secrets);
      }
      if (isSecretRef(password) && typeof username === 'string') {
        return new VaultSecretKeychain({ server, vault: vaultName(password), username, passwordSecret: password.reference.secretName }, d.secrets);
      }
      throw new KeychainError('vault secret', `imageRegistryCredentials for ${server}: give the password as a Key Vault reference too (a literal password next to a referenced username is not supported)`, 'vault');
    },
    ...(d.defaults ? { platformDefaults: d.defaults } : {}),
  };
}
