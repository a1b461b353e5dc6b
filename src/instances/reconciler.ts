// Drives each container group from its desired state (spec + stopped flag) to the actual state through
// the Runtime and the ImagePuller: pull, sandbox, create, start, wait, restart per policy with
// back-off, and ACI's events and instance view on the way. One GroupRunner per running group.
import type { Keychain } from '../keychain/keychain.js';
import type { ImagePuller, PulledImage } from '../pull/types.js';
import { PullError } from '../pull/types.js';
import { pullStatusReporter } from './pull-progress.js';
import type { ContainerSpec, ExitStatus, Runtime, Sandbox, SandboxHelperDown, SandboxSpec, Task } from '../runtime/runtime.js';
import { ImageGoneError } from '../runtime/runtime.js';
import type { Logger } from '../lib/logger.js';
import type { ContainerDef } from './spec.js';
import { lastLines, logSize, readLogTail } from './log-tail.js';
import type { StoredGroup } from './store.js';
import { aciTime, backoffDelay, groupRunState, recordEvent, shouldRestart, type ContainerStatus, type GroupState } from './state.js';

export interface ProvisionResult { ok: boolean; error?: { code: string; message: string } }

export interface ReconcilerOptions {
  runtime: Runtime;
  puller: ImagePuller;
  /** The keychain a group's pulls use (groupKeychain over the group's credentials). */
  keychainFor(group: StoredGroup): Keychain;
  /** The managed-identity endpoint for a group that holds identities; undefined for the others. */
  identityEndpointFor?(group: StoredGroup): SandboxSpec['identityEndpoint'] | undefined;
  /** The host address a group's ports are published on, when it has one of its own. */
  sandboxAddressFor?(group: StoredGroup): string | undefined;
  /** Persists a group's state after every change. */
  persist(groupId: string, state: GroupState): void;
  log: Logger;
  /** Back-off: first delay, cap, and how long a container must run for its back-off to reset. */
  backoff?: { baseMs?: number; maxMs?: number; resetAfterMs?: number };
  /** Back-off of restarting a sandbox's helper process (port forwarder, outbound network) that died again soon after a restart. */
  helperBackoff?: { baseMs?: number; maxMs?: number; resetAfterMs?: number };
  /** Abortable sleep (tests pass one that does not wait). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  if (signal.aborted) return resolve();
  const t = setTimeout(done, ms);
  function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
  signal.addEventListener('abort', done, { once: true });
});

/** Resolves with the promise's value, or undefined once the signal aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); });
  });
}

/** "Port forwarder for 8080/TCP exited (signal SIGKILL)", "Outbound network (slirp4netns) exited". */
function helperText(d: SandboxHelperDown): string {
  const who = d.helper === 'port-forwarder'
    ? `Port forwarder${d.ports?.length ? ` for ${d.ports.map((p) => `${p.port}/${p.protocol}`).join(', ')}` : ' (metadata endpoint)'}`
    : 'Outbound network (slirp4netns)';
  return `${who} exited${d.how ? ` (${d.how})` : ''}`;
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 1000);

/** What halting a runner does to its containers. */
type HaltMode = 'kill' | 'detach';

export class GroupRunner {
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

  private save(): void {
    this.state.state = this.degraded ? 'Failed' : groupRunState(this.state, this.group.spec.restartPolicy);
    this.r.o.persist(this.group.id, this.state);
  }

  private event(c: ContainerStatus | undefined, name: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): void {
    recordEvent(c ? c.events : this.state.events, name, message, type);
    this.save();
  }

  start(): void {
    this.loops = this.main().catch((e) => {
      this.r.o.log.error('container group reconcile failed', { group: this.group.name, error: String(e) });
      this.finishProvisioning({ ok: false, error: { code: 'InternalError', message: errText(e) } });
    });
  }

  private finishProvisioning(r: ProvisionResult): void {
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
    // createSandbox adopts a sandbox that already exists (after a server restart) and re-opens its
    // managed-identity endpoint with the function given here; otherwise it creates one.
    try {
      this.r.o.log.debug('creating sandbox', { group: g.name });
      const identityEndpoint = this.r.o.identityEndpointFor?.(g);
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
      this.event(undefined, 'Failed', message, 'Warning');
      this.finishProvisioning({ ok: false, error: { code: 'ContainerGroupDeploymentFailed', message } });
      return;
    }
    const sandbox = this.state.sandbox!;
    await Promise.all([...g.spec.containers.map((c) => this.runContainer(c, sandbox).catch((e) => {
      this.r.o.log.error('container loop failed', { group: g.name, container: c.name, error: String(e) });
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

  private containerStarted(name: string): void {
    this.started.add(name);
    if (this.started.size === this.group.spec.containers.length) this.finishProvisioning({ ok: true });
  }

  private containerSpec(c: ContainerDef, image: PulledImage): ContainerSpec {
    const env = c.environmentVariables.map((e) => `${e.name}=${e.value ?? e.secureValue ?? ''}`);
    const amounts = { ...c.resources.requests, ...(c.resources.limits ?? {}) };
    return { name: c.name, image, ...(c.command ? { command: c.command } : {}), env,
      ...(amounts.cpu ? { cpu: amounts.cpu } : {}), ...(amounts.memoryInGB ? { memoryBytes: Math.round(amounts.memoryInGB * 1024 ** 3) } : {}) };
  }

  /** One container's life: pull, create, start, wait, and again per the restart policy. */
  private async runContainer(c: ContainerDef, sandbox: Sandbox): Promise<void> {
    const o = this.r.o;
    const signal = this.abort.signal;
    const sleep = o.sleep ?? defaultSleep;
    const { baseMs = 10_000, maxMs = 300_000, resetAfterMs = 600_000 } = o.backoff ?? {};
    const cs = (this.state.containers[c.name] ??= { restartCount: 0, events: [] });
    let image = this.images.get(c.name);
    let failures = 0;
    let repulled = false; // the image data was gone once (garbage collected) and pulled again
    const backOff = async (kind: 'pull' | 'restart', lastError: string, lastOutput = '') => {
      failures += 1;
      const head = kind === 'pull'
        ? `Back-off pulling image "${c.image}"; last error: ${lastError}`
        : `Back-off restarting failed container ${c.name}; last error: ${lastError}`;
      // The same error again folds into one event whose count grows, even when its last output differs
      // from the previous exit's; the message then carries the latest output.
      const prev = cs.events.find((e) => e.name === 'BackOff' && (e.message === head || e.message.startsWith(`${head}; last output: `)));
      if (prev) prev.message = head + lastOutput;
      this.event(cs, 'BackOff', head + lastOutput, 'Warning');
      await sleep(backoffDelay(failures, baseMs, maxMs), signal);
    };

    let adopted = this.adopt.get(c.name);
    let logStart = 0; // where this run's output begins in the container's log (it keeps earlier runs')
    while (!signal.aborted) {
      let task: Task;
      let adoptedStopped = false;
      if (adopted) {
        task = { groupId: this.group.id, name: c.name, logPath: cs.logPath ?? '' };
        if (adopted === 'created') await o.runtime.start(task);
        adoptedStopped = adopted === 'stopped';
        adopted = undefined;
      } else {
        // ---- pull
        if (!image) {
          this.event(cs, 'Pulling', `pulling image "${c.image}"`);
          if (!cs.currentState || cs.currentState.state !== 'Waiting') cs.currentState = { state: 'Waiting', detailStatus: '' };
          try {
            o.log.debug('pulling', { group: this.group.name, container: c.name });
            const progress = pullStatusReporter((detailStatus) => {
              if (cs.currentState?.state !== 'Waiting') return;
              cs.currentState = { state: 'Waiting', detailStatus };
              this.save();
            });
            image = await o.puller.pull(c.image, { keychain: o.keychainFor(this.group), signal, progress });
            o.log.debug('pulled', { group: this.group.name, container: c.name });
          } catch (e) {
            if (signal.aborted) break;
            const why = errText(e);
            cs.currentState = { state: 'Waiting', detailStatus: `ErrImagePull: ${e instanceof PullError ? e.registryMessage : why}` };
            this.event(cs, 'Failed', `Failed to pull image "${c.image}": ${why}`, 'Warning');
            await backOff('pull', why);
            continue;
          }
          if (cs.currentState?.state === 'Waiting') cs.currentState = { state: 'Waiting', detailStatus: '' };
          this.event(cs, 'Pulled', `Successfully pulled image "${c.image}"`);
        }
        // ---- create + start
        try {
          o.log.debug('creating', { group: this.group.name, container: c.name });
          task = await o.runtime.create(sandbox, this.containerSpec(c, image));
          repulled = false;
          o.log.debug('starting', { group: this.group.name, container: c.name });
          cs.logPath = task.logPath;
          logStart = await logSize(task.logPath).catch(() => 0);
          this.event(cs, 'Created', 'Created container');
          await o.runtime.start(task);
        } catch (e) {
          if (signal.aborted) break;
          if (e instanceof ImageGoneError) {
            // The pulled image's blobs were removed since (image garbage collection): pull it again, at
            // once the first time, after the back-off of a failed start when it happens again.
            o.log.info('image data gone, pulling again', { group: this.group.name, container: c.name, error: e.message });
            image = undefined;
            if (!repulled) {
              repulled = true;
              continue;
            }
          }
          const why = errText(e);
          this.event(cs, 'Failed', `Error: failed to start container "${c.name}": ${why}`, 'Warning');
          await o.runtime.delete({ groupId: this.group.id, name: c.name, logPath: cs.logPath ?? '' }).catch(() => undefined);
          const now = aciTime();
          const ended = { state: 'Terminated' as const, startTime: now, exitCode: 128, finishTime: now, detailStatus: `StartError: ${why}` };
          if (!this.started.has(c.name) && !shouldRestart(this.group.spec.restartPolicy, 128)) {
            cs.currentState = ended;
            this.save();
            this.finishProvisioning({ ok: false, error: { code: 'ContainerGroupDeploymentFailed', message: `Container '${c.name}' failed to start: ${why}` } });
            return;
          }
          if (!shouldRestart(this.group.spec.restartPolicy, 128)) { cs.currentState = ended; this.save(); return; }
          cs.previousState = ended;
          cs.restartCount += 1;
          cs.currentState = { state: 'Waiting', detailStatus: 'CrashLoopBackOff: Back-off restarting failed' };
          this.containerStarted(c.name);
          await backOff('restart', why);
          continue;
        }
        o.log.debug('started', { group: this.group.name, container: c.name });
        this.event(cs, 'Started', 'Started container');
        cs.currentState = { state: 'Running', startTime: aciTime(), detailStatus: '' };
        this.save();
      }
      if (cs.currentState?.state !== 'Running') {
        cs.currentState = { state: 'Running', startTime: aciTime(), detailStatus: '' };
        this.save();
      }
      this.tasks.set(c.name, task);
      this.containerStarted(c.name);
      const startedAt = Date.now();

      // ---- wait for the exit (or for the runner to be halted)
      // A container that exited while the server was down: its runtime should still know the exit status;
      // if it cannot say within a few seconds, the exit is recorded as unknown.
      const waited = adoptedStopped
        ? Promise.race([o.runtime.wait(task), new Promise<ExitStatus>((res) => {
          const t: NodeJS.Timeout = setTimeout(() => res({ exitCode: -1, reason: 'Unknown: exited while Berth was not running', finishedAt: new Date() }), 5000);
          t.unref();
        })])
        : o.runtime.wait(task);
      const exit: ExitStatus | undefined = await untilAborted(waited, signal);
      if (!exit) {
        if (this.haltMode === 'kill') await this.killAndRecord(c.name, task, cs);
        break;
      }
      this.tasks.delete(c.name);
      const ended = { state: 'Terminated' as const, ...(cs.currentState?.startTime ? { startTime: cs.currentState.startTime } : {}),
        exitCode: exit.exitCode, finishTime: aciTime(exit.finishedAt), detailStatus: exit.reason };
      await o.runtime.delete(task).catch((e) => o.log.warn('deleting an exited container failed', { group: this.group.name, container: c.name, error: String(e) }));
      if (!shouldRestart(this.group.spec.restartPolicy, exit.exitCode)) {
        cs.currentState = ended;
        this.save();
        return;
      }
      if (Date.now() - startedAt >= resetAfterMs) failures = 0;
      cs.previousState = ended;
      cs.restartCount += 1;
      cs.currentState = { state: 'Waiting', detailStatus: 'CrashLoopBackOff: Back-off restarting failed' };
      this.save();
      await backOff('restart', `exited with code ${exit.exitCode} (${exit.reason})`, exit.exitCode !== 0 ? await this.lastOutput(cs, logStart) : '');
    }
  }

  /** The container's last output lines, for the BackOff event of a failed exit (Kubernetes loses them). */
  private async lastOutput(cs: ContainerStatus, from: number): Promise<string> {
    if (!cs.logPath) return '';
    const text = lastLines(await readLogTail(cs.logPath, 2048, from).catch(() => ''), 3).trim();
    return text ? `; last output: ${text.replace(/\s*\n\s*/g, ' | ').slice(-300)}` : '';
  }

  private async killAndRecord(name: string, task: Task, cs: ContainerStatus): Promise<void> {
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
