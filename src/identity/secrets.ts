// Generating, hashing and checking secrets. Hashes are scrypt with a per-secret salt; comparisons are
// constant-time.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, createHash } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>;
const PARAMS = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** A random secret of `bytes` bytes, base64 without padding characters that trouble shells. */
export function generateSecret(bytes = 30): string {
  return randomBytes(bytes).toString('base64').replace(/\//g, '_').replace(/=+$/, '');
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(secret, salt, 32, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(key, 'base64');
  const got = await scrypt(secret, Buffer.from(salt, 'base64'), expected.length,
    { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 });
  return timingSafeEqual(got, expected);
}

/** Constant-time string equality (compares fixed-length hashes so lengths do not leak). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/**
 * scrypt checks are slow on purpose; clients that send Basic credentials on every request would pay
 * that each time. A successful check is remembered for a minute, keyed by the stored hash and the
 * secret, so a rotated or deleted secret stops matching at once. Checks of the same secret that arrive
 * while one runs (50 clients starting at once) wait for that one instead of each running scrypt.
 */
const verified = new Map<string, number>();
const checking = new Map<string, Promise<boolean>>();
export function verifySecretCached(secret: string, stored: string): Promise<boolean> {
  const key = createHash('sha256').update(stored).update('\0').update(secret).digest('hex');
  const until = verified.get(key);
  if (until !== undefined && until > Date.now()) return Promise.resolve(true);
  const running = checking.get(key);
  if (running) return running;
  const check = verifySecret(secret, stored).then((ok) => {
    if (ok) {
      if (verified.size > 10_000) verified.clear();
      verified.set(key, Date.now() + 60_000);
    }
    return ok;
  }).finally(() => checking.delete(key));
  checking.set(key, check);
  return check;
}
