// The portal's server side without a browser: its assets (headers, no way out of the build directory),
// one-time sign-in codes (once, for the principal that asked, expiring), and the registries' CORS
// answers (the portal's origins only). The browser flows are in portal-e2e.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRole } from '../src/identity/roles.js';
import { SignInCodes, SIGN_IN_CODE_TTL_MS } from '../src/identity/sign-in-codes.js';
import { adminRegistry, REPO_ROOT, startTestBerth, type TestBerth } from './helpers/berth.js';

const built = existsSync(join(REPO_ROOT, 'dist', 'portal', 'index.html'));
let b: TestBerth;
let sub: string;

before(async () => {
  b = await startTestBerth();
  sub = b.identity.ids.subscriptionId;
});
after(async () => b?.cleanup());

async function spToken(role: string): Promise<string> {
  const app = await b.applications.createApplication(`portal-${role}`);
  await b.applications.createServicePrincipal(app.appId);
  const secret = (await b.applications.addPassword(app.id, {})).secretText;
  await b.identity.assignRole(app.id, findRole(role)!, `/subscriptions/${sub}`);
  const r = await fetch(`${b.url}/organizations/oauth2/v2.0/token`, {
    method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: secret, scope: 'https://management.azure.com/.default' }),
  });
  return ((await r.json()) as { access_token: string }).access_token;
}

const redeem = (code: string) => fetch(`${b.url}/portal/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
const newCode = async (token: string) => {
  const r = await fetch(`${b.url}/portal/sign-in-codes`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(r.status, 201);
  return ((await r.json()) as { code: string }).code;
};

test('the portal is served with a strict content policy, as a single page, and nothing outside its build', { skip: built ? false : 'the portal is not built (npm run build)' }, async () => {
  for (const path of ['/portal', '/portal/', '/portal/registries/rg/x']) {
    const r = await fetch(`${b.url}${path}`);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type')!, /^text\/html/);
    assert.match(r.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.match(await r.text(), /<div id="app">/);
  }
  const index = await (await fetch(`${b.url}/portal/`)).text();
  const js = /src="(\/portal\/assets\/[^"]+\.js)"/.exec(index)![1]!;
  const asset = await fetch(`${b.url}${js}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('content-type')!, /javascript/);
  assert.match(asset.headers.get('cache-control')!, /immutable/);
  assert.equal((await fetch(`${b.url}/portal/assets/nothing.js`)).status, 404);
  // Paths that climb out of the build get the page, never a file of the data directory or the checkout.
  for (const path of ['/portal/../berth.db', '/portal/%2e%2e/%2e%2e/package.json', '/portal/assets/..%2f..%2fpackage.json']) {
    const r = await fetch(`${b.url}${path}`);
    const text = await r.text();
    assert.doesNotMatch(text, /SQLite format|"devDependencies"/, path);
  }
});

test('a sign-in code works once, for the principal that asked for it, and buys that principal\'s rights only', async () => {
  const cred = JSON.parse(readFileSync(join(b.env.BERTH_DATA_DIR!, 'owner-credential.json'), 'utf8')) as { clientId: string };
  const owner = await b.identity.issueAccessToken((await b.identity.principalByAppId(cred.clientId))!, 'https://management.azure.com/');
  const code = await newCode(owner);
  const first = await redeem(code);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('cache-control'), 'no-store');
  const s = (await first.json()) as { management: string; vault: string; principal: { displayName: string }; expiresOn: number };
  assert.equal(s.principal.displayName, 'berth-local-owner');
  assert.ok(s.expiresOn > Date.now());
  const subs = await fetch(`${b.url}/subscriptions?api-version=2022-12-01`, { headers: { authorization: `Bearer ${s.management}` } });
  assert.equal(((await subs.json()) as { value: unknown[] }).value.length, 1, 'the management token works on the API');
  assert.equal((await redeem(code)).status, 400, 'a code works once');

  const readerCode = await newCode(await spToken('Reader'));
  const reader = (await (await redeem(readerCode)).json()) as { management: string; principal: { displayName: string } };
  assert.equal(reader.principal.displayName, 'portal-Reader');
  const put = await fetch(`${b.url}/subscriptions/${sub}/resourcegroups/made-by-portal?api-version=2021-04-01`, {
    method: 'PUT', headers: { authorization: `Bearer ${reader.management}`, 'content-type': 'application/json' }, body: JSON.stringify({ location: 'westus' }),
  });
  assert.equal(put.status, 403, 'a Reader\'s code signs in a Reader');
  assert.equal((await redeem('')).status, 400);
});

test('sign-in codes expire after five minutes', () => {
  let now = 1_000_000;
  const codes = new SignInCodes(() => now);
  const { code, expiresOn } = codes.create('p1');
  assert.equal(Date.parse(expiresOn), now + SIGN_IN_CODE_TTL_MS);
  const other = codes.create('p2').code;
  now += SIGN_IN_CODE_TTL_MS + 1;
  assert.equal(codes.redeem(code), undefined);
  now -= 2;
  assert.equal(codes.redeem(other), 'p2');
});

test('a registry answers the portal\'s origins with CORS headers, and no other origin', async () => {
  const reg = await adminRegistry(b, 'portalcors01');
  const origin = new URL(b.url).origin;
  const preflight = (o: string) => fetch(`${reg.base}/acr/v1/_catalog`, { method: 'OPTIONS', headers: { origin: o, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
  const ok = await preflight(origin);
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get('access-control-allow-origin'), origin);
  assert.match(ok.headers.get('access-control-allow-headers')!, /Authorization/);
  const evil = await preflight('http://evil.example');
  assert.equal(evil.status, 403);
  assert.equal(evil.headers.get('access-control-allow-origin'), null);
  const get = await fetch(`${reg.base}/v2/`, { headers: { origin: 'http://evil.example', authorization: reg.auth } });
  assert.equal(get.headers.get('access-control-allow-origin'), null);
  const mine = await fetch(`${reg.base}/v2/`, { headers: { origin, authorization: reg.auth } });
  assert.equal(mine.headers.get('access-control-allow-origin'), origin);
  assert.match(mine.headers.get('access-control-expose-headers')!, /WWW-Authenticate/);
});
