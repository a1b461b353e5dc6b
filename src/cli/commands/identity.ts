// `berth identity ...`: user-assigned managed identities.
import type { Command } from 'commander';
import { leaf, parseTags } from '../command.js';
import { flatten, type ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';

const MI = '/providers/Microsoft.ManagedIdentity/userAssignedIdentities';

function target(c: ArmClient, o: { resourceGroup?: string; name?: string; ids?: string }): string {
  if (o.ids) return o.ids;
  if (!o.resourceGroup || !o.name) throw new CliError('usage error: --ids | --resource-group NAME --name NAME', 2);
  return c.sub(`/resourcegroups/${encodeURIComponent(o.resourceGroup)}${MI}/${encodeURIComponent(o.name)}`);
}

const table = (v: unknown) => (Array.isArray(v) ? v : [v]).map((i: Record<string, unknown>) => ({ Name: i.name, ResourceGroup: i.resourceGroup, Location: i.location, ClientId: i.clientId, PrincipalId: i.principalId }));

export function registerIdentityCommands(program: Command, client: () => ArmClient): void {
  const identity = program.command('identity').description('Manage managed identities.');
  leaf<{ resourceGroup: string; name: string; location?: string; tags?: string[] }>(identity, 'create', 'Create a user-assigned managed identity.',
    (c) => c.requiredOption('-g, --resource-group <group>', 'Name of resource group.').requiredOption('-n, --name <name>', 'The name of the identity resource.')
      .option('-l, --location <location>', 'Location. Defaults to the resource group\'s.').option('--tags <tags...>', 'Space-separated tags: key[=value].'),
    async (o) => {
      const c = client();
      return flatten((await c.request<Record<string, unknown>>('PUT', target(c, o), { ...(o.location ? { location: o.location } : {}), tags: parseTags(o.tags) ?? {} }))!);
    }, { table });
  const show = (c: Command) => c.option('-g, --resource-group <group>', 'Name of resource group.').option('-n, --name <name>', 'The name of the identity resource.').option('--ids <id>', 'The resource id.');
  leaf<{ resourceGroup?: string; name?: string; ids?: string }>(identity, 'show', 'Show a managed identity.', show,
    async (o) => { const c = client(); return flatten((await c.request<Record<string, unknown>>('GET', target(c, o)))!); }, { table });
  leaf<{ resourceGroup?: string }>(identity, 'list', 'List user-assigned managed identities.',
    (c) => c.option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const path = o.resourceGroup ? c.sub(`/resourcegroups/${encodeURIComponent(o.resourceGroup)}${MI}`) : c.sub(MI);
      return (await c.request<{ value: Array<Record<string, unknown>> }>('GET', path))!.value.map(flatten);
    }, { table });
  leaf<{ resourceGroup?: string; name?: string; ids?: string }>(identity, 'delete', 'Delete a managed identity and its role assignments.', show,
    async (o) => { const c = client(); await c.request('DELETE', target(c, o)); return undefined; });
}
