// The host side of a group's published ports and metadata endpoint. Berth binds each published port
// on the host address itself (the group's port when it is free, else any free port), hands the
// listening sockets to the group's forwarder process (./forwarder.ts) and closes its own copies. The
// metadata endpoint is an HTTP server on the group's unix socket that answers with the group's
// identityEndpoint; it lives in the Berth process and is re-opened when a restarted Berth adopts the group.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { open, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { PortSpec, SandboxSpec } from '../runtime.js';
import type { ForwarderConfig } from './forwarder.js';
import { exitText } from './proc.js';
import { replaceFile } from './layout.js';

export interface BoundPort {
  spec: PortSpec;
  hostPort: number;
  fd: number;
  close(): Promise<void>;
}

function handleFd(h: unknown): number {
  const fd = (h as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot get the listening socket\'s file descriptor');
  return fd;
}

function listenTcp(ip: string, port: number): Promise<net.Server> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen({ port, host: ip, exclusive: true }, () => res(s));
  });
}

function bindUdp(ip: string, port: number): Promise<dgram.Socket> {
  return new Promise((res, rej) => {
    const s = dgram.createSocket('udp4');
    s.once('error', rej);
    s.bind({ port, address: ip, exclusive: true }, () => res(s));
  });
}

async function bindOne(ip: string, spec: PortSpec, preferred: number): Promise<BoundPort> {
  const tryBind = async (port: number): Promise<BoundPort> => {
    if (spec.protocol === 'UDP') {
      const s = await bindUdp(ip, port);
      return { spec, hostPort: s.address().port, fd: handleFd(s), close: () => new Promise((r) => s.close(() => r())) };
    }
    const s = await listenTcp(ip, port);
    return { spec, hostPort: (s.address() as net.AddressInfo).port, fd: handleFd(s), close: () => new Promise((r) => s.close(() => r())) };
  };
  try {
    return await tryBind(preferred);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw e;
    return tryBind(0);
  }
}

/** Binds every port on the host: the preferred host port (default: the same number) or a free one. */
export async function bindHostPorts(ip: string, ports: PortSpec[], preferred: Record<string, number> = {}): Promise<BoundPort[]> {
  const bound: BoundPort[] = [];
  try {
    for (const p of ports) bound.push(await bindOne(ip, p, preferred[`${p.port}/${p.protocol}`] ?? p.port));
  } catch (e) {
    for (const b of bound) await b.close();
    throw e;
  }
  return bound;
}

export const FORWARDER_SCRIPT = fileURLToPath(new URL('./forwarder.js', import.meta.url));
const BINDER_SCRIPT = fileURLToPath(new URL('./bind-in-netns.js', import.meta.url));

/** A TCP socket listening on address:port inside the namespace `nsPath` (made there by a one-shot helper). */
export function listenInNetns(nsPath: string, address: string, port: number): Promise<{ fd: number; close(): Promise<void> }> {
  return new Promise((res, rej) => {
    let err = '';
    const child = spawn('nsenter', [`--net=${nsPath}`, '--', process.execPath, BINDER_SCRIPT, address, String(port)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    child.stderr!.on('data', (d) => (err += d));
    child.once('error', rej);
    child.once('message', (_m, handle) => {
      const server = handle as net.Server;
      try {
        res({ fd: handleFd(server), close: () => new Promise((r) => server.close(() => r())) });
      } catch (e) {
        rej(e);
      }
    });
    child.once('exit', (code) => {
      if (code !== 0) rej(new Error(`cannot listen on ${address}:${port} in the group's metadata namespace: ${err.trim() || `exit ${code}`}`));
    });
  });
}

/**
 * Starts the forwarder inside the namespace with the bound sockets; resolves with its pid when it is
 * listening. `onExit` is told how it ended whenever it exits later (it is a child of this process).
 */
export async function startForwarder(o: { netnsPath: string; dir: string; bound: BoundPort[]; imds?: { fd: number; socket: string }; onExit?: (how: string, pid: number) => void }): Promise<number> {
  const readyFile = `${o.dir}/forwarder.ready`;
  const configFile = `${o.dir}/forwarder.json`;
  await rm(readyFile, { force: true });
  const stdio: Array<'ignore' | number> = ['ignore'];
  const log = await open(`${o.dir}/forwarder.log`, 'a', 0o600);
  stdio.push(log.fd, log.fd);
  const cfg: ForwarderConfig = { tcp: [], udp: [], readyFile };
  for (const b of o.bound) {
    const childFd = stdio.length;
    stdio.push(b.fd);
    (b.spec.protocol === 'UDP' ? cfg.udp : cfg.tcp).push({ fd: childFd, port: b.spec.port });
  }
  if (o.imds) {
    cfg.imds = { fd: stdio.length, socket: o.imds.socket };
    stdio.push(o.imds.fd);
  }
  await replaceFile(configFile, JSON.stringify(cfg), 0o600);
  const child = spawn('nsenter', [`--net=${o.netnsPath}`, '--', process.execPath, FORWARDER_SCRIPT, configFile], { stdio, detached: true });
  child.unref();
  await log.close();
  const exited = new Promise<number | null>((res) => child.once('exit', (code, signal) => {
    res(code);
    o.onExit?.(exitText(code, signal), child.pid!);
  }));
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start the port forwarder of the group (nsenter did not run)');
  for (let i = 0; i < 400; i++) {
    const ready = await readFile(readyFile, 'utf8').catch(() => undefined);
    if (ready) return pid;
    const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 25))]);
    if (code !== undefined) {
      const why = (await readFile(`${o.dir}/forwarder.log`, 'utf8').catch(() => '')).trim().split('\n').pop();
      throw new Error(`the port forwarder of the group exited (${code}): ${why || 'no output'}`);
    }
  }
  // It never said it was ready: it must not linger holding the group's ports.
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  throw new Error('the port forwarder of the group did not start within 10 s');
}

/** The metadata endpoint of one group: HTTP on the group's unix socket, answered by identityEndpoint. */
export async function startImdsServer(socketPath: string, endpoint: NonNullable<SandboxSpec['identityEndpoint']>): Promise<http.Server> {
  await rm(socketPath, { force: true });
  const server = http.createServer((req, res) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    req.resume();
    endpoint({ method: req.method ?? 'GET', path: req.url ?? '/', headers }).then(
      (r) => {
        res.writeHead(r.status, r.headers);
        res.end(r.body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal_error', error_description: 'the identity endpoint failed' }));
      },
    );
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(socketPath, () => res());
  });
  server.unref(); // the containers' metadata endpoint never keeps a stopping server alive
  return server;
}
