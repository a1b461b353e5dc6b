// At start-up: the helper processes (port forwarders, outbound network stacks) of groups whose group
// directory is gone — a crash in the middle of a delete — are stopped, so that none holds a port or a
// namespace. They are found by their command line, which names the group's directory.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/logger.js';
import { exists } from './layout.js';
import { STACK_MARK } from './outbound.js';
import { stopProcess } from './proc.js';
import { FORWARDER_SCRIPT } from './publish.js';

export async function sweepOrphanHelpers(groupsDir: string, logger?: Logger): Promise<void> {
  const groups = groupsDir + '/';
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const args = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const mark = args.find((a) => a.startsWith(groups) && (a.endsWith('/forwarder.json') || a.endsWith('/netns')));
    if (!mark || !(args.includes(FORWARDER_SCRIPT) || args.includes(STACK_MARK))) continue;
    const groupDir = mark.slice(0, mark.lastIndexOf('/'));
    if (await exists(join(groupDir, 'sandbox.json'))) continue;
    logger?.info('stopping a helper process of a removed group', { pid: Number(name) });
    await stopProcess(Number(name), [mark]).catch(() => undefined);
  }
}
