// Microsoft.ContainerRegistry/registries: create/update, show, list, delete, credentials, usages,
// name availability and Berth's garbage collection.
import type { ApiDeps } from './deps.js';
import { armId, parseSku } from '../registry/registries.js';
import { registryResource } from './arm-shapes.js';
import { answerDelete, route, SCOPE, type RouteDef } from './route-table.js';

const ACR = 'Microsoft.ContainerRegistry';
const TYPE = `${ACR}/registries`;
const PATH = '/subscriptions/:sub/resourcegroups/:rg/providers/Microsoft.ContainerRegistry/registries' as const;
const ONE = `${PATH}/:name` as const;

type Body = { location?: string; sku?: { name?: string }; tags?: Record<string, string>; properties?: { adminUserEnabled?: boolean } };

export function registryRoutes(d: ApiDeps): RouteDef[] {
  const shape = (r: Parameters<typeof registryResource>[0]) => registryResource(r, d.registries.loginServer(r));
  const admin = (b: Body) => (b.properties?.adminUserEnabled !== undefined ? { adminUserEnabled: Boolean(b.properties.adminUserEnabled) } : {});
  const one = SCOPE.resource(TYPE);
  return [
    route({ method: 'POST', path: '/subscriptions/:sub/providers/Microsoft.ContainerRegistry/checkNameAvailability', action: `${ACR}/checkNameAvailability/read`, scope: SCOPE.subscription,
      handler: (c) => d.registries.nameAvailable(((c.req.body ?? {}) as { name?: string }).name ?? '') }),
    route({ method: 'GET', path: '/subscriptions/:sub/providers/Microsoft.ContainerRegistry/registries', action: `${TYPE}/read`, scope: SCOPE.each,
      handler: async (c) => ({ value: (await c.allowed(await d.registries.list(), armId)).map(shape) }) }),
    route({ method: 'GET', path: PATH, action: `${TYPE}/read`, scope: SCOPE.each, handler: async (c) => {
      await d.groups.get(c.params.rg);
      return { value: (await c.allowed(await d.registries.list(c.params.rg), armId)).map(shape) };
    } }),
    route({ method: 'PUT', path: ONE, action: `${TYPE}/write`, scope: one, handler: async (c) => {
      const body = (c.req.body ?? {}) as Body;
      const sku = parseSku(body.sku?.name ?? 'Basic');
      const { registry, created } = await d.registries.createOrUpdate(c.params.rg, c.params.name, {
        sku, ...(body.location ? { location: body.location } : {}), ...(body.tags ? { tags: body.tags } : {}), ...admin(body),
      });
      return c.reply.status(created ? 201 : 200).send(shape(registry));
    } }),
    route({ method: 'GET', path: ONE, action: `${TYPE}/read`, scope: one, handler: async (c) => shape(await d.registries.get(c.params.rg, c.params.name)) }),
    route({ method: 'PATCH', path: ONE, action: `${TYPE}/write`, scope: one, handler: async (c) => {
      const body = (c.req.body ?? {}) as Body;
      return shape(await d.registries.update(c.params.rg, c.params.name, {
        ...(body.sku?.name ? { sku: parseSku(body.sku.name) } : {}), ...(body.tags ? { tags: body.tags } : {}), ...admin(body),
      }));
    } }),
    route({ method: 'DELETE', path: ONE, action: `${TYPE}/delete`, scope: one, handler: (c) => answerDelete(c.reply, () => d.registries.delete(c.params.rg, c.params.name)) }),
    route({ method: 'POST', path: `${ONE}/listCredentials`, action: `${TYPE}/listCredentials/action`, scope: one,
      handler: (c) => d.registries.credentials(c.params.rg, c.params.name) }),
    route({ method: 'GET', path: `${ONE}/listUsages`, action: `${TYPE}/listUsages/read`, scope: one, handler: async (c) => {
      const u = await d.registryService.storageUsage((await d.registries.get(c.params.rg, c.params.name)).id);
      return { value: [{ name: 'Size', ...(u.limit !== undefined ? { limit: u.limit } : {}), currentValue: u.currentValue, unit: 'Bytes' }] };
    } }),
    route({ method: 'POST', path: `${ONE}/regenerateCredential`, action: `${TYPE}/regenerateCredential/action`, scope: one,
      handler: (c) => d.registries.regenerate(c.params.rg, c.params.name, ((c.req.body ?? {}) as { name?: string }).name ?? '') }),
    route({ method: 'POST', path: `${ONE}/garbageCollect`, action: `${TYPE}/write`, scope: one, handler: async (c) => {
      await d.registries.get(c.params.rg, c.params.name);
      return d.registryService.collectGarbage();
    } }),
  ];
}
