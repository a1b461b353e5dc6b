// The identity endpoint and the registry's token endpoints on the wire: OIDC discovery and JWKS (the
// tokens verify with the published key), client credentials by form and by Basic, the registry's
// password, refresh-token and offline-token grants (access tokens carry only what the principal may do),
// ACR's exchange used as a password with the null GUID, signing keys that survive a restart, and the
// IMDS path with its Metadata header.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { findRole } from '../src/identity/roles.js';
import { armId } from '../src/registry/registries.js';

let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let sp: { appId: string; secret: string };
const NULL_GUID = '00000000-0000-0000-0000-000000000000';
const form = (o: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o) });
const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

before(async () => {
  b = await startTestBerth();
  reg = await adminRegistry(b, 'endpointreg01');
  const app = await b.applications.createApplication('endpoint-sp');
  await b.applications.createServicePrincipal(app.appId);
  sp = { appId: app.appId, secret: (await b.applications.addPassword(app.id, {})).secretText };
  await b.identity.assignRole(app.id, findRole('AcrPull')!, armId(await b.registries.get('rg', 'endpointreg01')));
});
after(async () => b?.cleanup());

const tenant = () => b.identity.ids.tenantId;

test('OIDC discovery and JWKS: client-credentials tokens verify with the published key', async () => {
  const doc = await (await fetch(`${b.url}/${tenant()}/v2.0/.well-known/openid-configuration`)).json() as { issuer: string; token_endpoint: string; jwks_uri: string };
  assert.equal(doc.token_endpoint, `${b.url}/${tenant()}/oauth2/v2.0/token`);
  const wrongTenant = await fetch(`${b.url}/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration`);
  assert.equal(wrongTenant.status, 400);
  await wrongTenant.body?.cancel();

  const byForm = await fetch(doc.token_endpoint, form({ grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.secret, scope: 'https://management.azure.com/.default' }));
  assert.equal(byForm.status, 200);
  assert.equal(byForm.headers.get('cache-control'), 'no-store');
  const { access_token, token_type } = await byForm.json() as { access_token: string; token_type: string };
  assert.equal(token_type, 'Bearer');
  const { payload } = await jwtVerify(access_token, createRemoteJWKSet(new URL(doc.jwks_uri)), { issuer: doc.issuer, audience: ['https://management.azure.com', 'https://management.azure.com/'] });
  assert.equal(payload.appid, sp.appId);
  assert.equal(payload.tid, tenant());

  const byBasic = await fetch(doc.token_endpoint, { ...form({ grant_type: 'client_credentials', scope: 'https://management.azure.com/.default' }), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(sp.appId, sp.secret) } });
  assert.equal(byBasic.status, 200);
  await byBasic.body?.cancel();

  const cases: Array<[Record<string, string>, number, string, RegExp]> = [
    [{ grant_type: 'client_credentials', client_id: sp.appId, client_secret: 'wrong' }, 401, 'invalid_client', /invalid client secret/],
    [{ grant_type: 'client_credentials', client_id: '11111111-2222-3333-4444-555555555555', client_secret: 'x' }, 401, 'invalid_client', /no application/],
    [{ grant_type: 'authorization_code', client_id: sp.appId, client_secret: sp.secret }, 400, 'unsupported_grant_type', /use client_credentials/],
    [{ grant_type: 'client_credentials' }, 400, 'invalid_request', /client_id and client_secret are required/],
  ];
  for (const [body, status, error, desc] of cases) {
    const r = await fetch(doc.token_endpoint, form(body));
    const j = await r.json() as { error: string; error_description: string };
    assert.equal(r.status, status, JSON.stringify(j));
    assert.equal(j.error, error);
    assert.match(j.error_description, desc);
    assert.ok(!JSON.stringify(j).includes(sp.secret));
  }
});

test('an expired client secret is refused with when it expired', async () => {
  const app = await b.applications.createApplication('expiring-sp');
  await b.applications.createServicePrincipal(app.appId);
  const end = new Date(Date.now() + 1500).toISOString();
  const pw = await b.applications.addPassword(app.id, { endDateTime: end });
  const url = `${b.url}/${tenant()}/oauth2/v2.0/token`;
  const ok = await fetch(url, form({ grant_type: 'client_credentials', client_id: app.appId, client_secret: pw.secretText }));
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(end) - Date.now()) + 200));
  const late = await fetch(url, form({ grant_type: 'client_credentials', client_id: app.appId, client_secret: pw.secretText }));
  assert.equal(late.status, 401);
  const j = await late.json() as { error_description: string };
  assert.match(j.error_description, /expired at/);
  assert.ok(j.error_description.includes(new Date(Date.parse(end)).toISOString().slice(0, 19)), j.error_description);
});

test('registry token endpoint: password, offline-token and refresh-token grants; access tokens carry only allowed actions', async () => {
  const tokenUrl = `${reg.base}/oauth2/token`;
  const scope = 'repository:app:pull,push,delete';
  // POST grant_type=password (as the Docker token spec's OAuth2 form)
  const pw = await fetch(tokenUrl, form({ grant_type: 'password', service: reg.loginServer, scope, username: sp.appId, password: sp.secret }));
  assert.equal(pw.status, 200);
  const access = decodeJwt(((await pw.json()) as { access_token: string }).access_token) as { access: Array<{ type: string; name: string; actions: string[] }> };
  assert.deepEqual(access.access, [{ type: 'repository', name: 'app', actions: ['pull'] }], 'an AcrPull principal gets pull only, though it asked for push and delete');
  const bad = await fetch(tokenUrl, form({ grant_type: 'password', service: reg.loginServer, scope, username: sp.appId, password: 'nope' }));
  assert.equal(bad.status, 401);
  assert.match(await bad.text(), /UNAUTHORIZED/);

  // GET with Basic and offline_token=true (docker login) returns a refresh token too
  const off = await fetch(`${tokenUrl}?service=${reg.loginServer}&scope=${encodeURIComponent(scope)}&offline_token=true&client_id=docker`, { headers: { authorization: basic(sp.appId, sp.secret) } });
  assert.equal(off.status, 200);
  const { refresh_token } = await off.json() as { refresh_token: string };
  assert.ok(refresh_token);
  const viaRefresh = await fetch(tokenUrl, form({ grant_type: 'refresh_token', service: reg.loginServer, scope: 'repository:app:pull', refresh_token }));
  assert.equal(viaRefresh.status, 200);
  const t = decodeJwt(((await viaRefresh.json()) as { access_token: string }).access_token) as { access: unknown };
  assert.deepEqual(t.access, [{ type: 'repository', name: 'app', actions: ['pull'] }]);
  const forged = await fetch(tokenUrl, form({ grant_type: 'refresh_token', service: reg.loginServer, scope: 'repository:app:pull', refresh_token: refresh_token.slice(0, -4) + 'AAAA' }));
  assert.equal(forged.status, 401);
  await forged.body?.cancel();
  const noGrant = await fetch(tokenUrl, form({ grant_type: 'client_credentials', service: reg.loginServer }));
  assert.equal(noGrant.status, 400);
  await noGrant.body?.cancel();
});

test('ACR exchange: an identity access token becomes a registry refresh token usable as a password with the null GUID; signing keys survive a restart', async () => {
  const aad = await fetch(`${b.url}/${tenant()}/oauth2/v2.0/token`, form({ grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.secret, scope: 'https://management.azure.com/.default' }));
  const { access_token } = await aad.json() as { access_token: string };
  const ex = await fetch(`${reg.base}/oauth2/exchange`, form({ grant_type: 'access_token', service: reg.loginServer, tenant: tenant(), access_token }));
  assert.equal(ex.status, 200);
  const { refresh_token } = await ex.json() as { refresh_token: string };
  const v2 = await fetch(`${reg.base}/v2/`, { headers: { authorization: basic(NULL_GUID, refresh_token) } });
  assert.equal(v2.status, 200);
  await v2.body?.cancel();
  const junk = await fetch(`${reg.base}/oauth2/exchange`, form({ grant_type: 'access_token', service: reg.loginServer, tenant: tenant(), access_token: 'not.a.token' }));
  assert.equal(junk.status, 401);
  await junk.body?.cancel();

  // the same refresh token, and the identity token, still verify after a restart: the keys are persisted
  b = await b.restart(true);
  const again = await fetch(`${reg.base}/v2/`, { headers: { authorization: basic(NULL_GUID, refresh_token) } });
  assert.equal(again.status, 200);
  await again.body?.cancel();
  const arm = await fetch(`${b.url}/subscriptions/${b.identity.ids.subscriptionId}/resourcegroups?api-version=2021-04-01`, { headers: { authorization: `Bearer ${access_token}` } });
  assert.equal(arm.status, 200, 'an identity token issued before the restart is still accepted');
  await arm.body?.cancel();
});

test('IMDS path: needs Metadata: true, then serves the workload that holds the identity', async () => {
  const { identity } = await b.managedIdentities.createOrUpdate('rg', 'imds-mi', {});
  const binding = b.workloads.bind('imds-group', [identity.principalId]);
  try {
    const url = `${b.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent('https://management.azure.com/')}`;
    const noHeader = await fetch(url, { headers: { 'X-IDENTITY-HEADER': binding.secret } });
    assert.equal(noHeader.status, 400);
    await noHeader.body?.cancel();
    const ok = await fetch(url, { headers: { Metadata: 'true', 'X-IDENTITY-HEADER': binding.secret } });
    assert.equal(ok.status, 200);
    const body = await ok.json() as { access_token: string; client_id: string };
    assert.equal(body.client_id, identity.clientId);
    assert.equal(decodeJwt(body.access_token).oid, identity.principalId);
    const stranger = await fetch(url, { headers: { Metadata: 'true' } });
    assert.equal(stranger.status, 401, 'a caller that holds no identity gets nothing');
    await stranger.body?.cancel();
  } finally {
    b.workloads.unbind('imds-group');
  }
});
