// Process helpers for the benchmark: run a command and time it, find tools and free ports, sample a
// process's resident memory from /proc, and undo everything (children, temp dirs) on any exit path.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command to completion; rejects with its stderr when it exits non-zero. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; redact?: string[]; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const started = performance.now();
    const p = spawn(cmd, args, { env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    p.stdin?.end(opts.input);
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) {
        resolveRun({ stdout, stderr, seconds });
        return;
      }
      let shown = [cmd, ...args].join(' ');
      for (const secret of opts.redact ?? []) shown = shown.split(secret).join('***');
      reject(new Error(`${shown} failed (${signal ?? `exit ${code}`}):\n${stderr.trim() || stdout.trim()}`));
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM, …), or undefined once the process is gone. */
export function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds the process has used so far (/proc/<pid>/stat fields 14 and 15). */
export function procCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; the fields after it start past the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return ticks / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
// sysconf(_SC_CLK_TCK) is 100 on every Linux that Node supports.
const CLOCK_TICKS = 100;

/** Polls VmRSS every `intervalMs` and keeps the maximum seen since the last reset. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peak = 0;
  samples = 0;

  constructor(private readonly pid: number, private readonly intervalMs = 100) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  private sample(): void {
    const kb = procStatusKb(this.pid, 'VmRSS');
    if (kb === undefined) return;
    this.samples++;
    if (kb > this.peak) this.peak = kb;
  }

  /** The peak since start or the previous takePeak(), in kB; starts a new window. */
  takePeak(): number {
    this.sample();
    const p = this.peak;
    this.peak = 0;
    return p;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Keeps the last `limit` characters a child wrote, for error messages. */
export class Tail {
  private text = '';
  constructor(private readonly limit = 16_384) {}
  push(s: string): void {
    this.text = (this.text + s).slice(-this.limit);
  }
  toString(): string {
    return this.text.trim();
  }
}

/** Sends SIGTERM, then SIGKILL if the child has not exited after `graceMs`. */
export async function stopChild(p: ChildProcess, graceMs = 5_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut) {
    p.kill('SIGKILL');
    await exited;
  }
}

/** Everything to undo, newest first: children to stop and directories to remove. */
export class Cleanup {
  private readonly tasks: Array<{ label: string; fn: () => Promise<void> }> = [];

  child(p: ChildProcess, label: string): () => Promise<void> {
    return this.add(label, () => stopChild(p));
  }

  dir(path: string): () => Promise<void> {
    return this.add(`remove ${path}`, () => rm(path, { recursive: true, force: true }));
  }

  /** Registers an undo step; the returned function runs it now (once) and unregisters it. */
  add(label: string, fn: () => Promise<void>): () => Promise<void> {
    const task = { label, fn };
    this.tasks.push(task);
    return async () => {
      const i = this.tasks.indexOf(task);
      if (i < 0) return;
      this.tasks.splice(i, 1);
      await fn();
    };
  }

  async runAll(): Promise<void> {
    while (this.tasks.length) {
      const t = this.tasks.pop()!;
      try {
        await t.fn();
      } catch (e) {
        process.stderr.write(`bench: cleanup step "${t.label}" failed: ${(e as Error).message}\n`);
      }
    }
  }
}
