// The Azure SDK for Python from Debian (python3-azure: azure-identity, azure-keyvault-secrets,
// azure-mgmt-containerinstance, azure-mgmt-containerregistry, azure-containerregistry), unmodified,
// against a real `berth serve`: seed 000's flow as a program (fixtures/python/seed000.py) reads a
// registry username/password kept as JSON in a Berth vault with a service principal's credential and
// creates a container group that pulls from the reference registry (not Berth's) with it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeChild, stopServeChild } from './helpers/serve-child.js';
import { REPO_ROOT, runCli, runProcess } from './helpers/berth.js';
import { busyboxLayer, busyboxPath, imageWorkDir } from './helpers/runtime-images.js';
import { haveReferenceRegistry, startReferenceRegistry, type ReferenceRegistry } from './helpers/reference-registry.js';
import { freeLoopbackPort } from '../src/net/listeners.js';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';

const PYTHON = '/usr/bin/python3';
const MODULES = ['azure.identity', 'azure.keyvault.secrets', 'azure.mgmt.containerinstance', 'azure.mgmt.containerregistry', 'azure.containerregistry'];
const probe = spawnSync(PYTHON, ['-c', `import ${MODULES.join(', ')}`], { encoding: 'utf8' });
const skip = probe.status === 0 ? undefined : `Debian's Azure SDK for Python is not installed (apt-get install python3-azure): ${probe.error?.message ?? probe.stderr.trim().split('\n').pop()}`;
if (skip) console.log(`# skipping Python SDK tests: ${skip}`);
const noGroups = skip ?? (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed') ?? haveReferenceRegistry();
if (!skip && noGroups) console.log(`# skipping the Python SDK container-group step: ${noGroups}`);

let dataDir: string;
let work: string | undefined;
let server: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;
let ref: ReferenceRegistry | undefined;
let httpsUrl: string;

async function berth(...args: string[]): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

function python(script: string, extra: NodeJS.ProcessEnv) {
  return runProcess(PYTHON, [script], { env: { ...env, ...extra, REQUESTS_CA_BUNDLE: join(dataDir, 'tls', 'ca.pem') }, timeoutMs: 240_000 });
}

before(async () => {
  if (skip) return;
  dataDir = await mkdtemp(join(tmpdir(), 'berth-py-'));
  const port = await freeLoopbackPort();
  env = { ...process.env, BERTH_SERVER: `http://127.0.0.1:${port}`, BERTH_DATA_DIR: dataDir, BERTH_CONFIG_DIR: join(dataDir, 'cli-config') };
  server = (await startServeChild(['--data-dir', dataDir, '--port', String(port)], env)).child;
  httpsUrl = `https://localhost:${port}`;
});

after(async () => {
  if (skip) return;
  await stopServeChild(server, env);
  await ref?.stop();
  await rm(dataDir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

test('seed 000 with the Python SDK: a service principal reads registry credentials (JSON) from the vault and runs a group from a non-Berth registry', { skip }, async () => {
  const sub = await berth('account', 'show', '--query', 'id', '-o', 'tsv');
  await berth('group', 'create', '-n', 'Meadowrun-rg', '-l', 'westus');
  await berth('acr', 'create', '-n', 'meadowacr', '-g', 'Meadowrun-rg', '--sku', 'Basic', '--admin-enabled', 'true');
  const acrLogin = await berth('acr', 'show', '-n', 'meadowacr', '--query', 'loginServer', '-o', 'tsv');
  const acrPw = await berth('acr', 'credential', 'show', '-n', 'meadowacr', '--query', 'passwords[0].value', '-o', 'tsv');
  work = await imageWorkDir();
  await busyboxLayer(work);
  await berth('image', 'push', join(work, 'busybox-rootfs'), `${acrLogin}/meadow/tools:v1`, '--username', 'meadowacr', '--password', acrPw);
  const vault = JSON.parse(await berth('keyvault', 'create', '-g', 'Meadowrun-rg', '-n', 'mr724792bd295194e79d5881')) as { id: string; properties: { vaultUri: string } };
  const sp = JSON.parse(await berth('ad', 'sp', 'create-for-rbac', '-n', 'meadowrun-sp', '--role', 'Contributor', '--scopes', `/subscriptions/${sub}/resourceGroups/Meadowrun-rg`)) as { appId: string; password: string; tenant: string };
  await berth('role', 'assignment', 'create', '--assignee', sp.appId, '--role', 'Key Vault Secrets User', '--scope', vault.id);
  await berth('role', 'assignment', 'create', '--assignee', sp.appId, '--role', 'AcrPull', '--scope', `/subscriptions/${sub}/resourceGroups/Meadowrun-rg`);

  let registry = 'registry.example.invalid';
  let image = '';
  let username = 'janedoe1';
  let password = 'MyPassword123!';
  if (!noGroups) {
    ref = await startReferenceRegistry();
    await berth('image', 'push', join(work, 'busybox-rootfs'), `${ref.host}/my_organization/my_private_container:latest`, '--username', ref.username, '--password', ref.password);
    ({ host: registry, username, password } = ref);
    image = `${ref.host}/my_organization/my_private_container:latest`;
  }
  // Key Vault secret names are letters, digits and hyphens (the seed's my_docker_credentials is not a
  // valid name on Azure either), so the secret is my-docker-credentials.
  await berth('keyvault', 'secret', 'set', '--vault-name', 'mr724792bd295194e79d5881', '-n', 'my-docker-credentials', '--value', JSON.stringify({ username, password }), '-o', 'none');

  const r = await python(join(REPO_ROOT, 'test', 'fixtures', 'python', 'seed000.py'), {
    BERTH_URL: httpsUrl, TENANT: sp.tenant, APP_ID: sp.appId, SECRET: sp.password, SUBSCRIPTION: sub, VAULT_URL: vault.properties.vaultUri,
    SECRET_NAME: 'my-docker-credentials', RESOURCE_GROUP: 'Meadowrun-rg', REGISTRY: registry, IMAGE: image, ACR_LOGIN_SERVER: acrLogin,
  });
  assert.equal(r.code, 0, r.stderr.slice(-4000));
  const out = JSON.parse(r.stdout) as { username: string; registries: string[]; repositories: string[]; provisioningState?: string; logs?: string; registryServers?: string[]; passwordReturned?: boolean };
  assert.equal(out.username, username);
  assert.deepEqual(out.registries, ['meadowacr']);
  assert.deepEqual(out.repositories, ['meadow/tools']);
  if (!noGroups) {
    assert.equal(out.provisioningState, 'Succeeded');
    assert.match(out.logs ?? '', /meadowrun-job-ran/);
    assert.deepEqual(out.registryServers, [registry]);
    assert.equal(out.passwordReturned, false, 'the registry password is never returned');
  }
});
