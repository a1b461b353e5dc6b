// The OCI distribution routes (and ACR's /acr/v1 metadata API) as data, in the management API's table
// shape (src/api/route-table.ts): every route is `{method, path, action, scope}`, where the action is the
// token-scope action it needs (pull, push, delete, metadataRead, metadataWrite; `*` on registry:catalog;
// AUTHENTICATED: any caller the registry knows) and the scope what the action applies to (the repository
// named in the path, the registry's catalog, none). A route without an action or a scope, or naming a
// path the parser does not know, fails when this module loads (at start-up).
//
// It stays its own router rather than a Fastify route table: repository names contain slashes
// (`/v2/team/app/manifests/1.0`), so a path is matched by expressions tried in order, first match wins
// (`/v2/<name>/blobs/uploads/` before `/v2/<name>/blobs/<digest>`), not by segments; a known path with
// an unlisted method answers 405 UNSUPPORTED and an unknown one 404, with the distribution spec's error
// bodies and its bearer challenge. /oauth2/token and /oauth2/exchange are the token service's endpoints,
// served before this table (they authenticate the credential they are sent). server.ts runs the pipeline.
import type { AccessRequest } from '../access.js';

export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploadStart'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'acrRepository'; name: string }
  | { kind: 'acrTags'; name: string }
  | { kind: 'acrTag'; name: string; tag: string }
  | { kind: 'acrManifests'; name: string }
  | { kind: 'acrManifest'; name: string; digest: string }
  | { kind: 'acrCatalog' };

type Kind = Route['kind'];

/** The protocol's paths, tried in this order (first match wins); a named group becomes the route's field. */
const PATHS: ReadonlyArray<{ path: string; kind: Kind; re: RegExp }> = [
  { path: '/v2/', kind: 'base', re: /^\/v2\/?$/ },
  { path: '/v2/_catalog', kind: 'catalog', re: /^\/v2\/_catalog$/ },
  { path: '/v2/<name>/tags/list', kind: 'tags', re: /^\/v2\/(?<name>.+)\/tags\/list$/ },
  { path: '/v2/<name>/manifests/<reference>', kind: 'manifest', re: /^\/v2\/(?<name>.+)\/manifests\/(?<reference>[^/]+)$/ },
  { path: '/v2/<name>/blobs/uploads/', kind: 'uploadStart', re: /^\/v2\/(?<name>.+)\/blobs\/uploads\/?$/ },
  { path: '/v2/<name>/blobs/uploads/<id>', kind: 'upload', re: /^\/v2\/(?<name>.+)\/blobs\/uploads\/(?<id>[^/]+)$/ },
  { path: '/v2/<name>/blobs/<digest>', kind: 'blob', re: /^\/v2\/(?<name>.+)\/blobs\/(?<digest>[^/]+)$/ },
  { path: '/v2/<name>/referrers/<digest>', kind: 'referrers', re: /^\/v2\/(?<name>.+)\/referrers\/(?<digest>[^/]+)$/ },
  { path: '/acr/v1/_catalog', kind: 'acrCatalog', re: /^\/acr\/v1\/_catalog$/ },
  { path: '/acr/v1/<name>/_tags/<tag>', kind: 'acrTag', re: /^\/acr\/v1\/(?<name>.+)\/_tags\/(?<tag>[^/]+)$/ },
  { path: '/acr/v1/<name>/_tags', kind: 'acrTags', re: /^\/acr\/v1\/(?<name>.+)\/_tags$/ },
  { path: '/acr/v1/<name>/_manifests/<digest>', kind: 'acrManifest', re: /^\/acr\/v1\/(?<name>.+)\/_manifests\/(?<digest>[^/]+)$/ },
  { path: '/acr/v1/<name>/_manifests', kind: 'acrManifests', re: /^\/acr\/v1\/(?<name>.+)\/_manifests$/ },
  { path: '/acr/v1/<name>', kind: 'acrRepository', re: /^\/acr\/v1\/(?<name>.+)$/ },
];

export type RegistryMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** Any caller the registry authenticates (anonymous or not as the registry allows), with no scope to check. */
export const AUTHENTICATED = 'authenticated';

export type RegistryAction = 'pull' | 'push' | 'delete' | 'metadataRead' | 'metadataWrite' | '*' | typeof AUTHENTICATED;

/** What a route's action applies to: the repository `<name>` in its path, the registry's catalog, nothing. */
export type RegistryScope = 'repository' | 'catalog' | 'none';

export interface RegistryRouteDef {
  method: RegistryMethod;
  path: string;
  action: RegistryAction;
  scope: RegistryScope;
}

/** The rows of one path: its scope, and the action each method it serves needs. */
const on = (path: string, scope: RegistryScope, actions: Partial<Record<RegistryMethod, RegistryAction>>): RegistryRouteDef[] =>
  Object.entries(actions).map(([method, action]) => ({ method: method as RegistryMethod, path, action, scope }));

/** Every route the data plane serves (fail closed: a path/method pair not listed is 405). */
export const REGISTRY_ROUTES: readonly RegistryRouteDef[] = [
  ...on('/v2/', 'none', { GET: AUTHENTICATED, HEAD: AUTHENTICATED }),
  ...on('/v2/_catalog', 'catalog', { GET: '*' }),
  ...on('/v2/<name>/tags/list', 'repository', { GET: 'pull' }),
  ...on('/v2/<name>/manifests/<reference>', 'repository', { GET: 'pull', HEAD: 'pull', PUT: 'push', DELETE: 'delete' }),
  ...on('/v2/<name>/blobs/<digest>', 'repository', { GET: 'pull', HEAD: 'pull', DELETE: 'delete' }),
  ...on('/v2/<name>/blobs/uploads/', 'repository', { POST: 'push' }),
  ...on('/v2/<name>/blobs/uploads/<id>', 'repository', { GET: 'push', PATCH: 'push', PUT: 'push', DELETE: 'push' }),
  ...on('/v2/<name>/referrers/<digest>', 'repository', { GET: 'pull' }),
  ...on('/acr/v1/_catalog', 'catalog', { GET: '*' }),
  ...on('/acr/v1/<name>', 'repository', { GET: 'metadataRead', PATCH: 'metadataWrite', DELETE: 'delete' }),
  ...on('/acr/v1/<name>/_tags', 'repository', { GET: 'metadataRead' }),
  ...on('/acr/v1/<name>/_tags/<tag>', 'repository', { GET: 'metadataRead', PATCH: 'metadataWrite', DELETE: 'delete' }),
  ...on('/acr/v1/<name>/_manifests', 'repository', { GET: 'metadataRead' }),
  ...on('/acr/v1/<name>/_manifests/<digest>', 'repository', { GET: 'metadataRead', PATCH: 'metadataWrite', DELETE: 'delete' }),
];

const ACTIONS: readonly string[] = ['pull', 'push', 'delete', 'metadataRead', 'metadataWrite', '*', AUTHENTICATED];

/** Why a table of routes cannot be served: one line per route without an action or scope, or on an unknown path. */
export function routeTableProblems(routes: ReadonlyArray<Partial<RegistryRouteDef>>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const x of routes) {
    const where = `${x.method ?? '?'} ${x.path ?? '?'}`;
    const p = PATHS.find((q) => q.path === x.path);
    if (!p) problems.push(`route ${where} names a path the registry's parser does not know`);
    if (!x.action) problems.push(`route ${where} declares no action`);
    else if (!ACTIONS.includes(x.action)) problems.push(`route ${where} names an unknown action '${x.action}'`);
    if (!x.scope) problems.push(`route ${where} declares no scope`);
    else if ((x.action === AUTHENTICATED) !== (x.scope === 'none')) problems.push(`route ${where}: action ${x.action ?? '?'} with scope ${x.scope}`);
    else if (x.scope === 'repository' && !x.path?.includes('<name>')) problems.push(`route ${where}: scope repository needs <name> in the path`);
    if (seen.has(where)) problems.push(`route ${where} is declared twice`);
    seen.add(where);
  }
  return problems;
}

/** The table by route kind and method; a bad table fails here, when the module loads. */
function index(routes: readonly RegistryRouteDef[]): Map<string, RegistryRouteDef> {
  const problems = routeTableProblems(routes);
  if (problems.length) throw new Error(`Bad registry route table:\n  ${problems.join('\n  ')}`);
  return new Map(routes.map((x) => [`${PATHS.find((q) => q.path === x.path)!.kind} ${x.method}`, x]));
}

const BY_KIND_METHOD = index(REGISTRY_ROUTES);

export function matchRoute(pathname: string): Route | undefined {
  let p = pathname;
  try {
    // The Azure SDKs send repository names with %2F (on /v2 and /acr/v1 paths alike).
    if (pathname.includes('%')) p = decodeURIComponent(pathname);
  } catch {
    // Not valid percent-encoding: matched as sent, so a bad name is NAME_INVALID, not a missing API.
  }
  for (const { kind, re } of PATHS) {
    const m = re.exec(p);
    if (m) return { kind, ...m.groups } as Route;
  }
  return undefined;
}

/** The access a request needs: null when it needs none beyond authentication, undefined when the method is not served (405). */
export function requiredAccess(route: Route, method: string): AccessRequest | null | undefined {
  const def = BY_KIND_METHOD.get(`${route.kind} ${method}`);
  if (!def) return undefined;
  switch (def.scope) {
    case 'none': return null;
    case 'catalog': return { type: 'registry', name: 'catalog', actions: [def.action] };
    case 'repository': return { type: 'repository', name: (route as { name: string }).name, actions: [def.action] };
  }
}
