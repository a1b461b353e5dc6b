// Handlers return a Response; one writer sends it. No handler touches the socket.
import type { ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A body that writes itself to the response (a blob sent through reused buffers); Content-Length is the handler's. */
export type BodyWriter = (out: Writable) => Promise<void>;

export interface Response {
  status: number;
  headers?: Record<string, string | number>;
  body?: Buffer | Readable | BodyWriter | object | string;
}

export async function writeResponse(res: ServerResponse, r: Response, head: boolean): Promise<void> {
  const headers: Record<string, string | number> = { ...r.headers };
  let payload: Buffer | Readable | undefined;
  if (typeof r.body === 'function') {
    res.writeHead(r.status, headers);
    if (!head) await (r.body as BodyWriter)(res);
    res.end();
    return;
  }
  if (r.body === undefined) {
    payload = undefined;
  } else if (Buffer.isBuffer(r.body)) {
    payload = r.body;
  } else if (typeof r.body === 'string') {
    payload = Buffer.from(r.body);
  } else if (typeof (r.body as Readable).pipe === 'function') {
    payload = r.body as Readable;
  } else {
    payload = Buffer.from(JSON.stringify(r.body));
    if (!headers['Content-Type']) headers['Content-Type'] = 'application/json; charset=utf-8';
  }
  if (Buffer.isBuffer(payload) && headers['Content-Length'] === undefined) headers['Content-Length'] = payload.length;
  if (payload === undefined && headers['Content-Length'] === undefined) headers['Content-Length'] = 0;
  res.writeHead(r.status, headers);
  if (head || payload === undefined) {
    if (payload && !Buffer.isBuffer(payload)) payload.destroy();
    res.end();
    return;
  }
  if (Buffer.isBuffer(payload)) {
    res.end(payload);
    return;
  }
  await pipeline(payload, res);
}
