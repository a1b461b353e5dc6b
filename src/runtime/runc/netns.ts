// A group's network namespace, kept alive by a bind mount of its nsfs file inside the data directory
// (`unshare --net=<file>`), not in the global /run/netns: Berth's namespaces are its own and go away
// with its data. Loopback is brought up.
// For a group holding a managed identity, the metadata address lives in a second namespace of the
// group's own (the "metadata namespace"), joined to the group's by a veth pair with link-local
// addresses that exist only inside these two namespaces: 169.254.169.254 is routed out of the group
// like a real cloud's metadata service, so a container of the group can still listen on 0.0.0.0:80.
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

/** Runs `ip` commands (lines of `ip -batch`) inside the namespace, all in one process. */
export async function ipBatch(path: string, lines: string[]): Promise<void> {
  await withInput(run('nsenter', [`--net=${path}`, '--', 'ip', '-batch', '-']), lines);
}

function withInput(p: ReturnType<typeof run>, lines: string[]): ReturnType<typeof run> {
  p.child.stdin?.end(lines.map((l) => `${l}\n`).join(''));
  return p;
}

/**
 * Creates the namespace at `path` (or keeps the one there) with loopback up and `setup` (more `ip
 * -batch` lines) applied: one process (`unshare … ip` for a new one, `nsenter … ip` for one that exists).
 */
export async function createNetns(path: string, setup: string[] = []): Promise<void> {
  const lines = ['link set lo up', ...setup];
  if (!(await netnsMounted(path))) {
    await writeFile(path, '', { mode: 0o600 });
    await withInput(run('unshare', [`--net=${path}`, 'ip', '-batch', '-']), lines);
    return;
  }
  await ipBatch(path, lines);
}

const GROUP_SIDE = { dev: 'imds0', address: '169.254.169.253' };
const METADATA_SIDE = { dev: 'imds1' };

/** Creates (or keeps) the group's metadata namespace at `mdPath`, linked to the group's namespace. */
export async function createMetadataLink(groupNs: string, mdPath: string): Promise<void> {
  await createNetns(mdPath);
  const links = await inNetns(groupNs, ['ip', '-o', 'link', 'show']);
  if (links.includes(` ${GROUP_SIDE.dev}@`)) return;
  // The path goes as an argument of its own (a data directory may hold spaces); the rest as one batch per side.
  await inNetns(groupNs, ['ip', 'link', 'add', GROUP_SIDE.dev, 'type', 'veth', 'peer', 'name', METADATA_SIDE.dev, 'netns', mdPath]);
  await ipBatch(groupNs, [
    `addr add ${GROUP_SIDE.address}/32 dev ${GROUP_SIDE.dev}`,
    `link set ${GROUP_SIDE.dev} up`,
    `route add ${IMDS_ADDRESS}/32 dev ${GROUP_SIDE.dev} src ${GROUP_SIDE.address}`,
  ]);
  await ipBatch(mdPath, [
    `addr add ${IMDS_ADDRESS}/32 dev ${METADATA_SIDE.dev}`,
    `link set ${METADATA_SIDE.dev} up`,
    `route add ${GROUP_SIDE.address}/32 dev ${METADATA_SIDE.dev}`,
  ]);
}

export async function deleteNetns(path: string): Promise<void> {
  if (await netnsMounted(path)) {
    await run('umount', [path]).catch(() => run('umount', ['-l', path]));
  }
  await rm(path, { force: true });
}
