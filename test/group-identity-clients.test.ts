// Real clients inside a container group that holds a managed identity, unmodified: `az login
// --identity`, @azure/identity's ManagedIdentityCredential (pinned and newest) and the Python SDK's
// ManagedIdentityCredential get their tokens from the group's IMDS endpoint (169.254.169.254) and call
// Berth's management API at host.berth.internal, as a program in the group would. They run from the
// host's files inside the group's network namespace with the group's /etc/hosts (nsenter + a private
// mount namespace): the group's network, IMDS and name resolution, the host's az/node/python.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeChild, stopServeChild } from './helpers/serve-child.js';
import { REPO_ROOT, runCli, runProcess, which } from './helpers/berth.js';
import { busyboxLayer, busyboxPath, imageWorkDir } from './helpers/runtime-images.js';
import { SDK_VARIANTS } from './helpers/sdk-variants.js';
import { freeLoopbackPort } from '../src/net/listeners.js';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';

const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed')
  ?? (which('nsenter') && which('unshare') ? undefined : 'nsenter/unshare (util-linux) are not installed');
if (skip) console.log(`# skipping clients inside a group: ${skip}`);
const noAz = which('az') ? undefined : 'the az CLI is not installed (apt-get install azure-cli)';
const noPython = spawnSync('/usr/bin/python3', ['-c', 'import azure.identity, azure.mgmt.containerinstance']).status === 0 ? undefined : 'python3-azure is not installed';

const RG = 'mirg';
let dataDir: string;
let work: string;
let server: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;
let port: number;
let groupDir: string;
let clientId: string;
let sub: string;

async function berth(...args: string[]): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs a shell command in the group's network namespace with the group's /etc/hosts. */
function inGroup(command: string, extra: NodeJS.ProcessEnv = {}) {
  const inner = `mount --bind ${groupDir}/hosts /etc/hosts && ${command}`;
  return runProcess('nsenter', [`--net=${groupDir}/netns`, 'unshare', '-m', 'sh', '-c', inner], { env: { ...env, ...extra }, timeoutMs: 120_000 });
}

before(async () => {
  if (skip) return;
  dataDir = await mkdtemp(join(tmpdir(), 'berth-mi-'));
  work = await imageWorkDir();
  await busyboxLayer(work);
  port = await freeLoopbackPort();
  env = { ...process.env, BERTH_SERVER: `http://127.0.0.1:${port}`, BERTH_DATA_DIR: dataDir, BERTH_CONFIG_DIR: join(dataDir, 'cli-config'), AZURE_CONFIG_DIR: join(dataDir, 'azure') };
  server = (await startServeChild(['--data-dir', dataDir, '--port', String(port)], env)).child;
  sub = await berth('account', 'show', '--query', 'id', '-o', 'tsv');
  await berth('group', 'create', '-n', RG, '-l', 'westus');
  await berth('acr', 'create', '-n', 'mireg', '-g', RG, '--sku', 'Basic', '--admin-enabled', 'true');
  const login = await berth('acr', 'show', '-n', 'mireg', '--query', 'loginServer', '-o', 'tsv');
  const pw = await berth('acr', 'credential', 'show', '-n', 'mireg', '--query', 'passwords[0].value', '-o', 'tsv');
  await berth('image', 'push', join(work, 'busybox-rootfs'), `${login}/app:v1`, '--username', 'mireg', '--password', pw);
  const mi = JSON.parse(await berth('identity', 'create', '-g', RG, '-n', 'app-mi')) as { id: string; principalId: string; clientId: string };
  clientId = mi.clientId;
  await berth('role', 'assignment', 'create', '--assignee', mi.principalId, '--role', 'Reader', '--scope', `/subscriptions/${sub}/resourceGroups/${RG}`);
  await berth('container', 'create', '-g', RG, '-n', 'mi-app', '--image', `${login}/app:v1`, '--registry-login-server', login, '--registry-username', 'mireg',
    '--registry-password', pw, '--assign-identity', mi.id, '--command-line', '/bin/busybox httpd -f -p 80 -h /', '-o', 'none');
  const groups = join(dataDir, 'runtime', 'groups');
  for (let i = 0; i < 100 && !groupDir; i++) {
    const dirs = existsSync(groups) ? await readdir(groups) : [];
    if (dirs.length === 1 && existsSync(join(groups, dirs[0]!, 'hosts'))) groupDir = join(groups, dirs[0]!);
    else await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(groupDir, 'the group has a sandbox');
});

after(async () => {
  if (skip) return;
  await stopServeChild(server, env);
  await rm(dataDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

const inside = () => `https://host.berth.internal:${port}`;
const ca = () => join(dataDir, 'tls', 'ca.pem');

test('az login --identity inside the group, then az reads the resource group (berth cloud register --host host.berth.internal)', { skip: skip ?? noAz }, async () => {
  const reg = await runCli(['cloud', 'register', '--host', 'host.berth.internal'], env);
  assert.equal(reg.code, 0, reg.stderr);
  assert.match(reg.stdout, new RegExp(`"resourceManager":"https://host\\.berth\\.internal:${port}/"`));
  const script = join(dataDir, 'cloud-inside.sh');
  writeFileSync(script, reg.stdout);
  const r = await inGroup(`. ${script} && az login --identity -o json && az group show -n ${RG} --query name -o tsv && az container list -g ${RG} --query "[].name" -o tsv`,
    { AZURE_CONFIG_DIR: join(dataDir, 'azure-inside') });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const [login, ...rest] = r.stdout.split(/\n(?=[^\s\]\[{}"])/);
  const accounts = JSON.parse(login!) as Array<{ id: string; user: { type: string; assignedIdentityInfo: string } }>;
  assert.equal(accounts[0]!.id, sub);
  assert.equal(accounts[0]!.user.assignedIdentityInfo, 'MSI');
  assert.deepEqual(rest.join('\n').trim().split('\n'), [RG, 'mi-app']);
});

test('a vault created while the group runs is reached by its vaultUri from inside: its name is in the containers\' /etc/hosts', { skip }, async () => {
  const vault = JSON.parse(await berth('keyvault', 'create', '-g', RG, '-n', 'mi-late-vault')) as { id: string; properties: { vaultUri: string } };
  await berth('keyvault', 'secret', 'set', '--vault-name', 'mi-late-vault', '-n', 'greeting', '--value', 'from-the-late-vault', '-o', 'none');
  const principal = await berth('identity', 'show', '-g', RG, '-n', 'app-mi', '--query', 'principalId', '-o', 'tsv');
  await berth('role', 'assignment', 'create', '--assignee', principal, '--role', 'Key Vault Secrets User', '--scope', vault.id);
  lateVault = vault.properties.vaultUri;
  const hosts = await berth('container', 'exec', '-g', RG, '-n', 'mi-app', '--exec-command', 'cat /etc/hosts');
  if (/\.vault\.localhost:/.test(lateVault)) assert.match(hosts, /^10\.0\.2\.2\s.*\bmi-late-vault\.vault\.localhost\b/m);
  assert.match(hosts, /\bhost\.berth\.internal\b/);
});

let lateVault: string;

for (const v of SDK_VARIANTS) {
  test(`@azure/identity ManagedIdentityCredential (${v.label}) inside the group lists container groups with arm-containerinstance`, { skip: skip ?? v.skip }, async () => {
    const root = v.label === 'pinned' ? REPO_ROOT : join(REPO_ROOT, '.sdk-latest');
    // the vault by its vaultUri (the group's /etc/hosts names it) when vaults are by name
    const vault = lateVault && /\.vault\.localhost:/.test(lateVault) ? { VAULT_URL: lateVault, SECRET_NAME: 'greeting' } : {};
    const r = await inGroup(`node ${join(REPO_ROOT, 'test', 'fixtures', 'managed-identity.mjs')} ${root}`,
      { BERTH_URL: inside(), SUBSCRIPTION: sub, RESOURCE_GROUP: RG, CLIENT_ID: clientId, NODE_EXTRA_CA_CERTS: ca(), ...vault });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.deepEqual(JSON.parse(r.stdout), { tokenParts: 3, groups: ['mi-app'], ...(vault.VAULT_URL ? { secret: 'from-the-late-vault' } : {}) });
  });
}

test('the Python SDK\'s ManagedIdentityCredential inside the group lists container groups', { skip: skip ?? noPython }, async () => {
  const r = await inGroup(`/usr/bin/python3 ${join(REPO_ROOT, 'test', 'fixtures', 'python', 'managed_identity.py')}`,
    { BERTH_URL: inside(), SUBSCRIPTION: sub, RESOURCE_GROUP: RG, CLIENT_ID: clientId, REQUESTS_CA_BUNDLE: ca() });
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  assert.deepEqual(JSON.parse(r.stdout), { tokenParts: 3, groups: ['mi-app'] });
});
