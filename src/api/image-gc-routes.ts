// Berth's own route for the image garbage collection (no ARM equivalent): POST /berth/images/prune
// with an optional body {"grace": "24h"}; owner of the subscription only (it frees the machine's shared
// image data, whoever pulled it). Answers what was freed.
import { conflict, invalid } from '../lib/errors.js';
import { parseGrace, type ImageGc } from '../instances/image-gc.js';
import type { Logger } from '../lib/logger.js';
import { route, SCOPE, type RouteDef } from './route-table.js';
import { AUTHENTICATED } from '../identity/actions.js';

export function imageGcRoutes(d: { imageGc?: ImageGc; log: Logger }): RouteDef[] {
  return [route({ method: 'POST', path: '/berth/images/prune', action: AUTHENTICATED, scope: SCOPE.owner('prune images'), handler: async (c) => {
    if (!d.imageGc) throw conflict('ImageGcUnavailable', 'This server has no image garbage collection.');
    const body = (c.req.body ?? {}) as { grace?: unknown };
    let graceMs: number | undefined;
    if (body.grace !== undefined) {
      try {
        graceMs = parseGrace(String(body.grace));
      } catch (e) {
        throw invalid('InvalidGracePeriod', (e as Error).message);
      }
    }
    const r = await d.imageGc.collect(graceMs !== undefined ? { graceMs } : {});
    d.log.info('image garbage collected', { by: c.principal.id, layers: r.layers.removed, blobs: r.blobs.removed, bytesFreed: r.bytesFreed, graceSeconds: r.graceSeconds });
    return r;
  } })];
}
