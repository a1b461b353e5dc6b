// A keychain of one username/password for one registry (`berth pull --creds USER:PASS`, a group's inline
// imageRegistryCredentials). Nothing for any other registry, so the password never goes elsewhere.
// (Same constructor and fromUserPass as the keychain work's InlineKeychain, so either can stay at merge.)
import { KeychainError, type Keychain, type KeychainTarget, type RegistryCredential } from './keychain.js';

export interface InlineCredential {
  /** Login server as written (`myreg.azurecr.io`, `https://index.docker.io/v1/`, `localhost:5000`). */
  server: string;
  username: string;
  password: string;
}

/** `https://index.docker.io/v1/` and `docker.io` name the same server; so do `host:port/` and `host:port`. */
function serverOf(s: string): string {
  const host = s.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

export class InlineKeychain implements Keychain {
  readonly description: string;
  readonly server: string;
  private readonly username: string;
  private readonly password: string;

  /** `label` says where the credential was written, e.g. `--creds` or `imageRegistryCredentials[0]`. */
  constructor(cred: InlineCredential, label = 'inline credentials') {
    this.server = serverOf(cred.server);
    if (!cred.username || !cred.password) throw new KeychainError(label, `${label} for ${this.server} needs both a username and a password`);
    this.username = cred.username;
    this.password = cred.password;
    this.description = `${label} for ${this.server} (user ${cred.username})`;
  }

  /** Parses `USER:PASS` (the password may contain ':'). */
  static fromUserPass(server: string, userPass: string, label = '--creds'): InlineKeychain {
    const colon = userPass.indexOf(':');
    if (colon <= 0) throw new KeychainError(label, `${label} must be USERNAME:PASSWORD`);
    return new InlineKeychain({ server, username: userPass.slice(0, colon), password: userPass.slice(colon + 1) }, label);
  }

  async resolve(target: KeychainTarget): Promise<RegistryCredential | undefined> {
    if (serverOf(target.registry) !== this.server) return undefined;
    return { kind: 'basic', username: this.username, password: this.password, source: this.description };
  }
}
