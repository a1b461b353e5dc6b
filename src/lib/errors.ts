// The project's errors: one coded base (CodedError), its code from a closed list per domain (a new code
// is added to its list, not invented at the throw). Callers match on the code or the class, never on the
// message. BerthError is the management plane's and the vault data plane's: `kind` says what went wrong
// in general, `code` is the Azure error code clients match on; only the HTTP layers turn kinds into
// status codes (httpStatus). The runtime's, the storage layer's, the keychain's and image push's errors
// carry codes of the lists below and never reach a client as they are; the registry client's PullError
// carries its diagnosis codes (client/errors.ts, beside what each one means).
//
// Kept apart, as protocol types: oci/errors.ts RegistryError (the distribution spec's codes, with their
// HTTP statuses; oci/ imports nothing of the project, so its parse errors InvalidReferenceError and
// InvalidDigestError stay plain too), client/registry-error.ts RegistryHttpError (a registry's own code,
// whatever it sent) and the CLI's CliError (an exit status for the shell, and the server's code when it
// is the server's answer). lib/root-path.ts's PathEscapeError stays plain: that file imports only node
// (it is shared by the runtime and image push; test/image-push-breakout.test.ts holds it to that).

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

/** The container runtime (runc, its rootfs and bundles). */
export const RUNTIME_CODES = [
  'LayerRefused', 'UnpackRefused', 'ImageGone', 'NoCommand', 'UnknownUser', 'StartFailed',
  'RuncContainerNotFound', 'RuncContainerNotRunning', 'RuncFailed',
] as const;
export type RuntimeErrorCode = (typeof RUNTIME_CODES)[number];

/** The storage layer: blob stores, upload sessions, disk space, the S3 location, the PostgreSQL copy. */
export const STORAGE_CODES = [
  'DigestMismatch', 'UploadOffset', 'UploadTooLarge', 'TooManyBytes', 'ShortFile', 'StorageFull', 'InvalidS3Location', 'CopyRefused',
] as const;
export type StorageErrorCode = (typeof STORAGE_CODES)[number];

/** Pull credentials: a source that failed (not "not found", which is anonymous), the CLI's auth files. */
export const KEYCHAIN_CODES = ['CredentialSourceFailed', 'InvalidAuthFile'] as const;
export type KeychainErrorCode = (typeof KEYCHAIN_CODES)[number];

/** `berth image push`'s sources (a directory, an OCI layout, an archive). */
export const IMAGE_CODES = ['InvalidImageSource'] as const;
export type ImageErrorCode = (typeof IMAGE_CODES)[number];

/** The one coded base: a code from a closed list, a message for people, the class's name when it has one. */
export class CodedError<C extends string = string> extends Error {
  constructor(readonly code: C, message: string, name?: string) {
    super(message);
    if (name) this.name = name;
  }
}

export class BerthError extends CodedError<ErrorCode> {
  constructor(readonly kind: ErrorKind, code: ErrorCode, message: string, readonly inner?: string) {
    super(code, message);
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
