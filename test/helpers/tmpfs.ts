// A small tmpfs for tests of a full disk (root only): mounted at a fresh temporary directory,
// unmounted and removed by the caller's cleanup.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A tmpfs of `size` at a fresh directory, or the reason it cannot be mounted. */
export async function mountTmpfs(size: string): Promise<{ dir: string; unmount(): Promise<void> } | string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs (${String((e as { stderr?: Buffer }).stderr ?? e).trim()}); run the tests as root`;
  }
  return {
    dir,
    unmount: async () => {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
