// What ARM checks on every request before a route runs: an api-version (missing or malformed is a 400
// with ARM's codes), and a PUT/PATCH body that is a JSON object with typed top-level fields. A bounded
// type-confusion fuzz over every ARM write route (PUT, PATCH, POST) must never get a 5xx, and a refused
// body creates nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { principalWithRole, tokenFor } from './helpers/vault.js';

let b: TestBerth;
let sub: string;
let token: string;
const REG = 'fuzzreg01';

before(async () => {
  b = await startTestBerth();
  await adminRegistry(b, REG);
  sub = b.identity.ids.subscriptionId;
  const owner = await principalWithRole(b, 'Owner', `/subscriptions/${sub}`);
  token = (await tokenFor(b, owner, 'https://management.core.windows.net//.default')).token;
});
after(async () => b?.cleanup());

const call = async (method: string, path: string, body?: string) => {
  const r = await fetch(`${b.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
};

test('api-version: missing and malformed are refused with ARM\'s codes; date forms (and previews) pass', async () => {
  const missing = await call('GET', `/subscriptions/${sub}/resourcegroups`);
  assert.equal(missing.status, 400);
  assert.equal(missing.body.error.code, 'MissingApiVersionParameter');
  for (const v of ['garbage', '7.4', '2023-7-1']) {
    const r = await call('GET', `/subscriptions/${sub}/resourcegroups?api-version=${v}`);
    assert.equal(r.status, 400, v);
    assert.equal(r.body.error.code, 'InvalidApiVersionParameter');
    assert.match(r.body.error.message, new RegExp(`'${v.replace(/\./g, '\\.')}' is invalid`));
  }
  for (const v of ['2021-04-01', '2024-05-01-preview', '2018-06-01']) assert.equal((await call('GET', `/subscriptions/${sub}/resourcegroups?api-version=${v}`)).status, 200, v);
  // Graph has no api-version
  assert.equal((await call('GET', '/v1.0/servicePrincipals')).status, 200);
});

test('a registry PUT whose body is null, an array or a number is refused and creates nothing', async () => {
  for (const body of ['null', '[1,2,3]', '1', '"x"']) {
    const r = await call('PUT', `/subscriptions/${sub}/resourcegroups/rg/providers/Microsoft.ContainerRegistry/registries/fuzzmade01?api-version=2023-07-01`, body);
    assert.equal(r.status, 400, body);
    assert.equal(r.body.error.code, 'InvalidRequestContent');
    assert.match(r.body.error.message, /must be a JSON object/);
  }
  assert.equal(await b.registries.byName('fuzzmade01'), undefined);
  const loc = await call('PUT', `/subscriptions/${sub}/resourcegroups/rg?api-version=2021-04-01`, '{"location": 1}');
  assert.equal(loc.status, 400);
  assert.match(loc.body.error.message, /'location' must be a string, not number/);
  const sku = await call('PATCH', `/subscriptions/${sub}/resourcegroups/rg/providers/Microsoft.ContainerRegistry/registries/${REG}?api-version=2023-07-01`, '{"sku": {"name": 1}}');
  assert.match(sku.body.error.message, /'sku\.name' must be a string/);
});

test('type confusion over every ARM write route: never a 5xx', async () => {
  const existing: Record<string, string> = { subscriptions: sub, resourcegroups: 'rg', registries: REG };
  const fill = (url: string) => { const p = url.split('/'); return p.map((x, i) => (x.startsWith(':') ? existing[(p[i - 1] ?? '').toLowerCase()] ?? `fuzz${i}x` : x)).join('/'); };
  const bodies = ['null', '[1,2,3]', '1', '"x"', 'true', '{}', '{"properties":null}', '{"properties":1}', '{"properties":[]}', '{"properties":"x"}',
    '{"location":1}', '{"location":null}', '{"tags":"x"}', '{"tags":{"a":1}}', '{"sku":1}', '{"sku":{"name":1}}', '{"identity":1}', '{"identity":{"type":1}}',
    '{"properties":{"containers":null}}', '{"properties":{"containers":[null]}}', '{"properties":{"containers":[{"name":1,"properties":1}]}}',
    '{"properties":{"adminUserEnabled":"x"}}', '{"properties":{"accessPolicies":{}}}', '{"properties":{"accessPolicies":[null]}}',
    '{"properties":{"roleDefinitionId":1,"principalId":{}}}', '{"properties":{"scopeMapId":1,"actions":"x"}}', '{"name":1}', '{"passwordCredential":1}'];
  const routes = b.apiRoutes().filter((r) => ['PUT', 'PATCH', 'POST'].includes(r.method) && r.url.startsWith('/subscriptions/') && !r.url.includes('*'));
  assert.ok(routes.length >= 15, `found ${routes.length} write routes`);
  const bad: string[] = [];
  let n = 0;
  for (const r of routes) {
    for (const body of bodies) {
      n++;
      const res = await call(r.method, `${fill(r.url)}?api-version=2023-07-01`, body);
      if (res.status >= 500) bad.push(`${r.method} ${r.url} ${body} -> ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
    }
  }
  assert.ok(n >= 400, `${n} requests`);
  assert.deepEqual(bad, []);
});
