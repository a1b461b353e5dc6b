// The sandboxes of the runc runtime: a group's network namespace (a bind mount in its directory),
// hosts and resolv.conf files, its published ports held by a forwarder process inside the namespace,
// its metadata endpoint, and its outbound network stack (./outbound.ts). Creating one on a group that
// exists adopts what is there; the helper processes are watched and restarted when they die.
// Files: see ./runc-runtime.ts.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { join } from 'node:path';
import { unmountAll } from '../rootfs/rootfs.js';
import type { PortSpec, Sandbox, SandboxHelperDown, SandboxSpec, Task } from '../runtime.js';
import { exists, ID, readJson, replaceFile, type RuntimeLayout } from './layout.js';
import { createMetadataLink, createNetns, deleteNetns, IMDS_ADDRESS } from './netns.js';
import { BLOCKED_ROUTES, configureOutbound, containerHosts, hostsFile, outboundPid, recordedPid, removeOutbound } from './outbound.js';
import { aliveWith, stopProcess, stopProcessesWith } from './proc.js';
import { bindHostPorts, FORWARDER_SCRIPT, listenInNetns, startForwarder, startImdsServer } from './publish.js';
import type { Runc, RuncState } from './runc.js';

interface PortRecord { port: number; protocol: 'TCP' | 'UDP'; hostPort: number }

interface SandboxRecord {
  groupId: string;
  ip: string;
  ports: PortRecord[];
  imds: boolean;
  forwarderPid?: number;
}

/** How often sandboxDown looks for a dead helper it did not see exit (one adopted after a restart). */
const HELPER_CHECK_MS = 1000;

export interface SandboxOptions {
  layout: RuntimeLayout;
  runc: Runc;
  /** Host address published ports listen on (default 127.0.0.1). */
  publishAddress?: string;
  outbound?: boolean;
  slirp4netns?: string;
  /** The runtime is ready (its directories exist). */
  ready(): Promise<unknown>;
  /** Deletes one container of a group (a sandbox's delete removes them all first). */
  deleteTask(task: Task): Promise<void>;
  closed: AbortSignal;
}

export class Sandboxes {
  /** One sandbox operation at a time per group: two concurrent creates would each start a forwarder. */
  private readonly sandboxLocks = new Map<string, Promise<unknown>>();
  private readonly imds = new Map<string, http.Server>();
  /** How the helper processes this process started ended: group → pid → `signal SIGKILL`. */
  private readonly helperExits = new Map<string, Map<number, string>>();
  private readonly helperWaiters = new Set<() => void>();
  /** More names for the host in every group's /etc/hosts (Berth's vaults by name): setHostAliases. */
  private hostAliases: string[] = [];
  private readonly layout: RuntimeLayout;

  constructor(private readonly opts: SandboxOptions) {
    this.layout = opts.layout;
  }

  /**
   * Names every group reaches the host by besides host.berth.internal (Berth's vaults by name, so a
   * vaultUri works from inside a group), written into the /etc/hosts of the groups that exist and of
   * those to come. A running container's hosts file is bind-mounted, so it is rewritten in place.
   */
  async setHostAliases(names: string[]): Promise<void> {
    const next = [...new Set(names.map((n) => n.toLowerCase()).filter((n) => /^[a-z0-9.-]+$/.test(n)))].sort();
    if (next.join(' ') === this.hostAliases.join(' ')) return;
    this.hostAliases = next;
    if (this.opts.outbound === false) return;
    for (const groupId of await readdir(this.layout.groupsDir).catch(() => [] as string[])) {
      if (!ID.test(groupId)) continue;
      const dir = this.layout.groupDir(groupId);
      if (!(await exists(join(dir, 'hosts')))) continue;
      const group = hostsFile(true, next);
      await replaceFile(join(dir, 'hosts'), group, 0o644);
      for (const name of await readdir(join(dir, 'containers')).catch(() => [] as string[])) {
        const hosts = join(dir, 'containers', name, 'hosts');
        if (ID.test(name) && (await exists(hosts))) await writeFile(hosts, containerHosts(group, name), { mode: 0o644 });
      }
    }
  }

  /**
   * Creates the group's namespace, hosts file, published ports and metadata endpoint. On a group that
   * already exists (a restarted Berth reconciling) it adopts what is there: the forwarder keeps its
   * host ports, and the metadata endpoint is re-opened with the given identityEndpoint.
   */
  createSandbox(spec: SandboxSpec): Promise<Sandbox> {
    return this.withSandboxLock(spec.groupId, () => this.createSandboxNow(spec));
  }

  deleteSandbox(groupId: string): Promise<void> {
    return this.withSandboxLock(groupId, () => this.deleteSandboxNow(groupId));
  }

  private withSandboxLock<T>(groupId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.sandboxLocks.get(groupId) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.sandboxLocks.set(groupId, tail);
    void tail.then(() => { if (this.sandboxLocks.get(groupId) === tail) this.sandboxLocks.delete(groupId); });
    return next;
  }

  private async createSandboxNow(spec: SandboxSpec): Promise<Sandbox> {
    const dir = this.layout.groupDir(spec.groupId);
    await this.opts.ready();
    const recPath = join(dir, 'sandbox.json');
    const existing = await readJson<SandboxRecord>(recPath);
    const ip = spec.address ?? this.opts.publishAddress ?? '127.0.0.1';
    // Adopting a group whose port forwarder or network stack died meanwhile: they are started again below.
    const restarted = existing ? await this.deadHelpers(spec.groupId) : [];
    try {
      for (const d of ['logs', 'containers']) await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
      const netns = join(dir, 'netns');
      const outbound = this.opts.outbound !== false;
      await createNetns(netns, outbound ? BLOCKED_ROUTES : []);
      if (spec.identityEndpoint) await createMetadataLink(netns, join(dir, 'metadata-netns'));
      await configureOutbound({ ...this.outboundOptions(spec.groupId), routesSet: outbound });

      const sock = this.layout.imdsSocket(spec.groupId);
      await this.closeImds(spec.groupId);
      if (spec.identityEndpoint) this.imds.set(spec.groupId, await startImdsServer(sock, spec.identityEndpoint));

      const same = existing && existing.ip === ip && existing.imds === !!spec.identityEndpoint &&
        existing.ports.length === spec.ports.length &&
        spec.ports.every((p) => existing.ports.some((e) => e.port === p.port && e.protocol === p.protocol));
      const rec = same && (await this.forwarderAlive(spec.groupId, existing.forwarderPid))
        ? existing
        : await this.publish(spec.groupId, ip, spec.ports, !!spec.identityEndpoint, existing);
      return { ...this.sandboxOf(rec), ...(restarted.length ? { restarted } : {}) };
    } catch (e) {
      if (!existing) await this.deleteSandboxNow(spec.groupId).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Binds the group's ports on the host (where `previous` had them, when those are free) and starts its
   * forwarder with them (and its metadata listener), replacing the previous forwarder; records it.
   */
  private async publish(groupId: string, ip: string, ports: PortSpec[], imds: boolean, previous: SandboxRecord | undefined): Promise<SandboxRecord> {
    const dir = this.layout.groupDir(groupId);
    if (previous?.forwarderPid) await this.stopForwarder(groupId, previous.forwarderPid);
    const preferred: Record<string, number> = {};
    for (const e of previous?.ports ?? []) preferred[`${e.port}/${e.protocol}`] = e.hostPort;
    const bound = await bindHostPorts(ip, ports, preferred);
    let forwarderPid: number | undefined;
    const md = imds ? await listenInNetns(join(dir, 'metadata-netns'), IMDS_ADDRESS, 80).catch(async (e: Error) => {
      for (const b of bound) await b.close();
      throw e;
    }) : undefined;
    try {
      if (bound.length > 0 || md) {
        forwarderPid = await startForwarder({ netnsPath: join(dir, 'netns'), dir, bound, onExit: this.helperExit(groupId),
          ...(md ? { imds: { fd: md.fd, socket: this.layout.imdsSocket(groupId) } } : {}) });
      }
    } finally {
      for (const b of bound) await b.close();
      await md?.close();
    }
    const rec: SandboxRecord = { groupId, ip, imds, ports: bound.map((b) => ({ ...b.spec, hostPort: b.hostPort })), ...(forwarderPid ? { forwarderPid } : {}) };
    try {
      await replaceFile(join(dir, 'sandbox.json'), JSON.stringify(rec, null, 1), 0o600);
    } catch (e) {
      // Unrecorded, the forwarder would hold the ports with nothing left to stop it.
      if (forwarderPid) await this.stopForwarder(groupId, forwarderPid);
      throw e;
    }
    return rec;
  }

  private outboundOptions(groupId: string): Parameters<typeof configureOutbound>[0] {
    const dir = this.layout.groupDir(groupId);
    return { dir, netnsPath: join(dir, 'netns'), enabled: this.opts.outbound !== false, hostAliases: this.hostAliases, onExit: this.helperExit(groupId),
      ...(this.opts.slirp4netns ? { bin: this.opts.slirp4netns } : {}) };
  }

  /** Records how a helper process of the group ended (by pid) and wakes sandboxDown. */
  private helperExit(groupId: string): (how: string, pid: number) => void {
    return (how, pid) => {
      let m = this.helperExits.get(groupId);
      if (!m) this.helperExits.set(groupId, (m = new Map()));
      m.set(pid, how);
      for (const w of this.helperWaiters) w();
    };
  }

  /** Resolves on the next helper exit this process sees, after `ms`, or on `signal`. */
  private nextHelperExit(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((res) => {
      const done = () => {
        clearTimeout(t);
        this.helperWaiters.delete(done);
        signal.removeEventListener('abort', done);
        res();
      };
      const t = setTimeout(done, ms);
      this.helperWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The group's helper processes that should run and do not. */
  private async deadHelpers(groupId: string): Promise<SandboxHelperDown[]> {
    const dir = this.layout.groupDir(groupId);
    const rec = await readJson<SandboxRecord>(join(dir, 'sandbox.json'));
    if (!rec) return [];
    const how = (pid: number | undefined) => {
      const h = pid ? this.helperExits.get(groupId)?.get(pid) : undefined;
      return h ? { how: h } : {};
    };
    const down: SandboxHelperDown[] = [];
    if (rec.forwarderPid && !(await this.forwarderAlive(groupId, rec.forwarderPid))) {
      down.push({ helper: 'port-forwarder', ports: rec.ports.map((p) => ({ port: p.port, protocol: p.protocol })), ...how(rec.forwarderPid) });
    }
    if (this.opts.outbound !== false && !(await outboundPid(dir, join(dir, 'netns')))) {
      down.push({ helper: 'outbound-network', ...how(await recordedPid(dir)) });
    }
    return down;
  }

  /**
   * Resolves when a helper process of the group is found dead: at once when it was this process's child
   * (its exit is seen), else within a second (a check of /proc, as for helpers adopted after a restart).
   */
  async sandboxDown(groupId: string, signal: AbortSignal): Promise<SandboxHelperDown[]> {
    const stop = AbortSignal.any([signal, this.opts.closed]);
    while (!stop.aborted) {
      const woken = this.nextHelperExit(HELPER_CHECK_MS, stop);
      const down = await this.withSandboxLock(groupId, () => this.deadHelpers(groupId));
      if (down.length > 0 && !stop.aborted) return down;
      await woken;
    }
    return [];
  }

  /** Restarts the group's dead port forwarder (on the same host ports when they are free) and outbound network stack. */
  repairSandbox(groupId: string): Promise<Sandbox> {
    return this.withSandboxLock(groupId, async () => {
      const dir = this.layout.groupDir(groupId);
      const rec = await readJson<SandboxRecord>(join(dir, 'sandbox.json'));
      if (!rec) throw new Error(`group ${groupId} has no sandbox`);
      if (this.opts.outbound !== false && !(await outboundPid(dir, join(dir, 'netns')))) await configureOutbound(this.outboundOptions(groupId));
      if (rec.forwarderPid && !(await this.forwarderAlive(groupId, rec.forwarderPid))) {
        return this.sandboxOf(await this.publish(groupId, rec.ip, rec.ports.map((p) => ({ port: p.port, protocol: p.protocol })), rec.imds, rec));
      }
      return this.sandboxOf(rec);
    });
  }

  private sandboxOf(rec: SandboxRecord): Sandbox {
    const hostPorts: Record<number, number> = {};
    for (const p of rec.ports) if (p.protocol === 'TCP' || hostPorts[p.port] === undefined) hostPorts[p.port] = p.hostPort;
    return { groupId: rec.groupId, ip: rec.ip, hostPorts };
  }

  private forwarderAlive(groupId: string, pid: number | undefined): Promise<boolean> {
    return aliveWith(pid, FORWARDER_SCRIPT, join(this.layout.groupDir(groupId), 'forwarder.json'));
  }

  private stopForwarder(groupId: string, pid: number): Promise<void> {
    return stopProcess(pid, [FORWARDER_SCRIPT, join(this.layout.groupDir(groupId), 'forwarder.json')]);
  }

  async closeImds(groupId: string): Promise<void> {
    const s = this.imds.get(groupId);
    if (s) {
      this.imds.delete(groupId);
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  private async deleteSandboxNow(groupId: string): Promise<void> {
    const dir = this.layout.groupDir(groupId);
    for (const name of await readdir(join(dir, 'containers')).catch(() => [] as string[])) {
      if (ID.test(name)) await this.opts.deleteTask({ groupId, name, logPath: this.layout.logPath(groupId, name) });
    }
    // Containers runc still knows with a bundle in this group (a crash between steps of a delete).
    for (const s of await this.opts.runc.list().catch(() => [] as RuncState[])) {
      if (s.bundle.startsWith(dir + '/')) {
        await this.opts.runc.kill(s.id, 'KILL').catch(() => undefined);
        await this.opts.runc.delete(s.id);
      }
    }
    // The group's forwarder, found by its command line rather than the recorded pid: one whose start was
    // interrupted before it was recorded must not outlive the group holding its host ports either.
    await stopProcessesWith(FORWARDER_SCRIPT, join(dir, 'forwarder.json'));
    await this.closeImds(groupId);
    this.helperExits.delete(groupId);
    await rm(this.layout.imdsSocket(groupId), { force: true });
    await removeOutbound(dir, join(dir, 'netns'));
    await deleteNetns(join(dir, 'netns'));
    await deleteNetns(join(dir, 'metadata-netns'));
    await unmountAll(dir);
    await rm(dir, { recursive: true, force: true });
  }

  /** Closes every metadata endpoint this process serves (server shutdown). */
  async closeAll(): Promise<void> {
    for (const g of [...this.imds.keys()]) await this.closeImds(g);
  }
}
