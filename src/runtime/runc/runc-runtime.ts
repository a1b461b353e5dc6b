// The embedded runtime: container groups on runc. A group (sandbox) is a network namespace kept by a
// bind mount in the data directory, hosts and resolv.conf files, a forwarder process holding its
// published ports (and its metadata endpoint), its outbound network stack (./outbound.ts), and a
// directory per container holding the OCI bundle (config.json, the rootfs mount, the overlay
// upper/work dirs) and the container's exit record.
//
// Each container runs under a tiny detached shim, `sh -c '<runc run --keep ...>; echo $? > exit'`, whose
// stdout/stderr is the container's log file: runc passes it straight to the container, so logs and the
// exit code are written without Berth (a restarted Berth reads them), and `--keep` leaves the stopped
// container — and its memory cgroup, with the OOM-kill count — in place until `delete`.
//
// Layout under the runtime's directory (<data>/runtime under `berth serve`):
//   layers/<hex>/                      shared extracted layers (overlay lowerdirs)
//   runc/                              runc --root (Berth's containers only)
//   groups/<groupId>/sandbox.json      ports, host ports, forwarder pid
//   groups/<groupId>/netns             the namespace (nsfs bind mount)
//   groups/<groupId>/metadata-netns    where 169.254.169.254 lives, for a group with an identity
//   groups/<groupId>/hosts             /etc/hosts of the group (each bundle's copy adds its hostname)
//   groups/<groupId>/resolv.conf       /etc/resolv.conf of every container of the group
//   groups/<groupId>/outbound.pid      the group's slirp4netns (outbound network), and outbound.log
//   groups/<groupId>/logs/<name>.log   container output (kept until the group is deleted)
//   groups/<groupId>/containers/<name>/  bundle: config.json, rootfs/, upper/, work/,
//                                      hosts, task.json, exit, status.json, runc.log, killed
//
// task.json records the image a container uses (manifest, config and layer digests, layer blob paths):
// the image garbage collection keeps what any bundle on disk names (collectGarbage, imageReferences).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import type { Logger } from '../../lib/logger.js';
import { LayerCache } from '../rootfs/layer-cache.js';
import { resolveInRoot } from '../../lib/root-path.js';
import { buildRootfs, overlayWorks, unmountAll, type RootfsMode } from '../rootfs/rootfs.js';
import { DEFAULT_UNPACK_LIMITS, type UnpackLimits } from '../rootfs/unpack-bound.js';
import { DiskSpace } from '../../storage/disk-space.js';
import { ImageGoneError, type ContainerSpec, type ExecResult, type ExitStatus, type PortSpec, type Runtime, type RuntimeGcReport, type Sandbox, type SandboxHelperDown, type SandboxSpec, type Task, type TaskStatus } from '../runtime.js';
import type { PulledImage } from '../../pull/types.js';
import { cgroupInfo, hardLimits, oomKills, type CgroupInfo } from './host.js';
import { createMetadataLink, createNetns, deleteNetns, IMDS_ADDRESS } from './netns.js';
import { configureOutbound, containerHosts, hostsFile, outboundPid, recordedPid, removeOutbound, STACK_MARK, writeContainerHosts } from './outbound.js';
import { aliveWith, stopProcess, stopProcessesWith, waitGone } from './proc.js';
import { bindHostPorts, FORWARDER_SCRIPT, listenInNetns, startForwarder, startImdsServer } from './publish.js';
import { Runc, type RuncState } from './runc.js';
import { buildOciSpec } from './spec.js';
import { resolveUser } from './user.js';

const run = promisify(execFile);

export interface RuncRuntimeOptions {
  /** The directory the runtime owns (`<data>/runtime` under `berth serve`). */
  dataDir: string;
  /** The runc binary (default `runc` on PATH). */
  runc?: string;
  /** Host address published ports listen on (default 127.0.0.1). */
  publishAddress?: string;
  /** `auto` (default): overlay when an overlay mount works here, else copy. */
  rootfs?: 'auto' | RootfsMode;
  /** Outbound network access for every group (slirp4netns; default true, as in ACI). */
  outbound?: boolean;
  /** The slirp4netns binary (default `slirp4netns` on PATH). */
  slirp4netns?: string;
  logger?: Logger;
  /** Bounds on unpacked layers (default 16 GiB per layer and per image). */
  unpack?: Partial<Pick<UnpackLimits, 'maxLayerBytes' | 'maxImageBytes'>>;
  /** Bytes kept free on the runtime directory's filesystem: unpacking stops short of them (default 5% of it, at most 1 GiB). */
  storageReserve?: number;
}

export interface RuntimeInfo {
  rootfs: RootfsMode;
  cgroups: CgroupInfo;
  /** Hard RLIMIT_NOFILE given to containers (the host's hard limit, at most 1048576). */
  nofile: number;
}

/** Why the runtime cannot run containers here, or undefined when it can. */
export async function runcUnavailable(bin = 'runc'): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the runc runtime needs root (network namespaces, mounts, cgroups)';
  try {
    await run(bin, ['--version']);
  } catch {
    return `${bin} is not installed (apt-get install runc)`;
  }
  return undefined;
}

export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartError';
  }
}

interface PortRecord { port: number; protocol: 'TCP' | 'UDP'; hostPort: number }

interface SandboxRecord {
  groupId: string;
  ip: string;
  ports: PortRecord[];
  imds: boolean;
  forwarderPid?: number;
}

interface TaskRecord {
  groupId: string;
  name: string;
  runcId: string;
  shimPid?: number;
  startedAt?: string;
  /** The image the bundle was built from (absent in bundles of Berth before image garbage collection). */
  image?: ImageRecord;
}

interface ImageRecord {
  reference: string;
  manifest: string;
  index?: string;
  config: string;
  layers: Array<{ digest: string; path: string }>;
}

function imageRecord(i: PulledImage): ImageRecord {
  return { reference: i.reference, manifest: i.digest, ...(i.indexDigest ? { index: i.indexDigest } : {}), config: i.configDigest,
    layers: i.layers.map((l) => ({ digest: l.digest, path: l.path })) };
}

function imageDigests(i: ImageRecord): string[] {
  return [i.manifest, ...(i.index ? [i.index] : []), i.config, ...i.layers.map((l) => l.digest)];
}

/** How often sandboxDown looks for a dead helper it did not see exit (one adopted after a restart). */
const HELPER_CHECK_MS = 1000;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SHIM_NAME = 'berth-shim';
// $1 runc, $2 root, $3 bundle, $4 id. Exit code lands in <bundle>/exit (atomically).
// runc writes <bundle>/pid (atomically) once the container's process runs: start() waits on that.
const SHIM_SCRIPT = '"$1" --root "$2" --log "$3/runc.log" --log-format json run --keep --pid-file "$3/pid" --bundle "$3" "$4" </dev/null; ' +
  'code=$?; echo "$code" > "$3/exit.tmp" && mv -f "$3/exit.tmp" "$3/exit"';

function checkId(kind: string, id: string): void {
  if (!ID.test(id)) throw new Error(`invalid ${kind} "${id}": use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)`);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Resolves on the next change in directory `dir`, after `ms`, or on `abort`, whichever comes first.
 * Create it before checking the directory, so that a change during the check is not missed. */
function nextChange(dir: string, ms: number, abort?: AbortSignal): Promise<void> {
  return new Promise<void>((res) => {
    let w: ReturnType<typeof watch> | undefined;
    const done = () => {
      clearTimeout(t);
      w?.close();
      abort?.removeEventListener('abort', done);
      res();
    };
    const t = setTimeout(done, ms);
    abort?.addEventListener('abort', done);
    try {
      w = watch(dir, done);
      w.on('error', done);
    } catch {
      /* the timer will do */
    }
  });
}

export class RuncRuntime implements Runtime {
  private readonly runc: Runc;
  /** One sandbox operation at a time per group: two concurrent creates would each start a forwarder. */
  private readonly sandboxLocks = new Map<string, Promise<unknown>>();
  private readonly base: string;
  private readonly cache: LayerCache;
  private readonly unpackLimits: UnpackLimits;
  private readonly imds = new Map<string, http.Server>();
  private readonly closed = new AbortController();
  private initialised?: Promise<RuntimeInfo>;
  /** Images of containers being created (not yet recorded in their task.json). */
  private readonly creating = new Set<ImageRecord>();
  /** How the helper processes this process started ended: group → pid → `signal SIGKILL`. */
  private readonly helperExits = new Map<string, Map<number, string>>();
  private readonly helperWaiters = new Set<() => void>();
  /** More names for the host in every group's /etc/hosts (Berth's vaults by name): setHostAliases. */
  private hostAliases: string[] = [];

  constructor(private readonly opts: RuncRuntimeOptions) {
    this.base = opts.dataDir;
    this.runc = new Runc(opts.runc ?? 'runc', join(this.base, 'runc'));
    this.cache = new LayerCache(join(this.base, 'layers'));
    this.unpackLimits = { ...DEFAULT_UNPACK_LIMITS, ...opts.unpack,
      space: new DiskSpace(this.base, opts.storageReserve !== undefined ? { reserve: opts.storageReserve } : {}) };
  }

  /** What this machine gave the runtime: rootfs method, cgroup layout and controllers, nofile. */
  info(): Promise<RuntimeInfo> {
    this.initialised ??= (async () => {
      await mkdir(this.runc.root, { recursive: true, mode: 0o700 });
      await mkdir(join(this.base, 'groups'), { recursive: true, mode: 0o700 });
      await this.cache.sweep();
      await this.sweepOrphans();
      const want = this.opts.rootfs ?? 'auto';
      const rootfs: RootfsMode = want === 'auto' ? ((await overlayWorks(this.base)) ? 'overlay' : 'copy') : want;
      const hard = (await hardLimits()).nofile ?? 1024;
      const nofile = hard === 'unlimited' ? 1_048_576 : Math.min(hard, 1_048_576);
      const info: RuntimeInfo = { rootfs, cgroups: await cgroupInfo(), nofile };
      this.opts.logger?.info('runtime ready', { runtime: 'runc', rootfs, cgroups: info.cgroups.version, memory: info.cgroups.memory, cpu: info.cgroups.cpu, nofile });
      return info;
    })();
    this.initialised.catch(() => (this.initialised = undefined));
    return this.initialised;
  }

  /**
   * Stops the helper processes (port forwarders, outbound network stacks) of this runtime's groups
   * whose group is gone — a crash in the middle of a delete — so that none holds a port or a namespace.
   */
  private async sweepOrphans(): Promise<void> {
    const groups = join(this.base, 'groups') + '/';
    for (const name of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      const args = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
      const mark = args.find((a) => a.startsWith(groups) && (a.endsWith('/forwarder.json') || a.endsWith('/netns')));
      if (!mark || !(args.includes(FORWARDER_SCRIPT) || args.includes(STACK_MARK))) continue;
      const groupDir = mark.slice(0, mark.lastIndexOf('/'));
      if (await exists(join(groupDir, 'sandbox.json'))) continue;
      this.opts.logger?.info('stopping a helper process of a removed group', { pid: Number(name) });
      await stopProcess(Number(name), [mark]).catch(() => undefined);
    }
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
    for (const groupId of await readdir(join(this.base, 'groups')).catch(() => [] as string[])) {
      if (!ID.test(groupId)) continue;
      const dir = this.groupDir(groupId);
      if (!(await exists(join(dir, 'hosts')))) continue;
      const group = hostsFile(true, next);
      await writeFileAtomic(join(dir, 'hosts'), group, 0o644);
      for (const name of await readdir(join(dir, 'containers')).catch(() => [] as string[])) {
        const hosts = join(dir, 'containers', name, 'hosts');
        if (ID.test(name) && (await exists(hosts))) await writeFile(hosts, containerHosts(group, name), { mode: 0o644 });
      }
    }
  }

  // ---- paths ----
  private groupDir(groupId: string): string {
    checkId('group id', groupId);
    return join(this.base, 'groups', groupId);
  }

  private bundleDir(task: { groupId: string; name: string }): string {
    checkId('container name', task.name);
    return join(this.groupDir(task.groupId), 'containers', task.name);
  }

  private logPath(groupId: string, name: string): string {
    return join(this.groupDir(groupId), 'logs', `${name}.log`);
  }

  private imdsSocket(groupId: string): string {
    const p = join(this.groupDir(groupId), 'imds.sock');
    if (Buffer.byteLength(p) < 100) return p;
    const h = createHash('sha256').update(p).digest('hex').slice(0, 16);
    return join(tmpdir(), `berth-imds-${h}.sock`);
  }

  private runcId(groupId: string, name: string): string {
    return `berth-${createHash('sha256').update(`${groupId}\n${name}`).digest('hex').slice(0, 20)}`;
  }

  // ---- sandboxes ----

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
    const dir = this.groupDir(spec.groupId);
    await this.info();
    const recPath = join(dir, 'sandbox.json');
    const existing = await readJson<SandboxRecord>(recPath);
    const ip = spec.address ?? this.opts.publishAddress ?? '127.0.0.1';
    // Adopting a group whose port forwarder or network stack died meanwhile: they are started again below.
    const restarted = existing ? await this.deadHelpers(spec.groupId) : [];
    try {
      for (const d of ['logs', 'containers']) await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
      const netns = join(dir, 'netns');
      await createNetns(netns);
      if (spec.identityEndpoint) await createMetadataLink(netns, join(dir, 'metadata-netns'));
      await configureOutbound(this.outboundOptions(spec.groupId));

      const sock = this.imdsSocket(spec.groupId);
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
    const dir = this.groupDir(groupId);
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
          ...(md ? { imds: { fd: md.fd, socket: this.imdsSocket(groupId) } } : {}) });
      }
    } finally {
      for (const b of bound) await b.close();
      await md?.close();
    }
    const rec: SandboxRecord = { groupId, ip, imds, ports: bound.map((b) => ({ ...b.spec, hostPort: b.hostPort })), ...(forwarderPid ? { forwarderPid } : {}) };
    try {
      await writeFileAtomic(join(dir, 'sandbox.json'), JSON.stringify(rec, null, 1), 0o600);
    } catch (e) {
      // Unrecorded, the forwarder would hold the ports with nothing left to stop it.
      if (forwarderPid) await this.stopForwarder(groupId, forwarderPid);
      throw e;
    }
    return rec;
  }

  private outboundOptions(groupId: string): Parameters<typeof configureOutbound>[0] {
    const dir = this.groupDir(groupId);
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
    const dir = this.groupDir(groupId);
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
    const stop = AbortSignal.any([signal, this.closed.signal]);
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
      const dir = this.groupDir(groupId);
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
    return aliveWith(pid, FORWARDER_SCRIPT, join(this.groupDir(groupId), 'forwarder.json'));
  }

  private stopForwarder(groupId: string, pid: number): Promise<void> {
    return stopProcess(pid, [FORWARDER_SCRIPT, join(this.groupDir(groupId), 'forwarder.json')]);
  }

  private async closeImds(groupId: string): Promise<void> {
    const s = this.imds.get(groupId);
    if (s) {
      this.imds.delete(groupId);
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  private async deleteSandboxNow(groupId: string): Promise<void> {
    const dir = this.groupDir(groupId);
    for (const name of await readdir(join(dir, 'containers')).catch(() => [] as string[])) {
      if (ID.test(name)) await this.delete({ groupId, name, logPath: this.logPath(groupId, name) });
    }
    // Containers runc still knows with a bundle in this group (a crash between steps of a delete).
    for (const s of await this.runc.list().catch(() => [] as RuncState[])) {
      if (s.bundle.startsWith(dir + '/')) {
        await this.runc.kill(s.id, 'KILL').catch(() => undefined);
        await this.runc.delete(s.id);
      }
    }
    // The group's forwarder, found by its command line rather than the recorded pid: one whose start was
    // interrupted before it was recorded must not outlive the group holding its host ports either.
    await stopProcessesWith(FORWARDER_SCRIPT, join(dir, 'forwarder.json'));
    await this.closeImds(groupId);
    this.helperExits.delete(groupId);
    await rm(this.imdsSocket(groupId), { force: true });
    await removeOutbound(dir, join(dir, 'netns'));
    await deleteNetns(join(dir, 'netns'));
    await deleteNetns(join(dir, 'metadata-netns'));
    await unmountAll(dir);
    await rm(dir, { recursive: true, force: true });
  }

  // ---- containers ----

  async create(sandbox: Sandbox, spec: ContainerSpec): Promise<Task> {
    // The image is held against garbage collection until task.json names it.
    const image = imageRecord(spec.image);
    this.creating.add(image);
    const release = this.cache.pin(image.layers.map((l) => l.digest));
    try {
      await this.touchImage(image);
      return await this.createBundle(sandbox, spec, image);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT' && image.layers.some((l) => l.path === err.path)) {
        throw new ImageGoneError(`the layer blob ${err.path} of image ${image.reference} is gone (removed by garbage collection?); pull the image again`);
      }
      throw e;
    } finally {
      release();
      this.creating.delete(image);
    }
  }

  /** Records a use of an image's cached layers and blobs: their grace period starts again. */
  private async touchImage(image: ImageRecord): Promise<void> {
    await this.cache.touch(image.layers.map((l) => l.digest));
    const now = new Date();
    for (const l of image.layers) await utimes(l.path, now, now).catch(() => undefined);
  }

  /** The image records of every bundle on disk (containers of every group, running or not). */
  private async bundleImages(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    const groupsDir = join(this.base, 'groups');
    for (const groupId of await readdir(groupsDir).catch(() => [] as string[])) {
      if (!ID.test(groupId)) continue;
      for (const name of await readdir(join(groupsDir, groupId, 'containers')).catch(() => [] as string[])) {
        const rec = ID.test(name) ? await readJson<TaskRecord>(join(groupsDir, groupId, 'containers', name, 'task.json')) : undefined;
        if (rec?.image) out.push(rec.image);
      }
    }
    return out;
  }

  async imageReferences(): Promise<Set<string>> {
    const creating = [...this.creating];
    return new Set([...creating, ...(await this.bundleImages())].flatMap(imageDigests));
  }

  /**
   * Removes cached layers that no bundle on disk uses, no create in progress holds, no live overlay
   * mount has as a lowerdir, and that nobody used for `graceMs`.
   */
  async collectGarbage(opts: { graceMs: number; now?: number }): Promise<RuntimeGcReport> {
    await this.info();
    const creating = [...this.creating];
    const referenced = [...creating, ...(await this.bundleImages())].flatMap((i) => i.layers.map((l) => l.digest));
    return this.cache.collectGarbage({ graceMs: opts.graceMs, referenced, ...(opts.now !== undefined ? { now: opts.now } : {}) });
  }

  private async createBundle(sandbox: Sandbox, spec: ContainerSpec, image: ImageRecord): Promise<Task> {
    const info = await this.info();
    const gdir = this.groupDir(sandbox.groupId);
    if (!(await exists(join(gdir, 'sandbox.json')))) throw new Error(`group ${sandbox.groupId} has no sandbox: create it first`);
    const task: Task = { groupId: sandbox.groupId, name: spec.name, logPath: this.logPath(sandbox.groupId, spec.name) };
    const bundle = this.bundleDir(task);
    if (await exists(bundle)) {
      if ((await this.status(task)) === 'running') throw new Error(`container ${spec.name} of group ${sandbox.groupId} is running: delete it first`);
      await this.delete(task);
    }
    await mkdir(bundle, { recursive: true, mode: 0o700 });
    try {
      const rootfs = await buildRootfs(info.rootfs, this.cache, spec.image.layers, bundle, undefined, this.unpackLimits);
      const user = await resolveUser(rootfs, spec.image.config.user);
      const cwd = spec.image.config.workingDir || '/';
      await mkdir(await resolveInRoot(rootfs, cwd, { followFinal: true }), { recursive: true });
      const rec: TaskRecord = { groupId: sandbox.groupId, name: spec.name, runcId: this.runcId(sandbox.groupId, spec.name), image };
      const config = buildOciSpec({
        image: spec.image.config,
        container: spec,
        user,
        hostname: spec.name,
        netnsPath: join(gdir, 'netns'),
        hostsPath: await writeContainerHosts(gdir, bundle, spec.name),
        resolvConfPath: join(gdir, 'resolv.conf'),
        cgroupsPath: rec.runcId,
        limits: { nofile: info.nofile, memory: info.cgroups.memory, cpu: info.cgroups.cpu },
      });
      // config.json holds the environment, secure values included: owner-only.
      await writeFileAtomic(join(bundle, 'config.json'), JSON.stringify(config, null, 1), 0o600);
      await writeFileAtomic(join(bundle, 'task.json'), JSON.stringify(rec), 0o600);
      await (await open(task.logPath, 'a', 0o640)).close();
    } catch (e) {
      await unmountAll(bundle).catch(() => undefined);
      await rm(bundle, { recursive: true, force: true });
      throw e;
    }
    return task;
  }

  private async record(task: Task): Promise<TaskRecord | undefined> {
    return readJson<TaskRecord>(join(this.bundleDir(task), 'task.json'));
  }

  private shimAlive(task: Task, rec: TaskRecord | undefined): Promise<boolean> {
    return aliveWith(rec?.shimPid, SHIM_NAME, this.bundleDir(task), rec?.runcId ?? '-');
  }

  async start(task: Task): Promise<void> {
    const bundle = this.bundleDir(task);
    const rec = await this.record(task);
    if (!rec) throw new Error(`container ${task.name} of group ${task.groupId} does not exist`);
    if (await this.shimAlive(task, rec)) return;
    // A restart of a stopped container: forget the previous run.
    await this.runc.delete(rec.runcId);
    for (const f of ['exit', 'exit.tmp', 'pid', 'status.json', 'killed', 'runc.log']) await rm(join(bundle, f), { force: true });
    const log = await open(task.logPath, 'a', 0o640);
    let pid: number;
    try {
      const child = spawn('sh', ['-c', SHIM_SCRIPT, SHIM_NAME, this.runc.bin, this.runc.root, bundle, rec.runcId], {
        cwd: bundle, stdio: ['ignore', log.fd, log.fd], detached: true,
      });
      child.on('error', () => undefined);
      child.unref();
      pid = child.pid!;
    } finally {
      await log.close();
    }
    await writeFileAtomic(join(bundle, 'task.json'), JSON.stringify({ ...rec, shimPid: pid, startedAt: new Date().toISOString() }), 0o600);
    // Started when runc has written the pid file (the process runs), or when it has already exited; a
    // start failure (no such executable, a bad mount) is runc's own error in runc.log. Woken by the
    // shim's files appearing in the bundle; `runc state` every 250 ms is only the fallback.
    for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
      const change = nextChange(bundle, 250);
      if (await exists(join(bundle, 'exit'))) {
        const err = await this.runcError(bundle);
        if (err) {
          await writeFileAtomic(join(bundle, 'status.json'), JSON.stringify({ exitCode: 128, reason: 'StartError', finishedAt: new Date() }));
          throw new StartError(err);
        }
        return;
      }
      // `stopped` without the exit record yet: the shim is about to write it (and runc.log may hold an error).
      if (await exists(join(bundle, 'pid'))) return;
      const st = await this.runc.state(rec.runcId).catch(() => undefined);
      if (st && (st.status === 'running' || st.status === 'paused')) return;
      await change;
    }
    throw new StartError(`runc did not start container ${task.name} within 60 s`);
  }

  /** runc's last error message for this bundle (runc.log is JSON lines), if it failed. */
  private async runcError(bundle: string): Promise<string | undefined> {
    const text = await readFile(join(bundle, 'runc.log'), 'utf8').catch(() => '');
    let msg: string | undefined;
    for (const line of text.split('\n')) {
      try {
        const j = JSON.parse(line) as { level?: string; msg?: string };
        if (j.level === 'error' && j.msg) msg = j.msg.replace(/^runc run failed: /, '');
      } catch { /* not JSON */ }
    }
    return msg;
  }

  /** The exit of the task's last run, once known (persisted in status.json). */
  private async exitStatus(task: Task): Promise<ExitStatus | undefined> {
    const bundle = this.bundleDir(task);
    const saved = await readJson<{ exitCode: number; reason: string; finishedAt: string }>(join(bundle, 'status.json'));
    if (saved) return { ...saved, finishedAt: new Date(saved.finishedAt) };
    const rec = await this.record(task);
    if (!rec?.shimPid) return undefined;
    let exitFile = await stat(join(bundle, 'exit')).catch(() => undefined);
    if (!exitFile) {
      if (await this.shimAlive(task, rec)) return undefined;
      exitFile = await stat(join(bundle, 'exit')).catch(() => undefined);
    }
    let status: ExitStatus;
    if (!exitFile) {
      // The shim is gone without an exit record (the machine restarted, or someone killed it).
      status = { exitCode: -1, reason: 'Lost', finishedAt: new Date() };
    } else {
      const exitCode = Number((await readFile(join(bundle, 'exit'), 'utf8')).trim());
      let reason = exitCode === 0 ? 'Completed' : 'Error';
      if (exitCode !== 0 && (await exists(join(bundle, 'killed')))) reason = 'Killed';
      const state = await readJson<{ cgroup_paths?: Record<string, string> }>(join(this.runc.root, rec.runcId, 'state.json'));
      const memcg = state?.cgroup_paths?.memory ?? state?.cgroup_paths?.[''];
      if (memcg && (await oomKills(memcg)) > 0) reason = 'OOMKilled';
      const err = await this.runcError(bundle);
      if (err) reason = 'StartError';
      status = { exitCode, reason, finishedAt: exitFile.mtime };
    }
    await writeFileAtomic(join(bundle, 'status.json'), JSON.stringify(status));
    return status;
  }

  /** Resolves with the exit of the task's current run; works for tasks started by an earlier process. */
  async wait(task: Task): Promise<ExitStatus> {
    const bundle = this.bundleDir(task);
    const closed = this.closed.signal;
    for (;;) {
      if (closed.aborted) throw new Error('the runtime was closed while waiting for a container');
      // Woken by any change in the bundle directory (the shim writes `exit` there), else every second.
      // The watch starts before the check, so an exit written during the check is not missed.
      const done = new AbortController();
      const change = nextChange(bundle, 1000, AbortSignal.any([closed, done.signal]));
      try {
        const s = await this.exitStatus(task);
        if (s) return s;
        if (!(await exists(bundle))) throw new Error(`container ${task.name} of group ${task.groupId} was deleted`);
        await change;
      } finally {
        done.abort();
      }
    }
  }

  async kill(task: Task, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const rec = await this.record(task);
    if (!rec) return;
    // PID 1 of a PID namespace gets only the signals it handles: a SIGTERM to an init without a handler
    // (busybox httpd, most programs run directly as the command) is dropped by the kernel, and a stop
    // would only wait out its grace period. Such a container is killed at once: the same end, sooner.
    if (signal === 'SIGTERM' && !(await this.initHandles(rec.runcId, 15))) signal = 'SIGKILL';
    await writeFile(join(this.bundleDir(task), 'killed'), signal);
    await this.runc.kill(rec.runcId, signal).catch((e: Error) => {
      if (!/not running|does not exist|container .* is stopped/i.test(e.message)) throw e;
    });
  }

  /** Whether the container's init process has a handler for signal number `sig` (true when unknown). */
  private async initHandles(runcId: string, sig: number): Promise<boolean> {
    const st = await this.runc.state(runcId).catch(() => undefined);
    if (!st?.pid || st.status !== 'running') return true;
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(await readFile(`/proc/${st.pid}/status`, 'utf8').catch(() => ''));
    if (!m) return true;
    return (BigInt(`0x${m[1]}`) & (1n << BigInt(sig - 1))) !== 0n;
  }

  async status(task: Task): Promise<TaskStatus | undefined> {
    const bundle = this.bundleDir(task);
    const rec = await this.record(task);
    if (!rec) return undefined;
    if (await exists(join(bundle, 'status.json')) || await exists(join(bundle, 'exit'))) return 'stopped';
    if (await this.shimAlive(task, rec)) return 'running';
    const st = await this.runc.state(rec.runcId).catch(() => undefined);
    if (st) return st.status === 'stopped' ? 'stopped' : 'running';
    return rec.shimPid ? 'stopped' : 'created';
  }

  async delete(task: Task): Promise<void> {
    const bundle = this.bundleDir(task);
    const rec = await this.record(task);
    if (rec) {
      if (await this.shimAlive(task, rec)) {
        await this.runc.kill(rec.runcId, 'KILL').catch(() => undefined);
        const marks = [SHIM_NAME, bundle, rec.runcId];
        if (!(await waitGone(rec.shimPid!, marks, 10_000))) process.kill(rec.shimPid!, 'SIGKILL');
      }
      await this.runc.delete(rec.runcId);
      // Its last use of the image: the grace period of the layers and blobs starts now.
      if (rec.image) await this.touchImage(rec.image);
    }
    await unmountAll(bundle);
    await rm(bundle, { recursive: true, force: true });
  }

  async exec(task: Task, argv: string[], io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; tty?: boolean; signal?: AbortSignal }): Promise<ExecResult> {
    if (io.tty) throw new Error('exec with a terminal is not supported by the runc runtime yet; run the command without a tty');
    if (argv.length === 0) throw new Error('exec needs a command');
    const rec = await this.record(task);
    if (!rec || (await this.status(task)) !== 'running') throw new Error(`container ${task.name} of group ${task.groupId} is not running`);
    const child = spawn(this.runc.bin, this.runc.args('exec', rec.runcId, ...argv), { stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    if (io.stdin && child.stdin) {
      // Input still arriving after the command exited (EPIPE) is dropped, not a server error.
      child.stdin.on('error', () => undefined);
      io.stdin.pipe(child.stdin);
    }
    // runc exec forwards the signals it gets to the command: a hang-up ends it as a closed terminal would.
    const hangup = () => child.kill('SIGHUP');
    if (io.signal?.aborted) hangup();
    else io.signal?.addEventListener('abort', hangup, { once: true });
    child.stdout!.pipe(io.stdout, { end: false });
    child.stderr!.pipe(io.stderr, { end: false });
    return new Promise((res, rej) => {
      child.on('error', rej);
      child.on('close', (code, signal) => {
        io.signal?.removeEventListener('abort', hangup);
        res({ exitCode: code ?? (signal ? 128 : 1) });
      });
    });
  }

  async list(): Promise<Array<{ groupId: string; containers: Array<{ name: string; status: TaskStatus; pid?: number }> }>> {
    await this.info();
    const groupsDir = join(this.base, 'groups');
    const byId = new Map((await this.runc.list().catch(() => [] as RuncState[])).map((s) => [s.id, s]));
    const out: Array<{ groupId: string; containers: Array<{ name: string; status: TaskStatus; pid?: number }> }> = [];
    const seen = new Set<string>();
    for (const groupId of (await readdir(groupsDir).catch(() => [] as string[])).sort()) {
      if (!ID.test(groupId)) continue;
      const containers: Array<{ name: string; status: TaskStatus; pid?: number }> = [];
      for (const name of (await readdir(join(groupsDir, groupId, 'containers')).catch(() => [] as string[])).sort()) {
        if (!ID.test(name)) continue;
        const task: Task = { groupId, name, logPath: this.logPath(groupId, name) };
        const status = await this.status(task);
        if (!status) continue;
        const rec = await this.record(task);
        const st = rec ? byId.get(rec.runcId) : undefined;
        if (rec) seen.add(rec.runcId);
        containers.push({ name, status, ...(status === 'running' && st?.pid ? { pid: st.pid } : {}) });
      }
      out.push({ groupId, containers });
    }
    // runc containers whose group directory is gone: reported so that the reconciler deletes them.
    for (const s of byId.values()) {
      if (seen.has(s.id)) continue;
      const m = s.bundle.startsWith(groupsDir + '/') ? s.bundle.slice(groupsDir.length + 1).split('/') : undefined;
      if (!m || m.length !== 3 || m[1] !== 'containers') continue;
      let g = out.find((o) => o.groupId === m[0]);
      if (!g) out.push((g = { groupId: m[0]!, containers: [] }));
      g.containers.push({ name: m[2]!, status: s.status === 'stopped' ? 'stopped' : 'running', ...(s.pid ? { pid: s.pid } : {}) });
    }
    return out;
  }

  /**
   * Releases what lives in this process — metadata endpoints, pending wait() calls (they reject) — for a
   * server shutdown; containers, logs and published ports keep running for the next process to adopt.
   */
  async close(): Promise<void> {
    this.closed.abort();
    for (const g of [...this.imds.keys()]) await this.closeImds(g);
  }
}

/** The runc runtime for a Berth data directory, or the reason it cannot run here (not root, no runc). */
export async function openRuncRuntime(opts: RuncRuntimeOptions): Promise<{ runtime: RuncRuntime } | { unavailable: string }> {
  const why = await runcUnavailable(opts.runc);
  if (why) return { unavailable: why };
  const runtime = new RuncRuntime(opts);
  await runtime.info();
  return { runtime };
}
