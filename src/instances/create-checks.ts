// The refusals of a container group's create or update that come before anything is pulled or run:
// its name, its spec, the Key Vault secrets it references, its DNS name label, what it asks of the node.
import { conflict, forbidden, invalid } from '../lib/errors.js';
import { groupRequests, isSecretRef, parseGroupSpec, type GroupSpec } from './spec.js';
import { fqdnOf } from './dns-names.js';
import type { StoredGroup } from './store.js';

/** The spec in the request body, checked against the name in the path (which it then no longer carries). */
export function requestedSpec(name: string, body: unknown): GroupSpec {
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(name)) {
    throw invalid('InvalidContainerGroupName', `The container group name '${name}' is invalid: use 1-63 letters, digits and '-', not starting or ending with '-'.`);
  }
  const spec = parseGroupSpec(body);
  if (spec.name !== undefined && spec.name.toLowerCase() !== name.toLowerCase()) {
    throw invalid('InvalidContainerGroupSpec', `The name '${spec.name}' in the body does not match the name '${name}' in the path.`);
  }
  delete spec.name;
  return spec;
}

/**
 * Every Key Vault secret the registry credentials reference must be in a vault that exists, and the
 * caller must be able to read it (`canReadSecret(scope)`): the group must not give its creator
 * credentials the creator could not read.
 */
export async function checkSecretReferences(spec: GroupSpec, vaultExists: ((vaultId: string) => Promise<boolean>) | undefined,
  canReadSecret: ((secretScope: string) => Promise<boolean>) | undefined): Promise<void> {
  for (const c of spec.imageRegistryCredentials) {
    for (const v of [c.username, c.password]) {
      if (!isSecretRef(v)) continue;
      const scope = `${v.reference.keyVault.id}/secrets/${v.reference.secretName}`;
      if (vaultExists && !(await vaultExists(v.reference.keyVault.id))) {
        const vault = v.reference.keyVault.id.split('/').pop();
        const vaultRg = /\/resourceGroups\/([^/]+)\//i.exec(v.reference.keyVault.id)?.[1] ?? '<group>';
        throw invalid('KeyVaultNotFound', `The Key Vault '${vault}' that imageRegistryCredentials for ${c.server} reference (${v.reference.keyVault.id}) does not exist. ` +
          `Create it with \`berth keyvault create -g ${vaultRg} -n ${vault}\` and set the secret '${v.reference.secretName}' in it, or correct the vault id in the reference.`);
      }
      if (canReadSecret && !await canReadSecret(scope)) {
        throw forbidden('AuthorizationFailed', `The caller cannot read the Key Vault secret '${v.reference.secretName}' that imageRegistryCredentials for ${c.server} reference: it needs the data action 'Microsoft.KeyVault/vaults/secrets/getSecret/action' over scope '${scope}' (role Key Vault Secrets User).`);
      }
    }
  }
}

/** A DNS name label names one group per location: another group (not rg/name itself) holding it is a conflict. */
export function checkDnsLabel(spec: GroupSpec, location: string, rg: string, name: string, groups: StoredGroup[]): void {
  const label = spec.ipAddress?.dnsNameLabel;
  if (!label) return;
  const holder = groups.find((o) => o.location === location && o.spec.ipAddress?.dnsNameLabel?.toLowerCase() === label.toLowerCase() &&
    !(o.resourceGroup.toLowerCase() === rg.toLowerCase() && o.name.toLowerCase() === name.toLowerCase()));
  if (holder) {
    throw conflict('DnsNameLabelAlreadyInUse', `The DNS name label '${label}' is already used in location '${location}' by container group '${holder.name}' ` +
      `(resource group '${holder.resourceGroup}'): ${fqdnOf(label, location)} names one group. Pick another --dns-name-label, or delete that group first.`);
  }
}

/** No group can ask for more CPU or memory than the node has (`has`). */
export function checkRequests(spec: GroupSpec, location: string, has: { cpu: number; memoryInGB: number }): void {
  const want = groupRequests(spec.containers);
  if (want.cpu > has.cpu || want.memoryInGB > has.memoryInGB) {
    throw invalid('ResourceRequestsNotAvailable', `The requested resource with '${want.cpu}' CPU and '${want.memoryInGB}' GB memory is not available in the location '${location}' at this moment. ` +
      `Please retry with a different resource request or in another location. (This Berth node has ${has.cpu} CPUs and ${has.memoryInGB} GB of memory; ask for at most that.)`);
  }
}
