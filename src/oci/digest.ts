// Digests as the OCI image spec defines them: algorithm ":" encoded.
import { createHash, type Hash } from 'node:crypto';

export type DigestAlgorithm = 'sha256' | 'sha512';
export type Digest = string & { readonly __brand: 'Digest' };

const ENCODED: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export class InvalidDigestError extends Error {
  constructor(readonly input: string, reason: string) {
    super(`invalid digest "${input.slice(0, 200)}": ${reason}`);
  }
}

/** Parses a digest string; throws InvalidDigestError naming what is wrong. */
export function parseDigest(input: string): Digest {
  const i = input.indexOf(':');
  if (i <= 0) throw new InvalidDigestError(input, 'expected "<algorithm>:<hex>"');
  const alg = input.slice(0, i);
  const enc = input.slice(i + 1);
  if (alg !== 'sha256' && alg !== 'sha512') {
    throw new InvalidDigestError(input, `unsupported algorithm "${alg}" (use sha256 or sha512)`);
  }
  if (!ENCODED[alg].test(enc)) {
    throw new InvalidDigestError(input, `${alg} needs ${alg === 'sha256' ? 64 : 128} lowercase hex characters`);
  }
  return input as Digest;
}

export function isDigest(input: string): boolean {
  try { parseDigest(input); return true; } catch { return false; }
}

export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function newHasher(alg: DigestAlgorithm = 'sha256'): Hash {
  return createHash(alg);
}

export function digestOf(data: Buffer | string, alg: DigestAlgorithm = 'sha256'): Digest {
  return `${alg}:${createHash(alg).update(data).digest('hex')}` as Digest;
}

export function hasherDigest(h: Hash, alg: DigestAlgorithm): Digest {
  return `${alg}:${h.digest('hex')}` as Digest;
}
