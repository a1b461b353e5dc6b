// The keychain Berth builds for a group by default (src/instances/platform-keychains.ts) with the keychain
// module's real sources: inline credentials, a vault secret by reference (JSON and user/password pair,
// read at pull time), and a managed identity whose token Berth issues in-process and trades at its own
// registry's /oauth2/exchange. The puller and runtime are the test doubles; the credential each pull
// received is what is checked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, type RunningBerth } from '../src/platform/berth.js';
import { FakePuller, FakeRuntime } from './helpers/fake-runtime.js';
import { findRole } from '../src/identity/roles.js';
import { armId } from '../src/registry/registries.js';

let b: RunningBerth;
let dir: string;
const puller = new FakePuller();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime: new FakeRuntime(dir), puller, reconciler: { sleep: async () => undefined } });
  await b.groups.createOrUpdate('rg', 'westus');
});
after(async () => {
  await b?.stop();
  await rm(dir, { recursive: true, force: true });
});

const body = (image: string, creds: unknown[], extra: Record<string, unknown> = {}) => ({ location: 'westus', ...extra,
  properties: { osType: 'Linux', imageRegistryCredentials: creds, containers: [{ name: 'app', properties: { image, resources: { requests: { cpu: 1, memoryInGB: 1 } } } }] } });

async function create(name: string, doc: unknown) {
  const { operation } = await b.containerGroups.createOrUpdate('rg', name, doc);
  while ((await b.containerGroups.operation(operation.id))!.status === 'InProgress') await new Promise((r) => setTimeout(r, 10));
  return (await b.containerGroups.operation(operation.id))!;
}

test('inline credentials answer only for their own server', async () => {
  await create('inl', body('r.io/app:1', [{ server: 'other.io', username: 'x', password: 'y' }, { server: 'r.io', username: 'bob', password: 'pw' }]));
  assert.deepEqual(puller.credentials.at(-1), { reference: 'r.io/app:1', kind: 'basic', username: 'bob', source: 'imageRegistryCredentials for r.io (user bob)' });
});

test('a credential for host:443 or HOST finds pulls from host, and one for host finds host:443 (one server-name rule)', async () => {
  const cases: Array<[string, string]> = [['myreg.azurecr.io:443', 'myreg.azurecr.io/app:1'], ['MyReg.AzureCR.io', 'myreg.azurecr.io/app:1'],
    ['myreg.azurecr.io', 'myreg.azurecr.io:443/app:1'], ['index.docker.io', 'docker.io/library/app:1']];
  for (const [i, [server, image]] of cases.entries()) {
    await create(`port${i}`, body(image, [{ server, username: 'bob', password: 'pw' }]));
    const got = puller.credentials.at(-1)!;
    assert.equal(got.reference, image);
    assert.equal(got.kind, 'basic', `a credential for ${server} is used for ${image} (not an anonymous pull)`);
    assert.equal(got.username, 'bob');
  }
});

test('vault secrets by reference: a JSON secret, and a username/password pair (seed 003)', async () => {
  const { vault } = await b.vaults.createOrUpdate('rg', 'kv1', {});
  await b.secrets.set(vault, 'my-docker-credentials', { value: JSON.stringify({ username: 'json-user', password: 'json-pw' }) });
  await b.secrets.set(vault, 'myregistry-pull-usr', { value: 'sp-app-id' });
  await b.secrets.set(vault, 'myregistry-pull-pwd', { value: 'sp-secret' });
  const vaultId = `/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1`;
  const ref = (secretName: string) => ({ reference: { keyVault: { id: vaultId }, secretName } });
  await create('vjson', body('r.io/app:1', [{ server: 'r.io', password: ref('my-docker-credentials') }]));
  assert.deepEqual(puller.credentials.at(-1), { reference: 'r.io/app:1', kind: 'basic', username: 'json-user', source: 'vault secret kv1/my-docker-credentials for r.io' });
  await create('vpair', body('r.io/app:1', [{ server: 'r.io', username: ref('myregistry-pull-usr'), password: ref('myregistry-pull-pwd') }]));
  assert.equal(puller.credentials.at(-1)!.username, 'sp-app-id');
  // A missing secret fails the create with the keychain's words.
  await assert.rejects(b.containerGroups.createOrUpdate('rg', 'vmissing', body('r.io/app:1', [{ server: 'r.io', password: ref('nope') }])),
    (e: Error) => /is not accessible[\s\S]*secret nope was not found in vault kv1/.test(e.message));
  assert.equal(await b.containerGroups.store.find('rg', 'vmissing'), undefined);
});

test('a user-assigned identity with AcrPull gets a registry refresh token from Berth\'s own registry', async () => {
  const { registry } = await b.registries.createOrUpdate('rg', 'miregistry01', { sku: 'Basic' });
  const server = b.registries.loginServer(registry);
  const { identity: mi } = await b.managedIdentities.createOrUpdate('rg', 'puller-mi', {});
  await b.identity.assignRole(mi.principalId, findRole('AcrPull')!, armId(registry));
  await create('mi', body(`${server}/app:1`, [{ server, identity: mi.id }], { identity: { type: 'UserAssigned', userAssignedIdentities: { [mi.id]: {} } } }));
  const c = puller.credentials.at(-1)!;
  assert.equal(c.kind, 'refreshToken');
  assert.equal(c.source, `managed identity ${mi.id} for ${server}`);
});
