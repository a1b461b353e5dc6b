// In-process reads of vault secrets for Berth's own services (the keychain's SecretReader contract on
// main: getSecret(vaultName, secretName) → the value, or undefined when there is no such enabled secret).
import { BerthError } from '../lib/errors.js';
import type { Secrets } from './secrets.js';
import type { Vaults } from './vaults.js';

export class VaultSecretReader {
  constructor(private readonly vaults: Vaults, private readonly secrets: Secrets) {}

  async getSecret(vaultName: string, secretName: string): Promise<string | undefined> {
    const v = await this.vaults.byName(vaultName);
    if (!v) throw new Error(`vault ${vaultName} does not exist: create it with berth keyvault create -g <group> -n ${vaultName}`);
    try {
      return (await this.secrets.get(v, secretName)).value;
    } catch (e) {
      // not found, deleted, or disabled: "no such enabled secret"
      if (e instanceof BerthError && (e.kind === 'notFound' || e.kind === 'forbidden')) return undefined;
      throw e;
    }
  }
}
