// Reading the end of a container's log file: the logs API (ACI shows up to 4 MB), the last lines a
// BackOff event quotes after a failed exit, and following it as it grows (attach).
import { createReadStream, watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { once } from 'node:events';

/** The size of a log file (0 when there is none yet): where the next run's output starts. */
export async function logSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

/** The last `maxBytes` of the file as UTF-8, none before byte `from` ('' when there is no file yet). */
export async function readLogTail(path: string, maxBytes: number, from = 0): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
  try {
    const { size } = await fh.stat();
    const len = Math.max(0, Math.min(size - from, maxBytes));
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/** The last `n` lines of `text`, keeping its final newline. */
export function lastLines(text: string, n: number): string {
  const endsWithNl = text.endsWith('\n');
  const lines = text.split('\n');
  if (endsWithNl) lines.pop();
  return lines.slice(Math.max(0, lines.length - n)).join('\n') + (endsWithNl && lines.length ? '\n' : '');
}

/** How often a follower looks whether the container still runs when its log does not change. */
const FOLLOW_CHECK_MS = 2_000;

/**
 * Copies what is appended to the log file after byte `from` into `out` (respecting its back-pressure),
 * woken by changes of the file, until `running()` says the container stopped (asked after every copy
 * and every two seconds) or `signal` aborts. Resolves with the offset it read up to.
 */
export async function followLog(path: string, from: number, out: NodeJS.WritableStream, running: () => boolean | Promise<boolean>, signal: AbortSignal): Promise<number> {
  let offset = from;
  let wake = () => {};
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path, () => wake());
    watcher.on('error', () => undefined);
  } catch {
    // no file yet: the timer alone wakes the follower
  }
  const timer = setInterval(() => wake(), FOLLOW_CHECK_MS);
  const aborted = () => wake();
  signal.addEventListener('abort', aborted);
  try {
    for (;;) {
      const changed = new Promise<void>((r) => (wake = r));
      const size = await logSize(path);
      if (size < offset) offset = 0;
      if (size > offset) {
        for await (const chunk of createReadStream(path, { start: offset, end: size - 1 })) {
          if (signal.aborted) return offset;
          if (!out.write(chunk as Buffer)) await once(out, 'drain');
        }
        offset = size;
      }
      if (signal.aborted || !(await running())) return offset;
      await changed;
    }
  } finally {
    watcher?.close();
    clearInterval(timer);
    signal.removeEventListener('abort', aborted);
  }
}
