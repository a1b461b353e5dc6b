// A group's network namespace, kept alive by a bind mount of its nsfs file inside the data directory
// (`unshare --net=<file>`), not in the global /run/netns: Berth's namespaces are its own and go away
// with its data. Loopback is brought up; for a group holding a managed identity the metadata address
// 169.254.169.254/32 is added to the namespace's loopback — inside this namespace only.
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { mountsUnder } from '../rootfs/rootfs.js';

const run = promisify(execFile);

export const IMDS_ADDRESS = '169.254.169.254';

export async function netnsMounted(path: string): Promise<boolean> {
  return (await mountsUnder(path)).includes(path);
}

/** Runs a command inside the namespace (for setup: `ip`, never a long-lived process). */
export async function inNetns(path: string, argv: string[]): Promise<string> {
  return (await run('nsenter', [`--net=${path}`, '--', ...argv])).stdout;
}

export async function createNetns(path: string, opts: { imds: boolean }): Promise<void> {
  if (!(await netnsMounted(path))) {
    await writeFile(path, '', { mode: 0o600 });
    await run('unshare', [`--net=${path}`, 'true']);
  }
  await inNetns(path, ['ip', 'link', 'set', 'lo', 'up']);
  if (opts.imds) {
    const addrs = await inNetns(path, ['ip', '-o', 'addr', 'show', 'dev', 'lo']);
    if (!addrs.includes(`${IMDS_ADDRESS}/32`)) await inNetns(path, ['ip', 'addr', 'add', `${IMDS_ADDRESS}/32`, 'dev', 'lo']);
  }
}

export async function deleteNetns(path: string): Promise<void> {
  if (await netnsMounted(path)) {
    await run('umount', [path]).catch(() => run('umount', ['-l', path]));
  }
  await rm(path, { force: true });
}
