// Sends a file, or a byte range of it, to a writable (an HTTP response) through two reused 256 KiB
// buffers: the next piece is read while the last one is being sent, and nothing is allocated per
// piece, so the writable must be done with a piece when its write callback runs (a socket or an HTTP
// response is). The writable's own backpressure is honoured. A writable that closes early (the client went
// away) ends the copy quietly; its buffers are then left to the GC rather than reused, as a closed
// socket's write may not have let go of them.
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { acquireBuffer, releaseBuffer, BUFFER_BYTES } from './buffer-pool.js';
import { CodedError, type StorageErrorCode } from '../lib/errors.js';

/** The file ended before `end`: it changed under the reader. */
export class ShortFileError extends CodedError<StorageErrorCode> {
  constructor(message: string) { super('ShortFile', message); }
}

/** Resolves when `out` can take more (or has closed: then `closed` is set). */
function writable(out: Writable): Promise<void> {
  if (!out.writableNeedDrain || out.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done).on('close', done);
  });
}

/** Writes `piece`; resolves once `out` no longer needs it (written, failed or closed). */
function send(out: Writable, piece: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('close', done);
      resolve();
    };
    out.once('close', done);
    out.write(piece, done);
  });
}

/** Copies bytes [start, end] (inclusive) of the file at `path` to `out`; does not end `out`. */
export async function sendFile(path: string, out: Writable, start: number, end: number): Promise<void> {
  const fh = await open(path, 'r');
  const bufs = [acquireBuffer(), acquireBuffer()] as const;
  const sending: Array<Promise<void> | undefined> = [undefined, undefined];
  let clean = true;
  try {
    let pos = start;
    let i = 0;
    while (pos <= end && !out.destroyed) {
      await sending[i];
      const want = Math.min(BUFFER_BYTES, end - pos + 1);
      const { bytesRead } = await fh.read(bufs[i], 0, want, pos);
      if (bytesRead === 0) throw new ShortFileError(`file ${path} ended at ${pos}, before byte ${end}`);
      pos += bytesRead;
      sending[i] = send(out, bufs[i].subarray(0, bytesRead));
      await writable(out);
      i ^= 1;
    }
    await Promise.all(sending.filter((p): p is Promise<void> => p !== undefined));
    clean = !out.destroyed;
  } catch (e) {
    clean = false;
    throw e;
  } finally {
    await fh.close().catch(() => undefined);
    if (clean) bufs.forEach(releaseBuffer);
  }
}
