// The management API: ARM-shaped REST over the domain services, plus the identity endpoints.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BerthError, httpStatus } from '../lib/errors.js';
import type { Principal } from '../identity/principals.js';
import { ARM_AUDIENCE } from '../identity/service.js';
import type { ApiDeps } from './deps.js';
import { parseSku } from '../registry/registries.js';
import { registryResource } from './arm-shapes.js';
import { registerIdentityRoutes, registerWorkloadIdentityRoutes } from './identity-routes.js';
import { registerRegistryAccessRoutes } from './registry-access-routes.js';
import { requirePermission, checkSub } from './common.js';
import { registerVaultRoutes } from './vault-routes.js';
import { createDualServer } from '../platform/dual-listener.js';
import { registerContainerRoutes } from './container-routes.js';
import { ContainerSockets } from './container-sockets.js';
import { registerImageGcRoutes } from './image-gc-routes.js';
import { registerResourceRoutes } from './resource-routes.js';
import { registerCloudMetadataRoutes } from './cloud-metadata.js';
import { checkArmApiVersion, checkArmBody } from './arm-request.js';
import { SignInCodes } from '../identity/sign-in-codes.js';
import { registerPortalCodeRoute, registerPortalRoutes } from './portal-routes.js';

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

/** Every route the API serves (HEAD twins of GETs left out), for tests that walk the whole surface. */
export function apiRoutes(app: FastifyInstance): ApiRoute[] {
  return [...((app as unknown as { [ROUTES]?: ApiRoute[] })[ROUTES] ?? [])];
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

  // ---- identity endpoints (no auth)
  // 'adfs': az 2.45's MSAL skips instance discovery (a call to login.microsoftonline.com) only for an
  // authority whose path is /adfs, so `berth cloud register` names that one.
  const tenantOk = (t: string) => t.toLowerCase() === d.identity.ids.tenantId || ['organizations', 'common', 'adfs'].includes(t.toLowerCase());
  const oidc = (req: FastifyRequest, adfs = false) => {
    const base = adfs ? `${requestBase(req)}/adfs` : `${requestBase(req)}/${d.identity.ids.tenantId}`;
    const v2 = adfs ? '' : '/v2.0';
    return {
      issuer: d.identity.issuer(requestBase(req)),
      token_endpoint: `${base}/oauth2${v2}/token`,
      authorization_endpoint: `${base}/oauth2${v2}/authorize`,
      device_authorization_endpoint: `${base}/oauth2${v2}/devicecode`,
      jwks_uri: `${base}/discovery${v2}/keys`,
      response_types_supported: ['code', 'id_token', 'token'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['ES256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
      grant_types_supported: ['client_credentials'],
      tenant_region_scope: 'NA',
      cloud_instance_name: 'berth.local',
    };
  };
  app.get('/:tenant/v2.0/.well-known/openid-configuration', async (req, reply) => {
    const { tenant } = req.params as { tenant: string };
    if (!tenantOk(tenant)) return reply.status(400).send({ error: 'invalid_tenant', error_description: `Tenant '${tenant}' not found.` });
    return oidc(req);
  });
  app.get('/adfs/.well-known/openid-configuration', async (req) => oidc(req, true));
  app.get('/:tenant/discovery/v2.0/keys', async () => ({ keys: [d.tokens.publicJwk] }));
  app.get('/:tenant/discovery/keys', async () => ({ keys: [d.tokens.publicJwk] }));
  const tokenHandler = async (req: FastifyRequest, reply: FastifyReply) => {
    const { tenant } = req.params as { tenant: string };
    const body = (req.body ?? {}) as Record<string, string>;
    const fail = (status: number, error: string, description: string) =>
      reply.status(status).send({ error, error_description: description, error_codes: [], timestamp: new Date().toISOString() });
    if (!tenantOk(tenant)) return fail(400, 'invalid_request', `Tenant '${tenant}' not found. Use tenant ${d.identity.ids.tenantId}.`);
    if (body.grant_type !== 'client_credentials') return fail(400, 'unsupported_grant_type', `grant_type '${body.grant_type ?? ''}' is not supported; use client_credentials.`);
    let clientId = body.client_id;
    let secret = body.client_secret;
    const basic = req.headers.authorization;
    if ((!clientId || !secret) && basic?.toLowerCase().startsWith('basic ')) {
      const dec = Buffer.from(basic.slice(6), 'base64').toString('utf8');
      const i = dec.indexOf(':');
      clientId = decodeURIComponent(dec.slice(0, i));
      secret = decodeURIComponent(dec.slice(i + 1));
    }
    if (!clientId || !secret) return fail(400, 'invalid_request', 'client_id and client_secret are required.');
    const res = await d.identity.authenticateClient(clientId, secret);
    if (!('principal' in res)) return fail(401, 'invalid_client', res.error);
    const scope = body.scope ?? (body.resource ? `${body.resource}/.default` : `${ARM_AUDIENCE}/.default`);
    const resource = scope.split(' ')[0]!.replace(/\/\.default$/, '') || ARM_AUDIENCE;
    const token = await d.identity.issueAccessToken(res.principal, resource.endsWith('core.windows.net') ? ARM_AUDIENCE : resource, undefined, requestBase(req));
    return reply.header('Cache-Control', 'no-store').send({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
  };
  app.post('/:tenant/oauth2/v2.0/token', tokenHandler);
  app.post('/:tenant/oauth2/token', tokenHandler);
  registerWorkloadIdentityRoutes(app, d);
  // az needs https endpoints: with TLS on, the document names https even when asked over plain HTTP.
  registerCloudMetadataRoutes(app, (req) => (d.tls ? requestBase(req).replace(/^http:/, 'https:') : requestBase(req)), () => d.vaultDnsSuffix?.());
  // Exec websockets (ACI's webSocketUri) are upgrades on this same listener, over TLS or plain HTTP.
  const sockets = new ContainerSockets(d.containerGroups, d.log);
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (sockets.upgrade(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  app.addHook('preClose', async () => sockets.close());
  const portal = { identity: d.identity, signInCodes: d.signInCodes ?? new SignInCodes(), ...(d.portalDir ? { portalDir: d.portalDir } : {}) };
  registerPortalRoutes(app, portal, requestBase);

  // ---- ARM (authenticated)
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
    registerArmRoutes(scope, d);
    registerRegistryAccessRoutes(scope, d);
    registerIdentityRoutes(scope, d);
    registerVaultRoutes(scope, d);
    registerContainerRoutes(scope, d, sockets);
    registerImageGcRoutes(scope, d);
    registerResourceRoutes(scope, d);
    registerPortalCodeRoute(scope, portal);
  };
  void app.register(arm);
  return app;
}

function registerArmRoutes(app: FastifyInstance, d: ApiDeps): void {
  const sub = d.identity.ids.subscriptionId;
  const subObj = () => ({ id: `/subscriptions/${sub}`, subscriptionId: sub, tenantId: d.identity.ids.tenantId, displayName: 'Berth local subscription', state: 'Enabled', authorizationSource: 'RoleBased' });
  // Only subscriptions where the caller holds some role are visible to it (az login relies on this).
  const seesSubscription = (p: Principal) => d.identity.hasAnyAssignment(p.id);
  app.get('/subscriptions', async (req) => ({ value: seesSubscription(req.principal!) ? [subObj()] : [] }));
  app.get('/tenants', async () => ({ value: [{ id: `/tenants/${d.identity.ids.tenantId}`, tenantId: d.identity.ids.tenantId }] }));
  app.get('/subscriptions/:sub', async (req) => {
    const { sub: s } = req.params as { sub: string };
    checkSub(d, s);
    // As the list: a principal with no role anywhere in the subscription does not see it.
    if (!seesSubscription(req.principal!)) throw new BerthError('notFound', 'SubscriptionNotFound', `The subscription '${s}' could not be found.`);
    return subObj();
  });

  // resource groups
  const rgScope = (rg: string) => `/subscriptions/${sub}/resourceGroups/${rg}`;
  app.get('/subscriptions/:sub/resourcegroups', async (req) => {
    checkSub(d, (req.params as { sub: string }).sub);
    return { value: d.groups.list().filter((g) => d.identity.can(req.principal!, 'Microsoft.Resources/subscriptions/resourceGroups/read', g.id)) };
  });
  app.put('/subscriptions/:sub/resourcegroups/:rg', async (req, reply) => {
    const { sub: s, rg } = req.params as { sub: string; rg: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.Resources/subscriptions/resourceGroups/write', rgScope(rg));
    const body = (req.body ?? {}) as { location?: string; tags?: Record<string, string> };
    const { group, created } = d.groups.createOrUpdate(rg, body.location ?? '', body.tags ?? {});
    return reply.status(created ? 201 : 200).send(group);
  });
  app.get('/subscriptions/:sub/resourcegroups/:rg', async (req) => {
    const { sub: s, rg } = req.params as { sub: string; rg: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.Resources/subscriptions/resourceGroups/read', rgScope(rg));
    return d.groups.get(rg);
  });
  app.delete('/subscriptions/:sub/resourcegroups/:rg', async (req, reply) => {
    const { sub: s, rg } = req.params as { sub: string; rg: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.Resources/subscriptions/resourceGroups/delete', rgScope(rg));
    const g = d.groups.get(rg, false);
    if (!g) return reply.status(204).send();
    for (const r of d.registries.list(g.name)) await d.registries.delete(g.name, r.name);
    for (const v of d.vaults.list(g.name)) await d.vaults.delete(g.name, v.name);
    for (const c of d.containerGroups.list(g.name)) await d.containerGroups.delete(g.name, c.name);
    // As ARM: the group's user-assigned identities (their principals and roles) and every role
    // assignment at the group or a resource in it go with it.
    for (const i of d.managedIdentities.list(g.name)) d.managedIdentities.delete(g.name, i.name);
    const removed = d.identity.deleteAssignmentsUnder(rgScope(g.name));
    d.groups.delete(g.name);
    d.log.info('resource group deleted', { group: g.name, roleAssignmentsRemoved: removed });
    return reply.status(200).send();
  });

  // registries
  const regPath = '/subscriptions/:sub/resourcegroups/:rg/providers/Microsoft.ContainerRegistry/registries';
  const regScope = (rg: string, name: string) => `${rgScope(rg)}/providers/Microsoft.ContainerRegistry/registries/${name}`;
  const shape = (r: Parameters<typeof registryResource>[0]) => registryResource(r, d.registries.loginServer(r));
  app.post('/subscriptions/:sub/providers/Microsoft.ContainerRegistry/checkNameAvailability', async (req) => {
    checkSub(d, (req.params as { sub: string }).sub);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/checkNameAvailability/read', `/subscriptions/${sub}`);
    const body = (req.body ?? {}) as { name?: string };
    return d.registries.nameAvailable(body.name ?? '');
  });
  app.get('/subscriptions/:sub/providers/Microsoft.ContainerRegistry/registries', async (req) => {
    checkSub(d, (req.params as { sub: string }).sub);
    return { value: d.registries.list().filter((r) => d.identity.can(req.principal!, 'Microsoft.ContainerRegistry/registries/read', regScope(r.resourceGroup, r.name))).map(shape) };
  });
  app.get(regPath, async (req) => {
    const { sub: s, rg } = req.params as { sub: string; rg: string };
    checkSub(d, s);
    d.groups.get(rg);
    return { value: d.registries.list(rg).filter((r) => d.identity.can(req.principal!, 'Microsoft.ContainerRegistry/registries/read', regScope(r.resourceGroup, r.name))).map(shape) };
  });
  app.put(`${regPath}/:name`, async (req, reply) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/write', regScope(rg, name));
    const body = (req.body ?? {}) as { location?: string; sku?: { name?: string }; tags?: Record<string, string>; properties?: { adminUserEnabled?: boolean } };
    const sku = parseSku(body.sku?.name ?? 'Basic');
    const { registry, created } = await d.registries.createOrUpdate(rg, name, {
      sku, ...(body.location ? { location: body.location } : {}), ...(body.tags ? { tags: body.tags } : {}),
      ...(body.properties?.adminUserEnabled !== undefined ? { adminUserEnabled: Boolean(body.properties.adminUserEnabled) } : {}),
    });
    return reply.status(created ? 201 : 200).send(shape(registry));
  });
  app.get(`${regPath}/:name`, async (req) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/read', regScope(rg, name));
    return shape(d.registries.get(rg, name));
  });
  app.patch(`${regPath}/:name`, async (req) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/write', regScope(rg, name));
    const body = (req.body ?? {}) as { sku?: { name?: string }; tags?: Record<string, string>; properties?: { adminUserEnabled?: boolean } };
    return shape(d.registries.update(rg, name, {
      ...(body.sku?.name ? { sku: parseSku(body.sku.name) } : {}),
      ...(body.tags ? { tags: body.tags } : {}),
      ...(body.properties?.adminUserEnabled !== undefined ? { adminUserEnabled: Boolean(body.properties.adminUserEnabled) } : {}),
    }));
  });
  app.delete(`${regPath}/:name`, async (req, reply) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/delete', regScope(rg, name));
    try {
      await d.registries.delete(rg, name);
    } catch (e) {
      if (e instanceof BerthError && e.kind === 'notFound' && e.code === 'ResourceNotFound') return reply.status(204).send();
      throw e;
    }
    return reply.status(200).send();
  });
  app.post(`${regPath}/:name/listCredentials`, async (req) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/listCredentials/action', regScope(rg, name));
    return d.registries.credentials(rg, name);
  });
  app.get(`${regPath}/:name/listUsages`, async (req) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/listUsages/read', regScope(rg, name));
    const u = await d.registryService.storageUsage(d.registries.get(rg, name).id);
    return { value: [{ name: 'Size', ...(u.limit !== undefined ? { limit: u.limit } : {}), currentValue: u.currentValue, unit: 'Bytes' }] };
  });
  app.post(`${regPath}/:name/regenerateCredential`, async (req) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/regenerateCredential/action', regScope(rg, name));
    return d.registries.regenerate(rg, name, ((req.body ?? {}) as { name?: string }).name ?? '');
  });
  app.post(`${regPath}/:name/garbageCollect`, async (req) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, 'Microsoft.ContainerRegistry/registries/write', regScope(rg, name));
    d.registries.get(rg, name);
    return d.registryService.collectGarbage();
  });
}
