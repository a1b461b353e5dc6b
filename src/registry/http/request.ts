// Reading what a registry request carries besides its path: the rest of a body to discard, a small
// body read whole within a limit, and the Content-Length, Content-Range and Range headers.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { RegistryError } from '../../oci/errors.js';

/** A client that sends nothing of its body for this long gets its answer anyway. */
const DRAIN_IDLE_MS = 30_000;

/**
 * Reads and discards the rest of a request body; resolves at its end, when the connection goes, or
 * when the client has sent nothing for DRAIN_IDLE_MS.
 */
export function drained(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let timer = setTimeout(done, DRAIN_IDLE_MS);
    function done() {
      clearTimeout(timer);
      req.off('data', alive);
      resolve();
    }
    function alive() {
      clearTimeout(timer);
      timer = setTimeout(done, DRAIN_IDLE_MS);
    }
    req.on('data', alive).once('end', done).once('close', done).once('error', done);
    req.resume();
  });
}

/** The Content-Range of an upload chunk (`<start>-<end>`, inclusive), if the client sent one. */
export function chunkRange(cr: string | undefined): { start: number; end: number } | undefined {
  if (!cr) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(cr.trim());
  if (!m) throw new RegistryError('RANGE_INVALID', `Content-Range "${cr.slice(0, 100)}" is not of the form <start>-<end>`);
  const range = { start: Number(m[1]), end: Number(m[2]) };
  if (range.end < range.start) throw new RegistryError('RANGE_INVALID', `Content-Range end ${range.end} is before its start ${range.start}`);
  return range;
}

export function contentLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  return v === undefined ? undefined : Number(v);
}

export function parseRange(h: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return undefined;
  return { start, end };
}

/** Reads a small body fully, refusing more than `limit` bytes. */
export async function readLimited(req: Readable, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
