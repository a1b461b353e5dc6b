// A container group's create or update: the checks (./create-checks.ts), ACI's synchronous image check
// (InaccessibleImage with Berth's diagnosis, nothing left behind), then the group stored and run.
import type { PulledImage } from '../pull/types.js';
import { invalid } from '../lib/errors.js';
import { hostCapacity, type GroupsContext } from './context.js';
import type { GroupLifecycle } from './lifecycle.js';
import { checkDnsLabel, checkRequests, checkSecretReferences, requestedSpec } from './create-checks.js';
import type { GroupSpec } from './spec.js';
import { initialState, recordEvent, type GroupState } from './state.js';
import type { Operation, StoredGroup } from './store.js';

export interface CreateOptions {
  /** Whether the caller may read a Key Vault secret the spec references. */
  canReadSecret?: (secretScope: string) => Promise<boolean>;
}

export class GroupCreation {
  constructor(private readonly c: GroupsContext, private readonly life: GroupLifecycle) {}

  async createOrUpdate(rg: string, name: string, body: unknown, opts: CreateOptions = {}): Promise<{ group: StoredGroup; created: boolean; operation: Operation }> {
    const { o, store } = this.c;
    this.c.requireRuntime();
    const rgRec = await o.groups.get(rg);
    const spec = requestedSpec(name, body);
    await checkSecretReferences(spec, o.vaultExists, opts.canReadSecret);
    const location = (spec.location ?? rgRec.location).toLowerCase().replace(/\s+/g, '');
    spec.location = location;
    if (spec.ipAddress?.dnsNameLabel) checkDnsLabel(spec, location, rg, name, await store.list());
    checkRequests(spec, location, o.capacity ?? hostCapacity());
    return this.c.exclusive(`${rg}/${name}`, async () => {
      const existing = await store.find(rg, name);
      if (existing && JSON.stringify({ ...existing.spec, tags: {} }) === JSON.stringify({ ...spec, tags: {} }) && !existing.state.stopped) {
        // Same spec again (az create run twice): only tags change, nothing restarts.
        const g = (await store.saveSpec(existing.id, spec))!;
        const op = await store.startOperation(g.id);
        await store.finishOperation(op.id, 'Succeeded');
        return { group: g, created: false, operation: (await store.operation(op.id))! };
      }
      const { g, op } = await this.replace(rgRec.name, name, spec, existing);
      o.log.info('container group created', { group: g.name, resourceGroup: g.resourceGroup, containers: spec.containers.length, updated: Boolean(existing) });
      return { group: g, created: !existing, operation: op };
    });
  }

  /** Checks the images, then stores the group (in place of `existing`, halted first) and runs it. */
  private async replace(rg: string, name: string, spec: GroupSpec, existing: StoredGroup | undefined): Promise<{ g: StoredGroup; op: Operation }> {
    const { identities, store } = this.c;
    const reconciler = this.c.requireRuntime();
    const ids = { resourceGroup: rg, name };
    for (const ua of spec.identity?.userAssignedIdentities ?? []) {
      if (!await identities.userAssignedExists(ua)) {
        throw invalid('InvalidIdentity', `The user-assigned identity '${ua}' does not exist. Create it with \`berth identity create\` and use its id (berth identity show --query id -o tsv).`);
      }
    }
    const hadSystem = existing?.spec.identity?.type.includes('SystemAssigned') ?? false;
    const images = await this.c.checkImages(spec, ids, hadSystem, existing);
    // The system-assigned identity exists from the moment the group does (role assignments can name it).
    if (spec.identity?.type.includes('SystemAssigned')) await identities.systemPrincipal(ids);
    const { state, pulled } = pulledState(spec, images);
    if (existing) {
      await reconciler.halt(existing, { deleteSandbox: true });
      identities.unbind(existing.id);
      if (hadSystem && !spec.identity?.type.includes('SystemAssigned')) await identities.dropSystemPrincipal(existing);
    }
    const location = spec.location!;
    const g = await store.save({ ...(existing ? { id: existing.id } : {}), resourceGroup: existing?.resourceGroup ?? rg, name: existing?.name ?? name, location, spec, state });
    return { g, op: await this.life.run(g, pulled) };
  }
}

/** A new group's first state: every container waiting, with the pull events of the image check's pulls. */
function pulledState(spec: GroupSpec, images: Map<string, { image: PulledImage; started: Date; finished: Date } | undefined>): { state: GroupState; pulled: Map<string, PulledImage> } {
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
  return { state, pulled };
}
