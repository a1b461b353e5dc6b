// Outbound network access of a group, as every ACI container group has: a user-mode network stack,
// slirp4netns (what rootless podman uses), attached to the group's namespace as tap0 with 10.0.2.100/24,
// gateway 10.0.2.2 and DNS 10.0.2.3. Its connections leave from this host like any program's — no
// veth, no bridge, no iptables rule or ip_forward change on the host. 10.0.2.2 is the host's own
// loopback, named host.berth.internal in the containers' /etc/hosts, so a container reaches Berth and
// the other services listening on 127.0.0.1; 10.0.2.3 forwards to the host's resolver.
//
// The stack is one detached process per group, like the port forwarder: it outlives a Berth restart
// (a restarted Berth adopts it through the pid file), and is stopped when the group is deleted. The
// process starts as a shell that waits for Berth to record its pid, then becomes slirp4netns (`sh -c
// 'read go <&4 && exec slirp4netns …'`), so a Berth killed at any moment of the start never leaves an
// unrecorded one behind.
//
// Link-local 169.254.0.0/16 (cloud metadata services, such as the host's own IMDS when Berth runs on a
// cloud VM) and Azure's WireServer 168.63.129.16 are unreachable routes in the group: the group's own
// metadata address 169.254.169.254 has a more specific route to the group's metadata namespace
// (./netns.ts) when the group holds an identity, and leads nowhere otherwise.
import { execFile, spawn } from 'node:child_process';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ipBatch } from './netns.js';
import { aliveWith, exitText, stopProcess, stopProcessesWith } from './proc.js';
import { replaceFile } from './layout.js';

const run = promisify(execFile);

export const OUTBOUND_NET = { dev: 'tap0', address: '10.0.2.100', gateway: '10.0.2.2', dns: '10.0.2.3', mtu: 65520 } as const;
export const HOST_ALIAS = 'host.berth.internal';
/** Never reached from a group through the outbound stack. */
const BLOCKED = ['169.254.0.0/16', '168.63.129.16/32'];
const START_TIMEOUT_MS = 10_000;

export interface OutboundOptions {
  /** Group directory (pid file, log, resolv.conf and hosts live there). */
  dir: string;
  netnsPath: string;
  /** false: no outbound access (loopback and the metadata address only), as before. */
  enabled: boolean;
  /** The slirp4netns binary (default `slirp4netns` on PATH). */
  bin?: string;
  /** Told how a network stack started here ended, when it exits after it was ready. */
  onExit?: (how: string, pid: number) => void;
}

/** The argument every group's slirp4netns carries (its namespace path follows it). */
export const STACK_MARK = '--netns-type=path';
/** The marks that identify a group's slirp4netns in /proc/<pid>/cmdline. */
const marksOf = (netnsPath: string) => [STACK_MARK, netnsPath, OUTBOUND_NET.dev];
const pidFileOf = (dir: string) => join(dir, 'outbound.pid');

const features = new Map<string, Promise<string[]>>();

/** The hardening flags this slirp4netns has (`--enable-sandbox`, `--enable-seccomp`); rejects when it is missing. */
function hardeningFlags(bin: string): Promise<string[]> {
  let f = features.get(bin);
  if (!f) {
    f = run(bin, ['--help']).then(
      ({ stdout, stderr }) => ['--enable-sandbox', '--enable-seccomp'].filter((flag) => (stdout + stderr).includes(flag)),
      (e: NodeJS.ErrnoException) => {
        features.delete(bin);
        if (e.code === 'ENOENT') {
          throw new Error(`${bin} is not installed: it gives container groups outbound network access (apt-get install slirp4netns), ` +
            'or start berth serve with --no-outbound to run groups without it');
        }
        throw new Error(`${bin} does not run: ${e.message}`);
      },
    );
    features.set(bin, f);
  }
  return f;
}

/** The pid recorded for the group's network stack (alive or not). */
export async function recordedPid(dir: string): Promise<number | undefined> {
  const n = Number((await readFile(pidFileOf(dir), 'utf8').catch(() => '')).trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The group's running network stack, if any (its pid). */
export async function outboundPid(dir: string, netnsPath: string): Promise<number | undefined> {
  const pid = await recordedPid(dir);
  return (await aliveWith(pid, ...marksOf(netnsPath))) ? pid : undefined;
}

/** The `ip -batch` lines that make link-local and WireServer addresses unreachable in a group (createNetns takes them). */
export const BLOCKED_ROUTES = BLOCKED.map((net) => `route replace unreachable ${net}`);

async function blockMetadataRoutes(netnsPath: string): Promise<void> {
  await ipBatch(netnsPath, BLOCKED_ROUTES);
}

/** Starts slirp4netns on the namespace and resolves with its pid once tap0 is configured. */
async function startStack(o: OutboundOptions): Promise<number> {
  const bin = o.bin ?? 'slirp4netns';
  const flags = await hardeningFlags(bin);
  const pidFile = pidFileOf(o.dir);
  const logFile = join(o.dir, 'outbound.log');
  await rm(pidFile, { force: true });
  const log = await open(logFile, 'a', 0o600);
  // fd 3 is the ready pipe slirp4netns writes "1" to once tap0 is up. fd 4 is the gate: the shell
  // becomes slirp4netns only once Berth has recorded its pid (and exits, running nothing, when Berth
  // dies before that), so no network stack ever runs unrecorded.
  const script = 'read -r go <&4 && exec "$@" 4<&-';
  const argv = [bin, '--configure', `--mtu=${OUTBOUND_NET.mtu}`, ...flags, '--ready-fd=3', ...marksOf(o.netnsPath)];
  const child = spawn('sh', ['-c', script, 'berth-outbound', ...argv], { stdio: ['ignore', log.fd, log.fd, 'pipe', 'pipe'], detached: true });
  child.unref();
  await log.close();
  const ready = child.stdio[3]!;
  const gate = child.stdio[4] as NodeJS.WritableStream & { destroy(): void };
  try {
    if (!child.pid) throw new Error('the shell did not start');
    await replaceFile(pidFile, `${child.pid}\n`, 0o644);
    gate.end('go\n');
    await new Promise<void>((res, rej) => {
      const fail = (why: string) => rej(new Error(`the outbound network of the group (slirp4netns) did not start: ${why} ` +
        '(berth serve --no-outbound runs groups without outbound access)'));
      const timer = setTimeout(() => fail(`not ready within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
      const done = (f: () => void) => {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        f();
      };
      child.once('error', (e) => done(() => fail(e.message)));
      child.once('exit', (code) => {
        void readFile(logFile, 'utf8').catch(() => '').then((text) => {
          const why = text.trim().split('\n').filter((l) => !/^WARNING: Support for seccomp/.test(l)).pop();
          done(() => fail(`exit ${code}${why ? `: ${why}` : ''}`));
        });
      });
      ready.once('data', () => done(() => {
        child.once('exit', (code, signal) => o.onExit?.(exitText(code, signal), child.pid!));
        res();
      }));
    });
  } catch (e) {
    if (child.exitCode === null && child.pid) await stopProcess(child.pid, marksOf(o.netnsPath));
    await rm(pidFile, { force: true });
    throw e;
  } finally {
    ready.destroy();
    gate.destroy();
  }
  return child.pid!;
}

/**
 * Brings the group's outbound access to the wanted state — the network stack running (an alive one
 * from an earlier Berth is adopted) or stopped — and writes the group's resolv.conf and hosts files.
 */
export async function configureOutbound(o: OutboundOptions & { hostAliases?: string[]; routesSet?: boolean }): Promise<void> {
  if (o.enabled) {
    // Both before any container of the group runs (createSandbox comes first), so in parallel; both
    // settle before a failure is reported, so that the caller's clean-up finds no start under way.
    // `routesSet`: the namespace was made with BLOCKED_ROUTES already (one process fewer).
    const done = await Promise.allSettled([
      o.routesSet ? Promise.resolve() : blockMetadataRoutes(o.netnsPath),
      outboundPid(o.dir, o.netnsPath).then((pid) => (pid ? pid : startStack(o))),
    ]);
    for (const r of done) if (r.status === 'rejected') throw r.reason;
  } else if (await recordedPid(o.dir)) {
    await removeOutbound(o.dir, o.netnsPath);
  }
  await replaceFile(join(o.dir, 'resolv.conf'), await resolvConf(o.enabled), 0o644);
  await replaceFile(join(o.dir, 'hosts'), hostsFile(o.enabled, o.hostAliases), 0o644);
}

/** Stops the group's network stack (the recorded one and any other on the namespace). Idempotent. */
export async function removeOutbound(dir: string, netnsPath: string): Promise<void> {
  await stopProcessesWith(...marksOf(netnsPath));
  await rm(pidFileOf(dir), { force: true });
}

/** /etc/resolv.conf of the group: slirp's DNS forwarder, with the host's search domains and options. */
export async function resolvConf(enabled: boolean): Promise<string> {
  if (!enabled) return '# This group has no outbound network access (berth serve --no-outbound).\n';
  const host = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const keep = host.split('\n').filter((l) => /^(search|domain|options)\s/.test(l));
  return [`nameserver ${OUTBOUND_NET.dns}`, ...keep].join('\n') + '\n';
}

/**
 * /etc/hosts of the group (each container's copy adds its own hostname: ./runc-runtime.ts). With
 * outbound access, the host is host.berth.internal and every one of `aliases` (Berth's vaults by name).
 */
export function hostsFile(enabled: boolean, aliases: string[] = []): string {
  return '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' +
    (enabled ? `${OUTBOUND_NET.gateway}\t${[HOST_ALIAS, ...aliases].join(' ')}\n` : '');
}

/** The container's /etc/hosts: the group's, plus its hostname on 127.0.0.1. */
export function containerHosts(group: string, hostname: string): string {
  return `${group}127.0.0.1\t${hostname}\n`;
}

/**
 * Writes a container's /etc/hosts into its bundle: the group's, plus the container's hostname on
 * 127.0.0.1, so that a server bound to the hostname's address is still reached by the group's port
 * forwarder (which connects to 127.0.0.1) and by the other containers on localhost.
 */
export async function writeContainerHosts(groupDir: string, bundle: string, hostname: string): Promise<string> {
  const group = await readFile(join(groupDir, 'hosts'), 'utf8').catch(() => hostsFile(false));
  const path = join(bundle, 'hosts');
  await replaceFile(path, containerHosts(group, hostname), 0o644);
  return path;
}
