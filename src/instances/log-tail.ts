// Reading the end of a container's log file: the logs API (ACI shows up to 4 MB) and the last lines a
// BackOff event quotes after a failed exit.
import { open, stat } from 'node:fs/promises';

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
