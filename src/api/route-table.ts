// Routes as data: every management route declares {method, path, action, scope}, and one function
// (registerRoutes) registers them all. It checks the subscription in the path and the caller's
// permission before any handler runs, so a handler cannot forget either; a route without an action,
// with an action outside the catalogue (actions.ts) or with a scope its path cannot give fails here at
// start-up. Path parameters reach handlers typed from the path and checked by zod.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BerthError, forbidden, notFound } from '../lib/errors.js';
import type { IdentityService } from '../identity/service.js';
import type { Principal } from '../identity/principals.js';
import { isKnownAction, PUBLIC, AUTHENTICATED, type RouteAction } from '../identity/actions.js';

export type Method = 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** The names of a path's `:params`, e.g. 'sub' | 'rg' for '/subscriptions/:sub/resourcegroups/:rg'. */
type ParamNames<P extends string> = P extends `${string}:${infer N}/${infer Rest}` ? N | ParamNames<`/${Rest}`> : P extends `${string}:${infer N}` ? N : never;
export type PathParams<P extends string> = { [K in ParamNames<P>]: string } & (P extends `${string}*` ? { '*': string } : unknown);

/**
 * How the authorization scope of a route is derived:
 * - none: no RBAC scope (public and authenticated-only routes);
 * - subscription, resourceGroup: the server's subscription, the `:rg` group in it;
 * - resource: `<group>/providers/<type>/<:name>` (the resource the path names);
 * - lookup: a named resolver over the params (it may look the resource up first, answering 404);
 * - each: a list; the handler keeps only the items `ctx.allowed(items, scopeOf)` allows;
 * - handler: the scope comes from the request's content; the handler calls `ctx.authorize(scope)`;
 * - directory: Graph: an RBAC action at the subscription, or (authenticated-only) some role in it;
 * - owner: the Owner role on the subscription (Berth's own machine-wide operations).
 */
export type ScopeRule =
  | { kind: 'none' }
  | { kind: 'subscription' }
  | { kind: 'resourceGroup' }
  | { kind: 'resource'; type: string }
  | { kind: 'lookup'; name: string; resolve: (params: Record<string, string>) => string | Promise<string> }
  | { kind: 'each' }
  | { kind: 'handler'; note: string }
  | { kind: 'directory' }
  | { kind: 'owner'; what: string };

export const SCOPE = {
  none: { kind: 'none' },
  subscription: { kind: 'subscription' },
  resourceGroup: { kind: 'resourceGroup' },
  each: { kind: 'each' },
  directory: { kind: 'directory' },
  resource: (type: string): ScopeRule => ({ kind: 'resource', type }),
  lookup: (name: string, resolve: (params: Record<string, string>) => string | Promise<string>): ScopeRule => ({ kind: 'lookup', name, resolve }),
  handler: (note: string): ScopeRule => ({ kind: 'handler', note }),
  /** `what`: the operation, for the refusal ("prune images"). */
  owner: (what: string): ScopeRule => ({ kind: 'owner', what }),
} as const satisfies Record<string, ScopeRule | ((...a: never[]) => ScopeRule)>;

export interface RouteContext<P> {
  req: FastifyRequest;
  reply: FastifyReply;
  params: P;
  /** The caller (absent only on public routes). */
  principal: Principal;
  query: Record<string, string | undefined>;
  /** The items at whose scope the caller holds the route's action (or `action`): for lists (scope each); its roles are read once. */
  allowed<T>(items: readonly T[], scopeOf: (item: T) => string, action?: string): Promise<T[]>;
  /** Refuses (403 AuthorizationFailed) unless the caller holds the route's action (or `action`) at `scope`. */
  authorize(scope: string, action?: string): Promise<void>;
}

export interface RouteDef<P extends string = string> {
  method: Method;
  path: P;
  action: RouteAction;
  scope: ScopeRule;
  handler(ctx: RouteContext<PathParams<P>>): unknown;
}

/** A route, its params typed from its path. */
export function route<const P extends string>(r: RouteDef<P>): RouteDef<P> {
  return r;
}

export interface RouteDeps {
  identity: IdentityService;
}

/** A declared route as the route-listing test reads it. */
export interface RouteListing {
  method: Method;
  path: string;
  action: RouteAction;
  scope: string;
}

export function describeScope(s: ScopeRule): string {
  switch (s.kind) {
    case 'resource': return `resource ${s.type}`;
    case 'lookup': return `lookup ${s.name}`;
    case 'handler': return `handler (${s.note})`;
    default: return s.kind;
  }
}

const paramNames = (path: string) => [...path.matchAll(/:([A-Za-z_]\w*)/g)].map((m) => m[1]!);

/** Why a route cannot be registered, or undefined. */
export function routeProblem(r: Partial<RouteDef>, authenticated: boolean): string | undefined {
  const where = `${r.method ?? '?'} ${r.path ?? '?'}`;
  if (!r.action) return `route ${where} declares no action`;
  if (!r.scope) return `route ${where} declares no scope`;
  const marker = r.action === PUBLIC || r.action === AUTHENTICATED;
  if (!marker && !isKnownAction(r.action)) return `route ${where} names an unknown action '${r.action}' (add it to src/api/actions.ts)`;
  if (r.action === PUBLIC && authenticated) return `route ${where} is public but registered behind authentication`;
  if (r.action !== PUBLIC && !authenticated) return `route ${where} needs a caller but is registered without authentication`;
  const names = paramNames(r.path ?? '');
  const k = r.scope.kind;
  if (marker && !['none', 'directory', 'owner'].includes(k)) return `route ${where}: a ${r.action} route has no RBAC scope (${k})`;
  if (!marker && ['none', 'owner'].includes(k)) return `route ${where}: action '${r.action}' needs an RBAC scope, not ${k}`;
  if ((k === 'resourceGroup' || k === 'resource') && !names.includes('rg')) return `route ${where}: scope ${k} needs :rg in the path`;
  if (k === 'resource' && !names.includes('name')) return `route ${where}: scope resource needs :name in the path`;
  return undefined;
}

/**
 * Registers `routes` on `app` (`authenticated`: the caller is already known, req.principal) and lists
 * them in `listing`. Throws at start-up for a route that names no action, an unknown one, or a scope its path cannot give.
 */
export function registerRoutes(app: FastifyInstance, d: RouteDeps, routes: readonly RouteDef[], o: { authenticated: boolean; listing: RouteListing[] }): void {
  const problems = routes.map((r) => routeProblem(r, o.authenticated)).filter((p): p is string => p !== undefined);
  if (problems.length) throw new Error(`Bad route table:\n  ${problems.join('\n  ')}`);
  for (const r of routes) {
    o.listing.push({ method: r.method, path: r.path, action: r.action, scope: describeScope(r.scope) });
    // The path's params, each a string (a wildcard route's '*' passes through).
    const schema = z.looseObject(Object.fromEntries(paramNames(r.path).map((n) => [n, z.string()])));
    app.route({ method: r.method, url: r.path, handler: async (req, reply) => {
      const parsed = schema.safeParse(req.params);
      if (!parsed.success) throw notFound('NotFound', `Berth serves no ${req.method} ${req.url.split('?')[0]}.`);
      const params = parsed.data as Record<string, string>;
      const ctx = context(d, r, req, reply, params);
      if (params.sub !== undefined) checkSub(d, params.sub);
      await authorizeDeclared(d, r, ctx, params);
      return r.handler(ctx as RouteContext<never>);
    } });
  }
}

function context(d: RouteDeps, r: RouteDef, req: FastifyRequest, reply: FastifyReply, params: Record<string, string>): RouteContext<Record<string, string>> {
  const principal = req.principal!;
  const action = (a?: string) => {
    const x = a ?? r.action;
    if (!isKnownAction(x)) throw new Error(`route ${r.method} ${r.path} checks an unknown action '${x}'`);
    return x;
  };
  return {
    req, reply, params, principal, query: (req.query ?? {}) as Record<string, string | undefined>,
    allowed: async (items, scopeOf, a) => {
      const x = action(a);
      const may = await d.identity.permissions(principal);
      return items.filter((item) => may(x, scopeOf(item)));
    },
    authorize: (scope, a) => requirePermission(d, principal, action(a), scope),
  };
}

async function authorizeDeclared(d: RouteDeps, r: RouteDef, ctx: RouteContext<Record<string, string>>, params: Record<string, string>): Promise<void> {
  const sub = `/subscriptions/${d.identity.ids.subscriptionId}`;
  const rg = () => `${sub}/resourceGroups/${params.rg}`;
  const s = r.scope;
  switch (s.kind) {
    case 'subscription': return ctx.authorize(sub);
    case 'resourceGroup': return ctx.authorize(rg());
    case 'resource': return ctx.authorize(`${rg()}/providers/${s.type}/${params.name}`);
    case 'lookup': return ctx.authorize(await s.resolve(params));
    case 'directory': return directory(d, r, ctx.principal, sub);
    case 'owner': {
      const p = ctx.principal;
      if ((await d.identity.assignmentsCovering(p.id, sub)).some(({ role }) => role.roleName === 'Owner')) return;
      throw forbidden('AuthorizationFailed',
        `The client '${p.appId ?? p.id}' with object id '${p.id}' may not ${s.what}: it takes the Owner role on subscription '${d.identity.ids.subscriptionId}'.`);
    }
    default: return; // none, each and handler: the handler filters or authorizes what it finds
  }
}

// Graph: reading the directory takes a role somewhere in the subscription (an app with none is an
// outsider, as one without Graph permissions is refused on Azure); changing it takes the action at the subscription.
async function directory(d: RouteDeps, r: RouteDef, p: Principal, sub: string): Promise<void> {
  if (r.action === AUTHENTICATED) {
    if (await d.identity.hasAnyAssignment(p.id)) return;
    throw forbidden('Authorization_RequestDenied', 'Insufficient privileges to complete the operation. Reading the directory needs a role assignment in the subscription.');
  }
  if (await d.identity.can(p, r.action, sub)) return;
  throw forbidden('Authorization_RequestDenied', 'Insufficient privileges to complete the operation. Creating or changing applications needs Owner on the subscription.');
}

export async function requirePermission(d: RouteDeps, p: Principal, action: string, scope: string): Promise<void> {
  if (!await d.identity.can(p, action, scope)) {
    throw forbidden('AuthorizationFailed',
      `The client '${p.appId ?? p.id}' with object id '${p.id}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid.`);
  }
}

export function checkSub(d: RouteDeps, sub: string): void {
  if (sub.toLowerCase() !== d.identity.ids.subscriptionId) {
    throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  }
}

/** ARM's DELETE answer: 200 when `del` removed the resource, 204 when there was none (ResourceNotFound). */
export async function answerDelete(reply: FastifyReply, del: () => Promise<unknown>): Promise<FastifyReply> {
  try {
    await del();
  } catch (e) {
    if (e instanceof BerthError && e.kind === 'notFound' && e.code === 'ResourceNotFound') return reply.status(204).send();
    throw e;
  }
  return reply.status(200).send();
}
