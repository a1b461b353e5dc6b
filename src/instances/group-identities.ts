// A container group's identities: its system-assigned principal, the user-assigned identities it
// names, the keychain its pulls use (registry credentials and identities), the identity view ACI
// shows, and the IMDS-style token endpoint its sandbox serves.
import type { ManagedIdentities } from '../identity/managed-identities.js';
import type { WorkloadIdentities } from '../identity/workload-identity.js';
import type { SandboxSpec } from '../runtime/runtime.js';
import { invalid } from '../lib/errors.js';
import { groupKeychain, type GroupIdentity, type KeychainFactory } from './keychains.js';
import { groupArmId, type IdentityView } from './shapes.js';
import type { GroupSpec } from './spec.js';
import type { StoredGroup } from './store.js';

export interface GroupIdentitiesOptions {
  subscriptionId: string;
  tenantId: string;
  managedIdentities: ManagedIdentities;
  workloads: WorkloadIdentities;
  keychainFactory?: KeychainFactory;
}

/** The resource group and name of a container group (stored or about to be). */
export interface GroupName { resourceGroup: string; name: string }

export class GroupIdentities {
  constructor(private readonly o: GroupIdentitiesOptions) {}

  armId(rg: string, name: string): string {
    return groupArmId(this.o.subscriptionId, rg, name);
  }

  /** The group's system-assigned principal, made when it does not exist yet. */
  systemPrincipal(g: GroupName) {
    return this.o.managedIdentities.ensureSystemAssigned(this.armId(g.resourceGroup, g.name), g.name);
  }

  async dropSystemPrincipal(g: GroupName): Promise<void> {
    await this.o.managedIdentities.deleteSystemAssigned(this.armId(g.resourceGroup, g.name));
  }

  /** Whether a user-assigned identity with this resource id exists. */
  async userAssignedExists(ref: string): Promise<boolean> {
    return (await this.o.managedIdentities.resolve(ref)) !== undefined;
  }

  private async resolve(spec: GroupSpec, g: GroupName, ref: string): Promise<GroupIdentity | undefined> {
    if (ref.toLowerCase() === '[system]' || ref.toLowerCase() === 'system') {
      if (!spec.identity?.type.includes('SystemAssigned')) return undefined;
      const p = await this.systemPrincipal(g);
      return { principalId: p.id, clientId: p.appId };
    }
    const ua = await this.o.managedIdentities.resolve(ref);
    return ua ? { principalId: ua.principalId, clientId: ua.clientId, resourceId: ua.id } : undefined;
  }

  keychain(spec: GroupSpec, g: GroupName) {
    if (!this.o.keychainFactory) throw invalid('ContainerRuntimeNotConfigured', 'No keychain factory configured: this Berth server cannot resolve registry credentials.');
    return groupKeychain(spec, this.o.keychainFactory, (ref) => this.resolve(spec, g, ref));
  }

  async view(g: StoredGroup): Promise<IdentityView | undefined> {
    if (!g.spec.identity) return undefined;
    const userAssigned: IdentityView['userAssigned'] = {};
    for (const id of g.spec.identity.userAssignedIdentities) {
      const ua = await this.o.managedIdentities.resolve(id);
      if (ua) userAssigned[id.toLowerCase()] = { principalId: ua.principalId, clientId: ua.clientId };
    }
    const sys = g.spec.identity.type.includes('SystemAssigned') ? await this.systemPrincipal(g) : undefined;
    return { ...(sys ? { principalId: sys.id } : {}), tenantId: this.o.tenantId, userAssigned };
  }

  /** Binds the group to its identities and returns the IMDS-style endpoint its sandbox serves. */
  async endpoint(g: StoredGroup): Promise<SandboxSpec['identityEndpoint'] | undefined> {
    const view = await this.view(g);
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

  /** The group no longer runs: its sandbox's token endpoint answers for nobody. */
  unbind(groupId: string): void {
    this.o.workloads.unbind(groupId);
  }
}
