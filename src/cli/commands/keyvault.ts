// `berth keyvault ...`: vault resources over the management API, secrets over each vault's data plane
// (Key Vault REST, with a token for https://vault.azure.net), printed in az's shapes.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { leaf, parseBool, parseTags } from '../command.js';
import type { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';

const PROVIDER = '/providers/Microsoft.KeyVault/vaults';
const VAULT_RESOURCE = 'https://vault.azure.net';
const DATA_API_VERSION = '7.4';

type Vault = Record<string, unknown> & { id: string; name: string; resourceGroup: string; properties: { vaultUri: string } };
interface Attributes { enabled: boolean; nbf?: number; exp?: number; created: number; updated: number; recoveryLevel: string; recoverableDays?: number }
interface Bundle { value?: string; id: string; contentType?: string; attributes: Attributes; tags?: Record<string, string>; recoveryId?: string; deletedDate?: number; scheduledPurgeDate?: number }

/** az's view of a vault: the ARM resource as returned (properties stay nested) plus resourceGroup. */
function withGroup(r: Record<string, unknown>): Vault {
  const m = typeof r.id === 'string' ? /\/resourceGroups\/([^/]+)/i.exec(r.id) : null;
  return { ...r, ...(m ? { resourceGroup: m[1] } : {}) } as Vault;
}

async function findVault(c: ArmClient, name: string, group?: string): Promise<Vault> {
  if (group) return withGroup((await c.request<Record<string, unknown>>('GET', c.sub(`/resourceGroups/${encodeURIComponent(group)}${PROVIDER}/${encodeURIComponent(name)}`)))!);
  const all = (await c.request<{ value: Array<Record<string, unknown>> }>('GET', c.sub(PROVIDER)))!.value.map(withGroup);
  const v = all.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!v) throw new CliError(`The Vault '${name}' not found within subscription.`, 3);
  return v;
}

type Deleted = { id: string; name: string; type: string; properties: { vaultId: string; location: string; deletionDate: string; scheduledPurgeDate: string } };

/** A deleted vault by name (and location, when given), as az finds it for show-deleted, recover and purge. */
async function findDeleted(c: ArmClient, name: string, location?: string): Promise<Deleted> {
  if (location) return (await c.request<Deleted>('GET', c.sub(`/providers/Microsoft.KeyVault/locations/${encodeURIComponent(location)}/deletedVaults/${encodeURIComponent(name)}`)))!;
  const d = (await c.request<{ value: Deleted[] }>('GET', c.sub('/providers/Microsoft.KeyVault/deletedVaults')))!.value.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!d) throw new CliError(`No deleted vault named '${name}' was found in the subscription. berth keyvault list-deleted shows the deleted vaults.`, 3);
  return d;
}

function wholeNumber(flag: string): (v: string) => number {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new CliError(`argument ${flag}: invalid int value: '${v}'`, 2);
    return Number(v);
  };
}

const iso = (s: number | undefined): string | null => (s === undefined ? null : new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, '+00:00'));

function attributesOut(a: Attributes) {
  return { created: iso(a.created), enabled: a.enabled, expires: iso(a.exp), notBefore: iso(a.nbf), recoverableDays: a.recoverableDays ?? null, recoveryLevel: a.recoveryLevel, updated: iso(a.updated) };
}

const nameOf = (id: string) => /\/(?:secrets|deletedsecrets)\/([^/]+)/.exec(new URL(id).pathname)?.[1] ?? '';

/** A SecretBundle as az prints it (ISO times, nbf/exp as notBefore/expires, name added). */
function secretOut(b: Bundle, item = false) {
  const out: Record<string, unknown> = { attributes: attributesOut(b.attributes), contentType: b.contentType ?? null, id: b.id, managed: null, name: nameOf(b.id), tags: b.tags ?? null };
  if (!item) Object.assign(out, { kid: null, value: b.value ?? null });
  if (b.recoveryId !== undefined) Object.assign(out, { recoveryId: b.recoveryId, deletedDate: iso(b.deletedDate), scheduledPurgeDate: iso(b.scheduledPurgeDate) });
  return out;
}

function unixTime(flag: string): (v: string) => number {
  return (v: string) => {
    const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) || !/T/.test(v) ? v : `${v}Z`);
    if (Number.isNaN(t)) throw new CliError(`argument ${flag}: invalid datetime value '${v}': use ISO 8601, e.g. 2030-01-31T00:00:00Z`, 2);
    return Math.floor(t / 1000);
  };
}

const ENCODINGS = ['ascii', 'base64', 'hex', 'utf-8', 'utf-16be', 'utf-16le'] as const;

/** The data plane of one vault, found by name, with a token for https://vault.azure.net. */
class VaultSession {
  private constructor(private readonly c: ArmClient, private readonly base: string, private readonly token: string) {}

  static async open(c: ArmClient, vaultName: string): Promise<VaultSession> {
    const v = await findVault(c, vaultName);
    return new VaultSession(c, v.properties.vaultUri.replace(/\/+$/, ''), await c.accessToken(VAULT_RESOURCE));
  }

  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const sep = path.includes('?') ? '&' : '?';
    return this.c.send<T>(method, `${this.base}${path}${sep}api-version=${DATA_API_VERSION}`, this.token, body) as Promise<T>;
  }

  /** Follows nextLink to the end. */
  async all(path: string): Promise<Bundle[]> {
    const out: Bundle[] = [];
    let page = await this.call<{ value: Bundle[]; nextLink?: string | null }>('GET', path);
    out.push(...page.value);
    while (page.nextLink) {
      page = (await this.c.send<{ value: Bundle[]; nextLink?: string | null }>('GET', page.nextLink, this.token))!;
      out.push(...page.value);
    }
    return out;
  }
}

const seg = (s: string) => encodeURIComponent(s);

export function registerKeyvaultCommands(program: Command, client: () => ArmClient): void {
  const kv = program.command('keyvault').description('Manage Berth key vaults (Key Vault compatible).');

  leaf<{ name: string; resourceGroup: string; location?: string; sku?: string; tags?: string[]; retentionDays?: number; enablePurgeProtection?: boolean | string }>(kv, 'create', 'Create a key vault.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the vault (3-24 letters, digits and hyphens; globally unique).')
      .requiredOption('-g, --resource-group <group>', 'Name of resource group.')
      .option('-l, --location <location>', 'Location. Defaults to the resource group\'s location.')
      .option('--sku <sku>', 'Required. SKU details: premium, standard.', 'standard')
      .option('--tags <tags...>', 'Space-separated tags: key[=value].')
      .option('--retention-days <days>', 'Soft delete data retention days: 7-90 (default 90).', wholeNumber('--retention-days'))
      .option('--enable-purge-protection [bool]', 'Deleted vaults cannot be purged before their scheduled purge date (irreversible).'),
    async (o) => {
      const c = client();
      const purgeProtection = o.enablePurgeProtection === undefined ? undefined : o.enablePurgeProtection === true ? true : parseBool('--enable-purge-protection')(o.enablePurgeProtection as string);
      const body = { ...(o.location ? { location: o.location } : {}), tags: parseTags(o.tags) ?? {},
        properties: { tenantId: c.tenantId, sku: { family: 'A', name: o.sku ?? 'standard' }, enableRbacAuthorization: true,
          softDeleteRetentionInDays: o.retentionDays ?? 90, ...(purgeProtection !== undefined ? { enablePurgeProtection: purgeProtection } : {}) } };
      if (!o.location) {
        const g = await c.request<{ location: string }>('GET', c.sub(`/resourcegroups/${seg(o.resourceGroup)}`));
        (body as Record<string, unknown>).location = g!.location;
      }
      return withGroup((await c.request<Record<string, unknown>>('PUT', c.sub(`/resourceGroups/${seg(o.resourceGroup)}${PROVIDER}/${seg(o.name)}`), body))!);
    });

  leaf<{ name: string; resourceGroup?: string }>(kv, 'show', 'Show details of a key vault.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the vault.').option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => findVault(client(), o.name, o.resourceGroup));

  leaf<{ resourceGroup?: string }>(kv, 'list', 'List key vaults.',
    (c) => c.option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const path = o.resourceGroup ? c.sub(`/resourceGroups/${seg(o.resourceGroup)}${PROVIDER}`) : c.sub(PROVIDER);
      return (await c.request<{ value: Array<Record<string, unknown>> }>('GET', path))!.value.map(withGroup);
    }, { table: (v) => (v as Vault[]).map((x) => ({ Location: x.location, Name: x.name, ResourceGroup: x.resourceGroup })) });

  leaf<{ name: string; resourceGroup?: string }>(kv, 'delete', 'Delete a key vault (soft delete: recoverable, with its secrets, for its retention days).',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the vault.').option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const v = await findVault(c, o.name, o.resourceGroup);
      await c.request('DELETE', v.id);
      return undefined;
    });

  leaf(kv, 'list-deleted', 'Get information about the deleted vaults in a subscription.', (c) => c,
    async () => { const c = client(); return (await c.request<{ value: Deleted[] }>('GET', c.sub('/providers/Microsoft.KeyVault/deletedVaults')))!.value; });
  leaf<{ name: string; location?: string }>(kv, 'show-deleted', 'Show details of a deleted vault.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the deleted vault.').option('-l, --location <location>', 'Location of the deleted vault.'),
    async (o) => findDeleted(client(), o.name, o.location));
  leaf<{ name: string; resourceGroup?: string; location?: string }>(kv, 'recover', 'Recover a deleted vault, with its secrets.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the deleted vault.').option('-g, --resource-group <group>', 'Resource group of the deleted vault.')
      .option('-l, --location <location>', 'Location of the deleted vault.'),
    async (o) => {
      const c = client();
      const d = await findDeleted(c, o.name, o.location);
      const group = o.resourceGroup ?? /\/resourceGroups\/([^/]+)/i.exec(d.properties.vaultId)?.[1] ?? '';
      const body = { location: d.properties.location, properties: { tenantId: c.tenantId, sku: { family: 'A', name: 'standard' }, createMode: 'recover' } };
      return withGroup((await c.request<Record<string, unknown>>('PUT', c.sub(`/resourceGroups/${seg(group)}${PROVIDER}/${seg(o.name)}`), body))!);
    });
  leaf<{ name: string; location?: string }>(kv, 'purge', 'Permanently delete the specified vault and its secrets.',
    (c) => c.requiredOption('-n, --name <name>', 'Name of the deleted vault.').option('-l, --location <location>', 'Location of the deleted vault.'),
    async (o) => {
      const c = client();
      const d = await findDeleted(c, o.name, o.location);
      await c.request('POST', c.sub(`/providers/Microsoft.KeyVault/locations/${seg(d.properties.location)}/deletedVaults/${seg(d.name)}/purge`));
      return undefined;
    });

  const secret = kv.command('secret').description('Manage secrets.');
  const vaultOpt = (c: Command) => c.requiredOption('--vault-name <name>', 'Name of the Key Vault.');
  const nameOpt = (c: Command) => vaultOpt(c).requiredOption('-n, --name <name>', 'Name of the secret.');

  leaf<{ vaultName: string; name: string; value?: string; file?: string; encoding: string; contentType?: string; description?: string; tags?: string[]; disabled?: boolean; expires?: number; notBefore?: number }>(
    secret, 'set', 'Create a secret (if one doesn\'t exist) or update a secret in a KeyVault.',
    (c) => nameOpt(c).option('--value <value>', 'Plain text secret value. Cannot be used with \'--file\' or \'--encoding\'.')
      .option('-f, --file <path>', 'Source file for secret. Use in conjunction with \'--encoding\'.')
      .option('-e, --encoding <encoding>', `Source file encoding. The value is saved as a tag (file-encoding=<val>): ${ENCODINGS.join(', ')}.`, 'utf-8')
      .option('--content-type <type>', 'Type of the secret value such as a password.')
      .option('--description <text>', 'Description of the secret contents (e.g. password, connection string, etc). Sets the content type.')
      .option('--tags <tags...>', 'Space-separated tags: key[=value].')
      .option('--disabled <bool>', 'Create secret in disabled state.', parseBool('--disabled'))
      .option('--expires <datetime>', 'Expiration UTC datetime (Y-m-d\'T\'H:M:S\'Z\').', unixTime('--expires'))
      .option('--not-before <datetime>', 'Key not usable before the provided UTC datetime (Y-m-d\'T\'H:M:S\'Z\').', unixTime('--not-before')),
    async (o) => {
      if ((o.value === undefined) === (o.file === undefined)) throw new CliError('usage error: --value VALUE | --file PATH', 2);
      if (!ENCODINGS.includes(o.encoding as (typeof ENCODINGS)[number])) throw new CliError(`argument --encoding/-e: invalid choice: '${o.encoding}' (choose from ${ENCODINGS.map((e) => `'${e}'`).join(', ')})`, 2);
      let value = o.value;
      if (o.file !== undefined) {
        let bytes: Buffer;
        try {
          bytes = readFileSync(o.file);
        } catch (e) {
          throw new CliError(`Cannot read ${o.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        value = o.encoding === 'base64' ? bytes.toString('base64') : o.encoding === 'hex' ? bytes.toString('hex')
          : o.encoding === 'utf-16le' ? bytes.toString('utf16le') : o.encoding === 'utf-16be' ? Buffer.from(bytes).swap16().toString('utf16le')
            : bytes.toString(o.encoding === 'ascii' ? 'latin1' : 'utf8');
      }
      const s = await VaultSession.open(client(), o.vaultName);
      const contentType = o.contentType ?? o.description;
      const body = {
        value, tags: { ...(parseTags(o.tags) ?? {}), 'file-encoding': o.encoding },
        ...(contentType !== undefined ? { contentType } : {}),
        attributes: { enabled: !o.disabled, ...(o.expires !== undefined ? { exp: o.expires } : {}), ...(o.notBefore !== undefined ? { nbf: o.notBefore } : {}) },
      };
      return secretOut(await s.call<Bundle>('PUT', `/secrets/${seg(o.name)}`, body));
    });

  leaf<{ vaultName: string; name: string; version?: string }>(secret, 'show', 'Get a specified secret from a given key vault.',
    (c) => nameOpt(c).option('-v, --version <version>', 'The secret version. If omitted, uses the latest version.'),
    async (o) => {
      const s = await VaultSession.open(client(), o.vaultName);
      return secretOut(await s.call<Bundle>('GET', `/secrets/${seg(o.name)}/${o.version ? seg(o.version) : ''}`));
    });

  leaf<{ vaultName: string; maxresults?: string }>(secret, 'list', 'List secrets in a specified key vault.',
    (c) => vaultOpt(c).option('--maxresults <n>', 'Maximum number of results to return.'),
    async (o) => {
      const s = await VaultSession.open(client(), o.vaultName);
      const all = (await s.all('/secrets')).map((b) => secretOut(b, true));
      return o.maxresults ? all.slice(0, Number(o.maxresults)) : all;
    });

  leaf<{ vaultName: string; name: string; maxresults?: string }>(secret, 'list-versions', 'List all versions of the specified secret.',
    (c) => nameOpt(c).option('--maxresults <n>', 'Maximum number of results to return.'),
    async (o) => {
      const s = await VaultSession.open(client(), o.vaultName);
      const all = (await s.all(`/secrets/${seg(o.name)}/versions`)).map((b) => secretOut(b, true));
      return o.maxresults ? all.slice(0, Number(o.maxresults)) : all;
    });

  leaf<{ vaultName: string; name: string; version?: string; enabled?: boolean; expires?: number; notBefore?: number; contentType?: string; tags?: string[] }>(
    secret, 'set-attributes', 'Updates the attributes associated with a specified secret in a given key vault.',
    (c) => nameOpt(c).option('-v, --version <version>', 'The secret version. If omitted, uses the latest version.')
      .option('--enabled <bool>', 'Enable the secret.', parseBool('--enabled'))
      .option('--expires <datetime>', 'Expiration UTC datetime (Y-m-d\'T\'H:M:S\'Z\').', unixTime('--expires'))
      .option('--not-before <datetime>', 'Key not usable before the provided UTC datetime (Y-m-d\'T\'H:M:S\'Z\').', unixTime('--not-before'))
      .option('--content-type <type>', 'Type of the secret value such as a password.')
      .option('--tags <tags...>', 'Space-separated tags: key[=value]. Use \'\' to clear existing tags.'),
    async (o) => {
      const s = await VaultSession.open(client(), o.vaultName);
      const tags = parseTags(o.tags);
      const attributes = { ...(o.enabled !== undefined ? { enabled: o.enabled } : {}), ...(o.expires !== undefined ? { exp: o.expires } : {}), ...(o.notBefore !== undefined ? { nbf: o.notBefore } : {}) };
      const body = { attributes, ...(tags ? { tags } : {}), ...(o.contentType !== undefined ? { contentType: o.contentType } : {}) };
      return secretOut(await s.call<Bundle>('PATCH', `/secrets/${seg(o.name)}/${o.version ? seg(o.version) : ''}`, body));
    });

  leaf<{ vaultName: string; name: string }>(secret, 'delete', 'Delete a secret (soft delete: recoverable for 90 days).', nameOpt,
    async (o) => secretOut(await (await VaultSession.open(client(), o.vaultName)).call<Bundle>('DELETE', `/secrets/${seg(o.name)}`)));

  leaf<{ vaultName: string; name: string }>(secret, 'show-deleted', 'Get the specified deleted secret.', nameOpt,
    async (o) => secretOut(await (await VaultSession.open(client(), o.vaultName)).call<Bundle>('GET', `/deletedsecrets/${seg(o.name)}`)));

  leaf<{ vaultName: string; name: string }>(secret, 'recover', 'Recover a deleted secret to its latest version.', nameOpt,
    async (o) => secretOut(await (await VaultSession.open(client(), o.vaultName)).call<Bundle>('POST', `/deletedsecrets/${seg(o.name)}/recover`)));

  leaf<{ vaultName: string; name: string }>(secret, 'purge', 'Permanently delete the specified secret.', nameOpt,
    async (o) => {
      await (await VaultSession.open(client(), o.vaultName)).call('DELETE', `/deletedsecrets/${seg(o.name)}`);
      return undefined;
    });

  leaf<{ vaultName: string; maxresults?: string }>(secret, 'list-deleted', 'Lists deleted secrets for the specified vault.',
    (c) => vaultOpt(c).option('--maxresults <n>', 'Maximum number of results to return.'),
    async (o) => {
      const s = await VaultSession.open(client(), o.vaultName);
      const all = (await s.all('/deletedsecrets')).map((b) => secretOut(b, true));
      return o.maxresults ? all.slice(0, Number(o.maxresults)) : all;
    });
}
