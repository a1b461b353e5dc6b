// A small HTTP(S) proxy in front of a registry for fault tests: it records every request (method, path,
// Range, whether an Authorization header came) and, per request, can answer with a status (429 with
// Retry-After, 503), drop the connection after N bytes of a body, corrupt a body, or redirect to
// another server. Also a "storage" server on another port that serves redirected blob GETs from the
// registry with its own credential and records what Authorization header it was sent.
import { createServer as createHttp, request as httpRequest, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { Transform } from 'node:stream';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'drop'; afterBytes: number }
  | { kind: 'corrupt'; at?: number }
  | { kind: 'redirect'; to: string };

export interface FaultProxy {
  host: string;
  url: string;
  requests: SeenRequest[];
  /** Decides the fault for a request; `nth` counts earlier requests with the same method and path. */
  rule: (req: SeenRequest, nth: number) => Fault | undefined;
  /** Forgets the recorded requests and counts, and removes the rule. */
  reset(): void;
  stop(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res((server.address() as AddressInfo).port)));
}

function forward(upstream: string, req: IncomingMessage, res: ServerResponse, path: string, headers: Record<string, string | string[] | undefined>,
  onResponse: (up: IncomingMessage) => void): void {
  const [host, port] = upstream.split(':');
  const up = httpRequest({ host, port: Number(port), method: req.method, path, headers }, onResponse);
  up.on('error', () => res.destroy());
  req.pipe(up);
}

export async function startFaultProxy(upstream: string, opts: { tls?: { key: string; cert: string } } = {}): Promise<FaultProxy> {
  const counts = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  const proxy: FaultProxy = {
    host: '',
    url: '',
    requests: [],
    rule: () => undefined,
    reset: () => {
      proxy.requests.length = 0;
      counts.clear();
      proxy.rule = () => undefined;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const seen: SeenRequest = { method: req.method ?? 'GET', path: req.url ?? '/' };
    if (typeof req.headers.range === 'string') seen.range = req.headers.range;
    if (typeof req.headers.authorization === 'string') seen.authorization = req.headers.authorization;
    proxy.requests.push(seen);
    const key = `${seen.method} ${seen.path.split('?')[0]}`;
    const nth = counts.get(key) ?? 0;
    counts.set(key, nth + 1);
    const fault = proxy.rule(seen, nth);
    if (fault?.kind === 'status') {
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) });
      res.end(fault.body ?? JSON.stringify({ errors: [{ code: fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: fault.status === 429 ? 'rate limit exceeded' : 'service unavailable' }] }));
      return;
    }
    if (fault?.kind === 'redirect') {
      req.resume();
      res.writeHead(307, { location: `${fault.to}${seen.path}` });
      res.end();
      return;
    }
    forward(upstream, req, res, seen.path, req.headers, (up) => {
      // Terminating TLS like a reverse proxy: the registry behind it names its token realm with http.
      const wa = up.headers['www-authenticate'];
      if (opts.tls && typeof wa === 'string') up.headers['www-authenticate'] = wa.replace('realm="http://', 'realm="https://');
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (fault?.kind === 'drop') {
        let sent = 0;
        up.on('data', (c: Buffer) => {
          if (sent >= fault.afterBytes) return;
          const part = c.subarray(0, fault.afterBytes - sent);
          sent += part.length;
          res.write(part, () => {
            if (sent >= fault.afterBytes) {
              up.destroy();
              res.socket?.destroy();
            }
          });
        });
        return;
      }
      if (fault?.kind === 'corrupt') {
        let pos = 0;
        const at = fault.at ?? 100;
        up.pipe(new Transform({
          transform(c: Buffer, _e, cb) {
            if (pos <= at && at < pos + c.length) {
              c = Buffer.from(c);
              c[at - pos] = c[at - pos]! ^ 0xff;
            }
            pos += c.length;
            cb(null, c);
          },
        })).pipe(res);
        return;
      }
      up.pipe(res);
    });
  };
  const server: Server = opts.tls ? createHttps({ key: opts.tls.key, cert: opts.tls.cert }, handler) : createHttp(handler);
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const port = await listen(server);
  proxy.host = `127.0.0.1:${port}`;
  proxy.url = `${opts.tls ? 'https' : 'http'}://${proxy.host}`;
  return proxy;
}

export interface StorageServer {
  url: string;
  /** The Authorization header each request arrived with (undefined = none). */
  seen: Array<{ path: string; authorization: string | undefined }>;
  stop(): Promise<void>;
}

/** Serves redirected GETs by fetching the same path from `upstream` with `upstreamAuth`. */
export async function startStorageServer(upstream: string, upstreamAuth: string): Promise<StorageServer> {
  const seen: StorageServer['seen'] = [];
  const server = createHttp((req, res) => {
    seen.push({ path: req.url ?? '/', authorization: req.headers.authorization });
    const headers = { ...req.headers, authorization: upstreamAuth, host: upstream };
    forward(upstream, req, res, req.url ?? '/', headers, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, seen, stop: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}
