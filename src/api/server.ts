// The management API: one Fastify app with the request pipeline in order (URL rewrite, body parsers,
// error mapper, not-found shape, request log, bearer authentication, ARM's request checks) and the
// route tables of every surface (ARM, Graph, identity endpoints, portal), registered by route-table.ts.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { BerthError, httpStatus } from '../lib/errors.js';
import type { Principal } from '../identity/principals.js';
import { ARM_AUDIENCE } from '../identity/service.js';
import type { ApiDeps } from './deps.js';
import { identityRoutes, workloadIdentityRoutes } from './identity-routes.js';
import { registryAccessRoutes } from './registry-access-routes.js';
import { vaultRoutes } from './vault-routes.js';
import { createDualServer } from '../net/dual-listener.js';
import { containerRoutes } from './container-routes.js';
import { ContainerSockets } from './container-sockets.js';
import { imageGcRoutes } from './image-gc-routes.js';
import { resourceRoutes } from './resource-routes.js';
import { cloudMetadataRoutes } from './cloud-metadata.js';
import { checkArmApiVersion, checkArmBody } from './arm-request.js';
import { SignInCodes } from '../identity/sign-in-codes.js';
import { portalCodeRoutes, portalRoutes, type PortalDeps } from './portal-routes.js';
import { oauthRoutes } from './oauth-routes.js';
import { subscriptionRoutes } from './subscription-routes.js';
import { registryRoutes } from './registry-routes.js';
import { registerRoutes, type RouteDef, type RouteListing } from './route-table.js';

export type { ApiDeps } from './deps.js';

/** The scheme and host this request came in on: discovery documents point clients back there. */
export function requestBase(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`;
}

/** Audiences the management API and its Graph subset take, besides the server's own base URL. */
const MANAGEMENT_AUDIENCES = [ARM_AUDIENCE, ARM_AUDIENCE.replace(/\/$/, ''), 'https://management.azure.com', 'https://management.azure.com/',
  'https://graph.microsoft.com', 'https://graph.microsoft.com/'];

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export interface ApiRoute {
  method: string;
  url: string;
}

const ROUTES = Symbol('berth.routes');
const DECLARED = Symbol('berth.declared-routes');

/** Every route the API serves (HEAD twins of GETs left out), for tests that walk the whole surface. */
export function apiRoutes(app: FastifyInstance): ApiRoute[] {
  return [...((app as unknown as { [ROUTES]?: ApiRoute[] })[ROUTES] ?? [])];
}

/** Every route as declared in the route tables: method, path, action and scope. */
export function declaredRoutes(app: FastifyInstance): RouteListing[] {
  return [...((app as unknown as { [DECLARED]?: RouteListing[] })[DECLARED] ?? [])];
}

export function buildApi(d: ApiDeps): FastifyInstance {
  const app = Fastify({ logger: false, serverFactory: (handler) => createDualServer((req, res) => { if (!d.hostRoute?.(req, res)) handler(req, res); }, d.tls), routerOptions: { caseSensitive: false, ignoreTrailingSlash: true }, bodyLimit: 4 * 1024 * 1024,
    // az's generic-resource path for `container create --file` has an empty parent path: providers/NS//type/name.
    // msrestazure asks for <resourceManager>/metadata/endpoints with the endpoint's trailing slash kept: //metadata/...
    rewriteUrl: (req) => (req.url ?? '/').replace(/^\/\/+/, '/').replace(/^([^?]*\/providers\/[^/?]+)\/\/+/i, '$1/') });
  const routes: ApiRoute[] = [];
  (app as unknown as { [ROUTES]: ApiRoute[] })[ROUTES] = routes;
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url });
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
    if (err instanceof BerthError) {
      return reply.status(httpStatus(err)).send({ error: { code: err.code, message: err.message } });
    }
    if (err.statusCode && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: err.statusCode === 413 ? 'RequestEntityTooLarge' : 'BadRequest', message: err.message } });
    }
    d.log.error('api internal error', { path: req.url.split('?')[0], error: String(err.stack ?? err) });
    return reply.status(500).send({ error: { code: 'InternalServerError', message: 'Internal error; see the server log.' } });
  });

  // Unknown paths answer in the error shape ARM and Graph clients parse ({"error":{"code","message"}}).
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const graph = /^\/v1\.0\//i.test(path);
    return reply.status(404).send({ error: graph
      ? { code: 'Request_ResourceNotFound', message: `Berth's Graph subset has no ${req.method} ${path}.` }
      : { code: 'NotFound', message: `Berth serves no ${req.method} ${path}.` } });
  });

  app.addHook('onResponse', async (req, reply) => {
    d.log.info('api request', { method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) });
  });

  // ---- routes as data (route-table.ts): the public ones here, the rest behind the bearer check below
  const listing: RouteListing[] = [];
  (app as unknown as { [DECLARED]: RouteListing[] })[DECLARED] = listing;
  // az needs https endpoints: with TLS on, the document names https even when asked over plain HTTP.
  const cloudBase = (req: FastifyRequest) => (d.tls ? requestBase(req).replace(/^http:/, 'https:') : requestBase(req));
  const portal = { identity: d.identity, signInCodes: d.signInCodes ?? new SignInCodes(), ...(d.portalDir ? { portalDir: d.portalDir } : {}) };
  registerRoutes(app, d, [
    ...oauthRoutes(d, requestBase), ...workloadIdentityRoutes(d), ...cloudMetadataRoutes(cloudBase, () => d.vaultDnsSuffix?.()),
    ...portalRoutes(portal, requestBase),
  ], { authenticated: false, listing });
  // Exec websockets (ACI's webSocketUri) are upgrades on this same listener, over TLS or plain HTTP.
  const sockets = new ContainerSockets(d.containerGroups, d.log);
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (sockets.upgrade(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  app.addHook('preClose', async () => sockets.close());

  // ---- ARM, Graph and Berth's own routes (authenticated)
  const arm = async (scope: FastifyInstance) => {
    scope.addHook('onRequest', async (req, reply) => {
      const h = req.headers.authorization;
      const unauth = (msg: string) => reply.status(401)
        .header('WWW-Authenticate', `Bearer authorization_uri="${requestBase(req)}/${d.identity.ids.tenantId}", error="invalid_token", error_description="${msg}"`)
        .send({ error: { code: 'AuthenticationFailed', message: msg } });
      if (!h || !h.toLowerCase().startsWith('bearer ')) return unauth('Authentication failed. The Authorization header is missing.');
      // A registered cloud's Graph resource is Berth's own URL (`berth cloud register`), so tokens for it
      // name the base the client came in on.
      const base = requestBase(req);
      const p = await d.identity.verifyAccessToken(h.slice(7).trim(), [...MANAGEMENT_AUDIENCES, base, `${base}/`]);
      if (!p) return unauth('Authentication failed. The access token is invalid or expired.');
      req.principal = p;
    });
    // ARM's own checks (Graph and Berth's own routes have none of these rules).
    scope.addHook('preHandler', async (req) => {
      const path = req.url.split('?')[0]!;
      if (!/^\/(subscriptions|providers|tenants)(\/|$)/i.test(path)) return;
      checkArmApiVersion((req.query as Record<string, unknown>)['api-version']);
      checkArmBody(req.body, req.method);
    });
    registerRoutes(scope, d, authenticatedRoutes(d, sockets, portal), { authenticated: true, listing });
  };
  void app.register(arm);
  return app;
}

/** Every route behind the bearer check, in registration order (the catch-all role-assignment routes last). */
function authenticatedRoutes(d: ApiDeps, sockets: ContainerSockets, portal: PortalDeps): RouteDef[] {
  return [
    ...subscriptionRoutes(d), ...registryRoutes(d), ...registryAccessRoutes(d), ...identityRoutes(d), ...vaultRoutes(d),
    ...containerRoutes(d, sockets), ...imageGcRoutes(d), ...resourceRoutes(d), ...portalCodeRoutes(portal),
  ];
}
