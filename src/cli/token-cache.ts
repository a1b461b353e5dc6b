// The CLI's management token kept between runs (as az keeps its MSAL cache), so that each command does
// not first ask the identity endpoint for a new one. One file, mode 0600, next to the credential it was
// got with; entries are keyed by a hash of server, tenant, client id and secret, so a changed secret or
// another server never reuses a token. The token itself is never printed or logged.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import type { CliContext } from './context.js';

/** A token is reused until this long before it expires (MSAL refreshes 5 minutes early too). */
const MARGIN_MS = 5 * 60_000;

interface Entry { accessToken: string; expiresOn: number }
type CacheFile = Record<string, Entry>;

function cacheKey(ctx: CliContext): string {
  const c = ctx.credential;
  return createHash('sha256').update([ctx.server, c.tenantId, c.clientId, c.clientSecret].join('\n')).digest('hex');
}

function readCache(path: string): CacheFile {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as CacheFile) : {};
  } catch {
    return {};
  }
}

/** The cached management token for this context, when there is one that is not about to expire. */
export function cachedToken(ctx: CliContext, now = Date.now()): string | undefined {
  if (!ctx.tokenCache) return undefined;
  const e = readCache(ctx.tokenCache)[cacheKey(ctx)];
  return e && typeof e.accessToken === 'string' && typeof e.expiresOn === 'number' && e.expiresOn - MARGIN_MS > now ? e.accessToken : undefined;
}

/** Stores (or, with undefined, forgets) the management token; best effort: a read-only directory just means no cache. */
export async function storeToken(ctx: CliContext, token: string | undefined, expiresInSeconds = 0, now = Date.now()): Promise<void> {
  if (!ctx.tokenCache) return;
  const all = readCache(ctx.tokenCache);
  const out: CacheFile = {};
  for (const [k, e] of Object.entries(all)) if (typeof e?.expiresOn === 'number' && e.expiresOn > now) out[k] = e;
  const key = cacheKey(ctx);
  if (token) out[key] = { accessToken: token, expiresOn: now + expiresInSeconds * 1000 };
  else delete out[key];
  try {
    await writeFileAtomic(ctx.tokenCache, JSON.stringify(out) + '\n', 0o600);
  } catch {
    // not writable: the next run asks for a token again
  }
}
