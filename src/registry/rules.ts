// The registry's shared refusals, with no HTTP in them: changeable-attribute locks, a full disk, a bad
// digest reference. Used by uploads, manifests and repository operations alike.
import { parseDigest, type Digest, InvalidDigestError } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { StorageFullError } from '../storage/blob-store.js';
import { isDiskFull } from '../storage/disk-space.js';
import { formatBytes } from '../lib/bytes.js';
import type { ChangeableAttributes } from './metadata.js';

type Lockable = 'writeEnabled' | 'deleteEnabled' | 'readEnabled';
const ATTRIBUTE_FLAG: Record<Lockable, string> = { writeEnabled: '--write-enabled', deleteEnabled: '--delete-enabled', readEnabled: '--read-enabled' };

/** ACR's answer to an operation its changeable attributes (a lock) forbid. */
export function locked(what: string, attr: Lockable): RegistryError {
  return new RegistryError('UNSUPPORTED',
    `The operation is disallowed on this registry, repository or image: ${what} has ${attr} set to false; set it to true first (acr repository update ${ATTRIBUTE_FLAG[attr]} true, or the SDK's update*Properties)`,
    { attribute: attr });
}

/** A write lock forbids deletes too (ACR: a locked image cannot be updated or deleted). */
export function checkDeletable(what: string, a: ChangeableAttributes): void {
  if (!a.writeEnabled) throw locked(what, 'writeEnabled');
  if (!a.deleteEnabled) throw locked(what, 'deleteEnabled');
}

/**
 * The registry's answer when the data directory's disk is full or at its reserve: 507 Insufficient
 * Storage (registry clients print that status line; the message is for those that read the body).
 */
export function storageFullError(e: unknown, what: string): RegistryError {
  const why = e instanceof StorageFullError && e.kind === 'reserve'
    ? `it has ${formatBytes(e.free)} free and Berth keeps ${formatBytes(e.reserve)} in reserve for its metadata`
    : 'the filesystem refused a write: no space left';
  return new RegistryError('UNKNOWN',
    `insufficient storage: the disk holding the Berth server's data directory is full (${why}); ${what}. ` +
    'Free space on that disk (delete images you no longer need, then run berth acr gc), or give berth serve a smaller --storage-reserve.',
    { reason: 'StorageFull' }, 507);
}

export const isStorageFull = (e: unknown) => e instanceof StorageFullError || isDiskFull(e);

export function parseRefDigest(s: string): Digest {
  try {
    return parseDigest(s);
  } catch (e) {
    throw new RegistryError('DIGEST_INVALID', (e as InvalidDigestError).message);
  }
}

/** The registry has no repository of that name. */
export function nameUnknown(repo: string): RegistryError {
  return new RegistryError('NAME_UNKNOWN', `repository ${repo} is not known to this registry`, { name: repo });
}
