// The containers of the runc runtime once their bundle exists: each runs under a tiny detached shim,
// `sh -c '<runc run --keep ...>; echo $? > exit'`, whose stdout/stderr is the container's log file: runc
// passes it straight to the container, so logs and the exit code are written without Berth (a restarted
// Berth reads them), and `--keep` leaves the stopped container — and its memory cgroup, with the
// OOM-kill count — in place until `delete`. start, wait, kill, status, delete and exec work on tasks
// started by an earlier Berth process as well.
import { spawn } from 'node:child_process';
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unmountAll } from '../rootfs/rootfs.js';
import type { ExecResult, ExitStatus, Task, TaskStatus } from '../runtime.js';
import { oomKills } from './host.js';
import type { ImageUse, TaskRecord } from './image-refs.js';
import { exists, nextChange, readJson, replaceFile, type RuntimeLayout } from './layout.js';
import { aliveWith, waitGone } from './proc.js';
import { RuncError, type Runc } from './runc.js';
import { CodedError, type RuntimeErrorCode } from '../../lib/errors.js';

export class StartError extends CodedError<RuntimeErrorCode> {
  constructor(message: string) { super('StartFailed', message, 'StartError'); }
}

const SHIM_NAME = 'berth-shim';
// $1 runc, $2 root, $3 bundle, $4 id. Exit code lands in <bundle>/exit (atomically).
// runc writes <bundle>/pid (atomically) once the container's process runs: start() waits on that.
const SHIM_SCRIPT = '"$1" --root "$2" --log "$3/runc.log" --log-format json run --keep --pid-file "$3/pid" --bundle "$3" "$4" </dev/null; ' +
  'code=$?; echo "$code" > "$3/exit.tmp" && mv -f "$3/exit.tmp" "$3/exit"';

export class Tasks {
  constructor(private readonly layout: RuntimeLayout, private readonly runc: Runc, private readonly images: ImageUse,
    private readonly closed: AbortSignal) {}

  async record(task: Task): Promise<TaskRecord | undefined> {
    return readJson<TaskRecord>(join(this.layout.bundleDir(task), 'task.json'));
  }

  private shimAlive(task: Task, rec: TaskRecord | undefined): Promise<boolean> {
    return aliveWith(rec?.shimPid, SHIM_NAME, this.layout.bundleDir(task), rec?.runcId ?? '-');
  }

  async start(task: Task): Promise<void> {
    const bundle = this.layout.bundleDir(task);
    const rec = await this.record(task);
    if (!rec) throw new Error(`container ${task.name} of group ${task.groupId} does not exist`);
    if (await this.shimAlive(task, rec)) return;
    // A restart of a stopped container: forget the previous run (runc keeps a directory per container
    // it knows; a first start has none, and skips the `runc delete` process).
    if (rec.shimPid || (await exists(join(this.runc.root, rec.runcId)))) await this.runc.delete(rec.runcId);
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
    await replaceFile(join(bundle, 'task.json'), JSON.stringify({ ...rec, shimPid: pid, startedAt: new Date().toISOString() }), 0o600);
    // Started when runc has written the pid file (the process runs), or when it has already exited; a
    // start failure (no such executable, a bad mount) is runc's own error in runc.log. Woken by the
    // shim's files appearing in the bundle; `runc state` every 250 ms is only the fallback (not at
    // once: a process spawned now would only slow down the start it waits for).
    let asked = Date.now();
    for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
      const change = nextChange(bundle, 250);
      if (await exists(join(bundle, 'exit'))) {
        const err = await this.runcError(bundle);
        if (err) {
          await replaceFile(join(bundle, 'status.json'), JSON.stringify({ exitCode: 128, reason: 'StartError', finishedAt: new Date() }));
          throw new StartError(err);
        }
        return;
      }
      // `stopped` without the exit record yet: the shim is about to write it (and runc.log may hold an error).
      if (await exists(join(bundle, 'pid'))) return;
      if (Date.now() - asked >= 250) {
        asked = Date.now();
        const st = await this.runc.state(rec.runcId).catch(() => undefined);
        if (st && (st.status === 'running' || st.status === 'paused')) return;
      }
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
    const bundle = this.layout.bundleDir(task);
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
    await replaceFile(join(bundle, 'status.json'), JSON.stringify(status));
    return status;
  }

  /** Resolves with the exit of the task's current run; works for tasks started by an earlier process. */
  async wait(task: Task): Promise<ExitStatus> {
    const bundle = this.layout.bundleDir(task);
    const closed = this.closed;
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
    await writeFile(join(this.layout.bundleDir(task), 'killed'), signal);
    await this.runc.kill(rec.runcId, signal).catch((e: unknown) => {
      if (!(e instanceof RuncError && (e.code === 'RuncContainerNotRunning' || e.code === 'RuncContainerNotFound'))) throw e;
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
    const bundle = this.layout.bundleDir(task);
    const rec = await this.record(task);
    if (!rec) return undefined;
    if (await exists(join(bundle, 'status.json')) || await exists(join(bundle, 'exit'))) return 'stopped';
    if (await this.shimAlive(task, rec)) return 'running';
    const st = await this.runc.state(rec.runcId).catch(() => undefined);
    if (st) return st.status === 'stopped' ? 'stopped' : 'running';
    return rec.shimPid ? 'stopped' : 'created';
  }

  async delete(task: Task): Promise<void> {
    const bundle = this.layout.bundleDir(task);
    const rec = await this.record(task);
    if (rec) {
      if (await this.shimAlive(task, rec)) {
        await this.runc.kill(rec.runcId, 'KILL').catch(() => undefined);
        const marks = [SHIM_NAME, bundle, rec.runcId];
        if (!(await waitGone(rec.shimPid!, marks, 10_000))) process.kill(rec.shimPid!, 'SIGKILL');
      }
      await this.runc.delete(rec.runcId);
      // Its last use of the image: the grace period of the layers and blobs starts now.
      if (rec.image) await this.images.touch(rec.image);
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
}
