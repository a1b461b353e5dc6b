// Keys every replica must hold the same of (the token-signing key, the CA's key), kept in the metadata
// database sealed under the key-encryption key: whoever asks first creates the key, every other
// replica reads that one. The KEK itself never enters the database; each replica is given it (the
// same key file or BERTH_KEK), so a copy of the database alone opens nothing.
import type { Sealer } from '../sealer.js';
import type { Sql } from './sql.js';

/** The context a shared key is sealed with (key rotation re-seals it under the same). */
export const sharedKeyContext = (name: string) => `shared-key:${name}`;

export class SharedKeys {
  constructor(private readonly sql: Sql, private readonly sealer: Sealer) {}

  private async read(name: string): Promise<string | undefined> {
    const r = await this.sql.get<{ sealed: string }>('SELECT sealed FROM shared_keys WHERE name = ?', [name]);
    return r && this.sealer.open(r.sealed, sharedKeyContext(name));
  }

  /**
   * The key named `name`; made by `create` when no replica has made it yet. Replicas racing to create
   * it all end with the one stored first.
   */
  async getOrCreate(name: string, create: () => Promise<string>): Promise<string> {
    const held = await this.read(name);
    if (held !== undefined) return held;
    const made = await create();
    await this.sql.run(
      `INSERT INTO shared_keys (name, sealed, created_at) VALUES (?, ?, ${this.sql.dialect.nowMs}) ON CONFLICT (name) DO NOTHING`,
      [name, this.sealer.seal(made, sharedKeyContext(name))],
    );
    const stored = await this.read(name);
    if (stored === undefined) throw new Error(`the shared key ${name} could not be stored`);
    return stored;
  }
}
