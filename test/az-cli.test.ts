// The real az CLI (Debian's azure-cli 2.45, unmodified) against a real `berth serve` child process:
// `eval "$(berth cloud register)"` in a throw-away AZURE_CONFIG_DIR, `az login --service-principal`,
// then the seeds' command sequences (002 admin user, 003 service principal + vault, 004 identity and
// repository token, 001's registry steps) with az, the group answering on its port, the token pulling
// only its repository, the service principal pulling and unable to push. Every az call runs with
// --debug and the hosts it connected to are checked: az must never leave this machine.
// The commands Debian's az 2.45 cannot run (its own packaging faults) are checked to fail as the
// README says, so that the list stays true.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeChild, stopServeChild } from './helpers/serve-child.js';
import { runCli, runProcess, which } from './helpers/berth.js';
import { busyboxLayer, busyboxPath, imageWorkDir } from './helpers/runtime-images.js';
import { freeLoopbackPort } from '../src/net/listeners.js';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';

const skip = which('az') ? undefined : 'the az CLI is not installed (apt-get install azure-cli; scripts/install.sh does)';
if (skip) console.log(`# skipping az CLI tests: ${skip}`);
const noRuntime = skip ?? (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed');
if (!skip && noRuntime) console.log(`# skipping az container tests: ${noRuntime}`);

const RG = 'azrg';
const ACR = 'azregistry';
let dataDir: string;
let work: string;
let server: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;
let script: string;
const hostsSeen = new Set<string>();

interface Run { code: number; stdout: string; stderr: string }

function sh(command: string, extraEnv: NodeJS.ProcessEnv = {}, input = ''): Promise<Run> {
  return runProcess('bash', ['-c', command], { env: { ...env, ...extraEnv }, input, timeoutMs: 300_000 });
}

const q = (s: string) => `'${s.replace(/'/g, `'"'"'`)}'`;

/**
 * Runs az (with the cloud script's environment and --debug), records the hosts it connected to.
 * --only-show-errors cannot go with --debug, so it is dropped (az's warnings land in stderr anyway).
 */
async function azRun(...args: string[]): Promise<Run> {
  const r = await sh(`${script}\naz ${args.filter((a) => a !== '--only-show-errors').map(q).join(' ')} --debug`);
  for (const m of r.stderr.matchAll(/Starting new HTTPS? connection \(\d+\): ([^\s:]+)(?::\d+)?/g)) hostsSeen.add(m[1]!);
  return r;
}

const errorLines = (stderr: string) => stderr.split('\n').filter((l) => !l.startsWith('DEBUG:') && !l.startsWith('INFO:') && l.trim()).join('\n');

async function az(...args: string[]): Promise<string> {
  const r = await azRun(...args);
  if (r.code !== 0) throw new Error(`az ${args.join(' ')} exited ${r.code}:\n${errorLines(r.stderr).slice(-3000)}`);
  return r.stdout.trim();
}

async function berth(...args: string[]): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

before(async () => {
  if (skip) return;
  dataDir = await mkdtemp(join(tmpdir(), 'berth-az-'));
  const port = await freeLoopbackPort();
  env = {
    ...process.env, BERTH_SERVER: `http://127.0.0.1:${port}`, BERTH_DATA_DIR: dataDir, BERTH_CONFIG_DIR: join(dataDir, 'cli-config'),
    AZURE_CONFIG_DIR: join(dataDir, 'azure'),
  };
  server = (await startServeChild(['--data-dir', dataDir, '--port', String(port)], env)).child;
  const reg = await runCli(['cloud', 'register'], env);
  assert.equal(reg.code, 0, reg.stderr);
  script = reg.stdout;
  const sel = await sh(`${script}\naz cloud show --query "{name:name, arm:endpoints.resourceManager, ad:endpoints.activeDirectory}" -o json`);
  assert.equal(sel.code, 0, sel.stderr);
  assert.deepEqual(JSON.parse(sel.stdout), { name: 'Berth', arm: `https://localhost:${port}/`, ad: `https://localhost:${port}/adfs` });
  assert.ok(existsSync(join(dataDir, 'azure', 'clouds.config')), 'the cloud is registered in AZURE_CONFIG_DIR');
  // az logs in as a service principal that berth created (Owner on the subscription, as a user's admin would be)
  const sub = await berth('account', 'show', '--query', 'id', '-o', 'tsv');
  const sp = JSON.parse(await berth('ad', 'sp', 'create-for-rbac', '-n', 'az-admin', '--role', 'Owner', '--scopes', `/subscriptions/${sub}`)) as { appId: string; password: string; tenant: string };
  const login = JSON.parse(await az('login', '--service-principal', '-u', sp.appId, '-p', sp.password, '--tenant', sp.tenant, '-o', 'json')) as Array<{ id: string; cloudName: string; user: { name: string; type: string } }>;
  assert.equal(login.length, 1);
  assert.deepEqual({ id: login[0]!.id, cloud: login[0]!.cloudName, user: login[0]!.user }, { id: sub, cloud: 'Berth', user: { name: sp.appId, type: 'servicePrincipal' } });
  // a second registration (the cloud exists already) updates it instead of failing
  assert.equal((await sh(script)).code, 0);
});

after(async () => {
  if (skip) return;
  await stopServeChild(server, env);
  await rm(dataDir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

test('seed 001/002/004 registry steps with az: group, acr create/update/show without -g/credential show/login --expose-token, repository list/show-tags, scope map and token', { skip }, async () => {
  assert.match(await az('group', 'create', '--name', RG, '--location', 'westus', '--output', 'table'), /westus\s+azrg/);
  const created = JSON.parse(await az('acr', 'create', '--name', ACR, '--resource-group', RG, '--sku', 'Basic')) as { loginServer: string; adminUserEnabled: boolean };
  assert.match(created.loginServer, /^localhost:\d+$/);
  assert.equal(created.adminUserEnabled, false);
  await az('acr', 'update', '-n', ACR, '--admin-enabled', 'true', '-o', 'none');
  // without -g az finds the registry through GET /subscriptions/{sub}/resources?$filter=resourceType eq ...
  const id = await az('acr', 'show', '--name', ACR, '--query', 'id', '-o', 'tsv');
  assert.match(id, new RegExp(`/resourceGroups/${RG}/providers/Microsoft.ContainerRegistry/registries/${ACR}$`));
  const login = await az('acr', 'show', '--name', ACR, '--query', 'loginServer', '--output', 'tsv');
  const pw = await az('acr', 'credential', 'show', '-n', ACR, '--query', 'passwords[0].value', '-o', 'tsv');
  assert.equal(await az('acr', 'credential', 'show', '-n', ACR, '--query', 'username', '-o', 'tsv'), ACR);
  work = await imageWorkDir();
  await busyboxLayer(work);
  await berth('image', 'push', join(work, 'busybox-rootfs'), `${login}/myimage:v1`, '--username', ACR, '--password', pw);
  await berth('image', 'push', join(work, 'busybox-rootfs'), `${login}/other:v1`, '--username', ACR, '--password', pw);
  assert.deepEqual((await az('acr', 'repository', 'list', '-n', ACR, '-o', 'tsv')).split('\n').sort(), ['myimage', 'other']);
  assert.match(await az('acr', 'repository', 'show-tags', '-n', ACR, '--repository', 'myimage', '-o', 'table'), /Result\s*\n-+\s*\nv1/);
  // az acr show-usage: ARM listUsages, the Basic SKU's 10 GiB against the pushed layers (counted once for both repositories)
  const usage = JSON.parse(await az('acr', 'show-usage', '-n', ACR)) as { value: Array<{ name: string; limit: number; currentValue: number; unit: string }> };
  assert.equal(usage.value[0]!.name, 'Size');
  assert.equal(usage.value[0]!.limit, 10 * 1024 ** 3);
  assert.ok(usage.value[0]!.currentValue > 0);
  assert.match(await az('acr', 'show-usage', '-n', ACR, '-o', 'table'), new RegExp(`Size\\s+10737418240\\s+${usage.value[0]!.currentValue}\\s+Bytes`));
  // seed 001: az acr login (without docker: --expose-token), the token as docker login's password
  const exposed = JSON.parse(await az('acr', 'login', '--name', ACR, '--expose-token', '-o', 'json')) as { accessToken: string; loginServer: string };
  assert.equal(exposed.loginServer, login);
  const tags = await fetch(`http://${login}/v2/myimage/tags/list`, { headers: { authorization: `Basic ${Buffer.from(`00000000-0000-0000-0000-000000000000:${exposed.accessToken}`).toString('base64')}` } });
  assert.equal(tags.status, 200);
  assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['v1']);
  // seed 004: a repository-scoped token
  await az('acr', 'scope-map', 'create', '-r', ACR, '-n', 'sm_pull', '--repository', 'myimage', 'content/read', 'metadata/read', '-o', 'none');
  const tok = JSON.parse(await az('acr', 'token', 'create', '-r', ACR, '-n', 'tok_pull', '--scope-map', 'sm_pull')) as { credentials: { passwords: Array<{ value: string }> } };
  assert.ok(tok.credentials.passwords[0]!.value.length >= 20);
  assert.match(await az('acr', 'token', 'list', '-r', ACR, '-o', 'table'), /tok_pull\s+sm_pull/);
  assert.equal(await az('acr', 'token', 'show', '-r', ACR, '-n', 'tok_pull', '--query', 'status', '-o', 'tsv'), 'enabled');
});

test('seed 003/004 identities with az: ad sp create-for-rbac, ad sp show, identity create/show; keyvault create with access policies and with RBAC', { skip }, async () => {
  const acrId = await az('acr', 'show', '--name', ACR, '--query', 'id', '--output', 'tsv');
  // --role fails inside Debian's az 2.45 (see the last test); without it the principal is created, and
  // berth assigns the role.
  const sp = JSON.parse(await az('ad', 'sp', 'create-for-rbac', '--name', `http://${ACR}-pull`)) as { appId: string; displayName: string; password: string; tenant: string };
  assert.deepEqual(Object.keys(sp).sort(), ['appId', 'displayName', 'password', 'tenant']);
  assert.equal(sp.displayName, `http://${ACR}-pull`);
  await berth('role', 'assignment', 'create', '--assignee', sp.appId, '--role', 'acrpull', '--scope', acrId);
  assert.equal(await az('ad', 'sp', 'show', '--id', sp.appId, '--query', 'appId', '--output', 'tsv'), sp.appId);
  assert.equal(await az('ad', 'sp', 'list', '--display-name', `http://${ACR}-pull`, '--query', '[0].appId', '-o', 'tsv'), sp.appId);
  // the same name again gets a new password (the old one stops working), as on Azure
  const again = JSON.parse(await az('ad', 'sp', 'create-for-rbac', '--name', `http://${ACR}-pull`)) as { appId: string; password: string };
  assert.equal(again.appId, sp.appId);
  assert.notEqual(again.password, sp.password);
  process.env.BERTH_AZ_TEST_SP = JSON.stringify(again);

  const mi = JSON.parse(await az('identity', 'create', '-g', RG, '-n', 'app-uami')) as { principalId: string; clientId: string; id: string };
  assert.equal(await az('identity', 'show', '-g', RG, '-n', 'app-uami', '--query', 'principalId', '-o', 'tsv'), mi.principalId);
  await berth('role', 'assignment', 'create', '--assignee', mi.principalId, '--role', 'AcrPull', '--scope', acrId);

  // az keyvault create's default: an access policy for the signed-in principal (found through Graph)
  const kv = JSON.parse(await az('keyvault', 'create', '-g', RG, '-n', 'azkv-policy')) as { properties: { enableRbacAuthorization: boolean; vaultUri: string; accessPolicies: Array<{ objectId: string; permissions: { secrets: string[] } }> } };
  assert.equal(kv.properties.enableRbacAuthorization, false);
  assert.equal(kv.properties.accessPolicies.length, 1);
  assert.ok(kv.properties.accessPolicies[0]!.permissions.secrets.some((p) => p === 'get' || p === 'all'), JSON.stringify(kv.properties.accessPolicies[0]));
  assert.match(kv.properties.vaultUri, /^https:\/\/azkv-policy\.vault\.localhost:\d+\/$/);
  const rbac = JSON.parse(await az('keyvault', 'create', '-g', RG, '-n', 'azkv-rbac', '--enable-rbac-authorization')) as { properties: { enableRbacAuthorization: boolean; accessPolicies: unknown[] } };
  assert.equal(rbac.properties.enableRbacAuthorization, true);
  assert.deepEqual(rbac.properties.accessPolicies, []);
  // soft delete with az: delete keeps the vault (list-deleted, show-deleted), recover brings it back, purge ends it
  await az('keyvault', 'delete', '-n', 'azkv-rbac');
  const deleted = JSON.parse(await az('keyvault', 'list-deleted', '-o', 'json')) as Array<{ name: string; properties: { vaultId: string; scheduledPurgeDate: string } }>;
  assert.deepEqual(deleted.map((d) => d.name), ['azkv-rbac']);
  assert.match(deleted[0]!.properties.vaultId, /\/resourceGroups\/azrg\/providers\/Microsoft\.KeyVault\/vaults\/azkv-rbac$/);
  assert.equal(await az('keyvault', 'show-deleted', '-n', 'azkv-rbac', '--query', 'name', '-o', 'tsv'), 'azkv-rbac');
  const taken = await azRun('keyvault', 'create', '-g', RG, '-n', 'azkv-rbac', '--enable-rbac-authorization');
  assert.notEqual(taken.code, 0);
  assert.match(errorLines(taken.stderr), /A vault with the same name already exists in deleted state/);
  assert.equal(await az('keyvault', 'recover', '-n', 'azkv-rbac', '--query', 'name', '-o', 'tsv'), 'azkv-rbac');
  await az('keyvault', 'delete', '-n', 'azkv-rbac');
  await az('keyvault', 'purge', '-n', 'azkv-rbac');
  assert.equal(await az('keyvault', 'list-deleted', '--query', 'length(@)', '-o', 'tsv'), '0');
  // keyvault show without -g, and set-policy for the pull principal
  assert.equal(await az('keyvault', 'show', '-n', 'azkv-policy', '--query', 'name', '-o', 'tsv'), 'azkv-policy');
  await az('keyvault', 'set-policy', '-n', 'azkv-policy', '--spn', sp.appId, '--secret-permissions', 'get', 'list', '-o', 'none');
  const policies = JSON.parse(await az('keyvault', 'show', '-n', 'azkv-policy', '--query', 'properties.accessPolicies')) as Array<{ permissions: { secrets: string[] } }>;
  assert.equal(policies.length, 2);
  assert.deepEqual(policies[1]!.permissions.secrets.sort(), ['get', 'list']);
  // the vault's secrets with the berth CLI (Debian's az 2.45 cannot run `keyvault secret`: see the last test),
  // signed in as the local owner, which needs a policy of its own on this vault
  const owner = JSON.parse(readFileSync(join(dataDir, 'owner-credential.json'), 'utf8')) as { clientId: string };
  await az('keyvault', 'set-policy', '-n', 'azkv-policy', '--spn', owner.clientId, '--secret-permissions', 'get', 'list', 'set', '-o', 'none');
  await berth('keyvault', 'secret', 'set', '--vault-name', 'azkv-policy', '--name', `${ACR}-pull-usr`, '--value', again.appId, '-o', 'none');
  await berth('keyvault', 'secret', 'set', '--vault-name', 'azkv-policy', '--name', `${ACR}-pull-pwd`, '--value', again.password, '-o', 'none');
});

test('seed 002/003/004 container groups with az: admin user, service principal, token and managed identity; show, logs, delete', { skip: noRuntime }, async () => {
  const login = await az('acr', 'show', '--name', ACR, '--resource-group', RG, '--query', 'loginServer', '--output', 'tsv');
  const pw = await az('acr', 'credential', 'show', '-n', ACR, '--query', 'passwords[0].value', '-o', 'tsv');
  const httpd = '/bin/busybox httpd -f -p 80 -h /';
  // seed 002: the admin user
  const web = JSON.parse(await az('container', 'create', '-g', RG, '-n', 'app-admin', '--image', `${login}/myimage:v1`,
    '--registry-login-server', login, '--registry-username', ACR, '--registry-password', pw, '--ports', '80', '--ip-address', 'Public',
    '--command-line', httpd)) as { provisioningState: string; ipAddress: { ip: string; ports: Array<{ port: number; hostPort?: number }> } };
  assert.equal(web.provisioningState, 'Succeeded');
  const running = async (name: string) => {
    for (let i = 0; i < 100; i++) {
      const st = await az('container', 'show', '-g', RG, '-n', name, '--query', 'containers[0].instanceView.currentState.state', '-o', 'tsv');
      if (st === 'Running') return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${name} is not running`);
  };
  await running('app-admin');
  const shown = JSON.parse(await az('container', 'show', '-g', RG, '-n', 'app-admin', '--query', 'ipAddress')) as { ip: string; ports: Array<{ port: number; hostPort?: number }> };
  const hostPort = shown.ports[0]!.hostPort ?? shown.ports[0]!.port;
  const page = await fetch(`http://127.0.0.1:${hostPort}/bin/`).catch((e: Error) => e);
  assert.ok(!(page instanceof Error) && page.status < 500, `the group answers on its port ${hostPort}: ${page instanceof Error ? page.message : page.status}`);
  assert.match(await az('container', 'show', '-g', RG, '-n', 'app-admin', '-o', 'table'), /app-admin\s+azrg\s+Running/);
  assert.match(await az('container', 'list', '-g', RG, '--query', '[].name', '-o', 'tsv'), /app-admin/);

  // exec: az's terminal session over the exec websocket (az needs a terminal: `script` gives it one)
  const exec = await sh(`${script}\n(sleep 4; printf 'echo hi-from-$((6*7))\\r'; sleep 3; printf 'exit\\r'; sleep 3) | ` +
    `timeout 60 script -qec ${q(`az container exec -g ${RG} -n app-admin --exec-command "/bin/busybox sh"`)} /dev/null`);
  assert.match(exec.stdout, /hi-from-42/, `exec output: ${exec.stdout.slice(-500)} ${exec.stderr.slice(-500)}`);
  // attach: az prints the state and events, then polls the logs
  await az('container', 'create', '-g', RG, '-n', 'app-ticker', '--image', `${login}/myimage:v1`, '--registry-login-server', login,
    '--registry-username', ACR, '--registry-password', pw, '--restart-policy', 'Never',
    '--command-line', `/bin/busybox sh -c 'i=0; while [ $i -lt 60 ]; do echo tick-$i; i=$((i+1)); sleep 0.5; done'`, '-o', 'none');
  await running('app-ticker');
  const attach = await sh(`${script}\ntimeout 12 az container attach -g ${RG} -n app-ticker; true`);
  assert.match(attach.stdout, /Container 'app-ticker' is in state 'Running'\.\.\./);
  assert.match(attach.stdout, /\(count: 1\) \(last timestamp: [^)]+\) Started container/);
  assert.match(attach.stdout, /Start streaming logs:\s*\n[\s\S]*tick-\d+/);

  // seed 003: the service principal's appId and password (from the vault) pull; it cannot push
  const sp = JSON.parse(process.env.BERTH_AZ_TEST_SP ?? '{}') as { appId: string; password: string };
  const usr = await berth('keyvault', 'secret', 'show', '--vault-name', 'azkv-policy', '-n', `${ACR}-pull-usr`, '--query', 'value', '-o', 'tsv');
  const pwd = await berth('keyvault', 'secret', 'show', '--vault-name', 'azkv-policy', '-n', `${ACR}-pull-pwd`, '--query', 'value', '-o', 'tsv');
  assert.equal(usr, sp.appId);
  await az('container', 'create', '--name', 'app-sp', '--resource-group', RG, '--image', `${login}/myimage:v1`, '--registry-login-server', login,
    '--registry-username', usr, '--registry-password', pwd, '--restart-policy', 'Never', '--command-line', `/bin/busybox sh -c 'echo pulled-by-sp'`, '-o', 'none');
  const logsOf = async (name: string) => {
    for (let i = 0; i < 100; i++) {
      const out = await az('container', 'logs', '-g', RG, '-n', name);
      if (out) return out;
      await new Promise((r) => setTimeout(r, 200));
    }
    return '';
  };
  assert.match(await logsOf('app-sp'), /pulled-by-sp/);
  const push = await runCli(['image', 'push', join(work, 'busybox-rootfs'), `${login}/myimage:sp-push`, '--username', sp.appId, '--password', sp.password], env);
  assert.notEqual(push.code, 0, 'an AcrPull service principal cannot push');
  assert.match(push.stderr, /denied|DENIED|not authorized|insufficient/i);

  // seed 004: the token pulls its repository only
  const tokPw = (await az('acr', 'token', 'credential', 'generate', '-r', ACR, '-n', 'tok_pull', '--password1', '--query', 'passwords[0].value', '-o', 'tsv'));
  await az('container', 'create', '-g', RG, '-n', 'app-token', '--image', `${login}/myimage:v1`, '--registry-login-server', login,
    '--registry-username', 'tok_pull', '--registry-password', tokPw, '--restart-policy', 'Never', '--command-line', `/bin/busybox echo token-pulled`, '-o', 'none');
  assert.match(await logsOf('app-token'), /token-pulled/);
  const other = await azRun('container', 'create', '-g', RG, '-n', 'app-token-other', '--image', `${login}/other:v1`, '--registry-login-server', login,
    '--registry-username', 'tok_pull', '--registry-password', tokPw, '--restart-policy', 'Never', '--command-line', '/bin/busybox true', '-o', 'none');
  assert.notEqual(other.code, 0, 'the token is refused for a repository outside its scope map');
  assert.match(errorLines(other.stderr), /InaccessibleImage/);

  // seed 004: a user-assigned identity with AcrPull, named as the registry credential
  const miId = await az('identity', 'show', '-g', RG, '-n', 'app-uami', '--query', 'id', '-o', 'tsv');
  await az('container', 'create', '-g', RG, '-n', 'app-mi', '--image', `${login}/myimage:v1`, '--acr-identity', miId, '--assign-identity', miId,
    '--registry-login-server', login, '--restart-policy', 'Never', '--command-line', '/bin/busybox echo mi-pulled', '-o', 'none');
  assert.match(await logsOf('app-mi'), /mi-pulled/);
  // the seed's YAML form; az 2.45 reads `--file -` as a file named '-', so the YAML goes in a file
  const yaml = join(dataDir, 'app-mi-yaml.yaml');
  writeFileSync(yaml, `apiVersion: 2021-10-01
location: westus
name: app-mi-yaml
type: Microsoft.ContainerInstance/containerGroups
identity:
  type: UserAssigned
  userAssignedIdentities:
    ${miId}: {}
properties:
  osType: Linux
  restartPolicy: Never
  imageRegistryCredentials:
    - server: ${login}
      identity: ${miId}
  containers:
    - name: web
      properties:
        image: ${login}/myimage:v1
        command: ["/bin/busybox", "echo", "yaml-mi-pulled"]
        resources: { requests: { cpu: 1.0, memoryInGB: 1.0 } }
`);
  await az('container', 'create', '-g', RG, '--name', 'app-mi-yaml', '--file', yaml, '--only-show-errors', '-o', 'none');
  assert.match(await logsOf('app-mi-yaml'), /yaml-mi-pulled/);
  // az's one step: --assign-identity --scope --role gives the group's system identity the role at the scope
  const acrId = await az('acr', 'show', '-n', ACR, '--query', 'id', '-o', 'tsv');
  const sys = JSON.parse(await az('container', 'create', '-g', RG, '-n', 'app-sys-scope', '--image', `${login}/myimage:v1`, '--registry-login-server', login,
    '--registry-username', ACR, '--registry-password', pw, '--restart-policy', 'Never', '--command-line', '/bin/busybox true',
    '--assign-identity', '--scope', acrId, '--role', 'AcrPull')) as { identity: { principalId: string } };
  const sysRoles = JSON.parse(await berth('role', 'assignment', 'list', '--scope', acrId)) as Array<{ principalId: string; roleDefinitionName: string }>;
  assert.deepEqual(sysRoles.filter((a) => a.principalId === sys.identity.principalId).map((a) => a.roleDefinitionName), ['AcrPull']);
  // container export: az's file and berth's describe the same group, and each tool creates from the other's
  const azExport = join(dataDir, 'az-export.yaml');
  const berthExport = join(dataDir, 'berth-export.yaml');
  await az('container', 'export', '-g', RG, '-n', 'app-mi-yaml', '-f', azExport);
  await berth('container', 'export', '-g', RG, '-n', 'app-mi-yaml', '-f', berthExport);
  const { parse, stringify } = await import('yaml');
  const azDoc = parse(readFileSync(azExport, 'utf8'));
  const berthDoc = parse(readFileSync(berthExport, 'utf8'));
  // (apiVersion: each writes the api-version it read the group with, berth 2021-09-01, az 2.45 its SDK's default)
  assert.match(azDoc.apiVersion, /^\d{4}-\d\d-\d\d/);
  // (az 2.45 writes the identity's ids under the Python name user_assigned_identities; berth reads both)
  const { user_assigned_identities: uai, ...azIdentity } = azDoc.identity;
  assert.deepEqual(berthDoc.identity, { ...azIdentity, userAssignedIdentities: uai });
  for (const k of ['location', 'name', 'type', 'properties']) assert.deepEqual(berthDoc[k], azDoc[k], `export: ${k}`);
  writeFileSync(berthExport, stringify({ ...berthDoc, name: 'app-from-berth-export' }));
  await az('container', 'create', '-g', RG, '--file', berthExport, '--only-show-errors', '-o', 'none');
  assert.match(await logsOf('app-from-berth-export'), /yaml-mi-pulled/);
  writeFileSync(azExport, stringify({ ...azDoc, name: 'app-from-az-export' }));
  await berth('container', 'create', '-g', RG, '--file', azExport, '-o', 'none');
  assert.match(await logsOf('app-from-az-export'), /yaml-mi-pulled/);
  const stdin = await sh(`${script}
az container create -g ${RG} --name app-stdin --file - --only-show-errors`, {}, 'name: app-stdin\n');
  assert.notEqual(stdin.code, 0);
  assert.match(stdin.stderr, /No such file or directory: -/, 'az 2.45 reads --file - as a file name (the README says: berth container create --file -)');

  for (const n of ['app-admin', 'app-ticker', 'app-sp', 'app-token', 'app-mi', 'app-mi-yaml', 'app-from-berth-export', 'app-from-az-export', 'app-sys-scope']) await az('container', 'delete', '-g', RG, '-n', n, '--yes', '-o', 'none');
  assert.equal(await az('container', 'list', '-g', RG, '--query', 'length(@)', '-o', 'tsv'), '0');
});

test('az never left this machine: every connection went to Berth on loopback', { skip }, async () => {
  assert.ok(hostsSeen.size > 0, 'the --debug log names the connections');
  for (const h of hostsSeen) assert.match(h, /^(localhost|127\.0\.0\.1|[a-z0-9-]+\.vault\.localhost)$/, `az connected to ${h}`);
});

test('Debian\'s az 2.45 cannot run these (its packaging, not Berth; the README lists them with the berth command to use)', { skip }, async () => {
  const acrId = await az('acr', 'show', '--name', ACR, '--query', 'id', '--output', 'tsv');
  // azure-mgmt-authorization 3.0 in Debian lacks the .config az 2.45 reads: every role assignment command fails
  const ra = await azRun('role', 'assignment', 'create', '--assignee-object-id', '00000000-0000-0000-0000-000000000001', '--assignee-principal-type', 'ServicePrincipal', '--role', 'AcrPull', '--scope', acrId);
  assert.notEqual(ra.code, 0);
  assert.match(ra.stderr, /object has no attribute 'config'/);
  const list = await azRun('role', 'assignment', 'list', '--scope', acrId);
  assert.match(list.stderr, /object has no attribute 'config'/);
  // the track-1 Key Vault SDK (azure.keyvault.v7_0) az 2.45's `keyvault secret` commands import is not in Debian
  const secret = await azRun('keyvault', 'secret', 'show', '--vault-name', 'azkv-policy', '-n', `${ACR}-pull-usr`);
  assert.notEqual(secret.code, 0);
  assert.match(secret.stderr, /No module named 'azure\.keyvault\.v7_0'/);
});
