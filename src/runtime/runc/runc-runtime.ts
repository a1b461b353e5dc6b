// The embedded runtime: container groups on runc. A group (sandbox) is a network namespace kept by a
// bind mount in the data directory, hosts and resolv.conf files, a forwarder process holding its
// published ports (and its metadata endpoint), its outbound network stack (./outbound.ts), and a
// directory per container holding the OCI bundle (config.json, the rootfs mount, the overlay
// upper/work dirs) and the container's exit record.
//
// One file per job: ./layout.ts (paths), ./sandboxes.ts (namespace, ports, metadata endpoint, outbound
// network, helper supervision), ./bundle.ts (rootfs and config.json), ./tasks.ts (the shim: start,
// wait, kill, status, delete, exec), ./image-refs.ts (what the image garbage collection keeps),
// ./orphans.ts (helpers of removed groups). This file puts them together behind the Runtime contract.
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
import { execFile } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../../lib/logger.js';
import { LayerCache } from '../rootfs/layer-cache.js';
import { overlayWorks, type RootfsMode } from '../rootfs/rootfs.js';
import { DEFAULT_UNPACK_LIMITS, type UnpackLimits } from '../rootfs/unpack-bound.js';
import { DiskSpace } from '../../storage/disk-space.js';
import type { ContainerSpec, ExecResult, ExitStatus, Runtime, RuntimeGcReport, Sandbox, SandboxHelperDown, SandboxSpec, Task, TaskStatus } from '../runtime.js';
import { createContainer } from './bundle.js';
import { cgroupInfo, hardLimits, type CgroupInfo } from './host.js';
import { ImageUse } from './image-refs.js';
import { ID, RuntimeLayout } from './layout.js';
import { sweepOrphanHelpers } from './orphans.js';
import { Runc, type RuncState } from './runc.js';
import { Sandboxes } from './sandboxes.js';
import { Tasks } from './tasks.js';

export { StartError } from './tasks.js';

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

export class RuncRuntime implements Runtime {
  private readonly runc: Runc;
  private readonly layout: RuntimeLayout;
  private readonly cache: LayerCache;
  private readonly unpackLimits: UnpackLimits;
  private readonly closed = new AbortController();
  private initialised?: Promise<RuntimeInfo>;
  private readonly images: ImageUse;
  private readonly tasks: Tasks;
  private readonly sandboxes: Sandboxes;

  constructor(private readonly opts: RuncRuntimeOptions) {
    this.layout = new RuntimeLayout(opts.dataDir);
    this.runc = new Runc(opts.runc ?? 'runc', join(opts.dataDir, 'runc'));
    this.cache = new LayerCache(join(opts.dataDir, 'layers'));
    this.unpackLimits = { ...DEFAULT_UNPACK_LIMITS, ...opts.unpack,
      space: new DiskSpace(opts.dataDir, opts.storageReserve !== undefined ? { reserve: opts.storageReserve } : {}) };
    this.images = new ImageUse(this.layout, this.cache);
    this.tasks = new Tasks(this.layout, this.runc, this.images, this.closed.signal);
    this.sandboxes = new Sandboxes({ layout: this.layout, runc: this.runc, closed: this.closed.signal, ready: () => this.info(),
      deleteTask: (t) => this.tasks.delete(t),
      ...(opts.publishAddress !== undefined ? { publishAddress: opts.publishAddress } : {}),
      ...(opts.outbound !== undefined ? { outbound: opts.outbound } : {}),
      ...(opts.slirp4netns !== undefined ? { slirp4netns: opts.slirp4netns } : {}) });
  }

  /** What this machine gave the runtime: rootfs method, cgroup layout and controllers, nofile. */
  info(): Promise<RuntimeInfo> {
    this.initialised ??= (async () => {
      await mkdir(this.runc.root, { recursive: true, mode: 0o700 });
      await mkdir(this.layout.groupsDir, { recursive: true, mode: 0o700 });
      await this.cache.sweep();
      await sweepOrphanHelpers(this.layout.groupsDir, this.opts.logger);
      const want = this.opts.rootfs ?? 'auto';
      const rootfs: RootfsMode = want === 'auto' ? ((await overlayWorks(this.opts.dataDir)) ? 'overlay' : 'copy') : want;
      const hard = (await hardLimits()).nofile ?? 1024;
      const nofile = hard === 'unlimited' ? 1_048_576 : Math.min(hard, 1_048_576);
      const info: RuntimeInfo = { rootfs, cgroups: await cgroupInfo(), nofile };
      this.opts.logger?.info('runtime ready', { runtime: 'runc', rootfs, cgroups: info.cgroups.version, memory: info.cgroups.memory, cpu: info.cgroups.cpu, nofile });
      return info;
    })();
    this.initialised.catch(() => (this.initialised = undefined));
    return this.initialised;
  }

  // ---- sandboxes (./sandboxes.ts)

  /**
   * Creates the group's namespace, hosts file, published ports and metadata endpoint. On a group that
   * already exists (a restarted Berth reconciling) it adopts what is there: the forwarder keeps its
   * host ports, and the metadata endpoint is re-opened with the given identityEndpoint.
   */
  createSandbox(spec: SandboxSpec): Promise<Sandbox> {
    return this.sandboxes.createSandbox(spec);
  }

  deleteSandbox(groupId: string): Promise<void> {
    return this.sandboxes.deleteSandbox(groupId);
  }

  sandboxDown(groupId: string, signal: AbortSignal): Promise<SandboxHelperDown[]> {
    return this.sandboxes.sandboxDown(groupId, signal);
  }

  repairSandbox(groupId: string): Promise<Sandbox> {
    return this.sandboxes.repairSandbox(groupId);
  }

  setHostAliases(names: string[]): Promise<void> {
    return this.sandboxes.setHostAliases(names);
  }

  // ---- containers (./bundle.ts, ./tasks.ts)

  create(sandbox: Sandbox, spec: ContainerSpec): Promise<Task> {
    return createContainer({ layout: this.layout, cache: this.cache, unpackLimits: this.unpackLimits, images: this.images, tasks: this.tasks,
      info: () => this.info() }, sandbox, spec);
  }

  start(task: Task): Promise<void> {
    return this.tasks.start(task);
  }

  wait(task: Task): Promise<ExitStatus> {
    return this.tasks.wait(task);
  }

  kill(task: Task, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.tasks.kill(task, signal);
  }

  status(task: Task): Promise<TaskStatus | undefined> {
    return this.tasks.status(task);
  }

  delete(task: Task): Promise<void> {
    return this.tasks.delete(task);
  }

  exec(task: Task, argv: string[], io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; tty?: boolean; signal?: AbortSignal }): Promise<ExecResult> {
    return this.tasks.exec(task, argv, io);
  }

  // ---- images (./image-refs.ts)

  imageReferences(): Promise<Set<string>> {
    return this.images.references();
  }

  async collectGarbage(opts: { graceMs: number; now?: number }): Promise<RuntimeGcReport> {
    await this.info();
    return this.images.collectGarbage(opts);
  }

  async list(): Promise<Array<{ groupId: string; containers: Array<{ name: string; status: TaskStatus; pid?: number }> }>> {
    await this.info();
    const groupsDir = this.layout.groupsDir;
    const byId = new Map((await this.runc.list().catch(() => [] as RuncState[])).map((s) => [s.id, s]));
    const out: Array<{ groupId: string; containers: Array<{ name: string; status: TaskStatus; pid?: number }> }> = [];
    const seen = new Set<string>();
    for (const groupId of (await readdir(groupsDir).catch(() => [] as string[])).sort()) {
      if (!ID.test(groupId)) continue;
      const containers: Array<{ name: string; status: TaskStatus; pid?: number }> = [];
      for (const name of (await readdir(join(groupsDir, groupId, 'containers')).catch(() => [] as string[])).sort()) {
        if (!ID.test(name)) continue;
        const task: Task = { groupId, name, logPath: this.layout.logPath(groupId, name) };
        const status = await this.tasks.status(task);
        if (!status) continue;
        const rec = await this.tasks.record(task);
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
    await this.sandboxes.closeAll();
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
