// `berth acr scope-map ...` and `berth acr token ...`: repository-scoped permissions.
import type { Command } from 'commander';
import { leaf } from '../command.js';
import { tableDate } from '../output.js';
import { flatten, type ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import { findRegistry } from './acr.js';

const REPO_ACTIONS = ['content/read', 'content/write', 'content/delete', 'metadata/read', 'metadata/write'];
const GATEWAY_ACTIONS = ['config/read', 'config/write', 'message/read', 'message/write'];

/**
 * Turns `--repository A content/read metadata/read --repository B content/write` (commander gathers all
 * values of a repeated variadic option into one list) back into groups: a value that is not an action
 * starts a new group.
 */
export function groupActions(values: string[] | undefined, known: string[], flag: string, prefix: string): string[] {
  const out: string[] = [];
  let target: string | undefined;
  let count = 0;
  const close = () => { if (target !== undefined && count === 0) throw new CliError(`${flag} ${target}: name at least one action (${known.join(', ')})`, 2); };
  for (const v of values ?? []) {
    if (known.includes(v.toLowerCase())) {
      if (target === undefined) throw new CliError(`${flag}: give the name before its actions, e.g. ${flag} myimage ${known[0]}`, 2);
      out.push(`${prefix}/${target}/${v.toLowerCase()}`);
      count++;
    } else if (/^[a-z]+\/[a-z]+$/i.test(v) && !v.includes('*') && (v.startsWith('content') || v.startsWith('metadata') || v.startsWith('config') || v.startsWith('message'))) {
      throw new CliError(`${flag}: '${v}' is not an action; use ${known.join(', ')}`, 2);
    } else {
      close();
      target = v;
      count = 0;
    }
  }
  close();
  return out;
}

const mapTable = (v: unknown) => (Array.isArray(v) ? v : [v]).map((m: Record<string, unknown>) => ({ NAME: m.name, TYPE: m.type === 'Microsoft.ContainerRegistry/registries/scopeMaps' ? m.scopeMapType ?? m.type : m.type, 'CREATION DATE': tableDate(m.creationDate), DESCRIPTION: m.description }));
/** az's token table (acr _format._token_format_group): each password's expiry, 'Never' when it has none, '' when it does not exist. */
const tokenTable = (v: unknown) => (Array.isArray(v) ? v : [v]).map((t: Record<string, unknown>) => {
  const passwords = (t.credentials as { passwords?: Array<{ name: string; expiry?: string | null }> } | undefined)?.passwords ?? [];
  const expiry = (name: string) => {
    const p = passwords.find((x) => x.name.toLowerCase() === name);
    return !p ? '' : p.expiry ? tableDate(p.expiry) : 'Never';
  };
  const status = String(t.status ?? '');
  return { NAME: t.name, 'SCOPE MAP': String(t.scopeMapId ?? '').split('/').pop(), 'PASSWORD1 EXPIRY': expiry('password1'), 'PASSWORD2 EXPIRY': expiry('password2'),
    STATUS: status.charAt(0).toUpperCase() + status.slice(1).toLowerCase(), 'PROVISIONING STATE': t.provisioningState ?? ' ', 'CREATION DATE': tableDate(t.creationDate) };
});

/** az's flattened scope map: ARM's properties.type is shown as `scopeMapType`. */
function scopeMapView(m: Record<string, unknown> & { properties?: { type?: string } }): Record<string, unknown> {
  const f = flatten(m);
  return { ...f, type: m.type, scopeMapType: m.properties?.type };
}

export function registerAcrAccessCommands(acr: Command, client: () => ArmClient): void {
  const registryOpts = (c: Command) => c.requiredOption('-r, --registry <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.');

  // ---- scope maps
  const sm = acr.command('scope-map').description('Manage scope maps for repository-scoped tokens.');
  leaf<{ registry: string; resourceGroup?: string; name: string; repository?: string[]; gateway?: string[]; description?: string }>(sm, 'create', 'Create a scope map.',
    (c) => registryOpts(c).requiredOption('-n, --name <name>', 'The name of the scope map.')
      .option('--repository <repo-and-actions...>', `Repository and its actions: --repository REPO ACTION... (${REPO_ACTIONS.join(', ')}); repeatable.`)
      .option('--gateway <gateway-and-actions...>', `Connected registry and its actions: --gateway NAME ACTION... (${GATEWAY_ACTIONS.join(', ')}).`)
      .option('--description <text>', 'Description for the scope map.'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.registry, o.resourceGroup);
      const actions = [...groupActions(o.repository, REPO_ACTIONS, '--repository', 'repositories'), ...groupActions(o.gateway, GATEWAY_ACTIONS, '--gateway', 'gateway')];
      if (actions.length === 0) throw new CliError('At least one of --repository or --gateway is required.', 2);
      const existing = await c.request('GET', `${r.id}/scopeMaps/${encodeURIComponent(o.name)}`, undefined, { notFoundOk: true });
      if (existing) throw new CliError(`The scope map '${o.name}' already exists in registry '${r.name}'. Use berth acr scope-map update.`);
      return scopeMapView((await c.request<Record<string, unknown>>('PUT', `${r.id}/scopeMaps/${encodeURIComponent(o.name)}`, { properties: { actions, ...(o.description ? { description: o.description } : {}) } }))!);
    }, { table: mapTable });
  leaf<{ registry: string; resourceGroup?: string; name: string; addRepository?: string[]; removeRepository?: string[]; addGateway?: string[]; removeGateway?: string[]; description?: string }>(sm, 'update', 'Update a scope map.',
    (c) => registryOpts(c).requiredOption('-n, --name <name>', 'The name of the scope map.')
      .option('--add-repository <repo-and-actions...>', 'Repository and actions to add.').option('--remove-repository <repo-and-actions...>', 'Repository and actions to remove.')
      .option('--add-gateway <gateway-and-actions...>', 'Gateway and actions to add.').option('--remove-gateway <gateway-and-actions...>', 'Gateway and actions to remove.')
      .option('--description <text>', 'Description for the scope map.'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.registry, o.resourceGroup);
      const path = `${r.id}/scopeMaps/${encodeURIComponent(o.name)}`;
      const cur = (await c.request<{ properties: { actions: string[] } }>('GET', path))!;
      const add = [...groupActions(o.addRepository, REPO_ACTIONS, '--add-repository', 'repositories'), ...groupActions(o.addGateway, GATEWAY_ACTIONS, '--add-gateway', 'gateway')];
      const remove = new Set([...groupActions(o.removeRepository, REPO_ACTIONS, '--remove-repository', 'repositories'), ...groupActions(o.removeGateway, GATEWAY_ACTIONS, '--remove-gateway', 'gateway')].map((a) => a.toLowerCase()));
      const actions = [...cur.properties.actions, ...add].filter((a, i, all) => !remove.has(a.toLowerCase()) && all.findIndex((b) => b.toLowerCase() === a.toLowerCase()) === i);
      return scopeMapView((await c.request<Record<string, unknown>>('PATCH', path, { properties: { actions, ...(o.description !== undefined ? { description: o.description } : {}) } }))!);
    }, { table: mapTable });
  leaf<{ registry: string; resourceGroup?: string; name: string }>(sm, 'show', 'Show a scope map.',
    (c) => registryOpts(c).requiredOption('-n, --name <name>', 'The name of the scope map.'),
    async (o) => { const c = client(); const r = await findRegistry(c, o.registry, o.resourceGroup); return scopeMapView((await c.request<Record<string, unknown>>('GET', `${r.id}/scopeMaps/${encodeURIComponent(o.name)}`))!); }, { table: mapTable });
  leaf<{ registry: string; resourceGroup?: string }>(sm, 'list', 'List the scope maps of a registry, system-defined ones included.', registryOpts,
    async (o) => { const c = client(); const r = await findRegistry(c, o.registry, o.resourceGroup); return (await c.request<{ value: Array<Record<string, unknown>> }>('GET', `${r.id}/scopeMaps`))!.value.map(scopeMapView); }, { table: mapTable });
  leaf<{ registry: string; resourceGroup?: string; name: string; yes?: boolean }>(sm, 'delete', 'Delete a scope map (tokens using it lose its permissions).',
    (c) => registryOpts(c).requiredOption('-n, --name <name>', 'The name of the scope map.').option('-y, --yes', 'Do not prompt for confirmation.'),
    async (o) => { const c = client(); const r = await findRegistry(c, o.registry, o.resourceGroup); await c.request('DELETE', `${r.id}/scopeMaps/${encodeURIComponent(o.name)}`); return undefined; });

  // ---- tokens
  const token = acr.command('token').description('Manage repository-scoped tokens.');
  const expiryOpts = (c: Command) => c.option('--expiration-in-days <n>', 'Number of days the password(s) are valid.').option('--expiration <datetime>', 'Expiry date and time in ISO 8601, e.g. 2030-01-31T00:00:00Z.');
  const expiry = (o: { expirationInDays?: string; expiration?: string }): string | undefined => {
    if (o.expirationInDays && o.expiration) throw new CliError('usage error: --expiration-in-days | --expiration', 2);
    if (o.expirationInDays) {
      const n = Number(o.expirationInDays);
      if (!Number.isInteger(n) || n <= 0) throw new CliError(`argument --expiration-in-days: invalid value '${o.expirationInDays}': a positive whole number of days`, 2);
      return new Date(Date.now() + n * 86400_000).toISOString();
    }
    return o.expiration;
  };
  const generate = async (c: ArmClient, regId: string, name: string, pw: string | undefined, exp: string | undefined) =>
    (await c.request<{ username: string; passwords: Array<Record<string, unknown>> }>('POST', `${regId}/generateCredentials`, { tokenId: `${regId}/tokens/${name}`, ...(pw ? { name: pw } : {}), ...(exp ? { expiry: exp } : {}) }))!;

  leaf<{ registry: string; resourceGroup?: string; name: string; scopeMap?: string; repository?: string[]; gateway?: string[]; status?: string; passwords: boolean; expirationInDays?: string; expiration?: string }>(token, 'create', 'Create a token, with its passwords unless --no-passwords.',
    (c) => expiryOpts(registryOpts(c).requiredOption('-n, --name <name>', 'The name of the token.')
      .option('--scope-map <name>', 'The scope map the token uses.')
      .option('--repository <repo-and-actions...>', 'Make a scope map "<token>-scope-map" from REPO ACTION... instead of --scope-map.')
      .option('--gateway <gateway-and-actions...>', 'Gateway actions for that scope map.')
      .option('--status <status>', 'enabled or disabled.', 'enabled')
      .option('--no-passwords', 'Do not generate passwords; use berth acr token credential generate later.')),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.registry, o.resourceGroup);
      const fromRepos = [...groupActions(o.repository, REPO_ACTIONS, '--repository', 'repositories'), ...groupActions(o.gateway, GATEWAY_ACTIONS, '--gateway', 'gateway')];
      if (Boolean(o.scopeMap) === (fromRepos.length > 0)) throw new CliError('usage error: --scope-map NAME | --repository REPO ACTION... [--gateway ...]', 2);
      if (!['enabled', 'disabled'].includes(String(o.status))) throw new CliError(`argument --status: invalid choice: '${o.status}' (choose from 'enabled', 'disabled')`, 2);
      const exp = expiry(o);
      const existing = await c.request('GET', `${r.id}/tokens/${encodeURIComponent(o.name)}`, undefined, { notFoundOk: true });
      if (existing) throw new CliError(`The token '${o.name}' already exists in registry '${r.name}'. Use berth acr token update.`);
      let map = o.scopeMap;
      if (!map) {
        map = `${o.name}-scope-map`;
        await c.request('PUT', `${r.id}/scopeMaps/${encodeURIComponent(map)}`, { properties: { actions: fromRepos, description: `Token ${o.name}'s scope map` } });
      }
      const tok = flatten((await c.request<Record<string, unknown>>('PUT', `${r.id}/tokens/${encodeURIComponent(o.name)}`, { properties: { scopeMapId: `${r.id}/scopeMaps/${map}`, status: o.status } }))!);
      if (!o.passwords) return tok;
      const creds = await generate(c, r.id, o.name, undefined, exp);
      return { ...tok, credentials: { certificates: [], passwords: creds.passwords, username: creds.username } };
    }, { table: tokenTable });
  leaf<{ registry: string; resourceGroup?: string; name: string; scopeMap?: string; status?: string }>(token, 'update', 'Update a token\'s status or scope map.',
    (c) => registryOpts(c).requiredOption('-n, --name <name>', 'The name of the token.').option('--scope-map <name>', 'The scope map to use.').option('--status <status>', 'enabled or disabled.'),
    async (o) => {
      const c = client();
      if (o.status && !['enabled', 'disabled'].includes(o.status)) throw new CliError(`argument --status: invalid choice: '${o.status}' (choose from 'enabled', 'disabled')`, 2);
      const r = await findRegistry(c, o.registry, o.resourceGroup);
      return flatten((await c.request<Record<string, unknown>>('PATCH', `${r.id}/tokens/${encodeURIComponent(o.name)}`, { properties: { ...(o.scopeMap ? { scopeMapId: `${r.id}/scopeMaps/${o.scopeMap}` } : {}), ...(o.status ? { status: o.status } : {}) } }))!);
    }, { table: tokenTable });
  leaf<{ registry: string; resourceGroup?: string; name: string }>(token, 'show', 'Show a token (never its passwords).',
    (c) => registryOpts(c).requiredOption('-n, --name <name>', 'The name of the token.'),
    async (o) => { const c = client(); const r = await findRegistry(c, o.registry, o.resourceGroup); return flatten((await c.request<Record<string, unknown>>('GET', `${r.id}/tokens/${encodeURIComponent(o.name)}`))!); }, { table: tokenTable });
  leaf<{ registry: string; resourceGroup?: string }>(token, 'list', 'List the tokens of a registry.', registryOpts,
    async (o) => { const c = client(); const r = await findRegistry(c, o.registry, o.resourceGroup); return (await c.request<{ value: Array<Record<string, unknown>> }>('GET', `${r.id}/tokens`))!.value.map(flatten); }, { table: tokenTable });
  leaf<{ registry: string; resourceGroup?: string; name: string; yes?: boolean }>(token, 'delete', 'Delete a token.',
    (c) => registryOpts(c).requiredOption('-n, --name <name>', 'The name of the token.').option('-y, --yes', 'Do not prompt for confirmation.'),
    async (o) => { const c = client(); const r = await findRegistry(c, o.registry, o.resourceGroup); await c.request('DELETE', `${r.id}/tokens/${encodeURIComponent(o.name)}`); return undefined; });

  const cred = token.command('credential').description('Manage a token\'s passwords.');
  leaf<{ registry: string; resourceGroup?: string; name: string; password1?: boolean; password2?: boolean; expirationInDays?: string; expiration?: string }>(cred, 'generate', 'Generate a token\'s password(s); shown once.',
    (c) => expiryOpts(registryOpts(c).requiredOption('-n, --name <name>', 'The name of the token.')
      .option('--password1', 'Generate only password1.').option('--password2', 'Generate only password2.')),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.registry, o.resourceGroup);
      const exp = expiry(o);
      if (o.password1 && o.password2) {
        const a = await generate(c, r.id, o.name, 'password1', exp);
        const b = await generate(c, r.id, o.name, 'password2', exp);
        return { username: a.username, passwords: [...a.passwords, ...b.passwords] };
      }
      return generate(c, r.id, o.name, o.password1 ? 'password1' : o.password2 ? 'password2' : undefined, exp);
    });
}
