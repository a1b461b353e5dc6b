// A keychain of one username/password for one registry (`--creds USER:PASS`, a group's inline
// imageRegistryCredentials). Nothing for any other registry, so the password never goes elsewhere.
import type { Keychain, KeychainTarget, RegistryCredential } from './keychain.js';

export class InlineKeychain implements Keychain {
  readonly description: string;
  constructor(private readonly server: string, private readonly username: string, private readonly password: string,
    private readonly source = 'inline') {
    this.description = `${source} credentials for ${server}`;
  }

  async resolve(target: KeychainTarget): Promise<RegistryCredential | undefined> {
    if (normaliseServer(target.registry) !== normaliseServer(this.server)) return undefined;
    return { kind: 'basic', username: this.username, password: this.password, source: this.source };
  }
}

/** `https://index.docker.io/v1/` and `docker.io` name the same server; so do `host:port/` and `host:port`. */
export function normaliseServer(s: string): string {
  const host = s.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}
