// Domain errors of the management plane. `kind` says what went wrong in general; `code` is the Azure
// error code clients match on. Only the HTTP layer turns kinds into status codes.

export type ErrorKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'notFound' | 'conflict' | 'internal';

export class BerthError extends Error {
  constructor(readonly kind: ErrorKind, readonly code: string, message: string) {
    super(message);
  }
}

export const invalid = (code: string, message: string) => new BerthError('invalid', code, message);
export const notFound = (code: string, message: string) => new BerthError('notFound', code, message);
export const conflict = (code: string, message: string) => new BerthError('conflict', code, message);
export const forbidden = (code: string, message: string) => new BerthError('forbidden', code, message);

export function resourceNotFound(type: string, name: string, group: string): BerthError {
  return notFound('ResourceNotFound',
    `The Resource '${type}/${name}' under resource group '${group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
}
