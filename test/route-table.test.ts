// Routes are data: every route the management API serves and every operation of the vault data plane
// declares an action (an RBAC permission of the catalogue, or public / authenticated-only) and how its
// authorization scope is derived. This lists them all and fails on one without; a table with a route
// lacking an action, or naming an unknown one, fails at start-up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { startTestBerth, type TestBerth } from './helpers/berth.js';
import { registerRoutes, route, SCOPE, type RouteDef } from '../src/api/route-table.js';
import { AUTHENTICATED, isKnownAction, PUBLIC } from '../src/identity/actions.js';
import { matchPath } from '../src/vault/secret-routes.js';
import type { IdentityService } from '../src/identity/service.js';

let b: TestBerth;
before(async () => {
  b = await startTestBerth();
});
after(async () => b?.cleanup());

const declared = (a: string) => a === PUBLIC || a === AUTHENTICATED || isKnownAction(a);

test('every registered API route is declared with an action and a scope', (t) => {
  const { api } = b.declaredRoutes();
  const served = b.apiRoutes();
  assert.ok(served.length >= 80, `found ${served.length} routes`);
  const key = (m: string, p: string) => `${m} ${p}`.toLowerCase();
  const byKey = new Map(api.map((r) => [key(r.method, r.path), r]));
  const missing = served.filter((r) => !byKey.has(key(r.method, r.url))).map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, [], 'every route Fastify serves comes from a route table');
  const bad = api.filter((r) => !r.action || !declared(r.action) || !r.scope).map((r) => `${r.method} ${r.path}: ${r.action || 'no action'} / ${r.scope || 'no scope'}`);
  assert.deepEqual(bad, []);
  for (const r of api) t.diagnostic(`${r.method.padEnd(6)} ${r.path}  ${r.action}  [${r.scope}]`);
  // Public routes are only the sign-in, discovery, workload-token and portal-asset ones.
  const pub = api.filter((r) => r.action === PUBLIC).map((r) => `${r.method} ${r.path}`);
  assert.ok(pub.every((p) => /\/(oauth2|discovery|\.well-known|msi|metadata|portal)\b/.test(p)), pub.join(', '));
  // An RBAC route under a subscription never has scope none.
  const unscoped = api.filter((r) => isKnownAction(r.action) && r.scope === 'none');
  assert.deepEqual(unscoped, []);
});

test('every vault data-plane operation declares a data action and a scope', (t) => {
  const { vault } = b.declaredRoutes();
  assert.ok(vault.length >= 10);
  for (const r of vault) {
    assert.ok(isKnownAction(r.action) && r.action.startsWith('Microsoft.KeyVault/vaults/secrets/'), `${r.method} ${r.path}: ${r.action}`);
    assert.ok(r.scope === 'vault' || r.scope === 'secret', `${r.method} ${r.path}: ${r.scope}`);
    t.diagnostic(`${r.method.padEnd(6)} ${r.path}  ${r.action}  [${r.scope}]`);
  }
});

test('a route table with a route lacking an action, or with an unknown one, fails at start-up', () => {
  const identity = { ids: { subscriptionId: 's', tenantId: 't' } } as unknown as IdentityService;
  const ok = route({ method: 'GET', path: '/things/:rg', action: 'Microsoft.Resources/subscriptions/resourceGroups/read', scope: SCOPE.resourceGroup, handler: () => ({}) });
  const cases: Array<[string, RouteDef, boolean, RegExp]> = [
    ['no action', { ...ok, action: '' }, true, /declares no action/],
    ['unknown action', { ...ok, action: 'Microsoft.Made/up/read' }, true, /unknown action 'Microsoft\.Made\/up\/read'/],
    ['no scope', { ...ok, scope: undefined as never }, true, /declares no scope/],
    ['public behind authentication', { ...ok, action: PUBLIC, scope: SCOPE.none }, true, /is public but registered behind authentication/],
    ['a caller needed without authentication', ok, false, /needs a caller/],
    ['an RBAC action with no scope', { ...ok, scope: SCOPE.none }, true, /needs an RBAC scope/],
    ['a resource scope without :name', { ...ok, scope: SCOPE.resource('Microsoft.KeyVault/vaults') }, true, /needs :name/],
  ];
  for (const [what, r, authenticated, message] of cases) {
    assert.throws(() => registerRoutes(Fastify(), { identity }, [ok, r], { authenticated, listing: [] }), message, what);
  }
  assert.doesNotThrow(() => registerRoutes(Fastify(), { identity }, [ok], { authenticated: true, listing: [] }));
});

test('vault path patterns: optional segments and a trailing slash', () => {
  assert.deepEqual(matchPath('/secrets/:name/:version?', ['secrets', 'a']), { name: 'a', version: undefined });
  assert.deepEqual(matchPath('/secrets/:name/:version?', ['secrets', 'a', '']), { name: 'a', version: undefined });
  assert.deepEqual(matchPath('/secrets/:name/:version?', ['secrets', 'a', 'v1']), { name: 'a', version: 'v1' });
  assert.equal(matchPath('/secrets/:name/:version?', ['secrets', 'a', 'v1', 'x']), undefined);
  assert.equal(matchPath('/secrets/:name', ['secrets', 'a', '']), undefined);
  assert.deepEqual(matchPath('/deletedsecrets/:name/', ['deletedsecrets', 'a', '']), { name: 'a' });
  assert.deepEqual(matchPath('/deletedsecrets/:name/', ['deletedsecrets', 'a']), { name: 'a' });
  assert.equal(matchPath('/secrets', ['secrets', '']), undefined);
});
