// `berth login --service-principal`, `berth logout`, `berth account show`: which principal the CLI acts as.
import type { Command } from 'commander';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { leaf } from '../command.js';
import { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import { profilePath, profileTokenCachePath, readProfile, resolveContext, type Profile } from '../context.js';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import { defaultDataDir, dataPaths } from '../../lib/data-dir.js';
import { existsSync, readFileSync } from 'node:fs';

function defaultServer(): string {
  if (process.env.BERTH_SERVER) return process.env.BERTH_SERVER.replace(/\/+$/, '');
  const info = dataPaths(defaultDataDir()).serverInfo;
  if (existsSync(info)) {
    try { return (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url; } catch { /* default below */ }
  }
  return 'http://127.0.0.1:8080';
}

/**
 * What `berth login` says instead of az's browser, device-code, user or managed identity sign-in: a Berth
 * server has no Entra ID to sign a user in, so it names what does work.
 */
export function loginAlternatives(kind: string, env: NodeJS.ProcessEnv = process.env): string {
  const paths = dataPaths(defaultDataDir(env));
  const owner = existsSync(paths.ownerCredential)
    ? `the CLI already acts as the local owner of ${defaultServer()} (credential ${paths.ownerCredential}); berth account show says so`
    : `the CLI acts as the local owner of the server whose data directory BERTH_DATA_DIR names (its owner-credential.json; none at ${paths.ownerCredential})`;
  const why = kind === 'managed identity'
    ? 'berth login --identity is not supported: managed identities belong to container groups, and the CLI runs outside them'
    : `berth login has no ${kind} sign-in: a Berth server has no Microsoft Entra ID to sign a user in`;
  return `${why}. What works instead:\n` +
    `  - no login at all: ${owner}.\n` +
    '  - berth login --service-principal -u APPID -p PASSWORD --tenant TENANT, for a service principal (berth ad sp create-for-rbac makes one and prints these).\n' +
    '  - inside a container group with a managed identity, the SDKs get its tokens from the metadata endpoint http://169.254.169.254 (berth container create --assign-identity).';
}

export function registerLoginCommands(program: Command, client: () => ArmClient): void {
  leaf<{ servicePrincipal?: boolean; username?: string; password?: string; tenant?: string; allowNoSubscriptions?: boolean; identity?: boolean; useDeviceCode?: boolean }>(
    program, 'login', 'Sign the CLI in as a service principal (without it, the CLI acts as the local owner of BERTH_DATA_DIR).',
    (c) => c.option('--service-principal', 'Sign in with a service principal\'s appId and password.')
      .option('-u, --username <appId>', 'The service principal\'s appId.')
      .option('-p, --password <password>', 'The service principal\'s password (client secret).')
      .option('-t, --tenant <tenant>', 'The tenant id.')
      .option('--allow-no-subscriptions', 'Sign in even if the principal has no role in any subscription.')
      .option('--identity', 'Managed identity sign-in (not supported by berth login: see the message).')
      .option('--use-device-code', 'Device-code sign-in (not supported: Berth has no Entra ID to send a code to).'),
    async (o) => {
      if (!o.servicePrincipal) throw new CliError(loginAlternatives(o.identity ? 'managed identity' : o.useDeviceCode ? 'device code' : o.username ? 'user' : 'interactive'));
      if (!o.username || !o.password || !o.tenant) throw new CliError('usage error: --service-principal needs --username, --password and --tenant', 2);
      const server = defaultServer();
      const probe = new ArmClient({ server, credential: { tenantId: o.tenant, subscriptionId: '', clientId: o.username, clientSecret: o.password } });
      await probe.accessToken();
      const subs = (await probe.request<{ value: Array<{ subscriptionId: string; displayName: string; state: string; tenantId: string }> }>('GET', '/subscriptions'))!.value;
      if (subs.length === 0 && !o.allowNoSubscriptions) throw new CliError(`No subscriptions found for ${o.username}. Assign it a role (berth role assignment create) or use --allow-no-subscriptions.`);
      const profile: Profile = { type: 'servicePrincipal', server, tenantId: o.tenant, subscriptionId: subs[0]?.subscriptionId ?? '', clientId: o.username, clientSecret: o.password };
      const path = profilePath();
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(path, JSON.stringify(profile, null, 2) + '\n', 0o600);
      return subs.map((s) => ({ cloudName: 'Berth', homeTenantId: s.tenantId, id: s.subscriptionId, isDefault: s.subscriptionId === profile.subscriptionId, name: s.displayName, state: s.state, tenantId: s.tenantId,
        user: { name: o.username, type: 'servicePrincipal' } }));
    });

  leaf(program, 'logout', 'Sign out the principal of berth login; the CLI acts as the local owner again.', (c) => c,
    async () => {
      if (!readProfile()) throw new CliError('There are no active accounts.');
      await rm(profilePath(), { force: true });
      await rm(profileTokenCachePath(), { force: true });
      return undefined;
    });

  const account = program.command('account').description('The principal and subscription the CLI uses.');
  // A Berth server has one subscription; `list` shows it as az does, `set` accepts it by id or name.
  const subscriptions = async () => {
    const ctx = resolveContext();
    const subs = (await client().request<{ value: Array<{ subscriptionId: string; displayName: string; state: string; tenantId: string }> }>('GET', '/subscriptions'))!.value;
    return subs.map((x) => ({ cloudName: 'Berth', homeTenantId: x.tenantId, id: x.subscriptionId, isDefault: x.subscriptionId === ctx.credential.subscriptionId,
      managedByTenants: [], name: x.displayName, state: x.state, tenantId: x.tenantId, user: { name: ctx.credential.clientId, type: 'servicePrincipal' } }));
  };
  leaf(account, 'list', 'Get the subscriptions the CLI can use.', (c) => c.option('--all', 'List all subscriptions (Berth has one).'),
    async () => subscriptions());
  leaf<{ subscription: string }>(account, 'set', 'Set the subscription the CLI uses (a Berth server has one).',
    (c) => c.requiredOption('-s, --subscription <id-or-name>', 'Name or id of the subscription.'),
    async (o) => {
      const want = o.subscription.toLowerCase();
      const found = (await subscriptions()).find((x) => x.id.toLowerCase() === want || x.name.toLowerCase() === want);
      if (!found) throw new CliError(`The subscription of '${o.subscription}' doesn't exist in cloud 'Berth'. A Berth server has one subscription: berth account list shows it.`);
      return undefined;
    });
  leaf(account, 'show', 'Get the details of the subscription the CLI uses.', (c) => c,
    async () => {
      const ctx = resolveContext();
      const c = client();
      const subs = (await c.request<{ value: Array<{ subscriptionId: string; displayName: string; state: string; tenantId: string }> }>('GET', '/subscriptions'))!.value;
      const s = subs.find((x) => x.subscriptionId === ctx.credential.subscriptionId) ?? subs[0];
      const profile = readProfile();
      return { environmentName: 'Berth', homeTenantId: ctx.credential.tenantId, id: s?.subscriptionId ?? ctx.credential.subscriptionId, isDefault: true, name: s?.displayName ?? null,
        state: s?.state ?? null, tenantId: ctx.credential.tenantId, server: ctx.server,
        user: { name: ctx.credential.clientId, type: 'servicePrincipal', ...(profile ? {} : { localOwner: true }) } };
    });
}
