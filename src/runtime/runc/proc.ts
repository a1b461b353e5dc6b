// The runtime's helper processes (container shims, port forwarders, the outbound network stack) are
// detached and outlive a Berth restart, so Berth finds them again by pid and checks that the pid is
// still the process it started — its command line carries marks (a path of the group) that a reused
// pid would not have.
import { readdir, readFile } from 'node:fs/promises';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How a helper process ended, as the group's events say it: `signal SIGKILL`, `exit code 1`. */
export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

/** True when `pid` is alive and its command line contains every one of `marks` (guards against pid reuse). */
export async function aliveWith(pid: number | undefined, ...marks: string[]): Promise<boolean> {
  if (!pid) return false;
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmd === undefined) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (/\) Z /.test(stat)) return false; // a zombie has exited
  const args = cmd.split('\0');
  return marks.every((m) => args.includes(m));
}

/**
 * True while `pid` is in the middle of exiting: its memory (and with it its command line) already
 * released, the process not yet a zombie — it may still hold sockets, namespaces and mounts.
 */
async function exiting(pid: number): Promise<boolean> {
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmd !== '') return false; // gone, or still running (a reused pid has a command line of its own)
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/\) Z /.test(stat);
}

/** Waits up to `ms` until the process `pid` that carried `marks` has exited for good; false if it has not. */
export async function waitGone(pid: number, marks: string[], ms: number): Promise<boolean> {
  const gone = async () => !(await aliveWith(pid, ...marks)) && !(await exiting(pid));
  for (let waited = 0; waited < ms; waited += 50) {
    if (await gone()) return true;
    await sleep(50);
  }
  return gone();
}

/** SIGTERM, then SIGKILL after 5 s, to the process `pid` if it still carries `marks`. */
export async function stopProcess(pid: number, marks: string[]): Promise<void> {
  if (!(await aliveWith(pid, ...marks))) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // gone in between
  }
  if (!(await waitGone(pid, marks, 5000))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await waitGone(pid, marks, 5000);
  }
}

/** Live processes whose command line contains every one of `marks` (a scan of /proc). */
export async function processesWith(...marks: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    if (await aliveWith(Number(p), ...marks)) out.push(Number(p));
  }
  return out;
}

/** Stops every process that carries `marks` (one recorded in a pid file or any stray one): a scan of /proc. */
export async function stopProcessesWith(...marks: string[]): Promise<void> {
  for (const pid of await processesWith(...marks)) await stopProcess(pid, marks);
}
