// Writes a stream in large pieces: incoming chunks (16-64 KiB from a socket) are copied into one of two
// 256 KiB staging buffers, and each full buffer goes to `flush` (which hashes and writes it) while the
// other fills. So a 60 MB upload is ~230 file writes, not ~4,000 writes with a thread-pool round trip
// each, and no chunk outlives its copy. Memory per stream is two staging buffers from the shared pool
// (./buffer-pool.ts). The body is never destroyed: a refused upload leaves the request readable so its
// connection can carry the answer (the caller drains it).
import { finished, type Readable } from 'node:stream';
import { BUFFER_BYTES as STAGE_BYTES, acquireBuffer as acquire, releaseBuffer as release } from './buffer-pool.js';
import { BufferRelease, SERVER_RELEASE_BYTES } from '../lib/minor-gc.js';
import { CodedError, type StorageErrorCode } from '../lib/errors.js';

/** One counter for every upload of the process: the collections are of one shared young generation. */
const uploadRelease = new BufferRelease(SERVER_RELEASE_BYTES);

/** The body carried more than the caller allows (`maxBytes`). */
export class TooManyBytesError extends CodedError<StorageErrorCode> {
  constructor(message: string) { super('TooManyBytes', message); }
}

/**
 * Feeds `body` to `flush` in pieces of up to STAGE_BYTES, in order, at most one flush at a time; a
 * piece's buffer is reused once its flush resolved, so `flush` must not keep it. Resolves with the
 * byte count once the last piece is flushed. When the body fails, rejects after any flush in progress
 * settles (what was staged is not flushed). When it carries more than `maxBytes`, what came before the
 * offending chunk is flushed and TooManyBytesError is thrown. A failing flush rejects at once.
 */
export function writeCoalesced(body: Readable, flush: (piece: Buffer) => Promise<void>, maxBytes = Number.MAX_SAFE_INTEGER): Promise<number> {
  return new Promise((resolve, reject) => {
    let stage: Buffer | undefined = acquire();
    let spare: Buffer | undefined;
    let fill = 0;
    let received = 0;
    let inflight: Promise<void> | undefined;
    /** The rest of a chunk that arrived while both buffers were busy. */
    let stash: { chunk: Buffer; off: number } | undefined;
    let ended = false;
    let settled = false;

    const detach = () => {
      body.off('data', onData);
      stopWatching();
      body.pause();
    };
    const settle = async (err: unknown, flushStaged: boolean) => {
      if (settled) return;
      settled = true;
      detach();
      let failure = err;
      try {
        await inflight;
        if (flushStaged && fill > 0) await flush(stage!.subarray(0, fill));
      } catch (e) {
        failure ??= e;
      }
      release(stage);
      release(spare);
      stage = spare = undefined;
      if (failure === undefined) resolve(received);
      else reject(failure);
    };
    const startFlush = () => {
      const piece = stage!.subarray(0, fill);
      const next = spare ?? acquire();
      spare = stage;
      stage = next;
      fill = 0;
      inflight = flush(piece).then(onFlushed, (e: unknown) => {
        inflight = undefined;
        void settle(e, false);
      });
    };
    const take = (chunk: Buffer, from: number) => {
      let off = from;
      while (off < chunk.length) {
        const n = Math.min(chunk.length - off, STAGE_BYTES - fill);
        chunk.copy(stage!, fill, off, off + n);
        fill += n;
        off += n;
        if (fill === STAGE_BYTES) {
          if (inflight) {
            body.pause();
            stash = { chunk, off };
            return;
          }
          startFlush();
        }
      }
    };
    function onFlushed() {
      inflight = undefined;
      if (settled) return;
      if (stash) {
        const s = stash;
        stash = undefined;
        startFlush(); // the stage that filled while the last flush ran
        take(s.chunk, s.off);
        if (!stash) body.resume();
      } else if (ended) {
        void settle(undefined, true);
      }
    }
    function onData(chunk: Buffer) {
      received += chunk.length;
      if (received > maxBytes) {
        received -= chunk.length;
        void settle(new TooManyBytesError(`more than ${maxBytes} bytes`), true);
        return;
      }
      take(chunk, 0);
      uploadRelease.count(chunk.length);
    }
    const stopWatching = finished(body, { writable: false }, (err) => {
      if (err) {
        void settle(err, false);
        return;
      }
      ended = true;
      if (!inflight && !stash) void settle(undefined, true);
    });
    body.on('data', onData);
    body.resume();
  });
}
