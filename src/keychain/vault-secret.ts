// Credentials kept in a Berth vault and read at pull time, never copied into the group: either one
// secret whose value is JSON {"username","password"} (seed 000, Meadowrun's `AzureSecret`) or a Docker
// config.json (`{"auths": {...}}`, as a Kubernetes imagePullSecret holds one: seed 001), or a pair
// of secrets, the registry user name and its password (seed 003: `$ACR_NAME-pull-usr` and
// `$ACR_NAME-pull-pwd`). The vault is reached through SecretReader, so this file does not depend on the
// vault service; the composition root hands in the real one.
import { KeychainError, type Keychain, type KeychainTarget, type RegistryCredential } from './keychain.js';
import { serverKey } from './server-key.js';
import { authsCredential, parseDockerConfig } from './docker-config.js';

/** Reads a secret's current value; undefined when the vault has no such (enabled) secret. */
export interface SecretReader {
  getSecret(vaultName: string, secretName: string): Promise<string | undefined>;
}

export type VaultSecretRef =
  /** One secret holding JSON `{"username": "...", "password": "..."}`. */
  | { server: string; vault: string; secret: string }
  /** Two secrets: the user name and the password (seed 003's `NAME-usr` / `NAME-pwd`). */
  | { server: string; vault: string; usernameSecret: string; passwordSecret: string }
  /** A user name given as is (it is no secret) and the password in a secret. */
  | { server: string; vault: string; username: string; passwordSecret: string };

/** The pair seed 003 creates for a prefix: `myregistry-pull` → `myregistry-pull-usr`, `myregistry-pull-pwd`. */
export function secretPair(server: string, vault: string, prefix: string): VaultSecretRef {
  return { server, vault, usernameSecret: `${prefix}-usr`, passwordSecret: `${prefix}-pwd` };
}

export class VaultSecretKeychain implements Keychain {
  readonly description: string;
  private readonly server: string;

  constructor(private readonly ref: VaultSecretRef, private readonly reader: SecretReader) {
    this.server = serverKey(ref.server);
    this.description = 'secret' in ref
      ? `vault secret ${ref.vault}/${ref.secret} for ${this.server}`
      : 'username' in ref
        ? `user ${ref.username} with the password in vault secret ${ref.vault}/${ref.passwordSecret} for ${this.server}`
        : `vault secrets ${ref.vault}/${ref.usernameSecret} and ${ref.vault}/${ref.passwordSecret} for ${this.server}`;
  }

  async resolve(target: KeychainTarget): Promise<RegistryCredential | undefined> {
    if (serverKey(target.registry) !== this.server) return undefined;
    if ('secret' in this.ref) {
      const value = await this.read(this.ref.secret);
      if (holdsDockerConfig(value)) return this.fromDockerConfig(value, target, this.ref.vault, this.ref.secret);
      const { username, password } = parseUsernamePassword(value, this.ref.vault, this.ref.secret, this.description);
      return { kind: 'basic', username, password, source: this.description };
    }
    const [username, password] = await Promise.all(['username' in this.ref ? this.ref.username : this.read(this.ref.usernameSecret), this.read(this.ref.passwordSecret)]);
    if (username.trim() === '' && 'usernameSecret' in this.ref) throw new KeychainError(this.description, `secret ${this.ref.usernameSecret} in vault ${this.ref.vault} is empty: it should hold the registry user name`, 'vault');
    if (password === '') throw new KeychainError(this.description, `secret ${this.ref.passwordSecret} in vault ${this.ref.vault} is empty: it should hold the registry password`, 'vault');
    // `az keyvault secret show --query value -o tsv` drops a trailing newline; a user name never has one.
    return { kind: 'basic', username: username.trim(), password, source: this.description };
  }

  /**
   * The credential for the target from a Docker config.json kept as the secret (as Kubernetes keeps one
   * in an imagePullSecret): its `auths` only — a credential helper named in it is not run on the server.
   */
  private fromDockerConfig(value: string, target: KeychainTarget, vault: string, secret: string): RegistryCredential {
    const cfg = parseDockerConfig(value, `in secret ${secret} of vault ${vault}`);
    const got = authsCredential(cfg, target, this.description);
    if (got) return got;
    const servers = [...cfg.auths.values()].map((e) => JSON.stringify(e.key.slice(0, 100))).slice(0, 10);
    const helpers = cfg.credsStore || cfg.credHelpers.size > 0
      ? '; credential helpers (credsStore, credHelpers) in a vault secret are not run: put the credential in "auths"' : '';
    throw new KeychainError(this.description, `secret ${secret} in vault ${vault} holds a Docker config.json with no "auths" entry for ${this.server}` +
      `${servers.length ? ` (its entries: ${servers.join(', ')})` : ''}${helpers}`);
  }

  private async read(name: string): Promise<string> {
    let value: string | undefined;
    try {
      value = await this.reader.getSecret(this.ref.vault, name);
    } catch (e) {
      throw new KeychainError(this.description, `cannot read secret ${name} from vault ${this.ref.vault}: ${(e as Error).message}`, 'vault');
    }
    if (value === undefined) {
      throw new KeychainError(this.description, `secret ${name} was not found in vault ${this.ref.vault} (or is disabled): create it with berth keyvault secret set --vault-name ${this.ref.vault} --name ${name} --value ...`, 'vault');
    }
    return value;
  }
}

/** Whether a secret's value is a Docker config.json (a JSON object with "auths", "credHelpers" or "credsStore"). */
export function holdsDockerConfig(value: string): boolean {
  try {
    const doc = JSON.parse(value) as unknown;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && ['auths', 'credHelpers', 'credsStore'].some((k) => k in doc);
  } catch {
    return false;
  }
}

/** Parses seed 000's JSON secret value. Errors name vault and secret, never the value. */
export function parseUsernamePassword(value: string, vault: string, secret: string, source = `vault secret ${vault}/${secret}`): { username: string; password: string } {
  const bad = (what: string) => new KeychainError(source, `secret ${secret} in vault ${vault} ${what}; its value must be JSON like {"username": "janedoe1", "password": "..."} or a Docker config.json {"auths": {...}}`, 'vault');
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw bad('is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('is JSON but not an object');
  const o = doc as Record<string, unknown>;
  const missing = ['username', 'password'].filter((k) => typeof o[k] !== 'string' || o[k] === '');
  if (missing.length) {
    const keys = Object.keys(o).slice(0, 10).map((k) => JSON.stringify(k.slice(0, 40)));
    throw bad(`has no ${missing.join(' and ')} (string) field${keys.length ? ` (its fields: ${keys.join(', ')})` : ''}`);
  }
  return { username: o.username as string, password: o.password as string };
}
