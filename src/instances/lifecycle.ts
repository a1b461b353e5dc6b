// A container group's lifecycle actions: run it (one long-running operation per run, ended by its
// runner), stop, start, restart and delete, each as the one operation on the group in progress.
import type { PulledImage } from '../pull/types.js';
import type { GroupsContext } from './context.js';
import type { GroupNames } from './group-names.js';
import type { GroupState } from './state.js';
import type { Operation, StoredGroup } from './store.js';

export class GroupLifecycle {
  /** Operations a runner is to end: when that end is written. */
  private readonly ending = new Map<string, { groupId: string; ended: Promise<void> }>();

  constructor(private readonly c: GroupsContext, private readonly names: GroupNames) {}

  /** Starts driving the stored group; its operation ends when the group has provisioned (or failed to). */
  async run(g: StoredGroup, images: Map<string, PulledImage>): Promise<Operation> {
    const { store, o } = this.c;
    const op = await store.startOperation(g.id);
    const runner = this.c.requireRuntime().run(g, images);
    const ended = runner.provisioned.then(async (r) => {
      // The state the runner saved on the way lands before the operation reads as ended.
      await store.settled(g.id);
      await store.finishOperation(op.id, r.ok ? 'Succeeded' : 'Failed', r.error);
    }).catch((e: Error) => o.log.warn('ending a container group operation failed', { group: g.name, error: e.message }))
      .finally(() => this.ending.delete(op.id));
    this.ending.set(op.id, { groupId: g.id, ended });
    return op;
  }

  /**
   * The operation once it has ended, or as it is after `maxMs` (a long poll): a client polling a group
   * that comes up in 0.2 s is answered then, not after the Retry-After it would otherwise sleep (1 s
   * for the Azure SDKs and az).
   */
  async settled(id: string, maxMs: number): Promise<Operation | undefined> {
    const op = await this.c.store.operation(id);
    const ending = op?.status === 'InProgress' ? this.ending.get(id) : undefined;
    if (!ending) return op;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ending.ended, new Promise<void>((r) => { timer = setTimeout(r, maxMs); })]);
    clearTimeout(timer);
    return this.c.store.operation(id);
  }

  /** Server shutdown, once the runners are detached: the ends of their operations and every state save written. */
  async drained(): Promise<void> {
    await Promise.all([...this.ending.values()].map((e) => e.ended));
    await this.c.store.idle();
  }

  /** Waits until the group's halted runners have written how their operations ended. */
  private async ended(groupId: string): Promise<void> {
    await Promise.all([...this.ending.values()].filter((e) => e.groupId === groupId).map((e) => e.ended));
  }

  /** Deletes the group and everything it runs; false when there was none. */
  async delete(rg: string, name: string): Promise<boolean> {
    const { o, store, identities, reconciler } = this.c;
    await o.groups.get(rg);
    const g = await store.find(rg, name);
    if (!g) return false;
    return this.c.exclusive(`${rg}/${name}`, async () => {
      if (reconciler) await reconciler.halt(g, { deleteSandbox: true });
      else if (o.runtime) await o.runtime.deleteSandbox(g.id);
      await this.ended(g.id);
      identities.unbind(g.id);
      if (g.spec.identity?.type.includes('SystemAssigned')) await identities.dropSystemPrincipal(g);
      await store.delete(g.id);
      this.names.changed();
      o.log.info('container group deleted', { group: g.name, resourceGroup: g.resourceGroup });
      return true;
    });
  }

  async stop(rg: string, name: string): Promise<void> {
    const g = await this.c.get(rg, name);
    const reconciler = this.c.requireRuntime();
    await this.c.exclusive(`${rg}/${name}`, async () => {
      await reconciler.halt(g, { deleteSandbox: true });
      await this.ended(g.id);
      await this.c.store.failPendingOperations(g.id, { code: 'Canceled', message: 'The container group was stopped.' });
      await this.c.store.updateState(g.id, (s) => {
        s.stopped = true;
        s.state = 'Stopped';
        delete s.sandbox;
      });
      this.names.changed();
    });
  }

  /** Starts a stopped group; undefined when it was already running (ACI answers 204). */
  async start(rg: string, name: string): Promise<Operation | undefined> {
    const g = await this.c.get(rg, name);
    const reconciler = this.c.requireRuntime();
    if (!g.state.stopped && reconciler.runner(g.id)) return undefined;
    return this.c.exclusive(`${rg}/${name}`, async () => {
      await reconciler.halt(g, { deleteSandbox: false });
      return this.rerun(g.id, false);
    });
  }

  /**
   * Restarts every container in place; images are pulled again. The sandbox stays (as ACI keeps a
   * restarted group's IP address): its published host ports and metadata endpoint do not change.
   */
  async restart(rg: string, name: string): Promise<Operation> {
    const g = await this.c.get(rg, name);
    const reconciler = this.c.requireRuntime();
    return this.c.exclusive(`${rg}/${name}`, async () => {
      // As ACI: an image that cannot be pulled fails the restart at once (InaccessibleImage), and the
      // group keeps running what it runs.
      await this.c.checkImages(g.spec, g, true, g);
      await reconciler.halt(g, { deleteSandbox: false });
      return this.rerun(g.id, true);
    });
  }

  private async rerun(id: string, keepSandbox: boolean): Promise<Operation> {
    const g = await this.c.store.updateState(id, (s) => rerunState(s, keepSandbox));
    return this.run(g!, new Map());
  }
}

/** The state a group runs again from: desired running, provisioning anew, every container waiting. */
function rerunState(s: GroupState, keepSandbox: boolean): void {
  s.stopped = false;
  s.provisioningState = 'Pending';
  s.state = 'Pending';
  if (!keepSandbox) delete s.sandbox;
  for (const cs of Object.values(s.containers)) {
    if (cs.currentState) cs.previousState = cs.currentState;
    cs.currentState = { state: 'Waiting', detailStatus: '' };
  }
}
