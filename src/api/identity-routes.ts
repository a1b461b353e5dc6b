// Identity surfaces: user-assigned managed identities (ARM), role assignments and role definitions at any
// scope (ARM, Microsoft.Authorization), the Graph subset `az ad` uses for applications and service
// principals, and the managed-identity token endpoint for workloads.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { checkSub, requirePermission } from './common.js';
import { BerthError, invalid, notFound } from '../lib/errors.js';
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

export function registerIdentityRoutes(app: FastifyInstance, d: ApiDeps): void {
  const sub = d.identity.ids.subscriptionId;
  const tenant = d.identity.ids.tenantId;

  // ---- user-assigned managed identities
  const miPath = `/subscriptions/:sub/resourcegroups/:rg/providers/${MI}`;
  const miScope = (rg: string, name: string) => `/subscriptions/${sub}/resourceGroups/${rg}/providers/${MI}/${name}`;
  app.get(`/subscriptions/:sub/providers/${MI}`, async (req) => {
    checkSub(d, (req.params as { sub: string }).sub);
    return { value: d.managedIdentities.list().filter((i) => d.identity.can(req.principal!, `${MI}/read`, miScope(i.resourceGroup, i.name))).map(identityResource) };
  });
  app.get(miPath, async (req) => {
    const { sub: s, rg } = req.params as { sub: string; rg: string };
    checkSub(d, s);
    d.groups.get(rg);
    return { value: d.managedIdentities.list(rg).filter((i) => d.identity.can(req.principal!, `${MI}/read`, miScope(i.resourceGroup, i.name))).map(identityResource) };
  });
  app.put(`${miPath}/:name`, async (req, reply) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, `${MI}/write`, miScope(rg, name));
    const body = (req.body ?? {}) as { location?: string; tags?: Record<string, string> };
    const { identity, created } = d.managedIdentities.createOrUpdate(rg, name, { ...(body.location ? { location: body.location } : {}), ...(body.tags ? { tags: body.tags } : {}) });
    return reply.status(created ? 201 : 200).header('location', identity.id).send(identityResource(identity));
  });
  app.get(`${miPath}/:name`, async (req) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, `${MI}/read`, miScope(rg, name));
    return identityResource(d.managedIdentities.get(rg, name));
  });
  app.delete(`${miPath}/:name`, async (req, reply) => {
    const { sub: s, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, s);
    requirePermission(d, req, `${MI}/delete`, miScope(rg, name));
    return reply.status(d.managedIdentities.delete(rg, name) ? 200 : 204).send();
  });

  // ---- role assignments and role definitions, at any scope
  const AUTHZ = /^(.*?)\/providers\/Microsoft\.Authorization\/(roleAssignments|roleDefinitions)(?:\/([^/?]+))?\/?$/i;
  const checkScope = (scope: string): string => {
    const m = /^\/subscriptions\/([^/]+)(?:\/resourceGroups\/([^/]+)(?:\/providers\/([^/]+\/[^/]+)\/([^/]+))?)?(?:\/.*)?$/i.exec(scope);
    if (!m) throw invalid('InvalidScope', `The scope '${scope}' is not valid: use /subscriptions/<id>[/resourceGroups/<group>[/providers/<namespace>/<type>/<name>]].`);
    checkSub(d, m[1]!);
    if (m[2]) d.groups.get(m[2]);
    const [type, name] = [m[3]?.toLowerCase(), m[4]];
    if (type === 'microsoft.containerregistry/registries') d.registries.get(m[2]!, name!);
    if (type === MI.toLowerCase()) d.managedIdentities.get(m[2]!, name!);
    return scope.replace(/\/+$/, '');
  };
  const authz = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = decodeURIComponent(req.url.split('?')[0]!);
    const m = AUTHZ.exec(path);
    if (!m) throw notFound('InvalidResourceType', `The resource type could not be found for '${path}'.`);
    const [, rawScope, kind, name] = m as unknown as [string, string, string, string | undefined];
    const scope = rawScope === '' ? `/subscriptions/${sub}` : checkScope(rawScope);
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
      requirePermission(d, req, 'Microsoft.Authorization/roleAssignments/read', scope);
      const principal = /principalId\s+eq\s+'([^']*)'/i.exec(q.$filter ?? '')?.[1]?.toLowerCase();
      const atScope = /atScope\(\)/i.test(q.$filter ?? '');
      const s = scope.toLowerCase();
      const list = d.identity.listAssignments().filter((a) => {
        const as = a.scope.toLowerCase();
        const above = s === as || s.startsWith(as + '/');
        const below = as.startsWith(s + '/');
        return (atScope ? above : above || below) && (principal === undefined || a.principalId === principal);
      });
      return { value: list.map((a) => roleAssignmentResource(sub, a)) };
    }
    if (!name) throw invalid('InvalidRequest', 'A role assignment name (a GUID) is required in the path.');
    if (req.method === 'GET') {
      const a = d.identity.getAssignment(name);
      if (!a) throw notFound('RoleAssignmentNotFound', `The role assignment '${name}' is not found.`);
      requirePermission(d, req, 'Microsoft.Authorization/roleAssignments/read', a.scope);
      return roleAssignmentResource(sub, a);
    }
    if (req.method === 'DELETE') {
      const a = d.identity.getAssignment(name);
      if (!a) return reply.status(204).send();
      requirePermission(d, req, 'Microsoft.Authorization/roleAssignments/delete', a.scope);
      d.identity.deleteAssignment(a.id);
      return roleAssignmentResource(sub, a);
    }
    if (req.method === 'PUT') {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name)) throw invalid('InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
      requirePermission(d, req, 'Microsoft.Authorization/roleAssignments/write', scope);
      const body = (req.body ?? {}) as { properties?: { roleDefinitionId?: string; principalId?: string; principalType?: string } };
      const role = findRole(body.properties?.roleDefinitionId ?? '');
      if (!role) throw invalid('RoleDefinitionDoesNotExist', `The specified role definition with ID '${body.properties?.roleDefinitionId ?? ''}' does not exist.`);
      if (!body.properties?.principalId) throw invalid('InvalidPrincipalId', 'properties.principalId is required.');
      const a = d.identity.assignRole(body.properties.principalId, role, scope, name.toLowerCase(), body.properties.principalType);
      d.log.info('role assigned', { role: role.roleName, principalId: a.principalId, scope: a.scope });
      return reply.status(201).send(roleAssignmentResource(sub, a));
    }
    throw invalid('MethodNotAllowed', `${req.method} is not supported here.`);
  };
  app.route({ method: ['GET', 'PUT', 'DELETE'], url: '/subscriptions/*', handler: authz });
  app.route({ method: ['GET', 'PUT', 'DELETE'], url: '/providers/Microsoft.Authorization/*', handler: authz });

  // ---- Graph (the subset az ad uses)
  const directoryWrite = (req: FastifyRequest) => {
    if (!d.identity.can(req.principal!, 'Microsoft.Authorization/roleAssignments/write', `/subscriptions/${sub}`)) {
      throw new BerthError('forbidden', 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation. Creating or changing applications needs Owner on the subscription.');
    }
  };
  // Reading the directory takes a role somewhere in the subscription (an app with none is an outsider,
  // as one without Graph permissions is refused on Azure); changing it takes Owner (directoryWrite).
  const directoryRead = (req: FastifyRequest) => {
    if (!d.identity.hasAnyAssignment(req.principal!.id)) {
      throw new BerthError('forbidden', 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation. Reading the directory needs a role assignment in the subscription.');
    }
  };
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
  const appByObjectId = (id: string) => {
    const a = d.applications.list().find((x) => x.appObjectId === id.toLowerCase() || x.appId === id.toLowerCase());
    if (!a) throw notFound('Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    return a;
  };
  const G = '/v1.0';
  // The signed-in principal: Berth's principals are applications and managed identities, for which
  // Graph answers /me as below; az then looks the principal up by its appId (servicePrincipalNames).
  app.get(`${G}/me`, async () => {
    throw invalid('Request_BadRequest', '/me request is only valid with delegated authentication flow.');
  });
  // Berth has no users (people sign in as service principals): lookups find none, as for an unknown name.
  app.get(`${G}/users`, async (req) => {
    directoryRead(req);
    return filterList([] as Array<Record<string, unknown>>, (req.query as Record<string, string>).$filter);
  });
  app.get(`${G}/users/:id`, async (req) => {
    directoryRead(req);
    throw notFound('Request_ResourceNotFound', `Resource '${(req.params as { id: string }).id}' does not exist or one of its queried reference-property objects are not present. Berth has no users: sign in as a service principal.`);
  });
  app.get(`${G}/applications`, async (req) => {
    directoryRead(req);
    return filterList(d.applications.list().map(appShape), (req.query as Record<string, string>).$filter);
  });
  app.post(`${G}/applications`, async (req, reply) => {
    directoryWrite(req);
    const body = (req.body ?? {}) as { displayName?: string };
    return reply.status(201).send(appShape(d.applications.createApplication(body.displayName ?? '')));
  });
  app.get(`${G}/applications/:id`, async (req) => {
    directoryRead(req);
    return appShape(appByObjectId((req.params as { id: string }).id));
  });
  app.patch(`${G}/applications/:id`, async (req, reply) => {
    directoryWrite(req);
    const a = appByObjectId((req.params as { id: string }).id);
    const body = (req.body ?? {}) as { displayName?: string };
    if (body.displayName) d.applications.rename(a.id, body.displayName);
    return reply.status(204).send();
  });
  app.delete(`${G}/applications/:id`, async (req, reply) => {
    directoryWrite(req);
    d.applications.delete(appByObjectId((req.params as { id: string }).id).id);
    return reply.status(204).send();
  });
  app.post(`${G}/applications/:id/addPassword`, async (req) => {
    directoryWrite(req);
    const a = appByObjectId((req.params as { id: string }).id);
    const body = (req.body ?? {}) as { passwordCredential?: { displayName?: string; endDateTime?: string } };
    const c = await d.applications.addPassword(a.id, { ...(body.passwordCredential?.displayName ? { displayName: body.passwordCredential.displayName } : {}),
      ...(body.passwordCredential?.endDateTime ? { endDateTime: body.passwordCredential.endDateTime } : {}) });
    d.log.info('application password added', { appId: a.appId, keyId: c.keyId });
    return { customKeyIdentifier: null, displayName: c.displayName, endDateTime: c.endDateTime, hint: c.hint, keyId: c.keyId, secretText: c.secretText, startDateTime: c.startDateTime };
  });
  app.post(`${G}/applications/:id/removePassword`, async (req, reply) => {
    directoryWrite(req);
    const a = appByObjectId((req.params as { id: string }).id);
    d.applications.removePassword(a.id, ((req.body ?? {}) as { keyId?: string }).keyId ?? '');
    return reply.status(204).send();
  });
  app.get(`${G}/servicePrincipals`, async (req) => {
    directoryRead(req);
    return filterList([
      ...d.applications.list().filter((a) => a.hasServicePrincipal).map(spShape),
      ...d.managedIdentities.list().map(miAsSp),
    ], (req.query as Record<string, string>).$filter);
  });
  app.post(`${G}/servicePrincipals`, async (req, reply) => {
    directoryWrite(req);
    return reply.status(201).send(spShape(d.applications.createServicePrincipal(((req.body ?? {}) as { appId?: string }).appId ?? '')));
  });
  const spById = (id: string) => {
    const a = d.applications.find(id);
    if (a && a.hasServicePrincipal) return spShape(a);
    const i = d.managedIdentities.resolve(id);
    if (i) return miAsSp(i);
    // A system-assigned identity (a container group's) is a service principal too: role assignments name it.
    const sys = d.managedIdentities.findSystemAssigned(id);
    if (sys) return { id: sys.principalId, appId: sys.clientId, displayName: sys.displayName, accountEnabled: true, servicePrincipalType: 'ManagedIdentity',
      servicePrincipalNames: [sys.clientId, sys.resourceId], alternativeNames: ['isExplicit=False', sys.resourceId], passwordCredentials: [] };
    throw notFound('Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
  };
  app.get(`${G}/servicePrincipals/:id`, async (req) => {
    directoryRead(req);
    return spById((req.params as { id: string }).id);
  });
  app.delete(`${G}/servicePrincipals/:id`, async (req, reply) => {
    directoryWrite(req);
    const sp = spById((req.params as { id: string }).id);
    if (sp.servicePrincipalType === 'ManagedIdentity') throw invalid('Request_BadRequest', 'A managed identity is deleted with its resource: berth identity delete.');
    d.applications.delete(sp.id);
    return reply.status(204).send();
  });
  app.post(`${G}/directoryObjects/getByIds`, async (req) => {
    directoryRead(req);
    const ids = ((req.body ?? {}) as { ids?: string[] }).ids ?? [];
    const value: unknown[] = [];
    for (const id of ids) {
      try {
        value.push({ '@odata.type': '#microsoft.graph.servicePrincipal', ...spById(id) });
      } catch { /* unknown ids are left out, as Graph does */ }
    }
    return { value };
  });
}

/** The managed-identity token endpoint: IDENTITY_ENDPOINT (/msi/token) and IMDS's path, no bearer auth. */
export function registerWorkloadIdentityRoutes(app: FastifyInstance, d: ApiDeps): void {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
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
  app.get('/msi/token', handler);
  app.get('/metadata/identity/oauth2/token', handler);
}
