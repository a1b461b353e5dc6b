// Berth's own route for the image garbage collection (no ARM equivalent): POST /berth/images/prune
// with an optional body {"grace": "24h"}; owner of the subscription only (it frees the machine's shared
// image data, whoever pulled it). Answers what was freed.
import type { FastifyInstance } from 'fastify';
import { BerthError } from '../lib/errors.js';
import { parseGrace, type ImageGc } from '../platform/image-gc.js';
import type { IdentityService } from '../identity/service.js';
import type { Logger } from '../lib/logger.js';

export function registerImageGcRoutes(app: FastifyInstance, d: { identity: IdentityService; imageGc?: ImageGc; log: Logger }): void {
  app.post('/berth/images/prune', async (req) => {
    const p = req.principal!;
    const sub = `/subscriptions/${d.identity.ids.subscriptionId}`;
    if (!d.identity.assignmentsCovering(p.id, sub).some(({ role }) => role.roleName === 'Owner')) {
      throw new BerthError('forbidden', 'AuthorizationFailed',
        `The client '${p.appId ?? p.id}' with object id '${p.id}' may not prune images: it takes the Owner role on subscription '${d.identity.ids.subscriptionId}'.`);
    }
    if (!d.imageGc) throw new BerthError('conflict', 'ImageGcUnavailable', 'This server has no image garbage collection.');
    const body = (req.body ?? {}) as { grace?: unknown };
    let graceMs: number | undefined;
    if (body.grace !== undefined) {
      try {
        graceMs = parseGrace(String(body.grace));
      } catch (e) {
        throw new BerthError('invalid', 'InvalidGracePeriod', (e as Error).message);
      }
    }
    const r = await d.imageGc.collect(graceMs !== undefined ? { graceMs } : {});
    d.log.info('image garbage collected', { by: p.id, layers: r.layers.removed, blobs: r.blobs.removed, bytesFreed: r.bytesFreed, graceSeconds: r.graceSeconds });
    return r;
  });
}
