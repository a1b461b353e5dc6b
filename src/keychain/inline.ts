// Inline credentials: one username/password for one login server, as a container group's
// `imageRegistryCredentials` entry, `--registry-username/--registry-password` or `berth pull --creds`
// give them. The password lives only in this object; the description names server and user. (A password
// with an expiry is an ExpiringPasswordKeychain, refreshing.ts.)
import { KeychainError, type Keychain, type KeychainTarget, type RegistryCredential } from './keychain.js';
import { serverKey } from './server-key.js';

export interface InlineCredential {
  /** Login server as the user wrote it (`myreg.azurecr.io`, `https://index.docker.io/v1/`, `localhost:5000`). */
  server: string;
  username: string;
  password: string;
}

export class InlineKeychain implements Keychain {
  readonly description: string;
  readonly server: string;
  private readonly username: string;
  private readonly password: string;

  /** `label` says where the credential was written, e.g. `imageRegistryCredentials[0]` or `--creds`. */
  constructor(cred: InlineCredential, label = 'inline credentials') {
    this.server = serverKey(cred.server);
    if (typeof cred.username !== 'string' || cred.username === '') {
      throw new KeychainError(label, `${label} for ${this.server} has no username: give both a username and a password`);
    }
    if (typeof cred.password !== 'string' || cred.password === '') {
      throw new KeychainError(label, `${label} for ${this.server} (user ${cred.username}) has no password: give both a username and a password`);
    }
    this.username = cred.username;
    this.password = cred.password;
    this.description = `${label} for ${this.server} (user ${cred.username})`;
  }

  /** Parses `USER:PASS` (the password may contain ':'), as `--creds` takes it. */
  static fromUserPass(server: string, userPass: string, label = '--creds'): InlineKeychain {
    const colon = userPass.indexOf(':');
    if (colon <= 0) {
      throw new KeychainError(label, `${label} must be USERNAME:PASSWORD${colon === 0 ? ' (the username is empty)' : ''}`);
    }
    return new InlineKeychain({ server, username: userPass.slice(0, colon), password: userPass.slice(colon + 1) }, label);
  }

  async resolve(target: KeychainTarget): Promise<RegistryCredential | undefined> {
    if (serverKey(target.registry) !== this.server) return undefined;
    return { kind: 'basic', username: this.username, password: this.password, source: this.description };
  }
}
