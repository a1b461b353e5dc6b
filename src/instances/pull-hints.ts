// What a container group knows about one of its failed pulls that the pull client cannot: the
// identities the group holds but does not pull with, a system-assigned identity that cannot hold a
// role before the group exists, an image whose repository was deleted after the group pulled it.
// Returns the context diagnosePull (src/pull/diagnosis.ts) words the diagnosis with. Pure.
import { PullError } from '../pull/types.js';
import type { DiagnosisContext } from '../pull/diagnosis.js';
import { sameServer } from './keychains.js';
import { imageRegistry } from './flags.js';
import type { GroupSpec } from './spec.js';
import type { AciEvent } from './state.js';

export interface GroupPullFacts {
  spec: GroupSpec;
  resourceGroup: string;
  /** The image that failed. */
  image: string;
  /**
   * True when the group's system-assigned identity was made for this create only (it is deleted again
   * when the create fails), so nothing can have been granted to it.
   */
  freshSystemIdentity: boolean;
  /** The group's events before this attempt, per container, when it existed already. */
  previousEvents?: Array<{ image: string; events: AciEvent[] }>;
}

const AUTH_CODES = new Set(['UNAUTHORIZED', 'DENIED']);
const SYSTEM = /^managed identity system-assigned\b/;

export function groupPullContext(e: unknown, f: GroupPullFacts): DiagnosisContext {
  const ctx: DiagnosisContext = { caller: 'group', hints: [] };
  if (!(e instanceof PullError)) return ctx;
  const server = imageRegistry(f.image);
  if (AUTH_CODES.has(e.code)) {
    if (f.freshSystemIdentity && SYSTEM.test(e.opts.credentialSource ?? '')) {
      const scope = /--scope (\S+)/.exec(e.opts.fix ?? '')?.[1] ?? `$(berth acr show -n REGISTRY --query id -o tsv)`;
      const id = `$(berth identity show -g ${f.resourceGroup} -n pull-identity --query id -o tsv)`;
      ctx.diagnosis = `${e.diagnosis.replace(/\.$/, '')}. A system-assigned identity exists only with its group, and is deleted again when the create fails, so it cannot hold AcrPull before this create`;
      ctx.fix = `use a user-assigned identity instead: \`berth identity create -g ${f.resourceGroup} -n pull-identity\`, ` +
        `\`berth role assignment create --assignee $(berth identity show -g ${f.resourceGroup} -n pull-identity --query principalId -o tsv) --role AcrPull --scope ${scope}\`, ` +
        `then create the group with \`--assign-identity ${id} --acr-identity ${id}\``;
    }
    const used = new Set(f.spec.imageRegistryCredentials.filter((c) => c.identity && sameServer(c.server, server)).map((c) => c.identity!.toLowerCase()));
    const held = [...(f.spec.identity?.type.includes('SystemAssigned') ? ['[system]'] : []), ...(f.spec.identity?.userAssignedIdentities ?? [])];
    const unused = held.filter((id) => !used.has(id.toLowerCase()) && !(id === '[system]' && used.has('system')));
    if (used.size === 0 && unused.length) {
      ctx.hints!.push(`The group has identity ${unused.join(' and ')} but no imageRegistryCredentials entry uses it for ${server}; add --acr-identity ${unused[0]}` +
        ` (in a spec file: imageRegistryCredentials: [{server: ${server}, identity: ${unused[0]}}])`);
    }
  }
  if (e.code === 'NAME_UNKNOWN') {
    const pulled = (f.previousEvents ?? []).filter((c) => c.image === f.image).flatMap((c) => c.events).filter((ev) => ev.name === 'Pulled').map((ev) => ev.lastTimestamp).sort().at(-1);
    if (pulled) {
      ctx.diagnosis = `The repository of ${f.image} no longer exists on ${server}: it was deleted after this group pulled the image (last pulled ${pulled}). Push the image again, or point the group at an image that exists`;
    }
  }
  return ctx;
}
