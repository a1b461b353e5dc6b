// The registry client's error: one class for every failure of a registry conversation (pull, push and
// the CLI's registry calls), with the registry's own words apart from Berth's diagnosis. Named for its
// first user; src/pull/types.ts re-exports it as part of the pull contract.
import { CodedError } from '../lib/errors.js';

/** Stable classes of pull failures (SPEC §5). */
export type PullErrorCode =
  | 'UNAUTHORIZED'        // authentication required / bad credentials
  | 'DENIED'              // authenticated but not allowed
  | 'MANIFEST_UNKNOWN'    // the tag or digest does not exist
  | 'NAME_UNKNOWN'        // the repository does not exist
  | 'NO_SUCH_HOST'
  | 'CONNECTION_REFUSED'
  | 'TLS'
  | 'TOOMANYREQUESTS'
  | 'TIMEOUT'
  | 'DIGEST_MISMATCH'
  | 'PLATFORM_NOT_FOUND'
  | 'CREDENTIAL_SOURCE'   // a keychain source failed (vault secret missing, helper failed, ...)
  | 'INVALID_REFERENCE'
  | 'UNSUPPORTED'
  | 'STORAGE_FULL'        // the content store's disk is full, or at its reserve
  | 'UNKNOWN';

/**
 * Who said the words in `registryMessage`: a registry (or its token server) answered, or the failure
 * happened before or beside any answer (a DNS lookup, a refused or lost connection, a TLS handshake, a
 * timeout, a Key Vault read, a credential helper, an identity's token, Berth's own digest or image checks).
 * When not given it follows from the code (src/pull/diagnosis.ts).
 */
export type PullErrorSource = 'registry' | 'token-server' | 'dns' | 'refused' | 'connection' | 'tls' | 'timeout'
  | 'vault' | 'helper' | 'identity' | 'keychain' | 'digest' | 'image' | 'disk';

/**
 * A fix whose wording depends on where the pull ran: `berth pull` has flags (--ca-file, --platform,
 * --creds, --insecure), a container group has `berth serve` options and spec fields.
 */
export type PullRemedy =
  | { kind: 'ca'; host: string; /** CA files that were trusted and still did not verify the certificate. */ caFiles?: string[] }
  | { kind: 'plain-http'; host: string }
  | { kind: 'platform'; wanted: string; available: string[] }
  | { kind: 'credentials'; registry: string }
  | { kind: 'disk' };

export interface PullErrorOptions {
  temporary?: boolean;
  retryAfterSeconds?: number;
  credentialSource?: string;
  existingTags?: string[];
  source?: PullErrorSource;
  remedy?: PullRemedy;
  /** The command that fixes it, as the registry named it (Berth's registries send it in the error's detail). */
  fix?: string;
}

export class PullError extends CodedError<PullErrorCode> {
  constructor(
    code: PullErrorCode,
    /** One line in the words of whoever said it (see `opts.source`), e.g. `unauthorized: authentication required`. */
    readonly registryMessage: string,
    /** Berth's diagnosis and the fix: which source/user was tried, the missing permission, existing tags, the retry time. */
    readonly diagnosis: string,
    readonly opts: PullErrorOptions = {},
  ) {
    super(code, diagnosis ? `${registryMessage}. ${diagnosis}` : registryMessage, 'PullError');
  }
}
