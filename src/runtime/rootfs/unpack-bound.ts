// How much unpacking an image may write: a bound per layer and per image on the layers' uncompressed
// tar bytes (an 18 MB gzip can expand to many GiB), and the data disk's reserve (../../storage/
// disk-space.ts). Crossing one stops the extraction with UnpackError naming the layer and the
// bound; the caller removes what the layer had written.
import { formatBytes } from '../../lib/bytes.js';
import type { DiskSpace } from '../../storage/disk-space.js';
import { StorageFullError } from '../../storage/disk-space.js';
import { CodedError, type RuntimeErrorCode } from '../../lib/errors.js';

export interface UnpackLimits {
  /** Uncompressed bytes one layer may hold. */
  maxLayerBytes: number;
  /** Uncompressed bytes the layers unpacked for one image may hold together. */
  maxImageBytes: number;
  /** The filesystem the layers are unpacked on, with its reserve. */
  space?: DiskSpace;
}

/** Defaults: 16 GiB per image, and per layer (one layer may be the whole image). */
export const DEFAULT_UNPACK_LIMITS: Readonly<UnpackLimits> = Object.freeze({ maxLayerBytes: 16 * 1024 ** 3, maxImageBytes: 16 * 1024 ** 3 });

export class UnpackError extends CodedError<RuntimeErrorCode> {
  constructor(readonly digest: string, message: string) {
    super('UnpackRefused', message, 'UnpackError');
  }
}

/** Counts what a layer writes; `take` throws before a bound would be crossed. */
export interface UnpackMeter {
  take(n: number): Promise<void>;
}

/** The meters of one image's layers: each layer against its own bound, all against the image's. */
export function imageMeters(limits: UnpackLimits): { layer(digest: string): UnpackMeter } {
  let image = 0;
  return {
    layer(digest: string): UnpackMeter {
      let layer = 0;
      const disk = limits.space?.meter();
      return {
        take: async (n: number) => {
          if (layer + n > limits.maxLayerBytes) {
            throw new UnpackError(digest, `layer ${digest} expands to more than the ${formatBytes(limits.maxLayerBytes)} a layer may unpack to (berth serve --max-layer-unpacked); the partial layer was removed`);
          }
          if (image + n > limits.maxImageBytes) {
            throw new UnpackError(digest, `the image's layers expand to more than the ${formatBytes(limits.maxImageBytes)} an image may unpack to (berth serve --max-image-unpacked), at layer ${digest}; the partial layer was removed`);
          }
          try {
            await disk?.take(n);
          } catch (e) {
            if (!(e instanceof StorageFullError)) throw e;
            throw new UnpackError(digest, `unpacking layer ${digest} would fill the data directory's disk (${e.message}); the partial layer was removed. Free space on it (berth container prune-images) or give berth serve a smaller --storage-reserve`);
          }
          layer += n;
          image += n;
        },
      };
    },
  };
}
