import type { Command } from 'commander';
import { leaf, parseBool, parseTags } from '../command.js';
import { tableDate } from '../output.js';
import { flatten, type ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import type { RegistryClient } from '../../client/registry-client.js';
import { exchangeAccessToken, exchangeUrl } from '../../keychain/acr-exchange.js';

/** The registry data-plane client (and undici under it), loaded only by the commands that talk to a registry. */
const registryClient = () => import('../../client/registry-client.js');

type Reg = Record<string, unknown> & { id: string; name: string; loginServer: string; resourceGroup: string };

const PROVIDER = '/providers/Microsoft.ContainerRegistry/registries';

/** Finds a registry by name (and resource group, when given), as az does. */
export async function findRegistry(c: ArmClient, name: string, group?: string): Promise<Reg> {
  if (group) {
    return flatten((await c.request('GET', c.sub(`/resourceGroups/${encodeURIComponent(group)}${PROVIDER}/${encodeURIComponent(name)}`)))! as Record<string, unknown>) as Reg;
  }
  const all = (await c.request<{ value: Array<Record<string, unknown>> }>('GET', c.sub(PROVIDER)))!.value.map(flatten) as Reg[];
  const r = all.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!r) throw new CliError(`The resource with name '${name}' and type 'Microsoft.ContainerRegistry/registries' could not be found in subscription '${c.subscriptionId}'.`, 3);
  return r;
}

function regPath(r: Reg, suffix = ''): string {
  return `${r.id}${suffix}`;
}

/** A data-plane session with the CLI's own identity: Entra token → /oauth2/exchange → refresh token. */
export async function registrySession(c: ArmClient, r: Reg): Promise<RegistryClient> {
  const { RegistryClient } = await registryClient();
  return new RegistryClient(r.loginServer, { kind: 'refreshToken', refreshToken: await exchangeForRefreshToken(c, r.loginServer) });
}

/** The CLI identity's Entra token exchanged at the registry's /oauth2/exchange for a registry refresh token. */
export async function exchangeForRefreshToken(c: ArmClient, loginServer: string): Promise<string> {
  const aad = await c.accessToken();
  const url = exchangeUrl(loginServer);
  let answer;
  try {
    answer = await exchangeAccessToken({ url, service: loginServer, tenant: c.tenantId, accessToken: aad });
  } catch (e) {
    throw new CliError(`Could not connect to the registry login server '${loginServer}'. Please verify that the registry exists and the URL '${url.replace(/\/oauth2\/exchange$/, '')}' is reachable from your environment. (${(e as { code?: string }).code ?? (e as Error).message})`);
  }
  if (answer.status !== 200 || !answer.refreshToken) throw new CliError(`Could not get a registry token from ${loginServer} (HTTP ${answer.status}).`);
  return answer.refreshToken;
}

async function dataPlane<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof (await registryClient()).RegistryHttpError) {
      const msg = e.message.replace(/^[^:]+: (?:[a-z ]+: )?/, '');
      throw new CliError(`Error: ${msg}.`, e.status === 404 ? 3 : 1);
    }
    throw e;
  }
}

function parseImage(image: string): { repo: string; ref: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { repo: image.slice(0, at), ref: image.slice(at + 1) };
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/')) return { repo: image.slice(0, colon), ref: image.slice(colon + 1) };
  return { repo: image, ref: 'latest' };
}

const registryTable = (v: unknown) => (v as Reg[] | Reg) && (Array.isArray(v) ? v : [v]).map((r) => ({
  NAME: r.name, 'RESOURCE GROUP': r.resourceGroup, LOCATION: r.location, SKU: (r.sku as { name: string })?.name,
  'LOGIN SERVER': r.loginServer, 'CREATION DATE': tableDate(r.creationDate), 'ADMIN ENABLED': r.adminUserEnabled,
}));

export function registerAcrCommands(program: Command, client: () => ArmClient): void {
  const acr = program.command('acr').description('Manage private registries with Berth Container Registry.');

  leaf<{ name: string; resourceGroup: string; sku: string; location?: string; adminEnabled?: boolean; tags?: string[] }>(
    acr, 'create', 'Create a container registry.',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry (5-50 alphanumeric characters).')
      .requiredOption('-g, --resource-group <group>', 'Name of resource group.')
      .requiredOption('--sku <sku>', 'The SKU of the container registry: Basic, Standard, Premium.')
      .option('-l, --location <location>', 'Location. Defaults to the resource group\'s location.')
      .option('--admin-enabled <bool>', 'Indicates whether the admin user is enabled.', parseBool('--admin-enabled'))
      .option('--tags <tags...>', 'Space-separated tags: key[=value].'),
    async (o) => {
      const c = client();
      const body = {
        sku: { name: o.sku }, ...(o.location ? { location: o.location } : {}), tags: parseTags(o.tags) ?? {},
        properties: { adminUserEnabled: o.adminEnabled ?? false },
      };
      return flatten((await c.request('PUT', c.sub(`/resourceGroups/${encodeURIComponent(o.resourceGroup)}${PROVIDER}/${encodeURIComponent(o.name)}`), body))! as Record<string, unknown>);
    }, { table: registryTable });

  leaf<{ name: string; resourceGroup?: string }>(acr, 'show', 'Get the details of a container registry.',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => findRegistry(client(), o.name, o.resourceGroup), { table: registryTable });

  leaf<{ resourceGroup?: string }>(acr, 'list', 'List container registries.',
    (c) => c.option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const path = o.resourceGroup ? c.sub(`/resourceGroups/${encodeURIComponent(o.resourceGroup)}${PROVIDER}`) : c.sub(PROVIDER);
      return (await c.request<{ value: Array<Record<string, unknown>> }>('GET', path))!.value.map(flatten);
    }, { table: registryTable });

  leaf<{ name: string; resourceGroup?: string; yes?: boolean }>(acr, 'delete', 'Delete a container registry.',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.')
      .option('-y, --yes', 'Do not prompt for confirmation.'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.name, o.resourceGroup);
      await c.request('DELETE', regPath(r));
      return undefined;
    });

  leaf<{ name: string; resourceGroup?: string; adminEnabled?: boolean; sku?: string; tags?: string[] }>(acr, 'update', 'Update a container registry.',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.')
      .option('--admin-enabled <bool>', 'Indicates whether the admin user is enabled.', parseBool('--admin-enabled'))
      .option('--sku <sku>', 'The SKU of the container registry.').option('--tags <tags...>', 'Space-separated tags: key[=value].'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.name, o.resourceGroup);
      const body: Record<string, unknown> = {};
      if (o.adminEnabled !== undefined) body.properties = { adminUserEnabled: o.adminEnabled };
      if (o.sku) body.sku = { name: o.sku };
      const tags = parseTags(o.tags);
      if (tags) body.tags = tags;
      return flatten((await c.request('PATCH', regPath(r), body))! as Record<string, unknown>);
    }, { table: registryTable });

  const cred = acr.command('credential').description('Manage login credentials for the admin user.');
  leaf<{ name: string; resourceGroup?: string }>(cred, 'show', 'Get the login credentials for a container registry.',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.name, o.resourceGroup);
      return c.request('POST', regPath(r, '/listCredentials'));
    }, { table: (v) => { const x = v as { username: string; passwords: Array<{ value: string }> }; return [{ USERNAME: x.username, PASSWORD: x.passwords[0]?.value, PASSWORD2: x.passwords[1]?.value }]; } });
  leaf<{ name: string; resourceGroup?: string; passwordName: string }>(cred, 'renew', 'Regenerate login credentials for a container registry.',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.')
      .requiredOption('--password-name <name>', 'The name of password to regenerate: password, password2.'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.name, o.resourceGroup);
      return c.request('POST', regPath(r, '/regenerateCredential'), { name: o.passwordName });
    });

  leaf<{ name: string; resourceGroup?: string }>(acr, 'show-usage', 'Get the storage usage of an Azure Container Registry.',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.name, o.resourceGroup);
      return c.request('GET', regPath(r, '/listUsages'));
    }, { table: (v) => ((v as { value?: Array<Record<string, unknown>> }).value ?? []).map((u) => ({ NAME: u.name, LIMIT: u.limit, 'CURRENT VALUE': u.currentValue, UNIT: u.unit })) });

  leaf<{ name: string; resourceGroup?: string }>(acr, 'gc', 'Remove blobs that no manifest references (Berth).',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.').option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const r = await findRegistry(c, o.name, o.resourceGroup);
      return c.request('POST', regPath(r, '/garbageCollect'));
    });

  // ---- repository (data plane)
  const repo = acr.command('repository').description('Manage repositories (image names) for a container registry.');
  const withRegistry = (c: Command) => c.requiredOption('-n, --name <name>', 'The name of the container registry.')
    .option('-g, --resource-group <group>', 'Name of resource group.')
    .option('--username <u>', 'The username used to log into the registry (default: the CLI\'s identity).')
    .option('--password <p>', 'The password used to log into the registry.');
  const session = async (o: { name: string; resourceGroup?: string; username?: string; password?: string }) => {
    const c = client();
    const r = await findRegistry(c, o.name, o.resourceGroup);
    if (o.username) {
      if (!o.password) throw new CliError('Please specify both username and password.', 2);
      const { RegistryClient } = await registryClient();
      return { r, rc: new RegistryClient(r.loginServer, { kind: 'basic', username: o.username, password: o.password }) };
    }
    return { r, rc: await registrySession(c, r) };
  };

  leaf<{ name: string; top?: string }>(repo, 'list', 'List repositories in a container registry.',
    (c) => withRegistry(c).option('--top <n>', 'Limit the number of items in the results.'),
    async (o) => {
      const { rc } = await session(o);
      return dataPlane(async () => {
        const out: string[] = [];
        let path: string | undefined = `/v2/_catalog?n=${o.top ?? 100}`;
        while (path) {
          const { body, headers } = await rc.getJson<{ repositories: string[] }>(path, 'registry:catalog:*');
          out.push(...body.repositories);
          const link = headers.link as string | undefined;
          path = !o.top && link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
        }
        return out;
      });
    });

  type TagDetail = { name: string; digest: string; createdTime: string; lastUpdateTime: string };
  leaf<{ name: string; repository: string; detail?: boolean; top?: string; orderby?: string }>(repo, 'show-tags', 'Show tags for a repository in a container registry.',
    (c) => withRegistry(c).requiredOption('--repository <repo>', 'The name of the repository.').option('--detail', 'Show detailed information.')
      .option('--top <n>', 'Limit the number of items in the results.').option('--orderby <order>', 'Order the items in the results: time_desc, time_asc.'),
    async (o) => {
      const { rc } = await session(o);
      const order = o.orderby === 'time_desc' ? '&orderby=timedesc' : o.orderby === 'time_asc' ? '&orderby=timeasc' : '';
      return dataPlane(async () => {
        const { body } = await rc.getJson<{ tags: TagDetail[] }>(`/acr/v1/${encodeURIComponent(o.repository)}/_tags?n=${o.top ?? 1000}${order}`, `repository:${o.repository}:metadata_read`);
        return o.detail ? body.tags : body.tags.map((t) => t.name);
      });
    });

  leaf<{ name: string; repository: string; detail?: boolean; top?: string; orderby?: string }>(repo, 'show-manifests', 'Show manifests of a repository in a container registry.',
    (c) => withRegistry(c).requiredOption('--repository <repo>', 'The name of the repository.').option('--detail', 'Show detailed information.')
      .option('--top <n>', 'Limit the number of items in the results.').option('--orderby <order>', 'Order the items in the results: time_desc, time_asc.'),
    async (o) => {
      const { rc } = await session(o);
      const order = o.orderby === 'time_desc' ? '?orderby=timedesc' : o.orderby === 'time_asc' ? '?orderby=timeasc' : '';
      return dataPlane(async () => {
        const { body } = await rc.getJson<{ manifests: Array<{ digest: string; tags: string[]; lastUpdateTime: string }> }>(`/acr/v1/${encodeURIComponent(o.repository)}/_manifests${order}`, `repository:${o.repository}:metadata_read`);
        let list = body.manifests;
        if (o.top) list = list.slice(0, Number(o.top));
        return o.detail ? list : list.map((m) => ({ digest: m.digest, tags: m.tags, timestamp: m.lastUpdateTime }));
      });
    });

  leaf<{ name: string; repository?: string; image?: string }>(repo, 'show', 'Get the attributes of a repository or image.',
    (c) => withRegistry(c).option('--repository <repo>', 'The name of the repository.').option('--image <image>', 'An image: repository:tag or repository@digest.'),
    async (o) => {
      if (!o.repository && !o.image) throw new CliError('Usage error: specify --repository or --image.', 2);
      const { rc } = await session(o);
      return dataPlane(async () => {
        if (o.image) {
          const { repo: rp, ref } = parseImage(o.image);
          if (ref.includes(':')) return (await rc.getJson<{ manifest: unknown }>(`/acr/v1/${encodeURIComponent(rp)}/_manifests/${ref}`, `repository:${rp}:metadata_read`)).body.manifest;
          return (await rc.getJson<{ tag: unknown }>(`/acr/v1/${encodeURIComponent(rp)}/_tags/${ref}`, `repository:${rp}:metadata_read`)).body.tag;
        }
        return (await rc.getJson(`/acr/v1/${encodeURIComponent(o.repository!)}`, `repository:${o.repository}:metadata_read`)).body;
      });
    });

  type Attrs = { deleteEnabled?: boolean; listEnabled?: boolean; readEnabled?: boolean; writeEnabled?: boolean };
  leaf<{ name: string; repository?: string; image?: string } & Attrs>(repo, 'update', 'Update the attributes of a repository or image (lock it against writes, deletes, reads or listing).',
    (c) => withRegistry(c).option('--repository <repo>', 'The name of the repository.').option('--image <image>', 'An image: repository:tag or repository@digest.')
      .option('--delete-enabled <bool>', 'Whether it may be deleted.', parseBool('--delete-enabled'))
      .option('--list-enabled <bool>', 'Whether it is listed.', parseBool('--list-enabled'))
      .option('--read-enabled <bool>', 'Whether it may be read (pulled).', parseBool('--read-enabled'))
      .option('--write-enabled <bool>', 'Whether it may be written (pushed over, or deleted).', parseBool('--write-enabled')),
    async (o) => {
      if (!o.repository && !o.image) throw new CliError('Usage error: specify --repository or --image.', 2);
      const attrs: Attrs = {};
      for (const k of ['deleteEnabled', 'listEnabled', 'readEnabled', 'writeEnabled'] as const) if (o[k] !== undefined) attrs[k] = o[k];
      if (Object.keys(attrs).length === 0) throw new CliError('Usage error: specify at least one of --delete-enabled, --list-enabled, --read-enabled, --write-enabled.', 2);
      const { rc } = await session(o);
      return dataPlane(async () => {
        let path: string;
        let rp: string;
        if (o.image) {
          const img = parseImage(o.image);
          rp = img.repo;
          path = `/acr/v1/${encodeURIComponent(rp)}/${img.ref.includes(':') ? '_manifests' : '_tags'}/${img.ref}`;
        } else {
          rp = o.repository!;
          path = `/acr/v1/${encodeURIComponent(rp)}`;
        }
        const res = await rc.send('PATCH', path, `repository:${rp}:metadata_read,metadata_write`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(attrs) });
        await (await registryClient()).expectOk(res, rc.loginServer);
        return res.body.json();
      });
    });

  leaf<{ name: string; repository?: string; image?: string; yes?: boolean }>(repo, 'delete', 'Delete a repository or image in a container registry.',
    (c) => withRegistry(c).option('--repository <repo>', 'The name of the repository to delete.').option('--image <image>', 'The image to delete: repository:tag or repository@digest (deletes the manifest and every tag on it).')
      .option('-y, --yes', 'Do not prompt for confirmation.'),
    async (o, io) => {
      if (!o.repository && !o.image) throw new CliError('Usage error: specify --repository or --image.', 2);
      if (!o.yes && !process.stdin.isTTY) {
        throw new CliError('Deleting needs confirmation: run again with --yes.', 2);
      }
      const { rc } = await session(o);
      return dataPlane(async () => {
        if (o.image) {
          const { repo: rp, ref } = parseImage(o.image);
          let digest = ref;
          if (!ref.includes(':')) {
            digest = (await rc.getJson<{ tag: { digest: string } }>(`/acr/v1/${encodeURIComponent(rp)}/_tags/${ref}`, `repository:${rp}:metadata_read`)).body.tag.digest;
          }
          const res = await rc.send('DELETE', `/v2/${rp}/manifests/${digest}`, `repository:${rp}:delete`);
          await (await registryClient()).expectOk(res, rc.loginServer);
          await res.body.dump();
          return undefined;
        }
        const res = await rc.send('DELETE', `/acr/v1/${encodeURIComponent(o.repository!)}`, `repository:${o.repository}:delete`);
        await (await registryClient()).expectOk(res, rc.loginServer);
        void io;
        return undefined;
      });
    });
}
