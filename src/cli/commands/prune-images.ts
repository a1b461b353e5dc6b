// `berth container prune-images [--grace 24h]`: Berth's own command (az has none) to run the server's
// image garbage collection now: cached layers and pulled blobs that no container uses and nobody used
// within the grace period. Prints what was freed.
import type { Command } from 'commander';
import { leaf } from '../command.js';
import type { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import { parseGrace } from '../../instances/image-gc.js';

export function registerPruneImagesCommand(container: Command, client: () => ArmClient): void {
  leaf<{ grace?: string }>(container, 'prune-images', 'Remove cached image layers and pulled blobs that no container uses (Berth).',
    (c) => c.option('--grace <duration>', 'Keep what was used within this period: a number with s, m, h or d (default: the server\'s, 24h). 0 removes everything no container uses now.'),
    async (o) => {
      if (o.grace !== undefined) {
        try {
          parseGrace(o.grace);
        } catch (e) {
          throw new CliError(`argument --grace: ${(e as Error).message}`, 2);
        }
      }
      return client().request('POST', '/berth/images/prune', o.grace !== undefined ? { grace: o.grace } : {});
    }, {
      table: (v) => {
        const r = v as { layers: { removed: number }; blobs: { removed: number }; bytesFreed: number };
        return [{ Layers: r.layers.removed, Blobs: r.blobs.removed, BytesFreed: r.bytesFreed }];
      },
    });
}
