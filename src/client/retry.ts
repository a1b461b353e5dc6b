// The registry client's waiting: a sleep that an abort ends, Retry-After read as the registry wrote it,
// and the back-off between attempts (lib/backoff.ts's one formula).
import { jitteredDelay } from '../lib/backoff.js';

export const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((res, rej) => {
  if (signal?.aborted) return rej(signal.reason);
  const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); res(); }, ms);
  const onAbort = () => { clearTimeout(t); rej(signal!.reason); };
  signal?.addEventListener('abort', onAbort, { once: true });
});

/** Seconds from a Retry-After header (delta-seconds or HTTP date). */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, Math.ceil((t - now) / 1000)) : undefined;
}

/** The wait before attempt `attempt + 1`: `base` doubled per attempt, capped at 8 s, jittered. */
export function retryDelay(base: number, attempt: number): number {
  return jitteredDelay(attempt, base, 8000);
}
