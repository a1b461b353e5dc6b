// Microsoft.Resources: the subscription (one), the tenant, and resource groups. Deleting a group
// cascades through resources/cascade.ts.
import type { ApiDeps } from './deps.js';
import { notFound } from '../lib/errors.js';
import type { Principal } from '../identity/principals.js';
import { deleteResourceGroup } from '../resources/cascade.js';
import { route, SCOPE, type RouteDef } from './route-table.js';
import { AUTHENTICATED } from '../identity/actions.js';

const RG = 'Microsoft.Resources/subscriptions/resourceGroups';

export function subscriptionRoutes(d: ApiDeps): RouteDef[] {
  const sub = d.identity.ids.subscriptionId;
  const subObj = () => ({ id: `/subscriptions/${sub}`, subscriptionId: sub, tenantId: d.identity.ids.tenantId, displayName: 'Berth local subscription', state: 'Enabled', authorizationSource: 'RoleBased' });
  // Only subscriptions where the caller holds some role are visible to it (az login relies on this).
  const seesSubscription = (p: Principal) => d.identity.hasAnyAssignment(p.id);
  return [
    route({ method: 'GET', path: '/subscriptions', action: AUTHENTICATED, scope: SCOPE.none,
      handler: async (c) => ({ value: await seesSubscription(c.principal) ? [subObj()] : [] }) }),
    route({ method: 'GET', path: '/tenants', action: AUTHENTICATED, scope: SCOPE.none,
      handler: () => ({ value: [{ id: `/tenants/${d.identity.ids.tenantId}`, tenantId: d.identity.ids.tenantId }] }) }),
    route({ method: 'GET', path: '/subscriptions/:sub', action: AUTHENTICATED, scope: SCOPE.none, handler: async (c) => {
      // As the list: a principal with no role anywhere in the subscription does not see it.
      if (!await seesSubscription(c.principal)) throw notFound('SubscriptionNotFound', `The subscription '${c.params.sub}' could not be found.`);
      return subObj();
    } }),
    route({ method: 'GET', path: '/subscriptions/:sub/resourcegroups', action: `${RG}/read`, scope: SCOPE.each,
      handler: async (c) => ({ value: await c.allowed(await d.groups.list(), (g) => g.id) }) }),
    route({ method: 'PUT', path: '/subscriptions/:sub/resourcegroups/:rg', action: `${RG}/write`, scope: SCOPE.resourceGroup, handler: async (c) => {
      const body = (c.req.body ?? {}) as { location?: string; tags?: Record<string, string> };
      const { group, created } = await d.groups.createOrUpdate(c.params.rg, body.location ?? '', body.tags ?? {});
      return c.reply.status(created ? 201 : 200).send(group);
    } }),
    route({ method: 'GET', path: '/subscriptions/:sub/resourcegroups/:rg', action: `${RG}/read`, scope: SCOPE.resourceGroup,
      handler: (c) => d.groups.get(c.params.rg) }),
    route({ method: 'DELETE', path: '/subscriptions/:sub/resourcegroups/:rg', action: `${RG}/delete`, scope: SCOPE.resourceGroup,
      handler: async (c) => c.reply.status((await deleteResourceGroup(d, c.params.rg)) ? 200 : 204).send() }),
  ];
}
