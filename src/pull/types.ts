// The pull client's contract with its users (the `berth pull` command and the container-group
// reconciler). The implementation lives beside this file; the instances module only sees these types.
import type { Keychain } from '../keychain/keychain.js';

/** The parts of an OCI image config that a runtime needs (`config` in the image config JSON). */
export interface ImageRunConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  exposedPorts?: string[];
  labels?: Record<string, string>;
  stopSignal?: string;
}

export interface PulledLayer {
  digest: string;
  mediaType: string;
  size: number;
  /** The verified blob in the local content store (compressed as the registry served it). */
  path: string;
}

export interface PulledImage {
  /** The normalised reference that was pulled, e.g. `docker.io/library/busybox:latest`. */
  reference: string;
  /** Digest of the manifest that was selected (the platform's manifest, not the index). */
  digest: string;
  /** Digest of the index the platform manifest was selected from, when there was one. */
  indexDigest?: string;
  platform: { os: string; architecture: string; variant?: string };
  config: ImageRunConfig;
  configDigest: string;
  layers: PulledLayer[];
  /** Which credential source authenticated the pull (`inline`, `vault secret kv1/acr-creds`, ...). */
  credentialSource: string;
}

export interface PullProgress {
  layerStart?(layer: { digest: string; size: number }): void;
  layerProgress?(layer: { digest: string; size: number }, bytes: number): void;
  layerDone?(layer: { digest: string; size: number }, how: 'downloaded' | 'cached'): void;
}

/**
 * Room on the content store's disk (the server hands in its storage reserve): `take(n)` resolves when n
 * more bytes fit and throws (an Error whose message says why) when they do not.
 */
export interface SpaceBudget {
  meter(): { take(n: number): Promise<void> };
}

export interface PullOptions {
  keychain: Keychain;
  /** `os/arch[/variant]`, default `linux/amd64`. */
  platform?: string;
  progress?: PullProgress;
  signal?: AbortSignal;
}

export interface ImagePuller {
  pull(reference: string, opts: PullOptions): Promise<PulledImage>;
}

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

export class PullError extends Error {
  constructor(
    readonly code: PullErrorCode,
    /** One line in the words of whoever said it (see `opts.source`), e.g. `unauthorized: authentication required`. */
    readonly registryMessage: string,
    /** Berth's diagnosis and the fix: which source/user was tried, the missing permission, existing tags, the retry time. */
    readonly diagnosis: string,
    readonly opts: PullErrorOptions = {},
  ) {
    super(diagnosis ? `${registryMessage}. ${diagnosis}` : registryMessage);
    this.name = 'PullError';
  }
}
