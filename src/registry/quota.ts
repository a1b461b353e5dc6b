// Per-registry storage quotas. A registry's usage is the bytes of the distinct blobs and manifests its
// repositories link: a layer shared by two repositories of one registry counts once; a layer that two
// registries hold counts in each (deleting it from one frees nothing for the other). The limit is the
// SKU's included storage (ACR's Basic 10 GiB, Standard 100 GiB, Premium 500 GiB), which Berth keeps
// as a hard limit: a push beyond it is refused with 403 DENIED, a status whose message registry
// clients print.
import { RegistryError } from '../oci/errors.js';
import { formatBytes } from '../lib/bytes.js';
import type { Sku } from './registries.js';

const GiB = 1024 ** 3;

export const SKU_STORAGE_BYTES: Readonly<Record<Sku, number>> = Object.freeze({ Basic: 10 * GiB, Standard: 100 * GiB, Premium: 500 * GiB });

/** What a registry may store: its name and SKU (for messages) and its limit in bytes. */
export interface StorageQuota {
  name: string;
  sku: Sku;
  limit: number;
}

/** The quota of a registry (by id), or undefined when it has none. */
export type QuotaLookup = (registryId: string) => Promise<StorageQuota | undefined>;

export function quotaExceeded(q: StorageQuota, used: number, adding: number | undefined): RegistryError {
  const more = adding === undefined ? '' : `; this push needs ${formatBytes(adding)} more`;
  return new RegistryError('DENIED',
    `storage quota exceeded: registry ${q.name} (SKU ${q.sku}) uses ${formatBytes(used)} of its ${formatBytes(q.limit)}${more}. ` +
    `Delete images you no longer need (berth acr repository delete -n ${q.name} --repository REPO)` +
    (q.sku === 'Premium' ? '.' : `, or move the registry to a larger SKU (berth acr update -n ${q.name} --sku ${q.sku === 'Basic' ? 'Standard' : 'Premium'}).`),
    { reason: 'QuotaExceeded', limit: q.limit, currentValue: used });
}
