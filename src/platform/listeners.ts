// One loopback listener per registry: each registry's login server is localhost:<its own port>.
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { RegistryRecord, Registries } from '../registry/registries.js';
import type { RegistryHttp } from '../registry/http/server.js';
import type { Logger } from './logger.js';

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

export class RegistryListeners {
  private readonly servers = new Map<string, Server>();

  constructor(private readonly registries: Registries, private readonly http: RegistryHttp,
    private readonly host: string, private readonly log: Logger) {}

  async open(r: RegistryRecord): Promise<void> {
    if (this.servers.has(r.id)) return;
    const server = createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
      // Look the registry up per request: it may have been updated (admin user) since the listener opened.
      void this.http.handle(req, res, this.registries.byPort(r.port));
    });
    server.headersTimeout = 60_000;
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(e.code === 'EADDRINUSE'
          ? new Error(`registry ${r.name} cannot listen on ${this.host}:${r.port}: the port is in use by another program. Stop that program, or delete and recreate the registry to get a new port.`)
          : e);
      });
      server.listen(r.port, this.host, () => resolveListen());
    });
    this.servers.set(r.id, server);
    this.log.info('registry listening', { registry: r.name, loginServer: this.registries.loginServer(r) });
  }

  async close(r: RegistryRecord): Promise<void> {
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

function closeServer(s: Server): Promise<void> {
  return new Promise((resolveClose) => {
    s.close(() => resolveClose());
    s.closeAllConnections();
  });
}

/**
 * One loopback listener per resource of some kind (vaults), keyed by resource id; `handler(port)` serves
 * every request arriving on that port.
 */
export class PortListeners<R extends { id: string; name: string; port: number }> {
  private readonly servers = new Map<string, Server>();

  constructor(private readonly kind: string, private readonly handler: (port: number) => RequestListener,
    private readonly host: string, private readonly log: Logger) {}

  async open(r: R, url: string): Promise<void> {
    if (this.servers.has(r.id)) return;
    const server = createServer({ keepAlive: true }, this.handler(r.port));
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(e.code === 'EADDRINUSE'
          ? new Error(`${this.kind} ${r.name} cannot listen on ${this.host}:${r.port}: the port is in use by another program. Stop that program, or delete and recreate the ${this.kind} to get a new port.`)
          : e);
      });
      server.listen(r.port, this.host, () => resolveListen());
    });
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
