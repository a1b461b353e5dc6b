// The port forwarder of one group: a small detached process started INSIDE the group's network
// namespace (`nsenter --net=<ns> node forwarder.js <config>`), holding the listening sockets that Berth
// bound on the host and passed to it as inherited file descriptors. A socket keeps the namespace it
// was created in, so it accepts host connections while every connection it opens — to
// 127.0.0.1:<port> — is made inside the group. No iptables, no veth, no address outside the namespace.
// When the group holds a managed identity it also holds a socket listening on 169.254.169.254:80 in
// the group's metadata namespace (./netns.ts) and relays each connection to the group's own unix
// socket, where Berth answers as the metadata service: the identity is bound by which group's socket
// the request arrived on.
// It outlives a Berth restart (published ports keep working); Berth stops it when the group is deleted.
import dgram from 'node:dgram';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';

export interface ForwarderConfig {
  tcp: Array<{ fd: number; port: number }>;
  udp: Array<{ fd: number; port: number }>;
  /** The metadata listener (inherited fd) and the unix socket Berth answers this group's metadata requests on. */
  imds?: { fd: number; socket: string };
  readyFile: string;
}

function bridge(a: net.Socket, b: net.Socket): void {
  const done = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', done);
  b.on('error', done);
  a.on('close', done);
  b.on('close', done);
  a.pipe(b);
  b.pipe(a);
}

function forwardTcp(fd: number, port: number): Promise<void> {
  const server = net.createServer((c) => bridge(c, net.connect(port, '127.0.0.1')));
  server.on('error', (e) => process.stderr.write(`tcp ${port}: ${e.message}\n`));
  return new Promise((res) => server.listen({ fd }, res));
}

const UDP_IDLE_MS = 60_000;

function forwardUdp(fd: number, port: number): Promise<void> {
  const outer = dgram.createSocket('udp4');
  interface Session { sock: dgram.Socket; timer?: NodeJS.Timeout; queue: Buffer[] | undefined }
  const sessions = new Map<string, Session>();
  outer.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let s = sessions.get(key);
    if (!s) {
      const sock = dgram.createSocket('udp4');
      const session: Session = { sock, queue: [] };
      sock.on('message', (reply) => outer.send(reply, from.port, from.address));
      sock.on('error', () => undefined);
      sock.connect(port, '127.0.0.1', () => {
        for (const m of session.queue ?? []) sock.send(m);
        session.queue = undefined;
      });
      sessions.set(key, (s = session));
    }
    const cur = s;
    clearTimeout(cur.timer);
    cur.timer = setTimeout(() => {
      cur.sock.close();
      sessions.delete(key);
    }, UDP_IDLE_MS);
    if (cur.queue) cur.queue.push(msg);
    else cur.sock.send(msg);
  });
  outer.on('error', (e) => process.stderr.write(`udp ${port}: ${e.message}\n`));
  return new Promise((res) => outer.bind({ fd } as dgram.BindOptions, res));
}

function forwardImds(fd: number, socket: string): Promise<void> {
  const server = net.createServer((c) => bridge(c, net.connect(socket)));
  server.on('error', (e) => process.stderr.write(`metadata: ${e.message}\n`));
  return new Promise((res) => server.listen({ fd }, res));
}

async function main(): Promise<void> {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ForwarderConfig;
  await Promise.all([
    ...cfg.tcp.map((t) => forwardTcp(t.fd, t.port)),
    ...cfg.udp.map((u) => forwardUdp(u.fd, u.port)),
    ...(cfg.imds ? [forwardImds(cfg.imds.fd, cfg.imds.socket)] : []),
  ]);
  writeFileSync(`${cfg.readyFile}.tmp`, String(process.pid));
  renameSync(`${cfg.readyFile}.tmp`, cfg.readyFile);
}

process.on('SIGTERM', () => process.exit(0));
main().catch((e: Error) => {
  process.stderr.write(`forwarder failed: ${e.message}\n`);
  process.exit(1);
});
