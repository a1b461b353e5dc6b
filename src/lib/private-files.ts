// Keeps Berth's data private to its owner: the data directory 0700 and the database files 0600,
// whatever mode they were made with (a `mkdir -p` by a script, the process umask).
import { chmod, stat } from 'node:fs/promises';
import type { Logger } from './logger.js';

/** Narrows `path` to `mode` when it grants more (a missing path is left alone). */
export async function makePrivate(path: string, mode: number, log?: Logger): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return;
  const now = st.mode & 0o777;
  if ((now & ~mode) === 0) return;
  await chmod(path, mode);
  log?.info('made private', { path, from: `0${now.toString(8)}`, to: `0${mode.toString(8)}` });
}
