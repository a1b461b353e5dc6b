// The closed catalogue of RBAC actions Berth's routes check (management and Key Vault data actions),
// and the two markers a route may declare instead: public (no caller needed) and authenticated-only (any
// signed-in caller; the route itself shows only what the caller may see). A route naming anything else
// fails at start-up (api/route-table.ts, vault/http.ts).

export const PUBLIC = 'public';
export const AUTHENTICATED = 'authenticated-only';

const ACR = 'Microsoft.ContainerRegistry';
const REG = `${ACR}/registries`;
const ACI = 'Microsoft.ContainerInstance/containerGroups';
const KV = 'Microsoft.KeyVault';
const MI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const RG = 'Microsoft.Resources/subscriptions/resourceGroups';
const AUTHZ = 'Microsoft.Authorization/roleAssignments';

export const ACTIONS = [
  `${RG}/read`, `${RG}/write`, `${RG}/delete`,
  `${AUTHZ}/read`, `${AUTHZ}/write`, `${AUTHZ}/delete`,
  `${ACR}/checkNameAvailability/read`,
  `${REG}/read`, `${REG}/write`, `${REG}/delete`, `${REG}/listCredentials/action`, `${REG}/listUsages/read`,
  `${REG}/regenerateCredential/action`, `${REG}/generateCredentials/action`,
  `${REG}/scopeMaps/read`, `${REG}/scopeMaps/write`, `${REG}/scopeMaps/delete`,
  `${REG}/tokens/read`, `${REG}/tokens/write`, `${REG}/tokens/delete`,
  `${ACI}/read`, `${ACI}/write`, `${ACI}/delete`, `${ACI}/restart/action`, `${ACI}/stop/action`, `${ACI}/start/action`,
  `${ACI}/containers/logs/read`, `${ACI}/containers/exec/action`, `${ACI}/containers/attach/action`,
  `${MI}/read`, `${MI}/write`, `${MI}/delete`,
  `${KV}/checkNameAvailability/read`, `${KV}/locations/deletedVaults/read`, `${KV}/locations/deletedVaults/purge/action`,
  `${KV}/vaults/read`, `${KV}/vaults/write`, `${KV}/vaults/delete`, `${KV}/vaults/accessPolicies/write`,
  // Key Vault data actions (the secrets data plane, src/vault/http.ts)
  `${KV}/vaults/secrets/readMetadata/action`, `${KV}/vaults/secrets/getSecret/action`, `${KV}/vaults/secrets/setSecret/action`,
  `${KV}/vaults/secrets/update/action`, `${KV}/vaults/secrets/delete`, `${KV}/vaults/secrets/recover/action`,
  `${KV}/vaults/secrets/purge/action`, `${KV}/vaults/secrets/backup/action`, `${KV}/vaults/secrets/restore/action`,
] as const;

export type RbacAction = (typeof ACTIONS)[number];
export type RouteAction = RbacAction | typeof PUBLIC | typeof AUTHENTICATED | (string & {});

const KNOWN = new Set<string>(ACTIONS.map((a) => a.toLowerCase()));

export function isKnownAction(action: string): boolean {
  return KNOWN.has(action.toLowerCase());
}
