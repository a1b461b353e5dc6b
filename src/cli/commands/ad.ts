// `berth ad sp ...`: applications and service principals through Berth's Graph-shaped API, as az ad does.
import type { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { leaf } from '../command.js';
import type { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';

type App = { id: string; appId: string; displayName: string; passwordCredentials: unknown[] };
type Sp = { id: string; appId: string; displayName: string; servicePrincipalType: string; passwordCredentials: unknown[] };

const CREDENTIAL_WARNING = 'The output includes credentials that you must protect. Be sure that you do not include these credentials in your code or check the credentials into your source control.';

const q = (s: string) => s.replace(/'/g, "''");

export async function resolveServicePrincipal(c: ArmClient, id: string): Promise<Sp> {
  const sp = await c.request<Sp>('GET', `/v1.0/servicePrincipals/${encodeURIComponent(id)}`, undefined, { notFoundOk: true });
  if (!sp) throw new CliError(`Service principal '${id}' doesn't exist`, 3);
  return sp;
}

async function appOf(c: ArmClient, appId: string): Promise<App> {
  const apps = (await c.request<{ value: App[] }>('GET', `/v1.0/applications?$filter=${encodeURIComponent(`appId eq '${q(appId)}'`)}`))!.value;
  if (!apps[0]) throw new CliError(`Application '${appId}' doesn't exist`, 3);
  return apps[0];
}

async function addPassword(c: ArmClient, app: App, years: number, displayName?: string): Promise<string> {
  const end = new Date(Date.now() + years * 365.25 * 24 * 3600 * 1000).toISOString();
  const r = (await c.request<{ secretText: string }>('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: { endDateTime: end, ...(displayName ? { displayName } : {}) } }))!;
  return r.secretText;
}

/** Assigns `role` to the principal at each scope, printing az's warnings. */
/** The role definition id of a role name (any case) or id, as seen from `scope`. */
export async function resolveRoleId(c: ArmClient, role: string, scope: string): Promise<string> {
  const defs = (await c.request<{ value: Array<{ id: string }> }>('GET', `${scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=${encodeURIComponent(`roleName eq '${q(role)}'`)}`))!.value;
  let roleId = defs[0]?.id;
  if (!roleId && /^[0-9a-f-]{36}$/i.test(role.split('/').pop()!)) roleId = role;
  if (!roleId) throw new CliError(`Role '${role}' doesn't exist. The built-in roles are: AcrPull, AcrPush, AcrDelete, Reader, Contributor, Owner, Key Vault Secrets User, Key Vault Secrets Officer.`);
  return roleId;
}

export async function assignRole(c: ArmClient, principalId: string, role: string, scope: string, warn: (s: string) => void, principalType = 'ServicePrincipal'): Promise<Record<string, unknown> | undefined> {
  const roleId = await resolveRoleId(c, role, scope);
  try {
    return await c.request<Record<string, unknown>>('PUT', `${scope}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: roleId, principalId, principalType } });
  } catch (e) {
    if (e instanceof CliError && e.code === 'RoleAssignmentExists') {
      warn('  Role assignment already exists.');
      return undefined;
    }
    throw e;
  }
}

export function registerAdCommands(program: Command, client: () => ArmClient): void {
  const ad = program.command('ad').description('Manage Microsoft Entra-style applications and service principals.');
  const sp = ad.command('sp').description('Manage service principals.');

  leaf<{ name?: string; role?: string; scopes?: string[]; scope?: string[]; years: string }>(sp, 'create-for-rbac', 'Create a service principal and configure its access to resources.',
    (c) => c.option('-n, --name <name>', 'Display name of the service principal (an existing one of that name gets a new password).')
      .option('--role <role>', 'Role of the service principal (e.g. AcrPull, acrpush).')
      .option('--scopes <scope...>', 'Space-separated scopes the role assignment applies to.')
      .option('--scope <scope...>', 'Same as --scopes.')
      .option('--years <n>', 'Number of years the password is valid.', '1'),
    async (o, io) => {
      const c = client();
      const scopes = [...(o.scopes ?? []), ...(o.scope ?? [])];
      if (Boolean(o.role) !== (scopes.length > 0)) throw new CliError('Usage error: To create role assignments, specify both --role and --scopes.', 2);
      const years = Number(o.years);
      if (!(years > 0)) throw new CliError(`argument --years: invalid value '${o.years}'`, 2);
      const name = o.name ?? `berth-cli-${new Date().toISOString().slice(0, 19).replace(/[T:]/g, '-')}`;
      const found = (await c.request<{ value: App[] }>('GET', `/v1.0/applications?$filter=${encodeURIComponent(`displayName eq '${q(name)}'`)}`))!.value;
      let app = found[0];
      if (app) {
        // As az does: an application of the same name is reused and its old passwords removed.
        for (const cred of app.passwordCredentials as Array<{ keyId: string }>) await c.request('POST', `/v1.0/applications/${app.id}/removePassword`, { keyId: cred.keyId });
      } else {
        app = (await c.request<App>('POST', '/v1.0/applications', { displayName: name }))!;
      }
      const password = await addPassword(c, app, years, 'rbac');
      const sps = (await c.request<{ value: Sp[] }>('GET', `/v1.0/servicePrincipals?$filter=${encodeURIComponent(`appId eq '${app.appId}'`)}`))!.value;
      const principal = sps[0] ?? (await c.request<Sp>('POST', '/v1.0/servicePrincipals', { appId: app.appId }))!;
      for (const s of scopes) {
        io.warn(`Creating '${o.role}' role assignment under scope '${s}'`);
        await assignRole(c, principal.id, o.role!, s, io.warn);
      }
      io.warn(CREDENTIAL_WARNING);
      return { appId: app.appId, displayName: app.displayName, password, tenant: c.tenantId };
    });

  leaf<{ id: string }>(sp, 'show', 'Get the details of a service principal (never its password).',
    (c) => c.requiredOption('--id <id>', 'appId, object id, or a managed identity\'s client or principal id.'),
    async (o) => resolveServicePrincipal(client(), o.id));

  leaf<{ displayName?: string; filter?: string; all?: boolean }>(sp, 'list', 'List service principals.',
    (c) => c.option('--display-name <name>', 'Object\'s display name or its prefix.').option('--filter <odata>', 'OData filter, e.g. --filter "displayname eq \'test\'"').option('--all', 'List all entities.'),
    async (o) => {
      const c = client();
      const filter = o.filter ?? (o.displayName ? `startswith(displayName,'${q(o.displayName)}')` : undefined);
      return (await c.request<{ value: Sp[] }>('GET', `/v1.0/servicePrincipals${filter ? `?$filter=${encodeURIComponent(filter)}` : ''}`))!.value;
    });

  leaf<{ id: string }>(sp, 'delete', 'Delete a service principal, its application and its role assignments.',
    (c) => c.requiredOption('--id <id>', 'appId or object id.'),
    async (o) => {
      const c = client();
      const s = await resolveServicePrincipal(c, o.id);
      await c.request('DELETE', `/v1.0/servicePrincipals/${s.id}`);
      return undefined;
    });

  const cred = sp.command('credential').description('Manage a service principal\'s passwords.');
  leaf<{ id: string; years: string; append?: boolean; displayName?: string }>(cred, 'reset', 'Reset a service principal\'s password (the old ones stop working unless --append).',
    (c) => c.requiredOption('--id <id>', 'appId or object id.').option('--years <n>', 'Number of years the password is valid.', '1')
      .option('--append', 'Add the new password and keep the existing ones.').option('--display-name <name>', 'Friendly name for the password.'),
    async (o, io) => {
      const c = client();
      const s = await resolveServicePrincipal(c, o.id);
      if (s.servicePrincipalType === 'ManagedIdentity') throw new CliError('A managed identity has no password to reset.');
      const app = await appOf(c, s.appId);
      if (!o.append) for (const p of app.passwordCredentials as Array<{ keyId: string }>) await c.request('POST', `/v1.0/applications/${app.id}/removePassword`, { keyId: p.keyId });
      const password = await addPassword(c, app, Number(o.years), o.displayName);
      io.warn(CREDENTIAL_WARNING);
      return { appId: app.appId, password, tenant: c.tenantId };
    });
  leaf<{ id: string }>(cred, 'list', 'List a service principal\'s password metadata (never the values).',
    (c) => c.requiredOption('--id <id>', 'appId or object id.'),
    async (o) => (await resolveServicePrincipal(client(), o.id)).passwordCredentials);
}
