// Buffers that a stream has read from a socket are freed only when V8 collects their JS objects, and a
// download creates few JS objects per megabyte, so V8 collects rarely and tens of MB of dead socket
// buffers pile up (V8 waits for ~64 MB of external memory). `releaseBuffers(n)` after every n bytes
// handed on runs a young-generation collection every MiB instead: a fraction of a millisecond each,
// as the young generation of a streaming loop is small. Without a gc function it does nothing.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (o?: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | null | undefined;

function gcFunction(): Gc | null {
  if (gc !== undefined) return gc;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  } catch {
    gc = null;
  }
  return gc;
}

/** Measured with `berth pull` of 5 × 60 MB: every 1 MiB keeps the dead buffers at ~4 MB (every 8 MiB: ~17 MB; never: ~35 MB). */
const EVERY = 1 << 20;
let pending = 0;

/** Counts `bytes` streamed through; every MiB, a young-generation collection. */
export function releaseBuffers(bytes: number): void {
  pending += bytes;
  if (pending < EVERY) return;
  pending = 0;
  gcFunction()?.({ type: 'minor' });
}
