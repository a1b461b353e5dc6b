// Buffers that a stream has read from a socket are freed only when V8 collects their JS objects, and a
// download creates few JS objects per megabyte, so V8 collects rarely and tens of MB of dead socket
// buffers pile up (V8 waits for ~64 MB of external memory, then runs a full collection). A
// BufferRelease runs a young-generation collection every so many bytes instead: about a millisecond
// each, as the young generation of a streaming loop is small. Without a gc function it does nothing.
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

/**
 * Counts bytes a stream hands on and runs a young-generation collection every `every` bytes.
 * A client (`berth pull`) wants its RSS low: measured with 5 × 60 MB, every 1 MiB keeps the dead
 * buffers at ~4 MB (every 8 MiB: ~17 MB; never: ~35 MB). A server wants its CPU low: what costs it is
 * the full collections V8 starts each time ~64 MB of external memory piles up (seven per 300 MB push,
 * ~0.35 CPU-s of concurrent marking); a young collection every 8 MiB keeps it far below that at ~1 ms
 * each.
 */
export class BufferRelease {
  private pending = 0;

  constructor(private readonly every: number) {}

  count(bytes: number): void {
    this.pending += bytes;
    if (this.pending < this.every) return;
    this.pending = 0;
    gcFunction()?.({ type: 'minor' });
  }
}

/** For clients: every MiB. */
export const CLIENT_RELEASE_BYTES = 1 << 20;
/** For the server's upload path: every 8 MiB. */
export const SERVER_RELEASE_BYTES = 8 << 20;
