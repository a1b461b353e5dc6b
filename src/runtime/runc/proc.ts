// The runtime's helper processes (container shims, port forwarders, the outbound network stack) are
// detached and outlive a Berth restart, so Berth finds them again by pid and checks that the pid is
// still the process it started — its command line carries marks (a path of the group) that a reused
// pid would not have.
import { readdir, readFile } from 'node:fs/promises';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

export async function waitGone(pid: number, marks: string[], ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (!(await aliveWith(pid, ...marks))) return true;
    await sleep(50);
  }
  return !(await aliveWith(pid, ...marks));
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
