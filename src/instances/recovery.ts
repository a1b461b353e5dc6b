// After a server start: the operations that were in progress when it went down end, groups that were
// provisioning count as provisioned, and the reconciler adopts what the runtime still runs (or
// restarts it per policy).
import type { GroupsContext } from './context.js';

export async function recoverGroups(c: GroupsContext): Promise<void> {
  const { reconciler, store, o } = c;
  if (!reconciler) return;
  const groups = await store.list();
  for (const g of groups) {
    // Operations that were running when the server went down end now; the group is reconciled anew.
    await store.failPendingOperations(g.id, { code: 'ServerRestarted', message: 'Berth restarted during the operation; the group is reconciled again.' });
    if (g.state.provisioningState === 'Pending' || g.state.provisioningState === 'Creating') g.state.provisioningState = 'Succeeded';
    await store.saveState(g.id, g.state);
  }
  try {
    await reconciler.recover(groups);
  } catch (e) {
    // The server still starts: the groups show their last known state until the runtime answers again.
    o.log.error('reconciling container groups after start failed', { error: String(e) });
  }
}
