// One container's life inside a group runner, as named steps: pull its image, create and start it,
// wait for its exit, and again per the group's restart policy with back-off; ACI's events and instance
// view on the way. The runner (./reconciler.ts) owns the group's state; a loop changes only its
// container's part of it.
import type { PulledImage } from '../pull/types.js';
import { PullError } from '../pull/types.js';
import { ImageGoneError, type ContainerSpec, type ExitStatus, type Runtime, type Sandbox, type Task } from '../runtime/runtime.js';
import type { Logger } from '../lib/logger.js';
import type { Keychain } from '../keychain/keychain.js';
import type { ImagePuller } from '../pull/types.js';
import { pullStatusReporter } from './pull-progress.js';
import type { ContainerDef } from './spec.js';
import { lastLines, logSize, readLogTail } from './log-tail.js';
import type { StoredGroup } from './store.js';
import { aciTime, backoffDelay, shouldRestart, type ContainerStatus } from './state.js';
import type { ProvisionResult } from './reconciler.js';

/** What a container loop needs of its group runner. */
export interface LoopHost {
  readonly group: StoredGroup;
  readonly o: { runtime: Runtime; puller: ImagePuller; log: Logger; keychainFor(group: StoredGroup): Keychain | Promise<Keychain>;
    backoff?: { baseMs?: number; maxMs?: number; resetAfterMs?: number }; sleep?: (ms: number, signal: AbortSignal) => Promise<void> };
  readonly signal: AbortSignal;
  readonly killOnHalt: boolean;
  save(): void;
  event(c: ContainerStatus | undefined, name: string, message: string, type?: 'Normal' | 'Warning'): void;
  /** The container runs (or has failed past its first start): provisioning ends once every container has. */
  containerStarted(name: string): void;
  hasStarted(name: string): boolean;
  finishProvisioning(r: ProvisionResult): void;
  setTask(name: string, task: Task | undefined): void;
  killAndRecord(name: string, task: Task, cs: ContainerStatus): Promise<void>;
}

export const defaultSleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
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

export const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 1000);

/** How a step ended: go on (`next`), go round the loop again, or leave it (`stop`: the container is done; `aborted`: the runner halts). */
type Next = 'next' | 'again' | 'stop' | 'aborted';

export class ContainerLoop {
  private readonly cs: ContainerStatus;
  private failures = 0;
  /** The image data was gone once (garbage collected) and pulled again. */
  private repulled = false;
  /** Where this run's output begins in the container's log (it keeps earlier runs'). */
  private logStart = 0;
  /** A pull started before the sandbox was ready (./reconciler.ts starts both at once). */
  private early: Promise<PulledImage | Error> | undefined;
  private readonly earlyAbort = new AbortController();

  constructor(private readonly h: LoopHost, private readonly c: ContainerDef, private image: PulledImage | undefined,
    private adopted: 'running' | 'created' | 'stopped' | undefined) {
    this.cs = (h.group.state.containers[c.name] ??= { restartCount: 0, events: [] });
  }

  private get log() {
    return this.h.o.log;
  }

  /** Starts the image's pull now, while the group's sandbox is made; run() takes its result. */
  prefetch(): void {
    if (this.image || this.adopted || this.early) return;
    this.early = this.pullNow(AbortSignal.any([this.h.signal, this.earlyAbort.signal]))
      .then((i) => i, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  }

  /** The group will not run (its sandbox failed): an early pull stops. */
  cancelPrefetch(): void {
    this.earlyAbort.abort();
  }

  /** The container's life: pull, create, start, wait, and again per the restart policy. */
  async run(sandbox: Sandbox): Promise<void> {
    while (!this.h.signal.aborted) {
      let task: Task;
      let adoptedStopped = false;
      if (this.adopted) {
        task = { groupId: this.h.group.id, name: this.c.name, logPath: this.cs.logPath ?? '' };
        if (this.adopted === 'created') await this.h.o.runtime.start(task);
        adoptedStopped = this.adopted === 'stopped';
        this.adopted = undefined;
      } else {
        if (!this.image) {
          const pulled = await this.pull();
          if (pulled === 'aborted') break;
          if (pulled === 'again') continue;
        }
        const started = await this.createAndStart(sandbox);
        if (started === 'aborted') break;
        if (started === 'stop') return;
        if (started === 'again' || started === 'next') continue;
        task = started;
      }
      this.markRunning();
      this.h.setTask(this.c.name, task);
      this.h.containerStarted(this.c.name);
      const startedAt = Date.now();
      const exit = await this.waitForExit(task, adoptedStopped);
      if (!exit) {
        if (this.h.killOnHalt) await this.h.killAndRecord(this.c.name, task, this.cs);
        break;
      }
      if ((await this.exited(task, exit, startedAt)) === 'stop') return;
    }
  }

  // ---- pull

  private async pullNow(signal = this.h.signal): Promise<PulledImage> {
    const { o, group } = this.h;
    const cs = this.cs;
    this.h.event(cs, 'Pulling', `pulling image "${this.c.image}"`);
    if (!cs.currentState || cs.currentState.state !== 'Waiting') cs.currentState = { state: 'Waiting', detailStatus: '' };
    this.log.debug('pulling', { group: group.name, container: this.c.name });
    const progress = pullStatusReporter((detailStatus) => {
      if (cs.currentState?.state !== 'Waiting') return;
      cs.currentState = { state: 'Waiting', detailStatus };
      this.h.save();
    });
    return o.puller.pull(this.c.image, { keychain: await o.keychainFor(group), signal, progress });
  }

  /** Pulls the image (or takes the early pull's result); a failure is a Failed event and a back-off. */
  private async pull(): Promise<Next> {
    const cs = this.cs;
    try {
      const early = this.early;
      this.early = undefined;
      const got = early ? await early : await this.pullNow();
      if (got instanceof Error) throw got;
      this.image = got;
      this.log.debug('pulled', { group: this.h.group.name, container: this.c.name });
    } catch (e) {
      if (this.h.signal.aborted) return 'aborted';
      const why = errText(e);
      cs.currentState = { state: 'Waiting', detailStatus: `ErrImagePull: ${e instanceof PullError ? e.registryMessage : why}` };
      this.h.event(cs, 'Failed', `Failed to pull image "${this.c.image}": ${why}`, 'Warning');
      // The create checked access but did not download: a download that fails for good (a corrupt
      // layer, a full disk) fails the deployment, so its operation ends; the pull is still retried.
      if (!this.h.hasStarted(this.c.name) && e instanceof PullError && !e.opts.temporary) {
        this.h.finishProvisioning({ ok: false, error: { code: 'ContainerGroupDeploymentFailed', message: `Container '${this.c.name}': failed to pull image "${this.c.image}": ${why}` } });
      }
      await this.backOff('pull', why);
      return 'again';
    }
    if (cs.currentState?.state === 'Waiting') cs.currentState = { state: 'Waiting', detailStatus: '' };
    this.h.event(cs, 'Pulled', `Successfully pulled image "${this.c.image}"`);
    return 'next';
  }

  // ---- create + start

  private spec(image: PulledImage): ContainerSpec {
    const c = this.c;
    const env = c.environmentVariables.map((e) => `${e.name}=${e.value ?? e.secureValue ?? ''}`);
    const amounts = { ...c.resources.requests, ...(c.resources.limits ?? {}) };
    return { name: c.name, image, ...(c.command ? { command: c.command } : {}), env,
      ...(amounts.cpu ? { cpu: amounts.cpu } : {}), ...(amounts.memoryInGB ? { memoryBytes: Math.round(amounts.memoryInGB * 1024 ** 3) } : {}) };
  }

  /** Creates and starts the container: its task, or what the loop does after a failed start. */
  private async createAndStart(sandbox: Sandbox): Promise<Task | Next> {
    const { o, group } = this.h;
    const cs = this.cs;
    let task: Task;
    try {
      this.log.debug('creating', { group: group.name, container: this.c.name });
      task = await o.runtime.create(sandbox, this.spec(this.image!));
      this.repulled = false;
      this.log.debug('starting', { group: group.name, container: this.c.name });
      cs.logPath = task.logPath;
      this.logStart = await logSize(task.logPath).catch(() => 0);
      this.h.event(cs, 'Created', 'Created container');
      await o.runtime.start(task);
    } catch (e) {
      return this.startFailed(e);
    }
    this.log.debug('started', { group: group.name, container: this.c.name });
    this.h.event(cs, 'Started', 'Started container');
    cs.currentState = { state: 'Running', startTime: aciTime(), detailStatus: '' };
    this.h.save();
    return task;
  }

  private async startFailed(e: unknown): Promise<Next> {
    const { o, group, signal } = this.h;
    const cs = this.cs;
    if (signal.aborted) return 'aborted';
    if (e instanceof ImageGoneError) {
      // The pulled image's blobs were removed since (image garbage collection): pull it again, at
      // once the first time, after the back-off of a failed start when it happens again.
      this.log.info('image data gone, pulling again', { group: group.name, container: this.c.name, error: e.message });
      this.image = undefined;
      if (!this.repulled) {
        this.repulled = true;
        return 'again';
      }
    }
    const why = errText(e);
    this.h.event(cs, 'Failed', `Error: failed to start container "${this.c.name}": ${why}`, 'Warning');
    await o.runtime.delete({ groupId: group.id, name: this.c.name, logPath: cs.logPath ?? '' }).catch(() => undefined);
    const now = aciTime();
    const ended = { state: 'Terminated' as const, startTime: now, exitCode: 128, finishTime: now, detailStatus: `StartError: ${why}` };
    if (!this.h.hasStarted(this.c.name) && !shouldRestart(group.spec.restartPolicy, 128)) {
      cs.currentState = ended;
      this.h.save();
      this.h.finishProvisioning({ ok: false, error: { code: 'ContainerGroupDeploymentFailed', message: `Container '${this.c.name}' failed to start: ${why}` } });
      return 'stop';
    }
    if (!shouldRestart(group.spec.restartPolicy, 128)) { cs.currentState = ended; this.h.save(); return 'stop'; }
    cs.previousState = ended;
    cs.restartCount += 1;
    cs.currentState = { state: 'Waiting', detailStatus: 'CrashLoopBackOff: Back-off restarting failed' };
    this.h.containerStarted(this.c.name);
    await this.backOff('restart', why);
    return 'again';
  }

  private markRunning(): void {
    if (this.cs.currentState?.state !== 'Running') {
      this.cs.currentState = { state: 'Running', startTime: aciTime(), detailStatus: '' };
      this.h.save();
    }
  }

  // ---- wait + exit

  /**
   * The exit of the container's run, or undefined when the runner is halted first. A container that
   * exited while the server was down: its runtime should still know the exit status; if it cannot say
   * within a few seconds, the exit is recorded as unknown.
   */
  private waitForExit(task: Task, adoptedStopped: boolean): Promise<ExitStatus | undefined> {
    const { runtime } = this.h.o;
    const waited = adoptedStopped
      ? Promise.race([runtime.wait(task), new Promise<ExitStatus>((res) => {
        const t: NodeJS.Timeout = setTimeout(() => res({ exitCode: -1, reason: 'Unknown: exited while Berth was not running', finishedAt: new Date() }), 5000);
        t.unref();
      })])
      : runtime.wait(task);
    return untilAborted(waited, this.h.signal);
  }

  /** Records the exit and removes the container; `again` when the restart policy runs it again (after the back-off). */
  private async exited(task: Task, exit: ExitStatus, startedAt: number): Promise<Next> {
    const { o, group } = this.h;
    const cs = this.cs;
    const { resetAfterMs = 600_000 } = o.backoff ?? {};
    this.h.setTask(this.c.name, undefined);
    const ended = { state: 'Terminated' as const, ...(cs.currentState?.startTime ? { startTime: cs.currentState.startTime } : {}),
      exitCode: exit.exitCode, finishTime: aciTime(exit.finishedAt), detailStatus: exit.reason };
    await o.runtime.delete(task).catch((e) => this.log.warn('deleting an exited container failed', { group: group.name, container: this.c.name, error: String(e) }));
    if (!shouldRestart(group.spec.restartPolicy, exit.exitCode)) {
      cs.currentState = ended;
      this.h.save();
      return 'stop';
    }
    if (Date.now() - startedAt >= resetAfterMs) this.failures = 0;
    cs.previousState = ended;
    cs.restartCount += 1;
    cs.currentState = { state: 'Waiting', detailStatus: 'CrashLoopBackOff: Back-off restarting failed' };
    this.h.save();
    await this.backOff('restart', `exited with code ${exit.exitCode} (${exit.reason})`, exit.exitCode !== 0 ? await this.lastOutput() : '');
    return 'again';
  }

  // ---- back-off

  private async backOff(kind: 'pull' | 'restart', lastError: string, lastOutput = ''): Promise<void> {
    const { o } = this.h;
    const cs = this.cs;
    const { baseMs = 10_000, maxMs = 300_000 } = o.backoff ?? {};
    this.failures += 1;
    const head = kind === 'pull'
      ? `Back-off pulling image "${this.c.image}"; last error: ${lastError}`
      : `Back-off restarting failed container ${this.c.name}; last error: ${lastError}`;
    // The same error again folds into one event whose count grows, even when its last output differs
    // from the previous exit's; the message then carries the latest output.
    const prev = cs.events.find((e) => e.name === 'BackOff' && (e.message === head || e.message.startsWith(`${head}; last output: `)));
    if (prev) prev.message = head + lastOutput;
    this.h.event(cs, 'BackOff', head + lastOutput, 'Warning');
    await (o.sleep ?? defaultSleep)(backoffDelay(this.failures, baseMs, maxMs), this.h.signal);
  }

  /** The container's last output lines, for the BackOff event of a failed exit (Kubernetes loses them). */
  private async lastOutput(): Promise<string> {
    if (!this.cs.logPath) return '';
    const text = lastLines(await readLogTail(this.cs.logPath, 2048, this.logStart).catch(() => ''), 3).trim();
    return text ? `; last output: ${text.replace(/\s*\n\s*/g, ' | ').slice(-300)}` : '';
  }
}
