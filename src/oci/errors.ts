// The OCI distribution error codes, shared by the registry server and the client.
// Domain code throws RegistryError with a code; only the HTTP layer maps codes to statuses.

export const REGISTRY_ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  TAG_INVALID: 400,
  /** distribution's catch-all code (errcode.ErrorCodeUnknown). */
  UNKNOWN: 500,
} as const;

export type RegistryErrorCode = keyof typeof REGISTRY_ERROR_STATUS;

export class RegistryError extends Error {
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly detail?: unknown,
    /** Overrides the default status for this code (e.g. 413 for an oversize manifest). */
    readonly status?: number,
  ) {
    super(message);
  }
  get httpStatus(): number {
    return this.status ?? REGISTRY_ERROR_STATUS[this.code];
  }
  toBody(): { errors: Array<{ code: string; message: string; detail?: unknown }> } {
    const e: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) e.detail = this.detail;
    return { errors: [e] };
  }
}
