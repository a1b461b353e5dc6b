// The management API enforces roles on every call: this walks every ARM route the server has (whatever
// issue added it) as a principal with no role and as a Reader, with the path filled in with resources
// that exist, and checks nothing is shown or changed that the role does not allow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { findRole } from '../src/identity/roles.js';

let b: TestBerth;
let sub: string;
/** An application (and its service principal) that Graph routes name. */
let graphApp: string;
const REG = 'authzreg01';

before(async () => {
  b = await startTestBerth();
  await adminRegistry(b, REG);
  sub = b.identity.ids.subscriptionId;
  const r = await b.registries.get('rg', REG);
  await b.repoTokens.createOrUpdateScopeMap(r, 'sm_authz', ['repositories/app/content/read']);
  await b.repoTokens.createOrUpdateToken(r, 'tok_authz', { scopeMap: 'sm_authz' });
  await b.managedIdentities.createOrUpdate('rg', 'mi-authz', {});
  await b.vaults.createOrUpdate('rg', 'authz-vault', {});
  const app = await b.applications.createApplication('authz-graph-target');
  await b.applications.createServicePrincipal(app.appId);
  graphApp = app.appId;
});
after(async () => b?.cleanup());

async function principalToken(role: string | undefined): Promise<string> {
  const app = await b.applications.createApplication(`authz-${role ?? 'none'}`);
  await b.applications.createServicePrincipal(app.appId);
  const secret = (await b.applications.addPassword(app.id, {})).secretText;
  if (role) await b.identity.assignRole(app.id, findRole(role)!, `/subscriptions/${sub}`);
  const r = await fetch(`${b.url}/${b.identity.ids.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: secret, scope: 'https://management.azure.com/.default' }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as { access_token: string }).access_token;
}

/** The value for a path parameter, from the collection it follows: a resource that exists, or 'x'. */
function fill(url: string): string {
  const existing: Record<string, string> = {
    subscriptions: sub, resourcegroups: 'rg', registries: REG, scopemaps: 'sm_authz', tokens: 'tok_authz', userassignedidentities: 'mi-authz',
    vaults: 'authz-vault', accesspolicies: 'add', applications: graphApp, serviceprincipals: graphApp,
  };
  const parts = url.split('/');
  return parts.map((p, i) => (p.startsWith(':') ? existing[(parts[i - 1] ?? '').toLowerCase()] ?? 'x' : p)).join('/');
}

/** Every ARM route (the Graph subset, the identity endpoints and catch-all routes are tested elsewhere). */
function armRoutes() {
  const routes = b.apiRoutes().filter((r) => r.url.startsWith('/subscriptions/') && !r.url.includes('*'));
  assert.ok(routes.length >= 20, `found ${routes.length} ARM routes`);
  return routes;
}

const BODY = JSON.stringify({ location: 'westus', sku: { name: 'Basic' }, properties: { adminUserEnabled: true, actions: ['repositories/app/content/read'], scopeMapId: 'x', status: 'enabled' }, tags: {}, name: REG });

async function call(token: string, method: string, url: string): Promise<{ status: number; body: string }> {
  const path = fill(url);
  const r = await fetch(`${b.url}${path}?api-version=2023-07-01`, {
    method, headers: { authorization: `Bearer ${token}`, ...(method === 'GET' || method === 'DELETE' ? {} : { 'content-type': 'application/json' }) },
    ...(method === 'GET' || method === 'DELETE' ? {} : { body: BODY }),
  });
  return { status: r.status, body: await r.text() };
}

const isEmptyList = (body: string) => {
  try {
    const v = JSON.parse(body) as { value?: unknown[] };
    return Array.isArray(v.value) && v.value.length === 0;
  } catch {
    return false;
  }
};

/** What exists before the walk, to check afterwards that a refused call did not change anything. */
async function snapshot(): Promise<string> {
  const r = await b.registries.get('rg', REG);
  return JSON.stringify({
    groups: (await b.groups.list()).map((g) => g.name),
    registries: (await b.registries.list()).map((x) => [x.name, x.adminUserEnabled]),
    maps: (await b.repoTokens.getScopeMap(r, 'sm_authz')).actions,
    token: await b.repoTokens.tokenActions(r, (await b.repoTokens.tokenById((await b.repoTokens.listTokens(r)).find((t) => t.name === 'tok_authz')!.id))!),
    identities: (await b.managedIdentities.list()).map((i) => i.name),
    vaults: (await b.vaults.list()).map((v) => [v.name, v.enableRbacAuthorization, v.accessPolicies]),
    applications: (await b.applications.list()).map((a) => [a.appId, a.displayName, a.hasServicePrincipal, a.passwordCredentials.map((c) => c.keyId)]),
    credentials: (await b.registries.credentials('rg', REG)).passwords.map((p) => p.value),
  });
}

test('a principal with no role is refused on every ARM route, or sees an empty list', async () => {
  const token = await principalToken(undefined);
  const before = await snapshot();
  const bad: string[] = [];
  for (const r of armRoutes()) {
    const res = await call(token, r.method, r.url);
    const ok = [401, 403, 404].includes(res.status) || (r.method === 'GET' && res.status === 200 && isEmptyList(res.body));
    if (!ok) bad.push(`${r.method} ${r.url} -> ${res.status} ${res.body.slice(0, 160)}`);
    if (res.status === 403) assert.match(res.body, /AuthorizationFailed|does not have authorization/, `${r.method} ${r.url}`);
  }
  assert.deepEqual(bad, []);
  assert.equal(await snapshot(), before, 'no refused call changed anything');
});

test('a Reader at the subscription reads every ARM route and changes nothing', async () => {
  const token = await principalToken('Reader');
  const before = await snapshot();
  const bad: string[] = [];
  for (const r of armRoutes()) {
    const res = await call(token, r.method, r.url);
    const read = r.method === 'GET' || /\/checkNameAvailability$/i.test(r.url);
    const ok = read ? (res.status >= 200 && res.status < 300) || res.status === 404 : [403, 404].includes(res.status);
    if (!ok) bad.push(`${r.method} ${r.url} -> ${res.status} ${res.body.slice(0, 160)}`);
  }
  assert.deepEqual(bad, []);
  assert.equal(await snapshot(), before, 'a Reader changed nothing');
});

test('a Contributor manages resources but cannot assign roles; only an Owner can', async () => {
  const contributor = await principalToken('Contributor');
  const owner = await principalToken('Owner');
  const api = (token: string, method: string, path: string, body?: unknown) => fetch(`${b.url}${path}?api-version=2023-07-01`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const reg = await api(contributor, 'PUT', `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/contribreg01`, { location: 'westus', sku: { name: 'Basic' } });
  assert.ok([200, 201].includes(reg.status), await reg.text());
  const target = await b.applications.createApplication('authz-target');
  await b.applications.createServicePrincipal(target.appId);
  const assignment = (id: string) => `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/${id}`;
  const body = { properties: { roleDefinitionId: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d`, principalId: target.id } };
  const refused = await api(contributor, 'PUT', assignment('3f0b8b8e-1111-4222-8333-944455556666'), body);
  assert.equal(refused.status, 403);
  assert.match(await refused.text(), /Microsoft\.Authorization\/roleAssignments\/write/);
  const allowed = await api(owner, 'PUT', assignment('3f0b8b8e-1111-4222-8333-944455556667'), body);
  assert.equal(allowed.status, 201, await allowed.text());
});

/** Every route of the Graph subset (under /v1.0). */
function graphRoutes() {
  const routes = b.apiRoutes().filter((r) => r.url.startsWith('/v1.0/'));
  assert.ok(routes.length >= 10, `found ${routes.length} Graph routes`);
  return routes;
}

const GRAPH_BODY = JSON.stringify({ displayName: 'authz-made-by-walk', appId: 'x', keyId: 'x', ids: [] });

async function graphCall(token: string, method: string, url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${b.url}${fill(url)}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(method === 'GET' || method === 'DELETE' ? {} : { 'content-type': 'application/json' }) },
    ...(method === 'GET' || method === 'DELETE' ? {} : { body: GRAPH_BODY }),
  });
  return { status: r.status, body: await r.text() };
}

test('Graph: a principal with no role reads and changes nothing in the directory; a Reader reads and changes nothing', async () => {
  const outsider = await principalToken(undefined);
  const reader = await principalToken('Reader');
  const before = await snapshot();
  const bad: string[] = [];
  for (const r of graphRoutes()) {
    const me = r.url === '/v1.0/me';
    const none = await graphCall(outsider, r.method, r.url);
    if (!(me ? none.status === 400 : none.status === 403)) bad.push(`no role: ${r.method} ${r.url} -> ${none.status} ${none.body.slice(0, 160)}`);
    if (!me && none.status === 403) assert.match(none.body, /Authorization_RequestDenied/, `${r.method} ${r.url}`);
    const read = r.method === 'GET' || r.url.endsWith('/getByIds');
    const res = await graphCall(reader, r.method, r.url);
    // Berth has no users, so a user by id is not found
    const ok = me ? res.status === 400 : read ? res.status === 200 || (r.url === '/v1.0/users/:id' && res.status === 404) : res.status === 403;
    if (!ok) bad.push(`Reader: ${r.method} ${r.url} -> ${res.status} ${res.body.slice(0, 160)}`);
    // no Graph answer carries a password
    assert.doesNotMatch(res.body, /"secretText":"[^"]/);
  }
  assert.deepEqual(bad, []);
  assert.equal(await snapshot(), before, 'no Graph call by an outsider or a Reader changed anything');
});

test('the unauthenticated surface is discovery only: cloud metadata and OIDC documents, nothing of the resources', async () => {
  const routes = b.apiRoutes().filter((r) => !r.url.startsWith('/subscriptions') && !r.url.startsWith('/v1.0/') && !r.url.startsWith('/providers/') && r.url !== '/subscriptions' && r.url !== '/tenants');
  const urls = routes.map((r) => `${r.method} ${r.url}`).sort();
  assert.deepEqual(urls.filter((u) => !/\/(oauth2|discovery|\.well-known|msi|metadata\/identity)\b/.test(u) && !/\/berth\/images\/prune$/.test(u)),
    ['GET /metadata/endpoints', 'GET /portal', 'GET /portal/*', 'POST /portal/session', 'POST /portal/sign-in-codes'],
    'every other unauthenticated route is a token or discovery endpoint, or the portal\'s assets and sign-in');
  // The portal's: a code is asked for with a token, and a wrong one buys nothing.
  assert.equal((await fetch(`${b.url}/portal/sign-in-codes`, { method: 'POST' })).status, 401);
  const guess = await fetch(`${b.url}/portal/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'guessed-code' }) });
  assert.equal(guess.status, 400);
  assert.doesNotMatch(await guess.text(), /eyJ/, 'no token for a wrong code');
  const meta = await fetch(`${b.url}/metadata/endpoints?api-version=2022-09-01`);
  assert.equal(meta.status, 200);
  const [cloud] = (await meta.json()) as Array<{ name: string; resourceManager: string; authentication: { loginEndpoint: string } }>;
  assert.equal(cloud!.name, 'Berth');
  assert.match(cloud!.authentication.loginEndpoint, /\/adfs$/);
  const adfs = await fetch(`${b.url}/adfs/.well-known/openid-configuration`);
  assert.equal(adfs.status, 200);
  assert.match(((await adfs.json()) as { token_endpoint: string }).token_endpoint, /\/adfs\/oauth2\/token$/);
  // the generic resource listing is behind auth like every other ARM route
  assert.equal((await fetch(`${b.url}/subscriptions/${sub}/resources?api-version=2021-04-01`)).status, 401);
});
