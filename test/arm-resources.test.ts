// ARM's generic resource listing (GET /subscriptions/{sub}/resources and .../resourceGroups/{rg}/resources),
// which az uses to find a registry or vault named without -g: the $filter forms, $top paging with an
// absolute nextLink, errors, and visibility by role.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBerth, type TestBerth } from './helpers/berth.js';
import { principalWithRole, tokenFor } from './helpers/vault.js';
import { parseResourceFilter } from '../src/api/resource-routes.js';

let b: TestBerth;
let sub: string;
let ownerToken: string;

before(async () => {
  b = await startTestBerth();
  sub = b.identity.ids.subscriptionId;
  await b.groups.createOrUpdate('rg-a', 'westus');
  await b.groups.createOrUpdate('rg-b', 'eastus');
  await b.registries.createOrUpdate('rg-a', 'listreg01', { sku: 'Basic' });
  await b.registries.createOrUpdate('rg-b', 'listreg02', { sku: 'Basic' });
  await b.vaults.createOrUpdate('rg-a', 'list-vault', {});
  await b.managedIdentities.createOrUpdate('rg-b', 'list-mi', {});
  const owner = await principalWithRole(b, 'Owner', `/subscriptions/${sub}`);
  ownerToken = (await tokenFor(b, owner, 'https://management.core.windows.net//.default')).token;
});
after(async () => b?.cleanup());

async function list(token: string, path: string): Promise<{ status: number; body: any }> {
  const url = /^https?:/.test(path) ? path : `${b.url}/subscriptions/${sub}${path}`;
  const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: await r.json() };
}

const q = (filter: string, extra = '') => `/resources?api-version=2021-04-01&$filter=${encodeURIComponent(filter)}${extra}`;

test('filters: resourceType, name, resourceGroup, joined by and, any case; the generic shape', async () => {
  const regs = await list(ownerToken, q("resourceType eq 'Microsoft.ContainerRegistry/registries'"));
  assert.equal(regs.status, 200);
  assert.deepEqual(regs.body.value.map((r: { name: string }) => r.name), ['listreg01', 'listreg02']);
  const one = regs.body.value[0];
  assert.deepEqual(Object.keys(one).sort(), ['id', 'location', 'name', 'sku', 'tags', 'type']);
  assert.equal(one.id, `/subscriptions/${sub}/resourceGroups/rg-a/providers/Microsoft.ContainerRegistry/registries/listreg01`);
  const byName = await list(ownerToken, q("resourcetype EQ 'microsoft.keyvault/VAULTS' and name eq 'LIST-VAULT'"));
  assert.deepEqual(byName.body.value.map((r: { name: string; type: string }) => [r.name, r.type]), [['list-vault', 'Microsoft.KeyVault/vaults']]);
  const inGroup = await list(ownerToken, q("resourceGroup eq 'rg-b'"));
  assert.deepEqual(inGroup.body.value.map((r: { name: string }) => r.name).sort(), ['list-mi', 'listreg02']);
  const all = await list(ownerToken, '/resources?api-version=2021-04-01');
  assert.equal(all.body.value.length, 4);
  assert.equal(all.body.nextLink, undefined);
  const rgScoped = await list(ownerToken, '/resourceGroups/rg-a/resources?api-version=2021-04-01');
  assert.deepEqual(rgScoped.body.value.map((r: { name: string }) => r.name).sort(), ['list-vault', 'listreg01']);
});

test('paging: $top pages with an absolute nextLink that keeps the filter; bad input is a 400 that says what works', async () => {
  const seen: string[] = [];
  let next: string | undefined = `${b.url}/subscriptions/${sub}/resources?api-version=2021-04-01&$top=3`;
  let pages = 0;
  while (next && pages < 10) {
    const page = await list(ownerToken, next);
    assert.equal(page.status, 200);
    assert.ok(page.body.value.length <= 3);
    seen.push(...page.body.value.map((r: { name: string }) => r.name));
    next = page.body.nextLink;
    if (next) assert.match(next, /^http:\/\/127\.0\.0\.1:\d+\/subscriptions\/.*\$skiptoken=/);
    pages++;
  }
  assert.equal(pages, 2);
  assert.deepEqual(seen.sort(), ['list-mi', 'list-vault', 'listreg01', 'listreg02']);
  const filtered = await list(ownerToken, q("resourceType eq 'Microsoft.ContainerRegistry/registries'", '&$top=1'));
  const second = await list(ownerToken, filtered.body.nextLink);
  assert.deepEqual(second.body.value.map((r: { name: string }) => r.name), ['listreg02']);
  const bad = await list(ownerToken, q("substringof('reg', name)"));
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'InvalidFilterInQueryString');
  assert.match(bad.body.error.message, /resourceType eq '<type>'/);
  const top0 = await list(ownerToken, '/resources?api-version=2021-04-01&$top=0');
  assert.equal(top0.body.error.code, 'InvalidTopInQueryString');
  const skip = await list(ownerToken, '/resources?api-version=2021-04-01&$skiptoken=@@');
  assert.equal(skip.body.error.code, 'InvalidSkipToken');
  assert.equal((await list(ownerToken, '/resourceGroups/missing/resources?api-version=2021-04-01')).status, 404);
  assert.throws(() => parseResourceFilter("name ne 'x'"), /Invalid \$filter/);
  assert.deepEqual(parseResourceFilter("name eq 'it''s'"), [{ field: 'name', value: "it's" }]);
});

test('visibility: a Reader on one resource group sees that group\'s resources only', async () => {
  const reader = await principalWithRole(b, 'Reader', `/subscriptions/${sub}/resourceGroups/rg-a`);
  const token = (await tokenFor(b, reader, 'https://management.core.windows.net//.default')).token;
  const r = await list(token, '/resources?api-version=2021-04-01');
  assert.deepEqual(r.body.value.map((x: { name: string }) => x.name).sort(), ['list-vault', 'listreg01']);
  const none = await principalWithRole(b, undefined);
  const t2 = (await tokenFor(b, none, 'https://management.core.windows.net//.default')).token;
  assert.deepEqual((await list(t2, '/resources?api-version=2021-04-01')).body.value, []);
});
