// Deleting a resource group takes everything of it, as ARM does: its registries, vaults and container
// groups, its user-assigned identities with their service principals and role assignments, and every
// role assignment at the group or a resource in it (a vault creator's too). Other groups keep theirs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBerth, type TestBerth } from './helpers/berth.js';
import { principalWithRole, tokenFor } from './helpers/vault.js';
import { findRole } from '../src/identity/roles.js';

let b: TestBerth;
let sub: string;

before(async () => {
  b = await startTestBerth();
  sub = b.identity.ids.subscriptionId;
});
after(async () => b?.cleanup());

test('group delete removes its identities, their principals and roles, and every assignment scoped inside it; another group keeps its own', async () => {
  const owner = await principalWithRole(b, 'Owner', `/subscriptions/${sub}`);
  const token = (await tokenFor(b, owner, 'https://management.core.windows.net//.default')).token;
  for (const g of ['doomed_rg', 'kept-rg']) await b.groups.createOrUpdate(g, 'westus');
  const { registry } = await b.registries.createOrUpdate('doomed_rg', 'doomedreg01', { sku: 'Basic' });
  const { identity: mi } = await b.managedIdentities.createOrUpdate('doomed_rg', 'doomed-mi', {});
  const { identity: keptMi } = await b.managedIdentities.createOrUpdate('kept-rg', 'kept-mi', {});
  const sp = await principalWithRole(b, undefined);
  const regScope = `/subscriptions/${sub}/resourceGroups/doomed_rg/providers/Microsoft.ContainerRegistry/registries/${registry.name}`;
  await b.identity.assignRole(sp.objectId, findRole('AcrPull')!, regScope);
  await b.identity.assignRole(sp.objectId, findRole('Reader')!, `/subscriptions/${sub}/resourceGroups/doomed_rg`);
  await b.identity.assignRole(sp.objectId, findRole('Reader')!, `/subscriptions/${sub}/resourceGroups/kept-rg`);
  await b.identity.assignRole(mi.principalId, findRole('AcrPull')!, `/subscriptions/${sub}/resourceGroups/kept-rg`);
  await b.identity.assignRole(keptMi.principalId, findRole('AcrPull')!, regScope);
  // a vault created over ARM gives its creator Key Vault Administrator on it
  const vault = await fetch(`${b.url}/subscriptions/${sub}/resourcegroups/doomed_rg/providers/Microsoft.KeyVault/vaults/doomed-vault?api-version=2023-07-01`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ location: 'westus', properties: { sku: { family: 'A', name: 'standard' } } }) });
  assert.equal(vault.status, 201);
  // a group whose name has a LIKE wildcard does not take a look-alike group's assignments
  await b.groups.createOrUpdate('doomedXrg', 'westus');
  await b.identity.assignRole(sp.objectId, findRole('Reader')!, `/subscriptions/${sub}/resourceGroups/doomedXrg`);

  const del = await fetch(`${b.url}/subscriptions/${sub}/resourcegroups/doomed_rg?api-version=2021-04-01`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  assert.equal(del.status, 200);
  const scopes = (await b.identity.listAssignments()).map((a) => a.scope.toLowerCase());
  assert.ok(!scopes.some((s) => s.includes('/resourcegroups/doomed_rg')), scopes.join('\n'));
  assert.equal((await b.managedIdentities.list()).some((i) => i.name === 'doomed-mi'), false);
  assert.equal((await b.identity.listAssignments()).some((a) => a.principalId === mi.principalId), false, "the identity's roles elsewhere go with it");
  const graph = await fetch(`${b.url}/v1.0/servicePrincipals/${mi.principalId}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(graph.status, 404, 'its service principal is gone');
  assert.equal(await b.vaults.byName('doomed-vault'), undefined);
  assert.equal(await b.registries.byName('doomedreg01'), undefined);
  // what is outside the group stays
  assert.ok(scopes.includes(`/subscriptions/${sub}/resourcegroups/kept-rg`));
  assert.ok(scopes.includes(`/subscriptions/${sub}/resourcegroups/doomedxrg`));
  assert.ok((await b.managedIdentities.list()).some((i) => i.name === 'kept-mi'));
});
