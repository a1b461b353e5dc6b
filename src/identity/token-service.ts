// Signs and verifies Berth's JWTs (registry access and refresh tokens, identity tokens). The ES256 key
// pair is created on first start and kept in the data directory so tokens survive restarts.
import { existsSync, readFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, calculateJwkThumbprint, type JWK, type JWTPayload } from 'jose';
import { randomUUID } from 'node:crypto';
import { writeFileAtomic } from '../lib/fs-atomic.js';

type Key = Awaited<ReturnType<typeof importJWK>>;

export class TokenService {
  private constructor(private readonly privateKey: Key, private readonly publicKey: Key,
    readonly publicJwk: JWK, readonly kid: string) {}

  static async load(keyFile: string): Promise<TokenService> {
    if (!existsSync(keyFile)) {
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      const jwk = await exportJWK(privateKey);
      await writeFileAtomic(keyFile, JSON.stringify(jwk), 0o600);
    }
    const jwk = JSON.parse(readFileSync(keyFile, 'utf8')) as JWK;
    const { d: _d, ...pub } = jwk;
    const kid = await calculateJwkThumbprint(pub);
    return new TokenService(await importJWK(jwk, 'ES256'), await importJWK(pub, 'ES256'),
      { ...pub, kid, use: 'sig', alg: 'ES256' }, kid);
  }

  async sign(claims: JWTPayload & Record<string, unknown>, opts: { issuer: string; audience: string; subject: string; ttlSeconds: number }): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(opts.issuer)
      .setAudience(opts.audience)
      .setSubject(opts.subject)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + opts.ttlSeconds)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  /** Verifies signature, expiry, issuer and audience; returns the payload or undefined. */
  async verify(token: string, opts: { issuer?: string | string[]; audience?: string | string[] }): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, {
        algorithms: ['ES256'],
        ...(opts.issuer ? { issuer: opts.issuer } : {}),
        ...(opts.audience ? { audience: opts.audience } : {}),
        clockTolerance: 30,
      });
      return payload;
    } catch {
      return undefined;
    }
  }
}
