// Deleting a resource group takes everything in it, as ARM does: registries, vaults, container groups,
// the group's user-assigned identities (their principals and roles) and every role assignment at the
// group or a resource in it; then the group itself.
import type { ResourceGroups } from './groups.js';
import type { Logger } from '../lib/logger.js';

/** What the cascade deletes through: each service removes its own resources and their side data. */
type Awaitable<T> = T | Promise<T>;

export interface GroupContents {
  groups: ResourceGroups;
  registries: { list(rg: string): Awaitable<Array<{ name: string }>>; delete(rg: string, name: string): Promise<unknown> };
  vaults: { list(rg: string): Awaitable<Array<{ name: string }>>; delete(rg: string, name: string): Promise<unknown> };
  containerGroups: { list(rg: string): Awaitable<Array<{ name: string }>>; delete(rg: string, name: string): Promise<unknown> };
  managedIdentities: { list(rg: string): Awaitable<Array<{ name: string }>>; delete(rg: string, name: string): Promise<unknown> };
  identity: { deleteAssignmentsUnder(scope: string): Promise<number>; ids: { subscriptionId: string } };
  log: Logger;
}

/** Deletes group `name` and all in it; false when there is no such group. */
export async function deleteResourceGroup(d: GroupContents, name: string): Promise<boolean> {
  const g = await d.groups.get(name, false);
  if (!g) return false;
  for (const r of await d.registries.list(g.name)) await d.registries.delete(g.name, r.name);
  for (const v of await d.vaults.list(g.name)) await d.vaults.delete(g.name, v.name);
  for (const c of await d.containerGroups.list(g.name)) await d.containerGroups.delete(g.name, c.name);
  for (const i of await d.managedIdentities.list(g.name)) await d.managedIdentities.delete(g.name, i.name);
  const removed = await d.identity.deleteAssignmentsUnder(`/subscriptions/${d.identity.ids.subscriptionId}/resourceGroups/${g.name}`);
  await d.groups.delete(g.name);
  d.log.info('resource group deleted', { group: g.name, roleAssignmentsRemoved: removed });
  return true;
}
