// The registry data plane's routes as data (src/registry/http/routes.ts): every route declares a method,
// a path, the token-scope action it needs and what that action applies to; a table with a route lacking
// one fails when it is indexed (at start-up). Paths with repository names containing slashes parse to
// the route and the access the pipeline authorizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUTHENTICATED, REGISTRY_ROUTES, matchRoute, requiredAccess, routeTableProblems, type RegistryRouteDef } from '../src/registry/http/routes.js';

test('the registry route table declares an action and a scope for every route', { timeout: 10_000 }, () => {
  assert.ok(REGISTRY_ROUTES.length >= 29, `found ${REGISTRY_ROUTES.length} routes`);
  assert.deepEqual(routeTableProblems(REGISTRY_ROUTES), []);
});

test('a registry route without an action or scope, on an unknown path, or declared twice, is a problem', { timeout: 10_000 }, () => {
  const ok: RegistryRouteDef = { method: 'GET', path: '/v2/<name>/tags/list', action: 'pull', scope: 'repository' };
  const cases: Array<[string, Partial<RegistryRouteDef>, RegExp]> = [
    ['no action', { ...ok, action: undefined }, /declares no action/],
    ['unknown action', { ...ok, action: 'steal' as never }, /unknown action 'steal'/],
    ['no scope', { ...ok, scope: undefined }, /declares no scope/],
    ['unknown path', { ...ok, path: '/v2/<name>/everything' }, /path the registry's parser does not know/],
    ['a repository scope without <name>', { ...ok, path: '/v2/_catalog' }, /scope repository needs <name>/],
    ['authenticated with a scope', { ...ok, action: AUTHENTICATED }, /action authenticated with scope repository/],
  ];
  for (const [what, def, expected] of cases) {
    const problems = routeTableProblems([def]);
    assert.equal(problems.length, 1, `${what}: ${problems.join('; ')}`);
    assert.match(problems[0]!, expected, what);
  }
  assert.match(routeTableProblems([ok, ok]).join('\n'), /GET \/v2\/<name>\/tags\/list is declared twice/);
});

test('a path parses to its route and the access the pipeline authorizes', { timeout: 10_000 }, () => {
  const repo = (name: string, action: string) => ({ type: 'repository', name, actions: [action] });
  const cases: Array<[string, string, unknown, unknown]> = [
    ['GET', '/v2/', { kind: 'base' }, null],
    ['HEAD', '/v2', { kind: 'base' }, null],
    ['GET', '/v2/_catalog', { kind: 'catalog' }, { type: 'registry', name: 'catalog', actions: ['*'] }],
    ['GET', '/v2/team/app/tags/list', { kind: 'tags', name: 'team/app' }, repo('team/app', 'pull')],
    ['PUT', '/v2/team/app/manifests/1.0', { kind: 'manifest', name: 'team/app', reference: '1.0' }, repo('team/app', 'push')],
    ['DELETE', '/v2/a/manifests/sha256:00', { kind: 'manifest', name: 'a', reference: 'sha256:00' }, repo('a', 'delete')],
    ['POST', '/v2/a/b/c/blobs/uploads/', { kind: 'uploadStart', name: 'a/b/c' }, repo('a/b/c', 'push')],
    ['PATCH', '/v2/a/blobs/uploads/u1', { kind: 'upload', name: 'a', id: 'u1' }, repo('a', 'push')],
    ['HEAD', '/v2/a/blobs/sha256:00', { kind: 'blob', name: 'a', digest: 'sha256:00' }, repo('a', 'pull')],
    ['GET', '/v2/a/referrers/sha256:00', { kind: 'referrers', name: 'a', digest: 'sha256:00' }, repo('a', 'pull')],
    ['GET', '/acr/v1/_catalog', { kind: 'acrCatalog' }, { type: 'registry', name: 'catalog', actions: ['*'] }],
    ['PATCH', '/acr/v1/team%2Fapp', { kind: 'acrRepository', name: 'team/app' }, repo('team/app', 'metadataWrite')],
    ['GET', '/acr/v1/team/app/_tags/1.0', { kind: 'acrTag', name: 'team/app', tag: '1.0' }, repo('team/app', 'metadataRead')],
    ['DELETE', '/acr/v1/a/_manifests/sha256:00', { kind: 'acrManifest', name: 'a', digest: 'sha256:00' }, repo('a', 'delete')],
    // A known path with a method it does not serve: undefined (405), never an open route.
    ['POST', '/v2/a/manifests/1.0', { kind: 'manifest', name: 'a', reference: '1.0' }, undefined],
    ['PUT', '/v2/_catalog', { kind: 'catalog' }, undefined],
    ['POST', '/v2/', { kind: 'base' }, undefined],
  ];
  for (const [method, path, route, access] of cases) {
    const r = matchRoute(path);
    assert.deepEqual(r && { ...r }, route, `${method} ${path}`);
    assert.deepEqual(requiredAccess(r!, method), access, `${method} ${path}`);
  }
  assert.equal(matchRoute('/v3/a/manifests/1'), undefined);
});
