// The OCI distribution routes: one parser from path to route, and the access each route needs.
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

const V2 = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/tags\/list$/, (m: string[]) => ({ kind: 'tags', name: m[1] })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m: string[]) => ({ kind: 'manifest', name: m[1], reference: m[2] })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m: string[]) => ({ kind: 'uploadStart', name: m[1] })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m: string[]) => ({ kind: 'upload', name: m[1], id: m[2] })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m: string[]) => ({ kind: 'blob', name: m[1], digest: m[2] })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m: string[]) => ({ kind: 'referrers', name: m[1], digest: m[2] })],
  [/^\/acr\/v1\/_catalog$/, () => ({ kind: 'acrCatalog' })],
  [/^\/acr\/v1\/(.+)\/_tags\/([^/]+)$/, (m: string[]) => ({ kind: 'acrTag', name: m[1], tag: m[2] })],
  [/^\/acr\/v1\/(.+)\/_tags$/, (m: string[]) => ({ kind: 'acrTags', name: m[1] })],
  [/^\/acr\/v1\/(.+)\/_manifests\/([^/]+)$/, (m: string[]) => ({ kind: 'acrManifest', name: m[1], digest: m[2] })],
  [/^\/acr\/v1\/(.+)\/_manifests$/, (m: string[]) => ({ kind: 'acrManifests', name: m[1] })],
  [/^\/acr\/v1\/(.+)$/, (m: string[]) => ({ kind: 'acrRepository', name: m[1] })],
] as Array<[RegExp, (m: string[]) => Route]>;

export function matchRoute(pathname: string): Route | undefined {
  let p = pathname;
  try {
    // The Azure SDKs send repository names with %2F (on /v2 and /acr/v1 paths alike).
    if (pathname.includes('%')) p = decodeURIComponent(pathname);
  } catch {
    // Not valid percent-encoding: matched as sent, so a bad name is NAME_INVALID, not a missing API.
  }
  for (const [re, f] of V2) {
    const m = re.exec(p);
    if (m) return f(m);
  }
  return undefined;
}

/** The access a request needs (fail closed: every route/method pair is listed, others are 405). */
export function requiredAccess(route: Route, method: string): AccessRequest | null | undefined {
  const repo = (name: string, ...actions: string[]): AccessRequest => ({ type: 'repository', name, actions });
  switch (route.kind) {
    case 'base': return method === 'GET' || method === 'HEAD' ? null : undefined;
    case 'catalog':
    case 'acrCatalog':
      return method === 'GET' ? { type: 'registry', name: 'catalog', actions: ['*'] } : undefined;
    case 'tags': return method === 'GET' ? repo(route.name, 'pull') : undefined;
    case 'manifest':
      if (method === 'GET' || method === 'HEAD') return repo(route.name, 'pull');
      if (method === 'PUT') return repo(route.name, 'push');
      if (method === 'DELETE') return repo(route.name, 'delete');
      return undefined;
    case 'blob':
      if (method === 'GET' || method === 'HEAD') return repo(route.name, 'pull');
      if (method === 'DELETE') return repo(route.name, 'delete');
      return undefined;
    case 'uploadStart': return method === 'POST' ? repo(route.name, 'push') : undefined;
    case 'upload': return ['GET', 'PATCH', 'PUT', 'DELETE'].includes(method) ? repo(route.name, 'push') : undefined;
    case 'referrers': return method === 'GET' ? repo(route.name, 'pull') : undefined;
    case 'acrRepository':
      if (method === 'GET') return repo(route.name, 'metadataRead');
      if (method === 'DELETE') return repo(route.name, 'delete');
      if (method === 'PATCH') return repo(route.name, 'metadataWrite');
      return undefined;
    case 'acrTags':
    case 'acrManifests':
      return method === 'GET' ? repo(route.name, 'metadataRead') : undefined;
    case 'acrTag':
    case 'acrManifest':
      if (method === 'GET') return repo(route.name, 'metadataRead');
      if (method === 'DELETE') return repo(route.name, 'delete');
      if (method === 'PATCH') return repo(route.name, 'metadataWrite');
      return undefined;
  }
}
