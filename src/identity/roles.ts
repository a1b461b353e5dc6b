// Built-in role definitions with Azure's ids and permissions, and the pure check over them.

export interface RoleDefinition {
  id: string;
  roleName: string;
  description: string;
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}

export const BUILT_IN_ROLES: RoleDefinition[] = [
  { id: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', roleName: 'Owner', description: 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.',
    actions: ['*'], notActions: [], dataActions: [], notDataActions: [] },
  { id: 'b24988ac-6180-42a0-ab88-20f7382dd24c', roleName: 'Contributor', description: 'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.',
    actions: ['*'], notActions: ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write', 'Microsoft.Authorization/elevateAccess/Action'], dataActions: [], notDataActions: [] },
  { id: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', roleName: 'Reader', description: 'View all resources, but does not allow you to make any changes.',
    actions: ['*/read'], notActions: [], dataActions: [], notDataActions: [] },
  { id: '7f951dda-4ed3-4680-a7ca-43fe172d538d', roleName: 'AcrPull', description: 'acr pull',
    actions: ['Microsoft.ContainerRegistry/registries/pull/read'], notActions: [], dataActions: [], notDataActions: [] },
  { id: '8311e382-0749-4cb8-b61a-304f252e45ec', roleName: 'AcrPush', description: 'acr push',
    actions: ['Microsoft.ContainerRegistry/registries/pull/read', 'Microsoft.ContainerRegistry/registries/push/write'], notActions: [], dataActions: [], notDataActions: [] },
  { id: 'c2f4ef07-c644-48eb-af81-4b1b4947fb11', roleName: 'AcrDelete', description: 'acr delete',
    actions: ['Microsoft.ContainerRegistry/registries/artifacts/delete'], notActions: [], dataActions: [], notDataActions: [] },
  { id: '4633458b-17de-408a-b874-0445c86b69e6', roleName: 'Key Vault Secrets User', description: 'Read secret contents.',
    actions: [], notActions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'], notDataActions: [] },
  { id: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7', roleName: 'Key Vault Secrets Officer', description: 'Perform any action on the secrets of a key vault, except manage permissions.',
    actions: ['Microsoft.Authorization/*/read', 'Microsoft.Insights/alertRules/*', 'Microsoft.Resources/deployments/*', 'Microsoft.Resources/subscriptions/resourceGroups/read', 'Microsoft.Support/*', 'Microsoft.KeyVault/checkNameAvailability/read', 'Microsoft.KeyVault/deletedVaults/read', 'Microsoft.KeyVault/locations/*/read', 'Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/operations/read'],
    notActions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/*'], notDataActions: [] },
  { id: '00482a5a-887f-4fb3-b363-3b7fe8e74483', roleName: 'Key Vault Administrator', description: 'Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use the \'Azure role-based access control\' permission model.',
    actions: ['Microsoft.Authorization/*/read', 'Microsoft.Insights/alertRules/*', 'Microsoft.Resources/deployments/*', 'Microsoft.Resources/subscriptions/resourceGroups/read', 'Microsoft.Support/*', 'Microsoft.KeyVault/checkNameAvailability/read', 'Microsoft.KeyVault/deletedVaults/read', 'Microsoft.KeyVault/locations/*/read', 'Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/operations/read'],
    notActions: [], dataActions: ['Microsoft.KeyVault/vaults/*'], notDataActions: [] },
];

export function findRole(nameOrId: string): RoleDefinition | undefined {
  const key = nameOrId.toLowerCase();
  const guid = key.split('/').pop()!;
  return BUILT_IN_ROLES.find((r) => r.roleName.toLowerCase() === key || r.id === guid);
}

/** Azure's action pattern match: case-insensitive, `*` matches any run of characters. */
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'i');
  return re.test(action);
}

export function roleAllows(role: RoleDefinition, action: string, data = false): boolean {
  const allow = data ? role.dataActions : role.actions;
  const deny = data ? role.notDataActions : role.notActions;
  return allow.some((p) => actionMatches(p, action)) && !deny.some((p) => actionMatches(p, action));
}

/** Whether `scope` is `assigned` or lies below it (subscription → resource group → resource). */
export function scopeContains(assigned: string, scope: string): boolean {
  const a = assigned.replace(/\/+$/, '').toLowerCase();
  const s = scope.replace(/\/+$/, '').toLowerCase();
  return s === a || s.startsWith(a + '/') || a === '';
}
