// ARM's generic resource listing (Microsoft.Resources): GET /subscriptions/{sub}/resources and
// .../resourceGroups/{rg}/resources, with the `$filter` forms az and the SDKs send (resourceType,
// name, resourceGroup; `eq` joined by `and`), `$top` and `$skiptoken` paging. az finds a registry or
// vault named without `-g` this way (acr/_utils.get_resources_in_subscription).
import type { FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { route, SCOPE, type RouteDef } from './route-table.js';
import { AUTHENTICATED } from '../identity/actions.js';
import { invalid } from '../lib/errors.js';
import { registryResource } from './arm-shapes.js';
import { vaultResource } from './vault-routes.js';
import { identityResource } from './identity-routes.js';

const MAX_TOP = 1000;

export interface GenericResource {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Record<string, string>;
  sku?: unknown;
  identity?: unknown;
  /** Not part of the wire shape: the group, for `resourceGroup eq` filters. */
  resourceGroup: string;
}

type Clause = { field: 'resourceType' | 'name' | 'resourceGroup'; value: string };

/** Parses `$filter`: `resourceType eq 'T'`, `name eq 'N'`, `resourceGroup eq 'G'`, joined by `and`. */
export function parseResourceFilter(filter: string | undefined): Clause[] {
  if (!filter || !filter.trim()) return [];
  const clauses: Clause[] = [];
  for (const part of filter.split(/\s+and\s+/i)) {
    const m = /^\s*\(?\s*(resourceType|name|resourceGroup)\s+eq\s+'((?:[^']|'')*)'\s*\)?\s*$/i.exec(part);
    if (!m) {
      throw invalid('InvalidFilterInQueryString', `Invalid $filter '${filter}'. Berth filters resources by "resourceType eq '<type>'", "name eq '<name>'" and "resourceGroup eq '<group>'", joined by "and".`);
    }
    const field = m[1]!.toLowerCase() === 'resourcetype' ? 'resourceType' : m[1]!.toLowerCase() === 'name' ? 'name' : 'resourceGroup';
    clauses.push({ field, value: m[2]!.replace(/''/g, "'") });
  }
  return clauses;
}

function matches(r: GenericResource, clauses: Clause[]): boolean {
  return clauses.every((c) => {
    const v = c.field === 'resourceType' ? r.type : c.field === 'name' ? r.name : r.resourceGroup;
    return v.toLowerCase() === c.value.toLowerCase();
  });
}

export function resourceRoutes(d: ApiDeps): RouteDef[] {
  const tenant = d.identity.ids.tenantId;
  const generic = (x: { id: string; name: string; type: string; location: string; tags?: Record<string, string> | null; sku?: unknown; identity?: unknown }, resourceGroup: string): GenericResource => ({
    id: x.id, name: x.name, type: x.type, location: x.location, tags: x.tags ?? {},
    ...(x.sku !== undefined ? { sku: x.sku } : {}), ...(x.identity !== undefined ? { identity: x.identity } : {}), resourceGroup,
  });
  const all = async (rg?: string): Promise<GenericResource[]> => [
    ...(await d.registries.list(rg)).map((r) => generic(registryResource(r, d.registries.loginServer(r)), r.resourceGroup)),
    ...(await d.vaults.list(rg)).map((v) => { const x = vaultResource(v, d.vaults.vaultUri(v), tenant); return generic({ ...x, sku: x.properties.sku }, v.resourceGroup); }),
    ...(await d.managedIdentities.list(rg)).map((i) => generic(identityResource(i), i.resourceGroup)),
    ...(await Promise.all((await d.containerGroups.list(rg)).map(async (g) => generic(await d.containerGroups.resource(g, false), g.resourceGroup)))),
  ];

  const list = async (req: FastifyRequest, rg?: string) => {
    const q = req.query as Record<string, string | undefined>;
    const clauses = parseResourceFilter(q.$filter);
    const top = q.$top === undefined ? MAX_TOP : Number(q.$top);
    if (!Number.isInteger(top) || top < 1) throw invalid('InvalidTopInQueryString', `$top must be a positive whole number; got '${q.$top}'.`);
    const decoded = q.$skiptoken === undefined ? '0' : /^[A-Za-z0-9_-]+$/.test(q.$skiptoken) ? Buffer.from(q.$skiptoken, 'base64url').toString('utf8') : '';
    const skip = /^\d+$/.test(decoded) ? Number(decoded) : -1;
    if (skip < 0) throw invalid('InvalidSkipToken', 'The $skiptoken is not valid: use the nextLink of the previous page as it is.');
    const may = await d.identity.permissions(req.principal!);
    const visible = (await all(rg))
      .filter((r) => matches(r, clauses) && may(`${r.type}/read`, r.id))
      .sort((a, b) => a.id.toLowerCase().localeCompare(b.id.toLowerCase()));
    const page = visible.slice(skip, skip + Math.min(top, MAX_TOP));
    const value = page.map(({ resourceGroup: _rg, ...r }) => r);
    const next = skip + page.length;
    if (next >= visible.length) return { value };
    // The same query with the next $skiptoken (kept literal, as ARM writes it).
    const [path, query = ''] = req.url.split('?', 2) as [string, string?];
    const kept = query.split('&').filter((p) => p && !/^(\$|%24)skiptoken=/i.test(p));
    kept.push(`$skiptoken=${Buffer.from(String(next), 'utf8').toString('base64url')}`);
    return { value, nextLink: `${req.protocol}://${req.host}${path}?${kept.join('&')}` };
  };
  // Each resource is shown only to a caller that may read it (`<type>/read` on it, checked in list).
  return [
    route({ method: 'GET', path: '/subscriptions/:sub/resources', action: AUTHENTICATED, scope: SCOPE.none, handler: ({ req }) => list(req) }),
    route({ method: 'GET', path: '/subscriptions/:sub/resourcegroups/:rg/resources', action: AUTHENTICATED, scope: SCOPE.none,
      handler: async ({ req, params }) => list(req, (await d.groups.get(params.rg)).name) }),
  ];
}
