// Domain errors of the management plane and the vault data plane: one coded base. `kind` says what
// went wrong in general; `code` is the Azure error code clients match on, from a closed list per
// domain below (a new code is added here, not invented at the throw). Only the HTTP layers turn kinds
// into status codes (httpStatus).

export type ErrorKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'notFound' | 'conflict' | 'unsupported' | 'tooLarge' | 'internal';

/** ARM's request-level codes and the generic ones every management surface shares. */
export const ARM_CODES = [
  'AuthorizationFailed', 'AuthenticationFailed', 'SubscriptionNotFound', 'ResourceNotFound', 'InvalidResourceType', 'NotFound',
  'MissingApiVersionParameter', 'InvalidApiVersionParameter', 'InvalidRequestContent', 'InvalidParameter', 'InvalidRequest',
  'InvalidResourceName', 'InvalidFilterInQueryString', 'InvalidTopInQueryString', 'InvalidSkipToken', 'MethodNotAllowed',
  'NotSupported', 'Conflict', 'BadRequest', 'InvalidSku', 'MultipleErrorsOccurred', 'InternalServerError',
] as const;

/** Microsoft.Resources: resource groups. */
export const RESOURCES_CODES = ['ResourceGroupNotFound', 'InvalidResourceGroup', 'InvalidResourceGroupLocation', 'LocationRequired'] as const;

/** Entra (Graph) and Microsoft.Authorization. */
export const IDENTITY_CODES = [
  'Authorization_RequestDenied', 'Request_BadRequest', 'Request_ResourceNotFound', 'Request_UnsupportedQuery',
  'PrincipalNotFound', 'UnmatchedPrincipalType', 'InvalidPrincipalId', 'InvalidScope', 'InvalidRoleAssignmentId',
  'RoleAssignmentExists', 'RoleAssignmentNotFound', 'RoleDefinitionDoesNotExist',
] as const;

/** Microsoft.ContainerRegistry (management: registries, scope maps, tokens). */
export const REGISTRY_CODES = [
  'InvalidRegistryName', 'AlreadyInUse', 'AdminUserDisabled', 'InvalidPasswordName', 'CannotModifySystemScopeMap',
  'InvalidExpiry', 'InvalidScopeMapAction', 'InvalidScopeMapName', 'InvalidTokenName', 'InvalidTokenStatus', 'ScopeMapRequired',
] as const;

/** Microsoft.KeyVault: vaults (ARM) and the secrets data plane (KeyVaultError codes). */
export const VAULT_CODES = [
  'VaultAlreadyExists', 'VaultNameNotValid', 'SoftDeletedVaultDoesNotExist', 'ConflictError', 'SecretNotFound', 'BadParameter',
  'Forbidden', 'Unauthorized', 'VaultNotFound',
] as const;

/** Microsoft.ContainerInstance: container groups, and Berth's own image operations. */
export const INSTANCES_CODES = [
  'InvalidContainerGroupName', 'InvalidContainerGroupSpec', 'InvalidYaml', 'ContainerNotFound', 'ContainerNotRunning',
  'ContainerRuntimeNotConfigured', 'DnsNameLabelAlreadyInUse', 'InaccessibleImage', 'InvalidExecCommand', 'InvalidIdentity',
  'InvalidRegistryCredential', 'KeyVaultNotFound', 'ResourceRequestsNotAvailable', 'OperationNotFound', 'VaultNotConfigured',
  'InvalidArgumentValue', 'InvalidCommandLine', 'ImageGcUnavailable', 'InvalidGracePeriod',
] as const;

export type ErrorCode = (typeof ARM_CODES | typeof RESOURCES_CODES | typeof IDENTITY_CODES | typeof REGISTRY_CODES | typeof VAULT_CODES | typeof INSTANCES_CODES)[number];

export class BerthError extends Error {
  constructor(readonly kind: ErrorKind, readonly code: ErrorCode, message: string, readonly inner?: string) {
    super(message);
  }
}

export const invalid = (code: ErrorCode, message: string) => new BerthError('invalid', code, message);
export const notFound = (code: ErrorCode, message: string) => new BerthError('notFound', code, message);
export const conflict = (code: ErrorCode, message: string) => new BerthError('conflict', code, message);
export const forbidden = (code: ErrorCode, message: string) => new BerthError('forbidden', code, message);

const STATUS: Record<ErrorKind, number> = {
  invalid: 400, unauthenticated: 401, forbidden: 403, notFound: 404, conflict: 409, unsupported: 405, tooLarge: 413, internal: 500,
};

/** The HTTP status an error of this kind answers with (for the HTTP layers only). */
export function httpStatus(e: Pick<BerthError, 'kind'>): number {
  return STATUS[e.kind];
}

export function resourceNotFound(type: string, name: string, group: string): BerthError {
  return notFound('ResourceNotFound',
    `The Resource '${type}/${name}' under resource group '${group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
}
