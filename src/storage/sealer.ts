// Seals small secrets that Berth must be able to show again (registry admin passwords) with AES-256-GCM
// under a key-encryption key that lives outside the database: a 0600 file in the data directory, or
// BERTH_KEK (base64, 32 bytes) in the environment.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../lib/fs-atomic.js';

export class Sealer {
  private constructor(private key: Buffer) {}

  /** A sealer over a raw 32-byte key (key rotation builds the new one this way). */
  static fromKey(key: Buffer): Sealer {
    if (key.length !== 32) throw new Error('a key-encryption key must be 32 bytes');
    return new Sealer(Buffer.from(key));
  }

  /** A short public fingerprint of the key, recorded in the database to detect a wrong key at start. */
  get keyId(): string {
    return createHash('sha256').update('berth-kek-id').update(this.key).digest('hex').slice(0, 16);
  }

  /** Switches this sealer (shared by every service) to another key, after everything was re-sealed. */
  rekey(to: Sealer): void {
    this.key = Buffer.from(to.key);
  }

  static async load(keyFile: string, env: NodeJS.ProcessEnv = process.env): Promise<Sealer> {
    if (env.BERTH_KEK) {
      const k = Buffer.from(env.BERTH_KEK, 'base64');
      if (k.length !== 32) throw new Error('BERTH_KEK must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
      return new Sealer(k);
    }
    if (!existsSync(keyFile)) await writeFileAtomic(keyFile, randomBytes(32).toString('base64') + '\n', 0o600);
    const k = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64');
    if (k.length !== 32) throw new Error(`${keyFile} does not hold a 32-byte base64 key`);
    return new Sealer(k);
  }

  /** Returns "v1.<iv>.<tag>.<ciphertext>" (base64url parts); `context` binds the value to its owner. */
  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(context));
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  open(sealed: string, context: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('sealed value has an unknown format');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(context));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}
