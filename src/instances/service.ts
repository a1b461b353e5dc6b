// Container groups, the domain core behind the ACI-shaped API. No HTTP in here. This façade joins the
// modules that do the work: create.ts (create/update and its checks), lifecycle.ts (operations, stop,
// start, restart, delete), container-io.ts (logs, attach, exec), recovery.ts (after a server start),
// group-identities.ts and group-names.ts (DNS names in the hosts file); context.ts holds what they share.
import type { Runtime, Task } from '../runtime/runtime.js';
import { labelAddress } from './dns-names.js';
import { GroupsContext, type ContainerGroupsOptions } from './context.js';
import { GroupCreation, type CreateOptions } from './create.js';
import { ContainerIo } from './container-io.js';
import { GroupLifecycle } from './lifecycle.js';
import { GroupNames } from './group-names.js';
import { recoverGroups } from './recovery.js';
import { Reconciler } from './reconciler.js';
import { groupResource } from './shapes.js';
import type { GroupStore, Operation, StoredGroup } from './store.js';

export { inaccessibleSentence, type ImageAccessChecker } from './image-check.js';
export { hostCapacity, NO_RUNTIME, type ContainerGroupsOptions } from './context.js';

export class ContainerGroups {
  readonly store: GroupStore;
  private readonly c: GroupsContext;
  private readonly life: GroupLifecycle;
  private readonly creation: GroupCreation;
  private readonly io: ContainerIo;

  constructor(private readonly o: ContainerGroupsOptions) {
    this.c = new GroupsContext(o);
    this.store = this.c.store;
    const names = new GroupNames(o.hostsFile, () => this.store.list(), o.log);
    this.life = new GroupLifecycle(this.c, names);
    this.creation = new GroupCreation(this.c, this.life);
    this.io = new ContainerIo(this.c);
    if (o.runtime && o.puller) {
      const identities = this.c.identities;
      this.c.reconciler = new Reconciler({
        runtime: o.runtime, puller: o.puller, log: o.log, ...(o.reconciler ?? {}),
        keychainFor: (g) => identities.keychain(g.spec, g),
        identityEndpointFor: (g) => identities.endpoint(g),
        ...(o.hostsFile ? { sandboxAddressFor: (g: StoredGroup) => (g.spec.ipAddress?.dnsNameLabel ? labelAddress(g.spec.ipAddress.dnsNameLabel, g.location) : undefined) } : {}),
        // The runner's state is the live one: each save is a snapshot, written in order behind the ones before it.
        persist: (id, state) => {
          const saved = this.store.saveState(id, state);
          saved.catch((e: Error) => o.log.warn('saving a container group\'s state failed', { groupId: id, error: e.message }));
          names.stateSaved(id, state, saved);
        },
      });
    }
  }

  get configured(): boolean {
    return this.c.reconciler !== undefined;
  }

  armId(rg: string, name: string): string {
    return this.c.identities.armId(rg, name);
  }

  // ---- reads
  get(rg: string, name: string): Promise<StoredGroup> {
    return this.c.get(rg, name);
  }

  async list(rg?: string): Promise<StoredGroup[]> {
    if (rg !== undefined) await this.o.groups.get(rg);
    return this.store.list(rg);
  }

  async resource(g: StoredGroup, instanceView = true) {
    const identity = await this.c.identities.view(g);
    return groupResource(this.o.subscriptionId, g, { instanceView, ...(identity ? { identity } : {}) });
  }

  operation(id: string): Promise<Operation | undefined> {
    return this.store.operation(id);
  }

  /** The group, or undefined (no 404): for a delete that answers 204 on a missing group. */
  find(rg: string, name: string): Promise<StoredGroup | undefined> {
    return this.store.find(rg, name);
  }

  /** The group an operation is about, if it still exists. */
  operationGroup(op: Operation): Promise<StoredGroup | undefined> {
    return this.store.byId(op.groupId);
  }

  /** Replaces the group's tags (PATCH: nothing else of the group changes, nothing is rerun). */
  async setTags(rg: string, name: string, tags: Record<string, string>): Promise<StoredGroup> {
    const g = await this.get(rg, name);
    return (await this.store.saveSpec(g.id, { ...g.spec, tags }))!;
  }

  /** The operation once it has ended, or as it is after `maxMs` (a long poll; see GroupLifecycle.settled). */
  operationSettled(id: string, maxMs: number): Promise<Operation | undefined> {
    return this.life.settled(id, maxMs);
  }

  // ---- create / update and lifecycle actions
  /**
   * `canReadSecret(scope)`: whether the caller may read a Key Vault secret the spec references (the
   * group must not give its creator credentials the creator could not read).
   */
  createOrUpdate(rg: string, name: string, body: unknown, opts: CreateOptions = {}): Promise<{ group: StoredGroup; created: boolean; operation: Operation }> {
    return this.creation.createOrUpdate(rg, name, body, opts);
  }

  /** Deletes the group and everything it runs; false when there was none. */
  delete(rg: string, name: string): Promise<boolean> {
    return this.life.delete(rg, name);
  }

  stop(rg: string, name: string): Promise<void> {
    return this.life.stop(rg, name);
  }

  /** Starts a stopped group; undefined when it was already running (ACI answers 204). */
  start(rg: string, name: string): Promise<Operation | undefined> {
    return this.life.start(rg, name);
  }

  /** Restarts every container in place (images pulled again, the sandbox kept). */
  restart(rg: string, name: string): Promise<Operation> {
    return this.life.restart(rg, name);
  }

  // ---- logs and exec
  /** The container's output: everything up to 4 MiB, or its last `tail` lines. */
  logs(rg: string, name: string, container: string, tail?: number): Promise<string> {
    return this.io.logs(rg, name, container, tail);
  }

  /** The container's task; throws when the group or container does not exist or does not run (exec needs it running). */
  runningTask(rg: string, name: string, container: string): Promise<Task> {
    return this.io.runningTask(rg, name, container);
  }

  /** Streams the container's output from now on into `out` until the container stops running or `signal` aborts. */
  attach(rg: string, name: string, container: string, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
    return this.io.attach(rg, name, container, out, signal);
  }

  exec(rg: string, name: string, container: string, argv: string[], io: Parameters<Runtime['exec']>[2]): Promise<number> {
    return this.io.exec(rg, name, container, argv, io);
  }

  // ---- server lifecycle
  recover(): Promise<void> {
    return recoverGroups(this.c);
  }

  /** Server shutdown: the runners let go of their containers (they keep running), and what they saved is written. */
  async detach(): Promise<void> {
    await this.c.reconciler?.detachAll();
    await this.life.drained();
  }
}
