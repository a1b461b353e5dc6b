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
  | 'UNKNOWN';

export class PullError extends Error {
  constructor(
    readonly code: PullErrorCode,
    /** One line in the registry's own words where there was one, e.g. `unauthorized: authentication required`. */
    readonly registryMessage: string,
    /** Berth's diagnosis and the fix: which source/user was tried, the missing permission, existing tags, the retry time. */
    readonly diagnosis: string,
    readonly opts: { temporary?: boolean; retryAfterSeconds?: number; credentialSource?: string; existingTags?: string[] } = {},
  ) {
    super(diagnosis ? `${registryMessage}. ${diagnosis}` : registryMessage);
    this.name = 'PullError';
  }
}
