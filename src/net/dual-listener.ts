// One port, two protocols: each new connection's first byte decides whether it is TLS (0x16, a
// handshake record: the ClientHello) or plain HTTP. TLS connections go to an https server, the rest to
// the http server, and both call the same request handler. So `https://localhost:<port>` works for
// clients that trust Berth's CA, and `http://127.0.0.1:<port>` keeps working for tools and tests that
// use plain HTTP on loopback.
import { createServer as createHttpServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { DEFAULT_CIPHERS } from 'node:tls';
import type { TlsMaterial } from './tls.js';

const TLS_HANDSHAKE = 0x16;
/**
 * TLS 1.3 suites with AES-128-GCM first, as Go's and browsers' clients order them: OpenSSL otherwise
 * picks AES-256-GCM, whose 14 rounds cost a blob transfer ~30% more AES work for no security a
 * 128-bit key lacks here. The TLS 1.2 list is Node's default.
 */
const CIPHERS = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  ...DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_'))].join(':');
/** A client that opens a connection and sends nothing for this long is dropped. */
const FIRST_BYTE_TIMEOUT_MS = 30_000;

/**
 * An http.Server that also speaks TLS on the same port when `tls` is given. It is the server that
 * listens, so `listen`, `address`, `close` and the http timeouts work as usual (fastify's
 * `serverFactory` can return it); `closeAllConnections` and `closeIdleConnections` cover TLS
 * connections too.
 */
export function createDualServer(handler: RequestListener, tls: TlsMaterial | undefined, options: ServerOptions = {}): Server {
  const plain = createHttpServer(options, handler);
  if (!tls) return plain;
  const secure = createHttpsServer({ ...options, key: tls.key, cert: tls.cert, ALPNProtocols: ['http/1.1'], ciphers: CIPHERS, honorCipherOrder: true }, handler);
  // The https server never listens; it only receives the connections handed to it below. Its errors
  // (a client that aborts the handshake, say) concern one connection only.
  secure.on('tlsClientError', (_e, socket) => socket.destroy());
  // An http server tracks its connections (for timeouts and closeIdleConnections) from its 'listening'
  // event on; the https server never listens itself, so it starts tracking when the plain one does.
  plain.on('listening', () => secure.emit('listening'));
  // Upgrade requests (websockets) that came over TLS reach the listeners of the server that listens.
  // Forwarding starts with the first such listener: without one, Node answers upgrades as plain requests.
  plain.on('newListener', (event: string) => {
    if (event === 'upgrade' && secure.listenerCount('upgrade') === 0) secure.on('upgrade', (...args: unknown[]) => plain.emit('upgrade', ...args));
  });

  const httpConnection = plain.listeners('connection') as Array<(s: Socket) => void>;
  plain.removeAllListeners('connection');
  const undecided = new Set<Socket>();
  plain.on('connection', (socket: Socket) => {
    secure.headersTimeout = plain.headersTimeout;
    secure.requestTimeout = plain.requestTimeout;
    secure.keepAliveTimeout = plain.keepAliveTimeout;
    const dispatch = () => {
      const first = socket.read(1) as Buffer | null;
      if (first === null) return; // not yet: wait for the next 'readable'
      undecided.delete(socket);
      socket.removeListener('readable', dispatch);
      socket.removeListener('error', dropped);
      socket.setTimeout(0);
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) {
        // The TLS socket reads what is already buffered (the ClientHello byte put back above) first.
        // The http server accepts half-open sockets (it ends them itself); a TLS socket must not be
        // half-open, or it never notices a client that went away and the server never finishes closing.
        socket.allowHalfOpen = false;
        secure.emit('connection', socket);
      } else {
        for (const l of httpConnection) l.call(plain, socket);
      }
    };
    const dropped = () => {
      undecided.delete(socket);
      socket.destroy();
    };
    undecided.add(socket);
    socket.once('close', () => undecided.delete(socket));
    socket.on('error', dropped);
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, dropped);
    socket.on('readable', dispatch);
  });

  const close = plain.close.bind(plain);
  plain.close = (cb?: (err?: Error) => void) => {
    secure.close();
    return close(cb);
  };
  const closeAll = plain.closeAllConnections.bind(plain);
  const closeIdle = plain.closeIdleConnections.bind(plain);
  const dropUndecided = () => {
    for (const s of undecided) s.destroy();
    undecided.clear();
  };
  plain.closeAllConnections = () => {
    dropUndecided();
    closeAll();
    secure.closeAllConnections();
  };
  plain.closeIdleConnections = () => {
    dropUndecided();
    closeIdle();
    secure.closeIdleConnections();
  };
  return plain;
}
