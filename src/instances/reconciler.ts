// Drives each container group from its desired state (spec + stopped flag) to the actual state through
// the Runtime and the ImagePuller: sandbox (while the images are pulled), then one loop per container
// (./container-loop.ts: pull, create, start, wait, restart per policy with back-off), the sandbox's
// helper processes watched, and ACI's events and instance view on the way. One GroupRunner per running group.
import type { Keychain } from '../keychain/keychain.js';
import type { ImagePuller, PulledImage } from '../pull/types.js';
import type { ExitStatus, Runtime, SandboxHelperDown, SandboxSpec, Task } from '../runtime/runtime.js';
import type { Logger } from '../lib/logger.js';
import type { StoredGroup } from './store.js';
import { aciTime, backoffDelay, groupRunState, recordEvent, type ContainerStatus, type GroupState } from './state.js';
import { ContainerLoop, defaultSleep, errText, type LoopHost } from './container-loop.js';

export interface ProvisionResult { ok: boolean; error?: { code: string; message: string } }

export interface ReconcilerOptions {
  runtime: Runtime;
  puller: ImagePuller;
  /** The keychain a group's pulls use (groupKeychain over the group's credentials). */
  keychainFor(group: StoredGroup): Keychain | Promise<Keychain>;
  /** The managed-identity endpoint for a group that holds identities; undefined for the others. */
  identityEndpointFor?(group: StoredGroup): Promise<SandboxSpec['identityEndpoint'] | undefined>;
  /** The host address a group's ports are published on, when it has one of its own. */
  sandboxAddressFor?(group: StoredGroup): string | undefined;
  /**
   * Persists a group's state after every change: takes its snapshot at the call and writes it behind the
   * earlier ones (the runner does not wait; its in-memory state is the live one).
   */
  persist(groupId: string, state: GroupState): void;
  log: Logger;
  /** Back-off: first delay, cap, and how long a container must run for its back-off to reset. */
  backoff?: { baseMs?: number; maxMs?: number; resetAfterMs?: number };
  /** Back-off of restarting a sandbox's helper process (port forwarder, outbound network) that died again soon after a restart. */
  helperBackoff?: { baseMs?: number; maxMs?: number; resetAfterMs?: number };
  /** Abortable sleep (tests pass one that does not wait). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** "Port forwarder for 8080/TCP exited (signal SIGKILL)", "Outbound network (slirp4netns) exited". */
function helperText(d: SandboxHelperDown): string {
  const who = d.helper === 'port-forwarder'
    ? `Port forwarder${d.ports?.length ? ` for ${d.ports.map((p) => `${p.port}/${p.protocol}`).join(', ')}` : ' (metadata endpoint)'}`
    : 'Outbound network (slirp4netns)';
  return `${who} exited${d.how ? ` (${d.how})` : ''}`;
}

/** What halting a runner does to its containers. */
type HaltMode = 'kill' | 'detach';

export class GroupRunner implements LoopHost {
  readonly provisioned: Promise<ProvisionResult>;
  private settle!: (r: ProvisionResult) => void;
  private readonly abort = new AbortController();
  private haltMode: HaltMode = 'kill';
  private readonly tasks = new Map<string, Task>();
  private readonly started = new Set<string>();
  private loops: Promise<void> = Promise.resolve();
  /** A helper process of the sandbox (ports, network) is dead and could not be restarted. */
  private degraded = false;

  constructor(private readonly r: Reconciler, readonly group: StoredGroup, private readonly images: Map<string, PulledImage>,
    private readonly adopt: Map<string, 'running' | 'created' | 'stopped'>) {
    this.provisioned = new Promise((res) => (this.settle = res));
  }

  get state(): GroupState {
    return this.group.state;
  }

  get o(): ReconcilerOptions {
    return this.r.o;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get killOnHalt(): boolean {
    return this.haltMode === 'kill';
  }

  save(): void {
    this.state.state = this.degraded ? 'Failed' : groupRunState(this.state, this.group.spec.restartPolicy);
    this.r.o.persist(this.group.id, this.state);
  }

  event(c: ContainerStatus | undefined, name: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): void {
    recordEvent(c ? c.events : this.state.events, name, message, type);
    this.save();
  }

  start(): void {
    this.loops = this.main().catch((e) => {
      this.r.o.log.error('container group reconcile failed', { group: this.group.name, error: String(e) });
      this.finishProvisioning({ ok: false, error: { code: 'InternalError', message: errText(e) } });
    });
  }

  finishProvisioning(r: ProvisionResult): void {
    if (this.state.provisioningState === 'Pending' || this.state.provisioningState === 'Creating') {
      this.state.provisioningState = r.ok ? 'Succeeded' : 'Failed';
      this.save();
    }
    this.settle(r);
  }

  private async main(): Promise<void> {
    const { runtime } = this.r.o;
    const g = this.group;
    if (this.state.provisioningState === 'Pending') {
      this.state.provisioningState = 'Creating';
      this.save();
    }
    // The images are pulled while the sandbox is made (neither needs the other).
    const loops = g.spec.containers.map((c) => new ContainerLoop(this, c, this.images.get(c.name), this.adopt.get(c.name)));
    for (const l of loops) l.prefetch();
    // createSandbox adopts a sandbox that already exists (after a server restart) and re-opens its
    // managed-identity endpoint with the function given here; otherwise it creates one.
    try {
      this.r.o.log.debug('creating sandbox', { group: g.name });
      const identityEndpoint = await this.r.o.identityEndpointFor?.(g);
      const address = this.r.o.sandboxAddressFor?.(g);
      const { restarted, ...sandbox } = await runtime.createSandbox({ groupId: g.id, ports: g.spec.ipAddress?.ports ?? [],
        ...(address ? { address } : {}), ...(identityEndpoint ? { identityEndpoint } : {}) });
      this.state.sandbox = sandbox;
      this.r.o.log.debug('sandbox ready', { group: g.name });
      // Found dead when the group was adopted (after a server restart) and started again.
      for (const d of restarted ?? []) recordEvent(this.state.events, 'Restarted', `${helperText(d)}; restarted`, 'Warning');
      this.save();
    } catch (e) {
      const message = `Creating the group's sandbox failed: ${errText(e)}`;
      for (const l of loops) l.cancelPrefetch();
      this.event(undefined, 'Failed', message, 'Warning');
      this.finishProvisioning({ ok: false, error: { code: 'ContainerGroupDeploymentFailed', message } });
      return;
    }
    const sandbox = this.state.sandbox!;
    await Promise.all([...loops.map((l, i) => l.run(sandbox).catch((e) => {
      this.r.o.log.error('container loop failed', { group: g.name, container: g.spec.containers[i]!.name, error: String(e) });
    })), this.superviseSandbox().catch((e) => {
      this.r.o.log.error('watching the group\'s sandbox failed', { group: g.name, error: String(e) });
    })]);
  }

  /**
   * Watches the sandbox's helper processes (port forwarder, outbound network) while the group runs and
   * restarts a dead one, with an event on the group. One that dies again soon after its restart waits
   * out a growing back-off first; while a restart fails the group is Failed (and tried again).
   */
  private async superviseSandbox(): Promise<void> {
    const { runtime, log } = this.r.o;
    if (!runtime.sandboxDown || !runtime.repairSandbox) return;
    const signal = this.abort.signal;
    const sleep = this.r.o.sleep ?? defaultSleep;
    const { baseMs = 1000, maxMs = 30_000, resetAfterMs = 60_000 } = this.r.o.helperBackoff ?? {};
    let failures = 0;
    let lastRestart = 0;
    while (!signal.aborted) {
      const down = await runtime.sandboxDown(this.group.id, signal);
      if (signal.aborted || down.length === 0) return;
      if (Date.now() - lastRestart >= resetAfterMs) failures = 0;
      const what = down.map(helperText).join(' and ');
      if (failures > 0) await sleep(backoffDelay(failures, baseMs, maxMs), signal);
      if (signal.aborted) return;
      try {
        const before = this.state.sandbox?.hostPorts ?? {};
        const sandbox = await runtime.repairSandbox(this.group.id);
        lastRestart = Date.now();
        failures += 1;
        const moved = Object.entries(sandbox.hostPorts).filter(([p, h]) => before[Number(p)] !== undefined && before[Number(p)] !== h)
          .map(([p, h]) => `${p} now on host port ${h} (${before[Number(p)]} is taken)`);
        this.state.sandbox = sandbox;
        this.degraded = false;
        log.warn('restarted a helper process of a container group', { group: this.group.name, helper: what });
        this.event(undefined, 'Restarted', `${what}; restarted${moved.length ? `; ${moved.join(', ')}` : ''}`, 'Warning');
      } catch (e) {
        failures += 1;
        lastRestart = Date.now();
        this.degraded = true;
        log.error('restarting a helper process of a container group failed', { group: this.group.name, helper: what, error: errText(e) });
        this.event(undefined, 'Failed', `${what}; restarting it failed: ${errText(e)}; trying again in ${Math.round(backoffDelay(failures, baseMs, maxMs) / 1000)} s`, 'Warning');
      }
    }
  }

  containerStarted(name: string): void {
    this.started.add(name);
    if (this.started.size === this.group.spec.containers.length) this.finishProvisioning({ ok: true });
  }

  hasStarted(name: string): boolean {
    return this.started.has(name);
  }

  setTask(name: string, task: Task | undefined): void {
    if (task) this.tasks.set(name, task);
    else this.tasks.delete(name);
  }

  async killAndRecord(name: string, task: Task, cs: ContainerStatus): Promise<void> {
    const o = this.r.o;
    this.event(cs, 'Killing', `Killing container with id ${name}`);
    try {
      await o.runtime.kill(task, 'SIGTERM');
      const exit = await Promise.race([o.runtime.wait(task), new Promise<undefined>((res) => { const t: NodeJS.Timeout = setTimeout(() => res(undefined), 10_000); t.unref(); })]);
      if (!exit) await o.runtime.kill(task, 'SIGKILL');
      cs.currentState = { state: 'Terminated', ...(cs.currentState?.startTime ? { startTime: cs.currentState.startTime } : {}),
        exitCode: exit?.exitCode ?? 137, finishTime: aciTime(exit?.finishedAt), detailStatus: exit?.reason ?? 'Killed' };
      await o.runtime.delete(task);
    } catch (e) {
      o.log.warn('killing a container failed', { group: this.group.name, container: name, error: String(e) });
    }
    this.tasks.delete(name);
    this.save();
  }

  /** Stops the loops. `kill`: the containers are killed (stop/restart/delete); `detach`: left running (server shutdown). */
  async halt(mode: HaltMode): Promise<void> {
    this.haltMode = mode;
    this.abort.abort();
    await this.loops;
    this.settle({ ok: false, error: { code: 'Canceled', message: 'The operation was canceled: the group was stopped or deleted.' } });
  }

  /** The live task of a container, for exec. */
  task(name: string): Task | undefined {
    return this.tasks.get(name);
  }
}

export class Reconciler {
  private readonly runners = new Map<string, GroupRunner>();

  constructor(readonly o: ReconcilerOptions) {}

  runner(groupId: string): GroupRunner | undefined {
    return this.runners.get(groupId);
  }

  /** Starts driving a group (already stored). `images`: images pulled while the create was checked. */
  run(group: StoredGroup, images = new Map<string, PulledImage>(), adopt = new Map<string, 'running' | 'created' | 'stopped'>()): GroupRunner {
    const existing = this.runners.get(group.id);
    if (existing) return existing;
    const r = new GroupRunner(this, group, images, adopt);
    this.runners.set(group.id, r);
    r.start();
    return r;
  }

  /** Halts a group's runner: kills its containers (they show Killing events) and tears down its sandbox when asked. */
  async halt(group: StoredGroup, opts: { deleteSandbox: boolean }): Promise<void> {
    const r = this.runners.get(group.id);
    this.runners.delete(group.id);
    if (r) await r.halt('kill');
    if (opts.deleteSandbox) {
      await this.o.runtime.deleteSandbox(group.id);
      if (r) delete r.state.sandbox;
      delete group.state.sandbox;
    }
  }

  /**
   * After a server start: adopts what the runtime still runs for stored groups, restarts the rest per
   * policy, and removes sandboxes no stored group owns.
   */
  async recover(groups: StoredGroup[]): Promise<void> {
    const actual = await this.o.runtime.list();
    const known = new Set(groups.map((g) => g.id));
    for (const a of actual) {
      if (!known.has(a.groupId)) {
        this.o.log.info('removing an orphaned container sandbox', { groupId: a.groupId });
        await this.o.runtime.deleteSandbox(a.groupId).catch((e) => this.o.log.error('removing an orphaned sandbox failed', { groupId: a.groupId, error: String(e) }));
      }
    }
    for (const g of groups) {
      const live = actual.find((a) => a.groupId === g.id);
      if (g.state.stopped) {
        if (live) await this.o.runtime.deleteSandbox(g.id).catch(() => undefined);
        continue;
      }
      const finished = Object.values(g.state.containers).length === g.spec.containers.length &&
        Object.values(g.state.containers).every((c) => c.currentState?.state === 'Terminated');
      // A group that finished for good keeps its sandbox (its containers' logs) until it is deleted.
      if (finished && (!live || live.containers.every((c) => c.status === 'stopped'))) continue;
      const adopt = new Map<string, 'running' | 'created' | 'stopped'>();
      if (live && g.state.sandbox) for (const c of live.containers) adopt.set(c.name, c.status);
      if (!live || !g.state.sandbox || adopt.size === 0) {
        if (live) await this.o.runtime.deleteSandbox(g.id).catch(() => undefined);
        delete g.state.sandbox;
      }
      // Containers that finished for good stay finished; the rest run again.
      const runnable = { ...g, spec: { ...g.spec, containers: g.spec.containers.filter((c) => adopt.has(c.name) || g.state.containers[c.name]?.currentState?.state !== 'Terminated') } };
      if (runnable.spec.containers.length === 0) continue;
      this.run(runnable, new Map(), adopt);
    }
  }

  /** Server shutdown: stop watching, leave the containers running for the next start to adopt. */
  async detachAll(): Promise<void> {
    const all = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(all.map((r) => r.halt('detach')));
  }
}
