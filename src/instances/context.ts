// What the container-group modules (create, lifecycle, container I/O, recovery) share: the options,
// the store, the group's identities, the reconciler when a runtime is configured, one operation per
// group at a time, and ACI's image check with this server's puller and keychains.
import { availableParallelism, totalmem } from 'node:os';
import type { ImagePuller } from '../pull/types.js';
import type { Runtime } from '../runtime/runtime.js';
import type { ResourceGroups } from '../resources/groups.js';
import type { ManagedIdentities } from '../identity/managed-identities.js';
import type { WorkloadIdentities } from '../identity/workload-identity.js';
import type { Logger } from '../lib/logger.js';
import type { Sealer } from '../storage/sealer.js';
import type { Sql } from '../storage/sql/sql.js';
import type { HostsFile } from './hosts-file.js';
import { conflict, invalid, resourceNotFound } from '../lib/errors.js';
import { GROUP_TYPE, type GroupSpec } from './spec.js';
import { GroupStore, type StoredGroup } from './store.js';
import type { Reconciler, ReconcilerOptions } from './reconciler.js';
import type { KeychainFactory } from './keychains.js';
import { GroupIdentities, type GroupName } from './group-identities.js';
import { checkImages } from './image-check.js';

export interface ContainerGroupsOptions {
  sql: Sql;
  subscriptionId: string;
  tenantId: string;
  sealer: Sealer;
  groups: ResourceGroups;
  managedIdentities: ManagedIdentities;
  workloads: WorkloadIdentities;
  log: Logger;
  runtime?: Runtime;
  puller?: ImagePuller;
  keychainFactory?: KeychainFactory;
  /** Whether the Key Vault with this ARM id exists (a secret reference into a missing vault is refused as such). */
  vaultExists?: (vaultId: string) => Promise<boolean>;
  /** Back-off and sleep overrides (tests). */
  reconciler?: Pick<ReconcilerOptions, 'backoff' | 'helperBackoff' | 'sleep'>;
  /** What one group may ask for on this node (default: the host's CPUs and memory). */
  capacity?: { cpu: number; memoryInGB: number };
  /** Where the groups' DNS names are kept (berth serve --hosts-file): each labelled group then has a loopback address of its own. */
  hostsFile?: HostsFile;
}

/** The host's CPUs and memory: no group can ask for more than the node has. */
export function hostCapacity(): { cpu: number; memoryInGB: number } {
  return { cpu: availableParallelism(), memoryInGB: Math.floor((totalmem() / 2 ** 30) * 10) / 10 };
}

export const NO_RUNTIME = 'No container runtime configured: this Berth server was started without a container runtime and image puller, so it cannot run container groups. Start `berth serve` on a machine with runc (scripts/install.sh installs it).';

export class GroupsContext {
  readonly store: GroupStore;
  readonly identities: GroupIdentities;
  /** Set by the façade when a runtime and puller are configured. */
  reconciler?: Reconciler;
  private readonly busy = new Set<string>();

  constructor(readonly o: ContainerGroupsOptions) {
    this.store = new GroupStore(o.sql, o.subscriptionId, o.sealer);
    this.identities = new GroupIdentities(o);
  }

  requireRuntime(): Reconciler {
    if (!this.reconciler) throw invalid('ContainerRuntimeNotConfigured', NO_RUNTIME);
    return this.reconciler;
  }

  /** The group; 404 when it (or its resource group) does not exist. */
  async get(rg: string, name: string): Promise<StoredGroup> {
    await this.o.groups.get(rg);
    const g = await this.store.find(rg, name);
    if (!g) throw resourceNotFound(GROUP_TYPE, name, rg);
    return g;
  }

  /** Runs `f` as the one operation on group `key` (rg/name) in progress; another one meanwhile is a 409. */
  async exclusive<T>(key: string, f: () => Promise<T>): Promise<T> {
    const k = key.toLowerCase();
    if (this.busy.has(k)) throw conflict('Conflict', `Another operation on the container group '${key.split('/').pop()}' is in progress; try again when it is done.`);
    this.busy.add(k);
    try { return await f(); } finally { this.busy.delete(k); }
  }

  /** ACI's synchronous image check (./image-check.ts) with this server's puller, keychains and identities. */
  checkImages(spec: GroupSpec, g: GroupName, keepSystemIdentity: boolean, previous?: StoredGroup) {
    return checkImages({ puller: this.o.puller!, log: this.o.log, keychain: (sp, grp) => this.identities.keychain(sp, grp),
      dropSystemIdentity: (grp) => this.identities.dropSystemPrincipal(grp) }, spec, g, keepSystemIdentity, previous);
  }
}
