// The registry client's wire: one HTTP/1.1 request and its answer. Two implementations of one small
// interface: node:http/node:https with keep-alive agents (the puller's: Node's own HTTP stack needs no
// module to load and moves a blob with about half the CPU and memory of undici's), and undici with a
// given dispatcher (the CLI's, which trusts Berth's CA, and tests that hand in an Agent). Time limits
// fail with undici's error codes, so that net-errors.ts words every failure the same way on both.
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** An answer's body: read it as a stream, as text or JSON, or drop it. */
export interface ResponseBody extends AsyncIterable<unknown> {
  text(): Promise<string>;
  json(): Promise<unknown>;
  dump(): Promise<void>;
  destroy(error?: Error): unknown;
}

export interface WireResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

export interface WireRequest {
  method: string;
  headers: Record<string, string>;
  body?: Buffer | string | Readable;
  signal?: AbortSignal | undefined;
}

export type Wire = (url: URL, req: WireRequest) => Promise<WireResponse>;

/** A wire over an undici dispatcher (undici is loaded on the first request). */
export function undiciWire(dispatcher: Dispatcher): Wire {
  return async (url, r) => {
    const { request } = await import('undici');
    const res = await request(url, { method: r.method as Dispatcher.HttpMethod, headers: r.headers, dispatcher, ...(r.body !== undefined ? { body: r.body } : {}), ...(r.signal ? { signal: r.signal } : {}) });
    return { statusCode: res.statusCode, headers: res.headers, body: res.body };
  };
}

export interface NodeWireOptions {
  /** PEM CA certificates trusted besides the system's. */
  ca?: string[];
  /** Connect limit (ms). */
  connectTimeoutMs: number;
  /** Limit for the answer's headers, and for each pause in its body (ms). */
  timeoutMs: number;
  /** Connections per origin. */
  connections: number;
}

const coded = (code: string, message: string) => Object.assign(new Error(message), { code });

/** A wire over node:http and node:https, with its own keep-alive agents (closed by `close`). */
export function nodeWire(o: NodeWireOptions): { wire: Wire; close(): void } {
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: o.connections }),
    https: new https.Agent({ keepAlive: true, maxSockets: o.connections, ...(o.ca?.length ? { ca: [...o.ca, ...rootCertificates] } : {}) }),
  };
  const wire: Wire = (url, r) => new Promise<WireResponse>((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request(url, { method: r.method, headers: r.headers, agent: secure ? agents.https : agents.http });
    const fail = (e: Error) => req.destroy(e);
    const onAbort = () => fail(r.signal!.reason as Error);
    if (r.signal?.aborted) return reject(r.signal.reason);
    r.signal?.addEventListener('abort', onAbort, { once: true });
    const headersTimer = setTimeout(() => fail(coded('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error')), o.timeoutMs).unref();
    req.once('socket', (s) => {
      if (!s.connecting) return;
      const t = setTimeout(() => fail(coded('UND_ERR_CONNECT_TIMEOUT', `Connect Timeout Error (attempted address: ${url.host}, timeout: ${o.connectTimeoutMs}ms)`)), o.connectTimeoutMs).unref();
      s.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(t));
      s.once('close', () => clearTimeout(t));
    });
    req.on('error', (e) => {
      clearTimeout(headersTimer);
      r.signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
    req.once('response', (res) => {
      clearTimeout(headersTimer);
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: new NodeBody(res, o.timeoutMs, r.signal, () => r.signal?.removeEventListener('abort', onAbort)) });
    });
    if (r.body === undefined || typeof r.body === 'string' || Buffer.isBuffer(r.body)) req.end(r.body);
    else r.body.on('error', fail).pipe(req);
  });
  return { wire, close: () => { agents.http.destroy(); agents.https.destroy(); } };
}

/** An http.IncomingMessage with undici's body methods, a limit on each pause, and the request's abort. */
class NodeBody implements ResponseBody {
  private readonly idle: NodeJS.Timeout;

  constructor(private readonly res: http.IncomingMessage, timeoutMs: number, signal: AbortSignal | undefined, done: () => void) {
    this.idle = setTimeout(() => res.destroy(coded('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error')), timeoutMs).unref();
    const onAbort = () => res.destroy(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    res.once('close', () => {
      clearTimeout(this.idle);
      signal?.removeEventListener('abort', onAbort);
      done();
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<unknown> {
    for await (const c of this.res) {
      this.idle.refresh();
      yield c;
    }
  }

  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of this) parts.push(c as Buffer);
    return Buffer.concat(parts).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /** Reads a small rest to keep the connection; a large one closes it. */
  async dump(): Promise<void> {
    if (this.res.destroyed) return;
    const length = Number(this.res.headers['content-length'] ?? NaN);
    if (!this.res.complete && !(length <= 128 * 1024)) {
      this.res.destroy();
      return;
    }
    await new Promise<void>((resolve) => {
      this.res.once('close', resolve);
      this.res.resume();
    });
  }

  destroy(error?: Error): void {
    this.res.destroy(error);
  }
}
