// Container groups, the domain core behind the ACI-shaped API: create/update with ACI's synchronous
// image check (InaccessibleImage with Berth's diagnosis, nothing left behind), long-running operations,
// stop/start/restart/delete, logs and exec. No HTTP in here.
import type { Db } from '../storage/sqlite.js';
import type { Sealer } from '../storage/sealer.js';
import type { ImagePuller, PulledImage } from '../pull/types.js';
import type { Runtime, SandboxSpec, Task } from '../runtime/runtime.js';
import type { ResourceGroups } from '../resources/groups.js';
import type { ManagedIdentities } from '../identity/managed-identities.js';
import type { WorkloadIdentities } from '../identity/workload-identity.js';
import type { Logger } from '../lib/logger.js';
import { conflict, forbidden, invalid, notFound, resourceNotFound } from '../lib/errors.js';
import { GROUP_TYPE, groupRequests, isSecretRef, parseGroupSpec, type GroupSpec } from './spec.js';
import { availableParallelism, totalmem } from 'node:os';
import { GroupStore, type Operation, type StoredGroup } from './store.js';
import { initialState, recordEvent, type GroupState } from './state.js';
import { Reconciler, type ReconcilerOptions } from './reconciler.js';
import { groupKeychain, type GroupIdentity, type KeychainFactory } from './keychains.js';
import { groupArmId, groupResource, type IdentityView } from './shapes.js';
import { fqdnOf, labelAddress } from './dns-names.js';
import type { HostsFile } from './hosts-file.js';
import { followLog, lastLines, logSize, readLogTail } from './log-tail.js';
import { checkImages } from './image-check.js';

export { inaccessibleSentence, type ImageAccessChecker } from './image-check.js';

export interface ContainerGroupsOptions {
  db: Db;
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

export class ContainerGroups {
  readonly store: GroupStore;
  private readonly reconciler?: Reconciler;
  private readonly busy = new Set<string>();
  /** Per group, the address and stop flag its DNS name was last written with (see syncNames). */
  private readonly nameMarks = new Map<string, string>();

  constructor(private readonly o: ContainerGroupsOptions) {
    this.store = new GroupStore(o.db, o.subscriptionId, o.sealer);
    if (o.runtime && o.puller) {
      this.reconciler = new Reconciler({
        runtime: o.runtime, puller: o.puller, log: o.log, ...(o.reconciler ?? {}),
        keychainFor: (g) => this.keychain(g.spec, g),
        identityEndpointFor: (g) => this.identityEndpoint(g),
        ...(o.hostsFile ? { sandboxAddressFor: (g: StoredGroup) => (g.spec.ipAddress?.dnsNameLabel ? labelAddress(g.spec.ipAddress.dnsNameLabel, g.location) : undefined) } : {}),
        persist: (id, state) => {
          this.store.saveState(id, state);
          this.syncNames(id, state);
        },
      });
    }
  }

  /**
   * Writes the DNS names of the groups that have a sandbox into the hosts file (when Berth keeps one).
   * After a state save (`id`, `state`) only when that group's address or stop flag changed: saves come
   * several times a second (events, pull progress), and listing the groups opens every one's secrets.
   */
  private syncNames(id?: string, state?: GroupState): void {
    const file = this.o.hostsFile;
    if (!file) return;
    if (id !== undefined && state) {
      const mark = `${state.sandbox?.ip ?? ''}|${state.stopped ? 1 : 0}`;
      if (this.nameMarks.get(id) === mark) return;
      this.nameMarks.set(id, mark);
    } else {
      this.nameMarks.clear(); // a stop or delete changed the list outside a save: every group's next save syncs again
    }
    const entries = this.store.list().flatMap((g) => (g.spec.ipAddress?.dnsNameLabel && g.state.sandbox && !g.state.stopped
      ? [{ address: g.state.sandbox.ip, name: fqdnOf(g.spec.ipAddress.dnsNameLabel, g.location) }] : []));
    file.set(entries).catch((e: Error) => this.o.log.warn('updating the container groups\' DNS names failed', { error: e.message }));
  }

  get configured(): boolean {
    return this.reconciler !== undefined;
  }

  armId(rg: string, name: string): string {
    return groupArmId(this.o.subscriptionId, rg, name);
  }

  // ---- identities
  private systemPrincipal(g: { resourceGroup: string; name: string }) {
    return this.o.managedIdentities.ensureSystemAssigned(this.armId(g.resourceGroup, g.name), g.name);
  }

  private resolveIdentity(spec: GroupSpec, g: { resourceGroup: string; name: string }, ref: string): GroupIdentity | undefined {
    if (ref.toLowerCase() === '[system]' || ref.toLowerCase() === 'system') {
      if (!spec.identity?.type.includes('SystemAssigned')) return undefined;
      const p = this.systemPrincipal(g);
      return { principalId: p.id, clientId: p.appId };
    }
    const ua = this.o.managedIdentities.resolve(ref);
    return ua ? { principalId: ua.principalId, clientId: ua.clientId, resourceId: ua.id } : undefined;
  }

  private keychain(spec: GroupSpec, g: { resourceGroup: string; name: string }) {
    if (!this.o.keychainFactory) throw invalid('ContainerRuntimeNotConfigured', 'No keychain factory configured: this Berth server cannot resolve registry credentials.');
    return groupKeychain(spec, this.o.keychainFactory, (ref) => this.resolveIdentity(spec, g, ref));
  }

  identityView(g: StoredGroup): IdentityView | undefined {
    if (!g.spec.identity) return undefined;
    const userAssigned: IdentityView['userAssigned'] = {};
    for (const id of g.spec.identity.userAssignedIdentities) {
      const ua = this.o.managedIdentities.resolve(id);
      if (ua) userAssigned[id.toLowerCase()] = { principalId: ua.principalId, clientId: ua.clientId };
    }
    const sys = g.spec.identity.type.includes('SystemAssigned') ? this.systemPrincipal(g) : undefined;
    return { ...(sys ? { principalId: sys.id } : {}), tenantId: this.o.tenantId, userAssigned };
  }

  /** Binds the group to its identities and returns the IMDS-style endpoint its sandbox serves. */
  private identityEndpoint(g: StoredGroup): SandboxSpec['identityEndpoint'] | undefined {
    const view = this.identityView(g);
    if (!view) return undefined;
    const ids = [...(view.principalId ? [view.principalId] : []), ...Object.values(view.userAssigned).map((u) => u.principalId)];
    this.o.workloads.bind(g.id, ids, view.principalId);
    return async (req) => {
      if (String(req.headers.metadata ?? req.headers.Metadata ?? '').toLowerCase() !== 'true') {
        return { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'invalid_request', error_description: 'Required metadata header not specified' }) };
      }
      const query = Object.fromEntries(new URL(req.path, 'http://169.254.169.254').searchParams);
      const r = await this.o.workloads.token(this.o.workloads.get(g.id), query);
      return { status: r.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.body) };
    };
  }

  // ---- reads
  get(rg: string, name: string): StoredGroup {
    this.o.groups.get(rg);
    const g = this.store.find(rg, name);
    if (!g) throw resourceNotFound(GROUP_TYPE, name, rg);
    return g;
  }

  list(rg?: string): StoredGroup[] {
    if (rg !== undefined) this.o.groups.get(rg);
    return this.store.list(rg);
  }

  resource(g: StoredGroup, instanceView = true) {
    const identity = this.identityView(g);
    return groupResource(this.o.subscriptionId, g, { instanceView, ...(identity ? { identity } : {}) });
  }

  operation(id: string): Operation | undefined {
    return this.store.operation(id);
  }

  /** The group, or undefined (no 404): for a delete that answers 204 on a missing group. */
  find(rg: string, name: string): StoredGroup | undefined {
    return this.store.find(rg, name);
  }

  /** The group an operation is about, if it still exists. */
  operationGroup(op: Operation): StoredGroup | undefined {
    return this.store.byId(op.groupId);
  }

  /** Replaces the group's tags (PATCH: nothing else of the group changes, nothing is rerun). */
  setTags(rg: string, name: string, tags: Record<string, string>): StoredGroup {
    const g = this.get(rg, name);
    return this.store.save({ ...g, spec: { ...g.spec, tags } });
  }

  /**
   * The operation once it has ended, or as it is after `maxMs` (a long poll): a client polling a group
   * that comes up in 0.2 s is answered then, not after the Retry-After it would otherwise sleep (1 s
   * for the Azure SDKs and az).
   */
  async operationSettled(id: string, maxMs: number): Promise<Operation | undefined> {
    const op = this.store.operation(id);
    const runner = op?.status === 'InProgress' ? this.reconciler?.runner(op.groupId) : undefined;
    if (!runner) return op;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([runner.provisioned, new Promise<void>((r) => { timer = setTimeout(r, maxMs); })]);
    clearTimeout(timer);
    return this.store.operation(id);
  }

  private requireRuntime(): Reconciler {
    if (!this.reconciler) throw invalid('ContainerRuntimeNotConfigured', NO_RUNTIME);
    return this.reconciler;
  }

  private async exclusive<T>(key: string, f: () => Promise<T>): Promise<T> {
    const k = key.toLowerCase();
    if (this.busy.has(k)) throw conflict('Conflict', `Another operation on the container group '${key.split('/').pop()}' is in progress; try again when it is done.`);
    this.busy.add(k);
    try { return await f(); } finally { this.busy.delete(k); }
  }

  // ---- create / update
  /**
   * `canReadSecret(scope)`: whether the caller may read a Key Vault secret the spec references (the
   * group must not give its creator credentials the creator could not read).
   */
  async createOrUpdate(rg: string, name: string, body: unknown, opts: { canReadSecret?: (secretScope: string) => boolean } = {}): Promise<{ group: StoredGroup; created: boolean; operation: Operation }> {
    const reconciler = this.requireRuntime();
    const rgRec = this.o.groups.get(rg)!;
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(name)) {
      throw invalid('InvalidContainerGroupName', `The container group name '${name}' is invalid: use 1-63 letters, digits and '-', not starting or ending with '-'.`);
    }
    const spec = parseGroupSpec(body);
    if (spec.name !== undefined && spec.name.toLowerCase() !== name.toLowerCase()) {
      throw invalid('InvalidContainerGroupSpec', `The name '${spec.name}' in the body does not match the name '${name}' in the path.`);
    }
    delete spec.name;
    for (const c of spec.imageRegistryCredentials) {
      for (const v of [c.username, c.password]) {
        if (!isSecretRef(v)) continue;
        const scope = `${v.reference.keyVault.id}/secrets/${v.reference.secretName}`;
        if (this.o.vaultExists && !(await this.o.vaultExists(v.reference.keyVault.id))) {
          const vault = v.reference.keyVault.id.split('/').pop();
          const vaultRg = /\/resourceGroups\/([^/]+)\//i.exec(v.reference.keyVault.id)?.[1] ?? '<group>';
          throw invalid('KeyVaultNotFound', `The Key Vault '${vault}' that imageRegistryCredentials for ${c.server} reference (${v.reference.keyVault.id}) does not exist. ` +
            `Create it with \`berth keyvault create -g ${vaultRg} -n ${vault}\` and set the secret '${v.reference.secretName}' in it, or correct the vault id in the reference.`);
        }
        if (opts.canReadSecret && !opts.canReadSecret(scope)) {
          throw forbidden('AuthorizationFailed', `The caller cannot read the Key Vault secret '${v.reference.secretName}' that imageRegistryCredentials for ${c.server} reference: it needs the data action 'Microsoft.KeyVault/vaults/secrets/getSecret/action' over scope '${scope}' (role Key Vault Secrets User).`);
        }
      }
    }
    const location = (spec.location ?? rgRec.location).toLowerCase().replace(/\s+/g, '');
    spec.location = location;
    const label = spec.ipAddress?.dnsNameLabel;
    const holder = label ? this.store.list().find((o) => o.location === location && o.spec.ipAddress?.dnsNameLabel?.toLowerCase() === label.toLowerCase() &&
      !(o.resourceGroup.toLowerCase() === rg.toLowerCase() && o.name.toLowerCase() === name.toLowerCase())) : undefined;
    if (label && holder) {
      throw conflict('DnsNameLabelAlreadyInUse', `The DNS name label '${label}' is already used in location '${location}' by container group '${holder.name}' ` +
        `(resource group '${holder.resourceGroup}'): ${fqdnOf(label, location)} names one group. Pick another --dns-name-label, or delete that group first.`);
    }
    const want = groupRequests(spec.containers);
    const has = this.o.capacity ?? hostCapacity();
    if (want.cpu > has.cpu || want.memoryInGB > has.memoryInGB) {
      throw invalid('ResourceRequestsNotAvailable', `The requested resource with '${want.cpu}' CPU and '${want.memoryInGB}' GB memory is not available in the location '${location}' at this moment. ` +
        `Please retry with a different resource request or in another location. (This Berth node has ${has.cpu} CPUs and ${has.memoryInGB} GB of memory; ask for at most that.)`);
    }
    return this.exclusive(`${rg}/${name}`, async () => {
      const existing = this.store.find(rg, name);
      if (existing && JSON.stringify({ ...existing.spec, tags: {} }) === JSON.stringify({ ...spec, tags: {} }) && !existing.state.stopped) {
        // Same spec again (az create run twice): only tags change, nothing restarts.
        const g = this.store.save({ ...existing, spec });
        const op = this.store.startOperation(g.id);
        this.store.finishOperation(op.id, 'Succeeded');
        return { group: g, created: false, operation: this.store.operation(op.id)! };
      }
      const ids = { resourceGroup: rgRec.name, name };
      for (const ua of spec.identity?.userAssignedIdentities ?? []) {
        if (!this.o.managedIdentities.resolve(ua)) {
          throw invalid('InvalidIdentity', `The user-assigned identity '${ua}' does not exist. Create it with \`berth identity create\` and use its id (berth identity show --query id -o tsv).`);
        }
      }
      const hadSystem = existing?.spec.identity?.type.includes('SystemAssigned') ?? false;
      const images = await this.checkImages(spec, ids, hadSystem, existing);
      // The system-assigned identity exists from the moment the group does (role assignments can name it).
      if (spec.identity?.type.includes('SystemAssigned')) this.systemPrincipal(ids);
      const state = initialState(spec.containers.map((c) => c.name));
      const pulled = new Map<string, PulledImage>();
      for (const c of spec.containers) {
        const img = images.get(c.name);
        const cs = state.containers[c.name]!;
        cs.currentState = { state: 'Waiting', detailStatus: '' };
        if (!img) continue;
        recordEvent(cs.events, 'Pulling', `pulling image "${c.image}"`, 'Normal', img.started);
        recordEvent(cs.events, 'Pulled', `Successfully pulled image "${c.image}"`, 'Normal', img.finished);
        pulled.set(c.name, img.image);
      }
      if (existing) {
        await reconciler.halt(existing, { deleteSandbox: true });
        this.o.workloads.unbind(existing.id);
        if (hadSystem && !spec.identity?.type.includes('SystemAssigned')) this.o.managedIdentities.deleteSystemAssigned(this.armId(existing.resourceGroup, existing.name));
      }
      const g = this.store.save({ ...(existing ? { id: existing.id } : {}), resourceGroup: existing?.resourceGroup ?? rgRec.name, name: existing?.name ?? name, location, spec, state });
      const op = this.startRunner(g, pulled);
      this.o.log.info('container group created', { group: g.name, resourceGroup: g.resourceGroup, containers: spec.containers.length, updated: Boolean(existing) });
      return { group: g, created: !existing, operation: op };
    });
  }

  private startRunner(g: StoredGroup, images: Map<string, PulledImage>): Operation {
    const op = this.store.startOperation(g.id);
    const runner = this.requireRuntime().run(g, images);
    void runner.provisioned.then((r) => this.store.finishOperation(op.id, r.ok ? 'Succeeded' : 'Failed', r.error));
    return op;
  }

  /** ACI's synchronous image check (./image-check.ts) with this server's puller, keychains and identities. */
  private checkImages(spec: GroupSpec, g: { resourceGroup: string; name: string }, keepSystemIdentity: boolean, previous?: StoredGroup) {
    return checkImages({ puller: this.o.puller!, log: this.o.log, keychain: (sp, grp) => this.keychain(sp, grp),
      dropSystemIdentity: (grp) => this.o.managedIdentities.deleteSystemAssigned(this.armId(grp.resourceGroup, grp.name)) }, spec, g, keepSystemIdentity, previous);
  }

  // ---- lifecycle actions
  /** Deletes the group and everything it runs; false when there was none. */
  async delete(rg: string, name: string): Promise<boolean> {
    this.o.groups.get(rg);
    const g = this.store.find(rg, name);
    if (!g) return false;
    return this.exclusive(`${rg}/${name}`, async () => {
      if (this.reconciler) await this.reconciler.halt(g, { deleteSandbox: true });
      else if (this.o.runtime) await this.o.runtime.deleteSandbox(g.id);
      this.o.workloads.unbind(g.id);
      if (g.spec.identity?.type.includes('SystemAssigned')) this.o.managedIdentities.deleteSystemAssigned(this.armId(g.resourceGroup, g.name));
      this.store.delete(g.id);
      this.syncNames();
      this.o.log.info('container group deleted', { group: g.name, resourceGroup: g.resourceGroup });
      return true;
    });
  }

  async stop(rg: string, name: string): Promise<void> {
    const g = this.get(rg, name);
    const reconciler = this.requireRuntime();
    await this.exclusive(`${rg}/${name}`, async () => {
      await reconciler.halt(g, { deleteSandbox: true });
      const now = this.store.byId(g.id)!;
      now.state.stopped = true;
      now.state.state = 'Stopped';
      delete now.state.sandbox;
      for (const op of this.store.pendingOperations(g.id)) this.store.finishOperation(op.id, 'Failed', { code: 'Canceled', message: 'The container group was stopped.' });
      this.store.saveState(g.id, now.state);
      this.syncNames();
    });
  }

  /** Starts a stopped group; undefined when it was already running (ACI answers 204). */
  async start(rg: string, name: string): Promise<Operation | undefined> {
    const g = this.get(rg, name);
    const reconciler = this.requireRuntime();
    if (!g.state.stopped && reconciler.runner(g.id)) return undefined;
    return this.exclusive(`${rg}/${name}`, async () => {
      await reconciler.halt(g, { deleteSandbox: false });
      return this.rerun(this.store.byId(g.id)!);
    });
  }

  /**
   * Restarts every container in place; images are pulled again. The sandbox stays (as ACI keeps a
   * restarted group's IP address): its published host ports and metadata endpoint do not change.
   */
  async restart(rg: string, name: string): Promise<Operation> {
    const g = this.get(rg, name);
    const reconciler = this.requireRuntime();
    return this.exclusive(`${rg}/${name}`, async () => {
      // As ACI: an image that cannot be pulled fails the restart at once (InaccessibleImage), and the
      // group keeps running what it runs.
      await this.checkImages(g.spec, g, true, g);
      await reconciler.halt(g, { deleteSandbox: false });
      return this.rerun(this.store.byId(g.id)!, { keepSandbox: true });
    });
  }

  private rerun(g: StoredGroup, o: { keepSandbox?: boolean } = {}): Operation {
    g.state.stopped = false;
    g.state.provisioningState = 'Pending';
    g.state.state = 'Pending';
    if (!o.keepSandbox) delete g.state.sandbox;
    for (const cs of Object.values(g.state.containers)) {
      if (cs.currentState) cs.previousState = cs.currentState;
      cs.currentState = { state: 'Waiting', detailStatus: '' };
    }
    this.store.saveState(g.id, g.state);
    return this.startRunner(g, new Map());
  }

  // ---- logs and exec
  private container(g: StoredGroup, container: string) {
    const c = g.spec.containers.find((x) => x.name === container);
    if (!c) throw notFound('ContainerNotFound', `The container '${container}' does not exist in container group '${g.name}'. Its containers: ${g.spec.containers.map((x) => x.name).join(', ')}.`);
    return c;
  }

  /** The container's output: everything up to 4 MiB, or its last `tail` lines. */
  async logs(rg: string, name: string, container: string, tail?: number): Promise<string> {
    const g = this.get(rg, name);
    this.container(g, container);
    const path = g.state.containers[container]?.logPath;
    if (!path) return '';
    const text = await readLogTail(path, 4 * 1024 * 1024);
    return tail === undefined ? text : lastLines(text, tail);
  }

  /** The container's task; throws when the group or container does not exist or does not run (exec needs it running). */
  runningTask(rg: string, name: string, container: string): Task {
    const g = this.get(rg, name);
    this.container(g, container);
    const reconciler = this.requireRuntime();
    const task = reconciler.runner(g.id)?.task(container);
    if (!task) throw conflict('ContainerNotRunning', `The container '${container}' in container group '${g.name}' is not running (state: ${g.state.containers[container]?.currentState?.state ?? 'Unknown'}); exec needs a running container.`);
    return task;
  }

  /** Streams the container's output from now on into `out` until the container stops running or `signal` aborts. */
  async attach(rg: string, name: string, container: string, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
    const task = this.runningTask(rg, name, container);
    const running = () => this.store.find(rg, name)?.state.containers[container]?.currentState?.state === 'Running';
    await followLog(task.logPath, await logSize(task.logPath), out, running, signal);
  }

  async exec(rg: string, name: string, container: string, argv: string[], io: Parameters<Runtime['exec']>[2]): Promise<number> {
    const task = this.runningTask(rg, name, container);
    if (argv.length === 0) throw invalid('InvalidExecCommand', 'The exec command is empty.');
    const r = await this.o.runtime!.exec(task, argv, io);
    return r.exitCode;
  }

  // ---- server lifecycle
  async recover(): Promise<void> {
    if (!this.reconciler) return;
    const groups = this.store.list();
    for (const g of groups) {
      // Operations that were running when the server went down end now; the group is reconciled anew.
      for (const op of this.store.pendingOperations(g.id)) this.store.finishOperation(op.id, 'Failed', { code: 'ServerRestarted', message: 'Berth restarted during the operation; the group is reconciled again.' });
      if (g.state.provisioningState === 'Pending' || g.state.provisioningState === 'Creating') g.state.provisioningState = 'Succeeded';
      this.store.saveState(g.id, g.state);
    }
    try {
      await this.reconciler.recover(groups);
    } catch (e) {
      // The server still starts: the groups show their last known state until the runtime answers again.
      this.o.log.error('reconciling container groups after start failed', { error: String(e) });
    }
  }

  async detach(): Promise<void> {
    await this.reconciler?.detachAll();
  }
}

