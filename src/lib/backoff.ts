// The one exponential back-off: attempt n (1-based) waits base, 2×base, 4×base, ... capped at max.
// Callers choose base and cap (a pull retry: 200 ms to 4 s; a container restart: 10 s to 5 min).

export function backoffDelay(n: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, n - 1));
}

/** backoffDelay with "equal jitter": somewhere in its upper half, so many clients do not retry in step. */
export function jitteredDelay(n: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const d = backoffDelay(n, baseMs, maxMs);
  return d / 2 + random() * (d / 2);
}
