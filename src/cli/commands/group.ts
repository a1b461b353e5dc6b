import type { Command } from 'commander';
import { leaf, parseTags } from '../command.js';
import type { ArmClient } from '../arm-client.js';

export function registerGroupCommands(program: Command, client: () => ArmClient): void {
  const group = program.command('group').description('Manage resource groups.');
  const path = (c: ArmClient, name: string) => c.sub(`/resourcegroups/${encodeURIComponent(name)}`);
  leaf<{ name: string; location: string; tags?: string[] }>(group, 'create', 'Create a new resource group.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the new resource group.').requiredOption('-l, --location <location>', 'Location, e.g. westus.')
      .option('--tags <tags...>', 'Space-separated tags: key[=value].'),
    async (o) => {
      const c = client();
      return c.request('PUT', path(c, o.name), { location: o.location, tags: parseTags(o.tags) ?? {} });
    });
  leaf<{ name: string }>(group, 'show', 'Get a resource group.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the resource group.'),
    async (o) => { const c = client(); return c.request('GET', path(c, o.name)); });
  leaf(group, 'list', 'List resource groups.', (c) => c,
    async () => { const c = client(); return (await c.request<{ value: unknown[] }>('GET', c.sub('/resourcegroups')))!.value; });
  leaf<{ name: string; yes?: boolean }>(group, 'delete', 'Delete a resource group and everything in it.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the resource group.').option('-y, --yes', 'Do not prompt for confirmation.').option('--no-wait', 'Do not wait.'),
    async (o) => { const c = client(); await c.request('DELETE', path(c, o.name)); return undefined; });
}
