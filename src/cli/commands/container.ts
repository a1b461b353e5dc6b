// `berth container ...`: ACI's az container commands over Berth's container groups.
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import type { Command } from 'commander';
import { leaf, parseTags, type Io } from '../command.js';
import { flatten, type ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import type { GroupSpec } from '../../instances/spec.js';
import type { CreateFlags } from '../../instances/flags.js';
import { BerthError } from '../../lib/errors.js';
import { berthCaPem } from '../trust.js';
import { RAW_PROTOCOL } from '../../instances/exec-terminal.js';
import { assignRole, resolveRoleId } from './ad.js';

const PROVIDER = '/providers/Microsoft.ContainerInstance/containerGroups';
/** The api-version az 2.45 uses for flag-based container commands. */
const ACI_API = '2021-09-01';

type Group = Record<string, unknown> & { id: string; name: string; resourceGroup: string };

/** az's view of a container group: the SDK model flattened, containers too (containers[0].instanceView...). */
export function flattenGroup(r: Record<string, unknown>): Group {
  const g = flatten(r) as Group;
  const containers = g.containers as Array<{ name: string; properties: Record<string, unknown> }> | undefined;
  if (containers) {
    g.containers = containers.map((c) => {
      const p = c.properties ?? {};
      const env = (p.environmentVariables as Array<{ name: string; value?: string }> | undefined)?.map((e) => ({ name: e.name, secureValue: null, value: e.value ?? null }));
      return { name: c.name, ...p, ...(env ? { environmentVariables: env } : {}) };
    });
  }
  return g;
}

const pyFloat = (n: unknown) => (typeof n === 'number' ? (Number.isInteger(n) ? n.toFixed(1) : String(n)) : String(n ?? 0));

/** az's container table (azure-cli container/_format.py). */
export function containerGroupTable(v: unknown): unknown {
  return (Array.isArray(v) ? v : [v]).map((g: Record<string, any>) => {
    const containers = (g.containers ?? []) as Array<Record<string, any>>;
    const first = containers[0]?.resources?.requests ?? {};
    const ip = g.ipAddress as { ip?: string; type?: string; ports?: Array<{ port: number; hostPort?: number }> } | undefined;
    return {
      Name: g.name,
      ResourceGroup: g.resourceGroup,
      Status: g.instanceView?.state ?? g.provisioningState,
      Image: containers.map((c) => c.image).join(','),
      // What a user can connect to: the host port where Berth published the group's port on another one.
      'IP:ports': ip ? `${ip.ip ?? 'None'}:${(ip.ports ?? []).map((p) => p.hostPort ?? p.port).join(',')}` : '',
      Network: ip?.type ?? 'Private',
      'CPU/Memory': containers.length ? `${pyFloat(first.cpu)} core/${pyFloat(first.memoryInGB)} gb` : '',
      OsType: g.osType,
      Location: g.location,
    };
  });
}

function groupPath(c: ArmClient, rg: string, name: string): string {
  return c.sub(`/resourceGroups/${encodeURIComponent(rg)}${PROVIDER}/${encodeURIComponent(name)}`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const ch of process.stdin) chunks.push(Buffer.from(ch));
  return Buffer.concat(chunks).toString('utf8');
}

const userError = (e: unknown): never => {
  if (e instanceof BerthError) throw new CliError(e.message, 1);
  throw e;
};

/** Polls an Azure-AsyncOperation URL until the operation ends; throws its error when it failed. */
async function waitForOperation(c: ArmClient, url: string): Promise<void> {
  const u = new URL(url);
  u.searchParams.delete('api-version');
  const path = u.pathname + (u.search || '');
  // Short operations (a cached image, a small one) end within 0.15-0.3 s: poll every 50 ms for the
  // first two seconds (a status GET costs the server well under a millisecond), then every second, so
  // the CLI does not sit out most of an interval after the group runs.
  const started = Date.now();
  for (;;) {
    const delay = Date.now() - started < 2_000 ? 50 : 1_000;
    const op = (await c.request<{ status: string; error?: { code: string; message: string } }>('GET', path, undefined, { apiVersion: '2018-06-01' }))!;
    if (op.status === 'Succeeded') return;
    if (op.status === 'Failed' || op.status === 'Canceled') {
      const code = op.error?.code ?? 'DeploymentFailed';
      const message = op.error?.message ?? 'The container group deployment failed.';
      throw new CliError(`(${code}) ${message}\nCode: ${code}\nMessage: ${message}`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

interface CreateOpts extends Omit<CreateFlags, 'name' | 'image' | 'tags' | 'assignIdentity'> {
  resourceGroup: string;
  name?: string;
  image?: string;
  file?: string;
  wait: boolean;
  tags?: string[];
  assignIdentity?: string[] | true;
  scope?: string;
  role?: string;
}

const SYSTEM_IDENTITY = '[system]';

/** az's checks of --assign-identity with --scope/--role (azure-cli container _validators.validate_msi). */
function checkIdentityScope(o: CreateOpts): void {
  if (o.assignIdentity !== undefined) {
    const ids = o.assignIdentity === true ? [] : o.assignIdentity;
    if (!o.scope && o.role !== undefined) throw new CliError(`usage error: '--role ${o.role}' is not applicable as the '--scope' is not provided`);
    if (o.scope && ids.length > 0 && !ids.some((i) => i.toLowerCase() === SYSTEM_IDENTITY)) throw new CliError("usage error: '--scope'/'--role' is only applicable when assign system identity");
  } else if (o.scope || o.role !== undefined) {
    throw new CliError('usage error: --assign-identity [--scope SCOPE] [--role ROLE]');
  }
}

async function buildCreate(c: ArmClient, o: CreateOpts): Promise<{ name: string; body: Record<string, unknown>; apiVersion: string }> {
  // The group-spec parser (yaml and the schema) is loaded only by create.
  const [{ parseGroupFile, specToBody }, { specFromFlags }] = await Promise.all([import('../../instances/spec.js'), import('../../instances/flags.js')]);
  let spec: GroupSpec;
  let apiVersion = ACI_API;
  if (o.file !== undefined) {
    let text: string;
    if (o.file === '-') text = await readStdin();
    else {
      try { text = await readFile(o.file, 'utf8'); } catch { throw new CliError(`No such file or directory: ${o.file}`); }
    }
    try { spec = parseGroupFile(text); } catch (e) { return userError(e); }
    if (o.name && spec.name && o.name !== spec.name) throw new CliError('The name parameter and name from yaml definition must match.');
    if (!o.name && !spec.name) throw new CliError('The name of the container group is required');
    spec.name = o.name ?? spec.name;
    if (spec.apiVersion) apiVersion = spec.apiVersion;
    if (o.location) spec.location ??= o.location;
  } else {
    if (!o.name) throw new CliError('the following arguments are required: --name/-n', 2);
    if (!o.image) throw new CliError('the following arguments are required: --image (or --file)', 2);
    let acrIdentity = o.acrIdentity;
    if (acrIdentity && !acrIdentity.startsWith('/') && acrIdentity.toLowerCase() !== '[system]') {
      // az resolves an identity name in the group's resource group.
      const mi = (await c.request<{ id: string }>('GET', c.sub(`/resourcegroups/${encodeURIComponent(o.resourceGroup)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${encodeURIComponent(acrIdentity)}`)))!;
      acrIdentity = mi.id;
    }
    const assign = o.assignIdentity === true ? [] : o.assignIdentity;
    try {
      const { assignIdentity: _a, tags, file: _f, wait: _w, resourceGroup: _g, scope: _s, role: _r, ...flags } = o;
      spec = specFromFlags({ ...flags, name: o.name, image: o.image, ...(acrIdentity ? { acrIdentity } : {}), ...(assign ? { assignIdentity: assign } : {}),
        ...(tags ? { tags: parseTags(tags)! } : {}) });
    } catch (e) { return userError(e); }
  }
  if (!spec.location) {
    const rg = (await c.request<{ location: string }>('GET', c.sub(`/resourcegroups/${encodeURIComponent(o.resourceGroup)}`)))!;
    spec.location = rg.location;
  }
  return { name: spec.name!, body: specToBody(spec), apiVersion };
}

export function registerContainerCommands(program: Command, client: () => ArmClient): void {
  const container = program.command('container').description('Manage container groups (Azure Container Instances compatible).');

  leaf<CreateOpts>(container, 'create', 'Create a container group.',
    (c) => c.requiredOption('-g, --resource-group <group>', 'Name of resource group.')
      .option('-n, --name <name>', 'The name of the container group.')
      .option('--image <image>', 'The container image name.')
      .option('-f, --file <file>', 'The path to the YAML or JSON file describing the group; - reads standard input.')
      .option('-l, --location <location>', 'Location. Defaults to the resource group\'s.')
      .option('--registry-login-server <server>', 'The container image registry login server.')
      .option('--registry-username <user>', 'The username to log in to the container image registry server.')
      .option('--registry-password <password>', 'The password to log in to the container image registry server.')
      .option('--assign-identity [identities...]', 'Space-separated identities: user-assigned identity ids, or [system] for the system-assigned identity.')
      .option('--scope <scope>', 'Scope that the system assigned identity can access (a role assignment is made for it there).')
      .option('--role <role>', 'Role name or id the system assigned identity will have at --scope. Default: Contributor.')
      .option('--acr-identity <identity>', 'The identity (id or name) with which to pull from the registry.')
      .option('--command-line <command>', 'The command line to run when the container is started, e.g. "/bin/sh -c \'echo hi\'".')
      .option('-e, --environment-variables <vars...>', 'A list of environment variables for the container: space-separated KEY=VALUE.')
      .option('--secure-environment-variables <vars...>', 'A list of secure environment variables: space-separated KEY=VALUE.')
      .option('--ports <ports...>', 'The ports to open. Default: 80.')
      .option('--protocol <protocol>', 'The network protocol to use: TCP, UDP.')
      .option('--ip-address <type>', 'The IP address type of the container group: Public, Private.')
      .option('--dns-name-label <label>', 'The dns name label for the container group with public IP.')
      .option('--cpu <cpu>', 'The required number of CPU cores of the containers. Default: 1.')
      .option('--memory <gb>', 'The required memory of the containers in GB. Default: 1.5.')
      .option('--restart-policy <policy>', 'Restart policy for all containers within the container group: Always, Never, OnFailure.')
      .option('--os-type <type>', 'The OS type of the containers: Linux.')
      .option('--sku <sku>', 'The SKU of the container group: Standard, Dedicated, Confidential.')
      .option('--tags <tags...>', 'Space-separated tags: key[=value].')
      .option('--no-wait', 'Do not wait for the long-running operation to finish.'),
    async (o, io) => {
      const c = client();
      if (o.file === undefined) checkIdentityScope(o);
      const { name, body, apiVersion } = await buildCreate(c, o);
      // The role and the scope are checked before the group is made, so a typo leaves nothing behind.
      const scope = o.file === undefined && o.assignIdentity !== undefined && o.scope ? o.scope.replace(/\/+$/, '') : undefined;
      const roleId = scope ? await resolveRoleId(c, o.role ?? 'Contributor', scope) : undefined;
      let asyncUrl: string | undefined;
      const path = groupPath(c, o.resourceGroup, name);
      await c.request('PUT', path, body, { apiVersion, onHeaders: (h) => { asyncUrl = h.get('azure-asyncoperation') ?? undefined; } });
      if (o.wait && asyncUrl) await waitForOperation(c, asyncUrl);
      if (scope && roleId) {
        // az's one step: the group's system identity gets the role at the scope once the group exists.
        const g = (await c.request<{ identity?: { principalId?: string } }>('GET', path, undefined, { apiVersion: ACI_API }))!;
        const principalId = g.identity?.principalId;
        if (!principalId) throw new CliError(`Container group '${name}' has no system-assigned identity to give the role '${o.role ?? 'Contributor'}'.`);
        await assignRole(c, principalId, roleId, scope, io.warn);
      }
      if (!o.wait) return undefined;
      return flattenGroup((await c.request<Record<string, unknown>>('GET', path, undefined, { apiVersion: ACI_API }))!);
    }, { table: containerGroupTable });

  const ident = (c: Command) => c.requiredOption('-g, --resource-group <group>', 'Name of resource group.').requiredOption('-n, --name <name>', 'The name of the container group.');
  leaf<{ resourceGroup: string; name: string }>(container, 'show', 'Get the details of a container group.', ident,
    async (o) => { const c = client(); return flattenGroup((await c.request<Record<string, unknown>>('GET', groupPath(c, o.resourceGroup, o.name), undefined, { apiVersion: ACI_API }))!); },
    { table: containerGroupTable });

  leaf<{ resourceGroup?: string }>(container, 'list', 'List container groups.',
    (c) => c.option('-g, --resource-group <group>', 'Name of resource group.'),
    async (o) => {
      const c = client();
      const path = o.resourceGroup ? c.sub(`/resourceGroups/${encodeURIComponent(o.resourceGroup)}${PROVIDER}`) : c.sub(PROVIDER);
      return (await c.request<{ value: Array<Record<string, unknown>> }>('GET', path, undefined, { apiVersion: ACI_API }))!.value.map(flattenGroup);
    }, { table: containerGroupTable });

  leaf<{ resourceGroup: string; name: string; file: string }>(container, 'export', 'Export a container group in YAML format (what container create --file reads).',
    (c) => ident(c).requiredOption('-f, --file <file>', 'The file path to export the container group.'),
    async (o, io) => {
      const c = client();
      const r = (await c.request<Record<string, unknown>>('GET', groupPath(c, o.resourceGroup, o.name), undefined, { apiVersion: ACI_API }))!;
      const [{ exportGroup }, { stringify }, { writeFileAtomic }] = await Promise.all([import('../../instances/export.js'), import('yaml'), import('../../lib/fs-atomic.js')]);
      const { document, omitted } = exportGroup(r, ACI_API);
      try {
        await writeFileAtomic(o.file, stringify(document, { sortMapEntries: true }));
      } catch (e) {
        throw new CliError(`Cannot write ${o.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const missing = [
        ...(omitted.secureEnvironmentVariables.length ? [`no value for the secure environment variable(s) ${omitted.secureEnvironmentVariables.join(', ')}`] : []),
        ...(omitted.registryPasswords.length ? [`no password for the registry server(s) ${omitted.registryPasswords.join(', ')}`] : []),
      ];
      if (missing.length) io.warn(`${o.file} has ${missing.join(' and ')}: no GET returns them. Add them (secureValue, password) before berth container create --file.`);
      return undefined;
    });

  leaf<{ resourceGroup: string; name: string; yes?: boolean }>(container, 'delete', 'Delete a container group.',
    (c) => ident(c).option('-y, --yes', 'Do not prompt for confirmation.'),
    async (o) => {
      const c = client();
      const r = await c.request<Record<string, unknown>>('DELETE', groupPath(c, o.resourceGroup, o.name), undefined, { apiVersion: ACI_API });
      return r ? flattenGroup(r) : undefined;
    });

  for (const [verb, text] of [['restart', 'Restart all containers in a container group.'], ['stop', 'Stop all containers in a container group.'], ['start', 'Start all containers in a container group.']] as const) {
    leaf<{ resourceGroup: string; name: string; wait: boolean }>(container, verb, text,
      (c) => ident(c).option('--no-wait', 'Do not wait for the long-running operation to finish.'),
      async (o) => {
        const c = client();
        let asyncUrl: string | undefined;
        await c.request('POST', `${groupPath(c, o.resourceGroup, o.name)}/${verb}`, undefined, { apiVersion: ACI_API, onHeaders: (h) => { asyncUrl = h.get('azure-asyncoperation') ?? undefined; } });
        if (o.wait && asyncUrl && verb !== 'restart') await waitForOperation(c, asyncUrl);
        return undefined;
      });
  }

  const pickContainer = (g: Group, name?: string): string => {
    const cs = (g.containers as Array<{ name: string }>) ?? [];
    if (name) {
      if (!cs.some((x) => x.name === name)) throw new CliError(`The container '${name}' does not exist in container group '${g.name}'. Its containers: ${cs.map((x) => x.name).join(', ')}.`, 3);
      return name;
    }
    return cs[0]!.name;
  };

  leaf<{ resourceGroup: string; name: string; containerName?: string; follow?: boolean; tail?: string }>(container, 'logs', 'Examine the logs for a container in a container group.',
    (c) => ident(c).option('--container-name <name>', 'The container name to tail the logs. If omitted, the first container in the container group will be chosen.')
      .option('--follow', 'Indicate to stream the tailing logs.').option('--tail <lines>', 'Only the last N lines (Berth).'),
    async (o, io) => {
      const c = client();
      const path = groupPath(c, o.resourceGroup, o.name);
      const g = flattenGroup((await c.request<Record<string, unknown>>('GET', path, undefined, { apiVersion: ACI_API }))!);
      const name = pickContainer(g, o.containerName);
      const logsPath = `${path}/containers/${encodeURIComponent(name)}/logs${o.tail !== undefined ? `?tail=${encodeURIComponent(o.tail)}` : ''}`;
      const read = async () => (await c.request<{ content: string }>('GET', logsPath, undefined, { apiVersion: ACI_API }))!.content ?? '';
      if (!o.follow) {
        io.stdout(await read());
        return undefined;
      }
      await follow(c, io, path, read, name, String(g.restartPolicy ?? 'Always'));
      return undefined;
    });

  leaf<{ resourceGroup: string; name: string; containerName?: string; execCommand: string }>(container, 'exec', 'Execute a command from within a running container of a container group.',
    (c) => ident(c).requiredOption('--exec-command <command>', 'The command to run from within the container (Berth also takes arguments: "sh -c \'echo hi\'").')
      .option('--container-name <name>', 'The container name where to execute the command. Can be omitted for container groups with only one container.'),
    async (o) => {
      const c = client();
      const path = groupPath(c, o.resourceGroup, o.name);
      const g = flattenGroup((await c.request<Record<string, unknown>>('GET', path, undefined, { apiVersion: ACI_API }))!);
      if (!o.containerName && (g.containers as unknown[]).length > 1) throw new CliError('--container-name required when container group has more than one container.');
      const name = pickContainer(g, o.containerName);
      const cols = process.stdout.columns ?? 80;
      const rows = process.stdout.rows ?? 24;
      const s = (await c.request<{ webSocketUri: string; password: string }>('POST', `${path}/containers/${encodeURIComponent(name)}/exec`, { command: o.execCommand, terminalSize: { rows, cols } }, { apiVersion: ACI_API }))!;
      const code = await streamExec(s.webSocketUri, s.password);
      if (code !== 0) throw new CliError(`The command exited with code ${code}.`, code);
      return undefined;
    });

  leaf<{ resourceGroup: string; name: string; containerName?: string }>(container, 'attach', 'Attach local standard output and error streams to a container in a container group.',
    (c) => ident(c).option('--container-name <name>', 'The container to attach to. If omitted, the first container in the container group will be chosen.'),
    async (o, io) => {
      const c = client();
      const path = groupPath(c, o.resourceGroup, o.name);
      let last = '';
      const printed = new Set<string>();
      for (;;) {
        const g = flattenGroup((await c.request<Record<string, unknown>>('GET', path, undefined, { apiVersion: ACI_API }))!);
        const name = pickContainer(g, o.containerName);
        const cont = (g.containers as Array<{ name: string; instanceView?: { currentState?: { state: string }; events?: Array<{ count: number; lastTimestamp: string; message: string }> } }>).find((x) => x.name === name)!;
        const state = cont.instanceView?.currentState?.state ?? 'Unknown';
        if (state !== last) { io.stdout(`Container '${name}' is in state '${state}'...\n`); last = state; }
        for (const e of [...(cont.instanceView?.events ?? [])].sort((a, b) => a.lastTimestamp.localeCompare(b.lastTimestamp))) {
          const line = `(count: ${e.count}) (last timestamp: ${e.lastTimestamp}) ${e.message}`;
          if (!printed.has(line)) { printed.add(line); io.stdout(line + '\n'); }
        }
        if (state === 'Running' || state === 'Terminated') {
          io.stdout('\nStart streaming logs:\n');
          const logsPath = `${path}/containers/${encodeURIComponent(name)}/logs`;
          await follow(c, io, path, async () => (await c.request<{ content: string }>('GET', logsPath, undefined, { apiVersion: ACI_API }))!.content ?? '', name, String(g.restartPolicy));
          return undefined;
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    });
}

/** Prints new log output every 2 s (as az does) until the group stops running. */
async function follow(c: ArmClient, io: Io, path: string, read: () => Promise<string>, name: string, policy: string): Promise<void> {
  let printed = 0;
  for (;;) {
    const text = await read();
    if (text.length < printed) {
      io.warn(`you're having '--restart-policy=${policy}'; the container '${name}' was just restarted; the tail of the current log might be missing. Exiting...`);
      return;
    }
    io.stdout(text.slice(printed));
    printed = text.length;
    const g = (await c.request<{ properties: { instanceView?: { state?: string } } }>('GET', path, undefined, { apiVersion: ACI_API }))!;
    const st = g.properties.instanceView?.state;
    if (st === 'Succeeded' || st === 'Failed' || st === 'Stopped') {
      const rest = await read();
      io.stdout(rest.slice(printed));
      return;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * Runs an exec session as az does (password first, then stdin, every message is output), in Berth's raw
 * mode: binary frames carry the bytes as they are, and an empty message ends the command's stdin (a
 * local terminal stays in cooked mode: the command has no terminal, so the local one echoes and edits
 * lines, and ^D ends input). Resolves with the exit code from the close reason ("exit code N").
 */
async function streamExec(uri: string, password: string): Promise<number> {
  const { WebSocket } = await import('ws');
  const pem = uri.startsWith('wss:') ? berthCaPem() : undefined;
  const ws = new WebSocket(uri, RAW_PROTOCOL, pem ? { ca: [...rootCertificates, pem] } : {});
  const stdin = process.stdin;
  const done = new Promise<number>((resolve, reject) => {
    ws.on('error', (e) => reject(new CliError(`Cannot connect to the exec websocket ${new URL(uri).origin}: ${e.message}`)));
    ws.on('open', () => {
      ws.send(password);
      // One chunk in flight at a time: a large input waits for the socket instead of piling up in memory.
      stdin.on('data', (chunk: Buffer) => {
        if (!chunk.length) return;
        stdin.pause();
        ws.send(chunk, () => stdin.resume());
      });
      stdin.on('end', () => { if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.alloc(0)); });
    });
    // Bytes straight to stdout (Io carries strings; a command's output need not be text).
    ws.on('message', (data: Buffer) => process.stdout.write(data));
    ws.on('close', (code, why) => {
      const text = why.toString('utf8');
      const exit = /^exit code (\d+)$/.exec(text);
      if (code === 1000 && exit) resolve(Number(exit[1]));
      else reject(new CliError(text || `The exec session closed (websocket code ${code}).`));
    });
  });
  try {
    return await done;
  } finally {
    // The command may end while stdin is still open (a terminal, a pipe nobody closes): stop reading it.
    stdin.pause();
    stdin.destroy();
  }
}
