// Identity surfaces: user-assigned managed identities (ARM), role assignments and role definitions at any
// scope (ARM, Microsoft.Authorization), the Graph subset `az ad` uses for applications and service
// principals, and the managed-identity token endpoint for workloads.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { checkSub, route, SCOPE, type RouteContext, type RouteDef } from './route-table.js';
import { AUTHENTICATED, PUBLIC } from '../identity/actions.js';
import { invalid, notFound } from '../lib/errors.js';
import { BUILT_IN_ROLES, findRole, type RoleDefinition } from '../identity/roles.js';
import type { RoleAssignment } from '../identity/service.js';
import type { Application } from '../identity/applications.js';
import type { UserAssignedIdentity } from '../identity/managed-identities.js';

const MI = 'Microsoft.ManagedIdentity/userAssignedIdentities';

export function identityResource(i: UserAssignedIdentity) {
  return { id: i.id, name: i.name, type: MI, location: i.location, tags: i.tags,
    properties: { tenantId: i.tenantId, principalId: i.principalId, clientId: i.clientId } };
}

function roleDefinitionResource(sub: string, r: RoleDefinition) {
  return { id: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${r.id}`, name: r.id, type: 'Microsoft.Authorization/roleDefinitions',
    properties: { roleName: r.roleName, type: 'BuiltInRole', description: r.description, assignableScopes: ['/'],
      permissions: [{ actions: r.actions, notActions: r.notActions, dataActions: r.dataActions, notDataActions: r.notDataActions }] } };
}

function roleAssignmentResource(sub: string, a: RoleAssignment) {
  return { id: `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.id}`, name: a.id, type: 'Microsoft.Authorization/roleAssignments',
    properties: { roleDefinitionId: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${a.roleDefinitionId}`, principalId: a.principalId,
      principalType: a.principalType, scope: a.scope, condition: null, conditionVersion: null, description: null, createdOn: a.createdAt, updatedOn: a.createdAt,
      createdBy: null, updatedBy: null, delegatedManagedIdentityResourceId: null } };
}

/** Parses the OData $filter forms az and the SDKs send: `prop eq 'v'`, `startswith(prop,'v')`, `servicePrincipalNames/any(c:c eq 'v')`. */
export function parseGraphFilter(filter: string | undefined): ((o: Record<string, unknown>) => boolean) | undefined {
  if (!filter) return undefined;
  const unq = (s: string) => s.replace(/''/g, "'");
  let m = /^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$/i.exec(filter);
  if (m) { const [, k, v] = m; return (o) => String(o[k!] ?? '').toLowerCase() === unq(v!).toLowerCase(); }
  m = /^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$/i.exec(filter);
  if (m) { const [, k, v] = m; return (o) => String(o[k!] ?? '').toLowerCase().startsWith(unq(v!).toLowerCase()); }
  m = /^\s*servicePrincipalNames\/any\(\s*(\w+)\s*:\s*\1\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$/i.exec(filter);
  if (m) { const v = unq(m[2]!).toLowerCase(); return (o) => ((o.servicePrincipalNames as string[] | undefined) ?? []).some((n) => n.toLowerCase() === v); }
  throw invalid('Request_UnsupportedQuery', `Unsupported $filter '${filter}': use "displayName eq '...'", "appId eq '...'", "startswith(displayName,'...')" or "servicePrincipalNames/any(c:c eq '...')".`);
}

export function identityRoutes(d: ApiDeps): RouteDef[] {
  return [...managedIdentityRoutes(d), ...authorizationRoutes(d), ...graphRoutes(d)];
}

function managedIdentityRoutes(d: ApiDeps): RouteDef[] {
  const miPath = `/subscriptions/:sub/resourcegroups/:rg/providers/${MI}` as const;
  const one = `${miPath}/:name` as const;
  const scope = SCOPE.resource(MI);
  return [
    route({ method: 'GET', path: `/subscriptions/:sub/providers/${MI}`, action: `${MI}/read`, scope: SCOPE.each,
      handler: async (c) => ({ value: (await c.allowed(await d.managedIdentities.list(), (i) => i.id)).map(identityResource) }) }),
    route({ method: 'GET', path: miPath, action: `${MI}/read`, scope: SCOPE.each, handler: async (c) => {
      await d.groups.get(c.params.rg);
      return { value: (await c.allowed(await d.managedIdentities.list(c.params.rg), (i) => i.id)).map(identityResource) };
    } }),
    route({ method: 'PUT', path: one, action: `${MI}/write`, scope, handler: async (c) => {
      const body = (c.req.body ?? {}) as { location?: string; tags?: Record<string, string> };
      const { identity, created } = await d.managedIdentities.createOrUpdate(c.params.rg, c.params.name, { ...(body.location ? { location: body.location } : {}), ...(body.tags ? { tags: body.tags } : {}) });
      return c.reply.status(created ? 201 : 200).header('location', identity.id).send(identityResource(identity));
    } }),
    route({ method: 'GET', path: one, action: `${MI}/read`, scope, handler: async (c) => identityResource(await d.managedIdentities.get(c.params.rg, c.params.name)) }),
    route({ method: 'DELETE', path: one, action: `${MI}/delete`, scope,
      handler: async (c) => c.reply.status(await d.managedIdentities.delete(c.params.rg, c.params.name) ? 200 : 204).send() }),
  ];
}

function authorizationRoutes(d: ApiDeps): RouteDef[] {
  const sub = d.identity.ids.subscriptionId;
  // ---- role assignments and role definitions, at any scope
  const AUTHZ = /^(.*?)\/providers\/Microsoft\.Authorization\/(roleAssignments|roleDefinitions)(?:\/([^/?]+))?\/?$/i;
  const checkScope = async (scope: string): Promise<string> => {
    const m = /^\/subscriptions\/([^/]+)(?:\/resourceGroups\/([^/]+)(?:\/providers\/([^/]+\/[^/]+)\/([^/]+))?)?(?:\/.*)?$/i.exec(scope);
    if (!m) throw invalid('InvalidScope', `The scope '${scope}' is not valid: use /subscriptions/<id>[/resourceGroups/<group>[/providers/<namespace>/<type>/<name>]].`);
    checkSub(d, m[1]!);
    if (m[2]) await d.groups.get(m[2]);
    const [type, name] = [m[3]?.toLowerCase(), m[4]];
    if (type === 'microsoft.containerregistry/registries') await d.registries.get(m[2]!, name!);
    if (type === MI.toLowerCase()) await d.managedIdentities.get(m[2]!, name!);
    return scope.replace(/\/+$/, '');
  };
  const authz = async (c: RouteContext<unknown>) => {
    const { req, reply } = c;
    const path = decodeURIComponent(req.url.split('?')[0]!);
    const m = AUTHZ.exec(path);
    if (!m) throw notFound('InvalidResourceType', `The resource type could not be found for '${path}'.`);
    const [, rawScope, kind, name] = m as unknown as [string, string, string, string | undefined];
    const scope = rawScope === '' ? `/subscriptions/${sub}` : await checkScope(rawScope);
    const q = req.query as Record<string, string>;
    if (kind.toLowerCase() === 'roledefinitions') {
      if (req.method !== 'GET') throw invalid('NotSupported', 'Only the built-in role definitions exist in Berth; they cannot be changed.');
      if (name) {
        const r = findRole(name);
        if (!r) throw notFound('RoleDefinitionDoesNotExist', `The specified role definition with ID '${name}' does not exist.`);
        return roleDefinitionResource(sub, r);
      }
      const f = /roleName\s+eq\s+'([^']*)'/i.exec(q.$filter ?? '')?.[1];
      return { value: BUILT_IN_ROLES.filter((r) => f === undefined || r.roleName.toLowerCase() === f.toLowerCase()).map((r) => roleDefinitionResource(sub, r)) };
    }
    if (req.method === 'GET' && !name) {
      await c.authorize(scope, 'Microsoft.Authorization/roleAssignments/read');
      const principal = /principalId\s+eq\s+'([^']*)'/i.exec(q.$filter ?? '')?.[1]?.toLowerCase();
      const atScope = /atScope\(\)/i.test(q.$filter ?? '');
      const s = scope.toLowerCase();
      const list = (await d.identity.listAssignments()).filter((a) => {
        const as = a.scope.toLowerCase();
        const above = s === as || s.startsWith(as + '/');
        const below = as.startsWith(s + '/');
        return (atScope ? above : above || below) && (principal === undefined || a.principalId === principal);
      });
      return { value: list.map((a) => roleAssignmentResource(sub, a)) };
    }
    if (!name) throw invalid('InvalidRequest', 'A role assignment name (a GUID) is required in the path.');
    if (req.method === 'GET') {
      const a = await d.identity.getAssignment(name);
      if (!a) throw notFound('RoleAssignmentNotFound', `The role assignment '${name}' is not found.`);
      await c.authorize(a.scope, 'Microsoft.Authorization/roleAssignments/read');
      return roleAssignmentResource(sub, a);
    }
    if (req.method === 'DELETE') {
      const a = await d.identity.getAssignment(name);
      if (!a) return reply.status(204).send();
      await c.authorize(a.scope, 'Microsoft.Authorization/roleAssignments/delete');
      await d.identity.deleteAssignment(a.id);
      return roleAssignmentResource(sub, a);
    }
    if (req.method === 'PUT') {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name)) throw invalid('InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
      await c.authorize(scope, 'Microsoft.Authorization/roleAssignments/write');
      const body = (req.body ?? {}) as { properties?: { roleDefinitionId?: string; principalId?: string; principalType?: string } };
      const role = findRole(body.properties?.roleDefinitionId ?? '');
      if (!role) throw invalid('RoleDefinitionDoesNotExist', `The specified role definition with ID '${body.properties?.roleDefinitionId ?? ''}' does not exist.`);
      if (!body.properties?.principalId) throw invalid('InvalidPrincipalId', 'properties.principalId is required.');
      const a = await d.identity.assignRole(body.properties.principalId, role, scope, name.toLowerCase(), body.properties.principalType);
      d.log.info('role assigned', { role: role.roleName, principalId: a.principalId, scope: a.scope });
      return reply.status(201).send(roleAssignmentResource(sub, a));
    }
    throw invalid('MethodNotAllowed', `${req.method} is not supported here.`);
  };
  // Role definitions are readable by any caller; role assignments are checked at the scope the path
  // names (a list, a PUT) or the assignment's own (a GET or DELETE by name).
  const scope = SCOPE.handler('the scope in the path, or the assignment\'s');
  const A = 'Microsoft.Authorization/roleAssignments';
  return ['/subscriptions/*', '/providers/Microsoft.Authorization/*'].flatMap((path) => [
    route({ method: 'GET', path, action: `${A}/read`, scope, handler: authz }),
    route({ method: 'PUT', path, action: `${A}/write`, scope, handler: authz }),
    route({ method: 'DELETE', path, action: `${A}/delete`, scope, handler: authz }),
  ]);
}

// ---- Graph (the subset az ad uses): reading the directory takes some role in the subscription,
// changing it the role-assignment write action at the subscription (route-table.ts, scope directory).
function graphRoutes(d: ApiDeps): RouteDef[] {
  const G = '/v1.0';
  const tenant = d.identity.ids.tenantId;
  const READ = AUTHENTICATED;
  const WRITE = 'Microsoft.Authorization/roleAssignments/write';
  const dir = SCOPE.directory;
  const pw = (a: Application) => a.passwordCredentials.map((c) => ({ customKeyIdentifier: null, displayName: c.displayName, endDateTime: c.endDateTime, hint: c.hint, keyId: c.keyId, secretText: null, startDateTime: c.startDateTime }));
  const appShape = (a: Application) => ({ id: a.appObjectId, appId: a.appId, displayName: a.displayName, createdDateTime: a.createdDateTime, signInAudience: 'AzureADMyOrg', passwordCredentials: pw(a) });
  const spShape = (a: Application) => ({ id: a.id, appId: a.appId, displayName: a.displayName, appDisplayName: a.displayName, accountEnabled: true, appOwnerOrganizationId: tenant,
    servicePrincipalType: 'Application', servicePrincipalNames: [a.appId], passwordCredentials: pw(a), createdDateTime: a.createdDateTime });
  const miAsSp = (i: UserAssignedIdentity) => ({ id: i.principalId, appId: i.clientId, displayName: i.name, accountEnabled: true, servicePrincipalType: 'ManagedIdentity',
    servicePrincipalNames: [i.clientId, i.id], alternativeNames: [`isExplicit=True`, i.id], passwordCredentials: [] });
  const filterList = <T extends Record<string, unknown>>(items: T[], f: string | undefined) => {
    const pred = parseGraphFilter(f);
    return { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata', value: pred ? items.filter(pred) : items };
  };
  const appByObjectId = async (id: string) => {
    const a = (await d.applications.list()).find((x) => x.appObjectId === id.toLowerCase() || x.appId === id.toLowerCase());
    if (!a) throw notFound('Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    return a;
  };
  const spById = async (id: string) => {
    const a = await d.applications.find(id);
    if (a && a.hasServicePrincipal) return spShape(a);
    const i = await d.managedIdentities.resolve(id);
    if (i) return miAsSp(i);
    // A system-assigned identity (a container group's) is a service principal too: role assignments name it.
    const sys = await d.managedIdentities.findSystemAssigned(id);
    if (sys) return { id: sys.principalId, appId: sys.clientId, displayName: sys.displayName, accountEnabled: true, servicePrincipalType: 'ManagedIdentity',
      servicePrincipalNames: [sys.clientId, sys.resourceId], alternativeNames: ['isExplicit=False', sys.resourceId], passwordCredentials: [] };
    throw notFound('Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
  };
  return [
    // The signed-in principal: Berth's principals are applications and managed identities, for which
    // Graph answers /me as below; az then looks the principal up by its appId (servicePrincipalNames).
    route({ method: 'GET', path: `${G}/me`, action: AUTHENTICATED, scope: SCOPE.none, handler: async () => {
      throw invalid('Request_BadRequest', '/me request is only valid with delegated authentication flow.');
    } }),
    // Berth has no users (people sign in as service principals): lookups find none, as for an unknown name.
    route({ method: 'GET', path: `${G}/users`, action: READ, scope: dir, handler: async ({ req }) => {
      return filterList([] as Array<Record<string, unknown>>, (req.query as Record<string, string>).$filter);
    } }),
    route({ method: 'GET', path: `${G}/users/:id`, action: READ, scope: dir, handler: async ({ params }) => {
      throw notFound('Request_ResourceNotFound', `Resource '${params.id}' does not exist or one of its queried reference-property objects are not present. Berth has no users: sign in as a service principal.`);
    } }),
    route({ method: 'GET', path: `${G}/applications`, action: READ, scope: dir, handler: async ({ req }) => {
      return filterList((await d.applications.list()).map(appShape), (req.query as Record<string, string>).$filter);
    } }),
    route({ method: 'POST', path: `${G}/applications`, action: WRITE, scope: dir, handler: async ({ req, reply }) => {
      const body = (req.body ?? {}) as { displayName?: string };
      return reply.status(201).send(appShape(await d.applications.createApplication(body.displayName ?? '')));
    } }),
    route({ method: 'GET', path: `${G}/applications/:id`, action: READ, scope: dir, handler: async ({ params }) => {
      return appShape(await appByObjectId(params.id));
    } }),
    route({ method: 'PATCH', path: `${G}/applications/:id`, action: WRITE, scope: dir, handler: async ({ req, reply, params }) => {
      const a = await appByObjectId(params.id);
      const body = (req.body ?? {}) as { displayName?: string };
      if (body.displayName) await d.applications.rename(a.id, body.displayName);
      return reply.status(204).send();
    } }),
    route({ method: 'DELETE', path: `${G}/applications/:id`, action: WRITE, scope: dir, handler: async ({ reply, params }) => {
      await d.applications.delete((await appByObjectId(params.id)).id);
      return reply.status(204).send();
    } }),
    route({ method: 'POST', path: `${G}/applications/:id/addPassword`, action: WRITE, scope: dir, handler: async ({ req, params }) => {
      const a = await appByObjectId(params.id);
      const body = (req.body ?? {}) as { passwordCredential?: { displayName?: string; endDateTime?: string } };
      const c = await d.applications.addPassword(a.id, { ...(body.passwordCredential?.displayName ? { displayName: body.passwordCredential.displayName } : {}),
        ...(body.passwordCredential?.endDateTime ? { endDateTime: body.passwordCredential.endDateTime } : {}) });
      d.log.info('application password added', { appId: a.appId, keyId: c.keyId });
      return { customKeyIdentifier: null, displayName: c.displayName, endDateTime: c.endDateTime, hint: c.hint, keyId: c.keyId, secretText: c.secretText, startDateTime: c.startDateTime };
    } }),
    route({ method: 'POST', path: `${G}/applications/:id/removePassword`, action: WRITE, scope: dir, handler: async ({ req, reply, params }) => {
      const a = await appByObjectId(params.id);
      await d.applications.removePassword(a.id, ((req.body ?? {}) as { keyId?: string }).keyId ?? '');
      return reply.status(204).send();
    } }),
    route({ method: 'GET', path: `${G}/servicePrincipals`, action: READ, scope: dir, handler: async ({ req }) => {
      return filterList([
        ...(await d.applications.list()).filter((a) => a.hasServicePrincipal).map(spShape),
        ...(await d.managedIdentities.list()).map(miAsSp),
      ], (req.query as Record<string, string>).$filter);
    } }),
    route({ method: 'POST', path: `${G}/servicePrincipals`, action: WRITE, scope: dir, handler: async ({ req, reply }) => {
      return reply.status(201).send(spShape(await d.applications.createServicePrincipal(((req.body ?? {}) as { appId?: string }).appId ?? '')));
    } }),
    route({ method: 'GET', path: `${G}/servicePrincipals/:id`, action: READ, scope: dir, handler: async ({ params }) => {
      return spById(params.id);
    } }),
    route({ method: 'DELETE', path: `${G}/servicePrincipals/:id`, action: WRITE, scope: dir, handler: async ({ reply, params }) => {
      const sp = await spById(params.id);
      if (sp.servicePrincipalType === 'ManagedIdentity') throw invalid('Request_BadRequest', 'A managed identity is deleted with its resource: berth identity delete.');
      await d.applications.delete(sp.id);
      return reply.status(204).send();
    } }),
    route({ method: 'POST', path: `${G}/directoryObjects/getByIds`, action: READ, scope: dir, handler: async ({ req }) => {
      const ids = ((req.body ?? {}) as { ids?: string[] }).ids ?? [];
      const value: unknown[] = [];
      for (const id of ids) {
        try {
          value.push({ '@odata.type': '#microsoft.graph.servicePrincipal', ...(await spById(id)) });
        } catch { /* unknown ids are left out, as Graph does */ }
      }
      return { value };
    } }),
  ];
}

/** The managed-identity token endpoint: IDENTITY_ENDPOINT (/msi/token) and IMDS's path, no bearer auth. */
export function workloadIdentityRoutes(d: ApiDeps): RouteDef[] {
  const handler = async ({ req, reply }: { req: FastifyRequest; reply: FastifyReply }) => {
    const imds = req.url.startsWith('/metadata/');
    if (imds && String(req.headers.metadata ?? '').toLowerCase() !== 'true') {
      return reply.status(400).send({ error: 'invalid_request', error_description: 'Required metadata header not specified' });
    }
    const secret = req.headers['x-identity-header'];
    const binding = typeof secret === 'string' ? d.workloads.bySecret(secret) : undefined;
    const r = await d.workloads.token(binding, req.query as Record<string, string>);
    if (r.status === 200) d.log.info('managed identity token issued', { workload: binding!.workload, client_id: r.body.client_id, resource: r.body.resource });
    return reply.status(r.status).header('Cache-Control', 'no-store').send(r.body);
  };
  // Public: the workload's own secret (X-IDENTITY-HEADER) is its credential.
  return [
    route({ method: 'GET', path: '/msi/token', action: PUBLIC, scope: SCOPE.none, handler }),
    route({ method: 'GET', path: '/metadata/identity/oauth2/token', action: PUBLIC, scope: SCOPE.none, handler }),
  ];
}
