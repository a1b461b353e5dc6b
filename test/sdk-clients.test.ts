// The nine Azure SDK packages for JavaScript a deployment program uses, unmodified, against Berth over
// HTTPS, once with the pinned versions (the oldest the README names) and once with the newest
// published ones (.sdk-latest/, from scripts/install.sh): @azure/identity signs in with a client
// secret at Berth's authority; arm-resources, arm-containerregistry, arm-keyvault, arm-msi,
// arm-authorization and arm-containerinstance manage resources; container-registry lists
// repositories; keyvault-secrets reads and writes a vault by its vaultUri with the SDK's
// challenge-resource check on. Berth's CA is trusted through the SDKs' `agent` option.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { startBerth, type RunningBerth } from '../src/platform/berth.js';
import { FakePuller, FakeRuntime, inlineKeychainFactory } from './helpers/fake-runtime.js';
import { SDK_VARIANTS } from './helpers/sdk-variants.js';

let b: RunningBerth;
let dir: string;
let owner: { clientId: string; clientSecret: string; tenantId: string; subscriptionId: string };
let agent: Agent;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-sdks-'));
  b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime: new FakeRuntime(dir), puller: new FakePuller(), keychainFactory: inlineKeychainFactory, reconciler: { sleep: async () => undefined } });
  owner = JSON.parse(readFileSync(join(dir, 'owner-credential.json'), 'utf8')) as typeof owner;
  agent = new Agent({ ca: b.tls!.ca, keepAlive: false });
});
after(async () => {
  await b?.stop();
  await rm(dir, { recursive: true, force: true });
});

const ARM_SCOPES = ['https://management.azure.com/.default'];

for (const v of SDK_VARIANTS) {
  test(`Azure SDKs for JavaScript (${v.label}): identity, resources, registries, vaults, identities, roles, container groups`, { skip: v.skip }, async (t) => {
    const versions = Object.fromEntries(['identity', 'keyvault-secrets', 'container-registry', 'arm-containerinstance', 'arm-containerregistry', 'arm-keyvault', 'arm-msi', 'arm-authorization', 'arm-resources']
      .map((p) => [p, v.version(`@azure/${p}`)]));
    t.diagnostic(`${v.label} SDK versions: ${JSON.stringify(versions)}`);
    const { ClientSecretCredential } = await v.load('@azure/identity');
    const https = b.httpsUrl!;
    const sub = owner.subscriptionId;
    const cred = new ClientSecretCredential(owner.tenantId, owner.clientId, owner.clientSecret, { authorityHost: https, disableInstanceDiscovery: true, agent });
    const tok = await cred.getToken(ARM_SCOPES);
    assert.ok(tok.token.split('.').length === 3 && tok.expiresOnTimestamp > Date.now());
    const opts = { endpoint: https, credentialScopes: ARM_SCOPES, agent };
    const rg = `sdk-${v.label}`;

    const { ResourceManagementClient } = await v.load('@azure/arm-resources');
    const resources = new ResourceManagementClient(cred, sub, opts);
    assert.equal((await resources.resourceGroups.createOrUpdate(rg, { location: 'westus' })).name, rg);

    const { ContainerRegistryManagementClient } = await v.load('@azure/arm-containerregistry');
    const acr = new ContainerRegistryManagementClient(cred, sub, opts);
    const regName = `sdkreg${v.label}`;
    const reg = await acr.registries.beginCreateAndWait(rg, regName, { location: 'westus', sku: { name: 'Basic' }, adminUserEnabled: true }, { updateIntervalInMs: 50 });
    assert.match(reg.loginServer, /^localhost:\d+$/);
    const creds = await acr.registries.listCredentials(rg, regName);
    assert.equal(creds.username, regName);
    const listed: string[] = [];
    for await (const r of acr.registries.listByResourceGroup(rg)) listed.push(r.name);
    assert.deepEqual(listed, [regName]);
    // the generic listing (what az uses to find a registry without -g), with its $filter
    const generic: string[] = [];
    for await (const r of resources.resources.list({ filter: "resourceType eq 'Microsoft.ContainerRegistry/registries'" })) generic.push(r.name);
    assert.ok(generic.includes(regName));

    const { ContainerRegistryClient } = await v.load('@azure/container-registry');
    const data = new ContainerRegistryClient(`https://${reg.loginServer}`, cred, { audience: 'https://management.azure.com', agent });
    const repos: string[] = [];
    for await (const r of data.listRepositoryNames()) repos.push(r);
    assert.deepEqual(repos, []);

    const { ManagedServiceIdentityClient } = await v.load('@azure/arm-msi');
    const msi = new ManagedServiceIdentityClient(cred, sub, opts);
    const mi = await msi.userAssignedIdentities.createOrUpdate(rg, 'sdk-mi', { location: 'westus' });
    assert.match(mi.principalId, /^[0-9a-f-]{36}$/);
    assert.equal((await msi.userAssignedIdentities.get(rg, 'sdk-mi')).clientId, mi.clientId);

    const { AuthorizationManagementClient } = await v.load('@azure/arm-authorization');
    const authz = new AuthorizationManagementClient(cred, sub, opts);
    const defs: Array<{ id: string; roleName: string }> = [];
    for await (const d of authz.roleDefinitions.list(reg.id, { filter: "roleName eq 'AcrPull'" })) defs.push(d);
    assert.equal(defs.length, 1);
    const ra = await authz.roleAssignments.create(reg.id, randomUUID(), { roleDefinitionId: defs[0]!.id, principalId: mi.principalId, principalType: 'ServicePrincipal' });
    assert.equal(ra.principalId, mi.principalId);
    const ras: string[] = [];
    for await (const a of authz.roleAssignments.listForScope(reg.id)) ras.push(a.principalId);
    assert.ok(ras.includes(mi.principalId));

    const { KeyVaultManagementClient } = await v.load('@azure/arm-keyvault');
    const kvm = new KeyVaultManagementClient(cred, sub, opts);
    const vault = await kvm.vaults.beginCreateOrUpdateAndWait(rg, `sdkkv-${v.label}`, { location: 'westus', properties: { tenantId: owner.tenantId, sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true } }, { updateIntervalInMs: 50 });
    assert.equal(vault.properties.enableRbacAuthorization, true);
    const vaultUri = vault.properties.vaultUri as string;

    const { SecretClient } = await v.load('@azure/keyvault-secrets');
    // no disableChallengeResourceVerification when the vault is reached by name
    const byName = /\.vault\.localhost:\d+\/$/.test(vaultUri);
    const secrets = new SecretClient(vaultUri, cred, { agent, ...(byName ? {} : { disableChallengeResourceVerification: true }) });
    await secrets.setSecret('sdk-secret', `value-${v.label}`);
    assert.equal((await secrets.getSecret('sdk-secret')).value, `value-${v.label}`);

    const { ContainerInstanceManagementClient } = await v.load('@azure/arm-containerinstance');
    const aci = new ContainerInstanceManagementClient(cred, sub, opts);
    const g = await aci.containerGroups.beginCreateOrUpdateAndWait(rg, 'sdk-group', {
      location: 'westus', osType: 'Linux', restartPolicy: 'Never',
      containers: [{ name: 'app', image: `${reg.loginServer}/app:1`, resources: { requests: { cpu: 1, memoryInGB: 1 } } }],
      imageRegistryCredentials: [{ server: reg.loginServer, username: regName, password: creds.passwords[0].value }],
    }, { updateIntervalInMs: 50 });
    assert.equal(g.provisioningState, 'Succeeded');
    assert.equal(g.imageRegistryCredentials[0].password, undefined, 'the registry password is not returned');
    await aci.containerGroups.beginDeleteAndWait(rg, 'sdk-group', { updateIntervalInMs: 50 });
    await acr.registries.beginDeleteAndWait(rg, regName, { updateIntervalInMs: 50 });
    await resources.resourceGroups.beginDeleteAndWait(rg, { updateIntervalInMs: 50 });
  });
}
