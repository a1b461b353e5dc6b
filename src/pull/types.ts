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

// The error classes of a pull are the registry client's (src/client/errors.ts).
export { PullError, type PullErrorCode, type PullErrorSource, type PullRemedy, type PullErrorOptions } from '../client/errors.js';
