// `berth role assignment|definition ...`: RBAC over Berth's resources, as az role does.
import type { Command } from 'commander';
import { leaf } from '../command.js';
import { flatten, type ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import { assignRole } from './ad.js';

type Assignment = Record<string, unknown> & { id: string; principalId: string; roleDefinitionId: string; scope: string };
type RoleDef = Record<string, unknown> & { id: string; name: string; roleName: string };

async function roleDefinitions(c: ArmClient): Promise<RoleDef[]> {
  const list = (await c.request<{ value: Array<Record<string, unknown> & { type: string; properties: { type: string } }> }>('GET', c.sub('/providers/Microsoft.Authorization/roleDefinitions')))!.value;
  // az shows the ARM type as `type` and the role's own type (BuiltInRole) as `roleType`.
  return list.map((d) => ({ ...flatten(d), type: d.type, roleType: d.properties.type })) as unknown as RoleDef[];
}

async function resolveAssignee(c: ArmClient, assignee: string): Promise<{ id: string; type: string; name: string }> {
  const sp = await c.request<{ id: string; servicePrincipalType: string; displayName: string; appId: string }>('GET', `/v1.0/servicePrincipals/${encodeURIComponent(assignee)}`, undefined, { notFoundOk: true });
  if (!sp) throw new CliError(`Cannot find user or service principal in graph database for '${assignee}'. If the assignee is an appId, make sure the corresponding service principal is created with 'berth ad sp create --id ${assignee}'.`);
  return { id: sp.id, type: 'ServicePrincipal', name: sp.appId };
}

function findRoleDef(defs: RoleDef[], role: string): RoleDef {
  const key = role.split('/').pop()!.toLowerCase();
  const r = defs.find((d) => d.roleName.toLowerCase() === role.toLowerCase() || d.name === key);
  if (!r) throw new CliError(`Role '${role}' doesn't exist.`);
  return r;
}

const PRINCIPAL_TYPES = ['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device'];

const table = (v: unknown) => (v as Array<Record<string, unknown>>).map((a) => ({ Principal: a.principalName ?? a.principalId, Role: a.roleDefinitionName, Scope: a.scope }));

export function registerRoleCommands(program: Command, client: () => ArmClient): void {
  const role = program.command('role').description('Manage role assignments and role definitions.');
  const assignment = role.command('assignment').description('Manage role assignments.');

  leaf<{ assignee?: string; assigneeObjectId?: string; assigneePrincipalType?: string; role: string; scope?: string; description?: string }>(assignment, 'create', 'Create a new role assignment for a principal.',
    (c) => c.option('--assignee <id>', 'appId, object id, or a managed identity\'s principal or client id.')
      .option('--assignee-object-id <id>', 'Object id of the principal (skips the directory lookup).')
      .option('--assignee-principal-type <type>', 'Principal type with --assignee-object-id: ServicePrincipal, User, Group, ForeignGroup, Device.')
      .requiredOption('--role <role>', 'Role name or id, e.g. AcrPull (case-insensitive).')
      .option('--scope <scope>', 'Scope: /subscriptions/<id>[/resourceGroups/<g>[/providers/...]] (default: the subscription).')
      .option('--description <text>', 'Description of the role assignment.'),
    async (o, io) => {
      const c = client();
      if (!o.assignee && !o.assigneeObjectId) throw new CliError('usage error: --assignee STRING | --assignee-object-id GUID', 2);
      if (o.assignee && o.assigneeObjectId) throw new CliError('usage error: --assignee STRING | --assignee-object-id GUID', 2);
      if (o.assigneePrincipalType && !o.assigneeObjectId) throw new CliError('usage error: --assignee-principal-type is only used with --assignee-object-id', 2);
      const type = o.assigneePrincipalType === undefined ? undefined : PRINCIPAL_TYPES.find((t) => t.toLowerCase() === o.assigneePrincipalType!.toLowerCase());
      if (o.assigneePrincipalType !== undefined && !type) {
        throw new CliError(`argument --assignee-principal-type: invalid choice: '${o.assigneePrincipalType}' (choose from ${PRINCIPAL_TYPES.map((t) => `'${t}'`).join(', ')})`, 2);
      }
      const principalId = o.assignee ? (await resolveAssignee(c, o.assignee)).id : o.assigneeObjectId!;
      const scope = o.scope ?? c.sub();
      const r = await assignRole(c, principalId, o.role, scope, io.warn, type);
      if (!r) throw new CliError('The role assignment already exists.');
      return flatten(r);
    });

  leaf<{ assignee?: string; role?: string; scope?: string; resourceGroup?: string; all?: boolean; includeInherited?: boolean }>(assignment, 'list', 'List role assignments.',
    (c) => c.option('--assignee <id>', 'Only assignments of this principal.').option('--role <role>', 'Only assignments of this role.')
      .option('--scope <scope>', 'Only assignments at this scope.').option('-g, --resource-group <group>', 'Use the resource group as the scope.')
      .option('--all', 'Show assignments at every scope, not only the subscription.').option('--include-inherited', 'Include assignments applied on parent scopes.'),
    async (o) => {
      const c = client();
      const scope = o.scope ?? (o.resourceGroup ? c.sub(`/resourceGroups/${o.resourceGroup}`) : c.sub());
      const defs = await roleDefinitions(c);
      const principal = o.assignee ? (await resolveAssignee(c, o.assignee)).id : undefined;
      let list = (await c.request<{ value: Array<Record<string, unknown>> }>('GET', `${scope}/providers/Microsoft.Authorization/roleAssignments`))!.value.map(flatten) as Assignment[];
      const s = scope.toLowerCase().replace(/\/+$/, '');
      if (!o.all) list = list.filter((a) => a.scope.toLowerCase() === s || (o.includeInherited && s.startsWith(a.scope.toLowerCase() + '/')));
      if (principal) list = list.filter((a) => a.principalId === principal);
      if (o.role) { const r = findRoleDef(defs, o.role); list = list.filter((a) => a.roleDefinitionId.toLowerCase().endsWith(r.name)); }
      return list.map((a) => ({ ...a, roleDefinitionName: defs.find((d) => a.roleDefinitionId.toLowerCase().endsWith(d.name))?.roleName ?? null }));
    }, { table });

  leaf<{ ids?: string[]; assignee?: string; role?: string; scope?: string; resourceGroup?: string; yes?: boolean }>(assignment, 'delete', 'Delete role assignments.',
    (c) => c.option('--ids <id...>', 'Role assignment ids.').option('--assignee <id>', 'Principal of the assignments.').option('--role <role>', 'Role of the assignments.')
      .option('--scope <scope>', 'Scope of the assignments.').option('-g, --resource-group <group>', 'Use the resource group as the scope.').option('-y, --yes', 'Do not prompt.'),
    async (o, io) => {
      const c = client();
      let ids = o.ids ?? [];
      if (ids.length === 0) {
        if (!o.assignee && !o.role && !o.scope && !o.resourceGroup) throw new CliError('Please provide at least one of these parameters: --ids, --assignee, --role, --scope, --resource-group', 2);
        const scope = o.scope ?? (o.resourceGroup ? c.sub(`/resourceGroups/${o.resourceGroup}`) : c.sub());
        const principal = o.assignee ? (await resolveAssignee(c, o.assignee)).id : undefined;
        const defs = await roleDefinitions(c);
        const role = o.role ? findRoleDef(defs, o.role) : undefined;
        const s = scope.toLowerCase().replace(/\/+$/, '');
        ids = ((await c.request<{ value: Array<Record<string, unknown>> }>('GET', `${scope}/providers/Microsoft.Authorization/roleAssignments`))!.value.map(flatten) as Assignment[])
          .filter((a) => a.scope.toLowerCase() === s && (!principal || a.principalId === principal) && (!role || a.roleDefinitionId.toLowerCase().endsWith(role.name)))
          .map((a) => a.id);
        if (ids.length === 0) io.warn('No matched assignments were found to delete');
      }
      for (const id of ids) await c.request('DELETE', id);
      return undefined;
    });

  const definition = role.command('definition').description('Role definitions (built-in roles).');
  leaf<{ name?: string }>(definition, 'list', 'List role definitions.',
    (c) => c.option('-n, --name <name>', 'Role name or id.'),
    async (o) => {
      const defs = await roleDefinitions(client());
      return o.name ? [findRoleDef(defs, o.name)] : defs;
    }, { table: (v) => (v as RoleDef[]).map((d) => ({ Name: d.roleName, Type: d.roleType, Description: d.description })) });
}
