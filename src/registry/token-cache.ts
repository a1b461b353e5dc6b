// Access tokens already verified, so a client that sends the same bearer token on every request (all
// of them do, for the token's hour) pays for one ES256 signature check, not one per request. Only the
// token's own verdict is kept (signature, issuer, audience, expiry); who it names is looked up again on
// every request (a disabled admin user or token is refused at once). An entry lasts until the token
// expires and at most a minute; the cache holds a bounded number of tokens.
import type { JWTPayload } from 'jose';

const MAX_ENTRIES = 4096;
const MAX_AGE_MS = 60_000;

export class VerifiedTokens {
  private readonly entries = new Map<string, { payload: JWTPayload; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The payload of a token verified for `audience` earlier and not yet expired. */
  get(audience: string, token: string): JWTPayload | undefined {
    const key = `${audience}\n${token}`;
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.payload;
  }

  /** Keeps a payload that verification just accepted. */
  put(audience: string, token: string, payload: JWTPayload): void {
    const now = this.now();
    const until = Math.min(typeof payload.exp === 'number' ? payload.exp * 1000 : now, now + MAX_AGE_MS);
    if (until <= now) return;
    if (this.entries.size >= MAX_ENTRIES) {
      // Oldest first (a Map iterates in insertion order); expired ones go on the way.
      for (const [k, v] of this.entries) {
        this.entries.delete(k);
        if (v.until > now) break;
      }
    }
    this.entries.set(`${audience}\n${token}`, { payload, until });
  }
}
