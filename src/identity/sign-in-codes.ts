// One-time sign-in codes for the portal: a signed-in CLI asks for one (`berth portal`), the browser
// redeems it once for that same principal's tokens. Only a hash of the code is kept, and only in
// memory: a code lives five minutes and dies with the server process. A code never grants more than
// the principal that asked for it holds.
import { createHash, randomBytes } from 'node:crypto';

export const SIGN_IN_CODE_TTL_MS = 5 * 60_000;
const MAX_OPEN_CODES = 1000;

const digest = (code: string) => createHash('sha256').update(code).digest('hex');

export class SignInCodes {
  private readonly open = new Map<string, { principalId: string; expires: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  create(principalId: string): { code: string; expiresOn: string } {
    this.sweep();
    if (this.open.size >= MAX_OPEN_CODES) this.open.delete(this.open.keys().next().value!);
    const code = randomBytes(24).toString('base64url');
    const expires = this.now() + SIGN_IN_CODE_TTL_MS;
    this.open.set(digest(code), { principalId, expires });
    return { code, expiresOn: new Date(expires).toISOString() };
  }

  /** The principal a code was made for, once; undefined for an unknown, used or expired code. */
  redeem(code: string): string | undefined {
    const key = digest(code);
    const entry = this.open.get(key);
    this.open.delete(key);
    return entry && entry.expires > this.now() ? entry.principalId : undefined;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, v] of this.open) if (v.expires <= now) this.open.delete(k);
  }
}
