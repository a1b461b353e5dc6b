// Loopback listeners: each registry's login server and each vault's URI is localhost:<its own port>.
// Every listener speaks HTTPS (with Berth's server certificate) and plain HTTP on the same port.
import type { RequestListener, Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Logger } from '../lib/logger.js';
import { createDualServer } from './dual-listener.js';
import type { TlsMaterial } from './tls.js';

export async function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

/**
 * Listens on host:port with `handler`, over HTTPS and plain HTTP on the same port (plain HTTP only when
 * `tls` is undefined). Bodies are streamed, so there is no overall request timeout; headers must
 * arrive within a minute. Rejects with `describeInUse()` when the port is taken.
 */
export async function listenLoopback(port: number, host: string, handler: RequestListener, tls: TlsMaterial | undefined,
  describeInUse?: () => string): Promise<Server> {
  const server = createDualServer(handler, tls, { keepAlive: true, requestTimeout: 0 });
  server.headersTimeout = 60_000;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' && describeInUse ? new Error(describeInUse()) : e);
    });
    server.listen(port, host, () => resolveListen());
  });
  return server;
}

export function closeServer(s: Server | NetServer): Promise<void> {
  return new Promise((resolveClose) => {
    s.close(() => resolveClose());
    if ('closeAllConnections' in s) s.closeAllConnections();
  });
}

/**
 * Accepts connections on host:port and hands each to `server` (which then serves it as its own). An
 * address that cannot be had (IPv6 off, the port taken there) is logged and skipped: undefined.
 */
export async function alsoListenOn(host: string, port: number, server: Server, log: Logger): Promise<NetServer | undefined> {
  const extra = createNetServer((socket) => server.emit('connection', socket));
  try {
    await new Promise<void>((resolveListen, reject) => {
      extra.once('error', reject);
      extra.listen(port, host, () => resolveListen());
    });
    return extra;
  } catch (e) {
    log.warn(`not listening on ${host}:${port}`, { error: (e as Error).message });
    return undefined;
  }
}

/**
 * One loopback listener per resource of some kind (registries, vaults), keyed by resource id;
 * `handler(port)` serves every request arriving on that port.
 */
export class PortListeners<R extends { id: string; name: string; port: number }> {
  private readonly servers = new Map<string, Server>();

  constructor(private readonly kind: string, private readonly handler: (port: number) => RequestListener,
    private readonly host: string, private readonly log: Logger, private readonly tls?: TlsMaterial) {}

  async open(r: R, url: string): Promise<void> {
    if (this.servers.has(r.id)) return;
    const server = await listenLoopback(r.port, this.host, this.handler(r.port), this.tls,
      () => `${this.kind} ${r.name} cannot listen on ${this.host}:${r.port}: the port is in use by another program. Stop that program, or delete and recreate the ${this.kind} to get a new port.`);
    this.servers.set(r.id, server);
    this.log.info(`${this.kind} listening`, { [this.kind]: r.name, url });
  }

  async close(r: R): Promise<void> {
    const s = this.servers.get(r.id);
    if (!s) return;
    this.servers.delete(r.id);
    await closeServer(s);
  }

  async closeAll(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(all.map(closeServer));
  }
}
