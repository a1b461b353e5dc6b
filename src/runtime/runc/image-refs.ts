// Which images the runtime's containers use, for the image garbage collection: each bundle's task.json
// names its image (manifest, config and layer digests, layer blob paths), and a create in progress
// holds its image until task.json does. Also the records the runtime keeps per task on disk.
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { PulledImage } from '../../pull/types.js';
import type { LayerCache } from '../rootfs/layer-cache.js';
import type { RuntimeGcReport } from '../runtime.js';
import { ID, readJson, type RuntimeLayout } from './layout.js';

/** A bundle's task.json. */
export interface TaskRecord {
  groupId: string;
  name: string;
  runcId: string;
  shimPid?: number;
  startedAt?: string;
  /** The image the bundle was built from (absent in bundles of Berth before image garbage collection). */
  image?: ImageRecord;
}

export interface ImageRecord {
  reference: string;
  manifest: string;
  index?: string;
  config: string;
  layers: Array<{ digest: string; path: string }>;
}

export function imageRecord(i: PulledImage): ImageRecord {
  return { reference: i.reference, manifest: i.digest, ...(i.indexDigest ? { index: i.indexDigest } : {}), config: i.configDigest,
    layers: i.layers.map((l) => ({ digest: l.digest, path: l.path })) };
}

function imageDigests(i: ImageRecord): string[] {
  return [i.manifest, ...(i.index ? [i.index] : []), i.config, ...i.layers.map((l) => l.digest)];
}

export class ImageUse {
  /** Images of containers being created (not yet recorded in their task.json). */
  readonly creating = new Set<ImageRecord>();

  constructor(private readonly layout: RuntimeLayout, private readonly cache: LayerCache) {}

  /** Records a use of an image's cached layers and blobs: their grace period starts again. */
  async touch(image: ImageRecord): Promise<void> {
    await this.cache.touch(image.layers.map((l) => l.digest));
    const now = new Date();
    for (const l of image.layers) await utimes(l.path, now, now).catch(() => undefined);
  }

  /** The image records of every bundle on disk (containers of every group, running or not). */
  private async bundleImages(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    const groupsDir = this.layout.groupsDir;
    for (const groupId of await readdir(groupsDir).catch(() => [] as string[])) {
      if (!ID.test(groupId)) continue;
      for (const name of await readdir(join(groupsDir, groupId, 'containers')).catch(() => [] as string[])) {
        const rec = ID.test(name) ? await readJson<TaskRecord>(join(groupsDir, groupId, 'containers', name, 'task.json')) : undefined;
        if (rec?.image) out.push(rec.image);
      }
    }
    return out;
  }

  async references(): Promise<Set<string>> {
    const creating = [...this.creating];
    return new Set([...creating, ...(await this.bundleImages())].flatMap(imageDigests));
  }

  /**
   * Removes cached layers that no bundle on disk uses, no create in progress holds, no live overlay
   * mount has as a lowerdir, and that nobody used for `graceMs`.
   */
  async collectGarbage(opts: { graceMs: number; now?: number }): Promise<RuntimeGcReport> {
    const creating = [...this.creating];
    const referenced = [...creating, ...(await this.bundleImages())].flatMap((i) => i.layers.map((l) => l.digest));
    return this.cache.collectGarbage({ graceMs: opts.graceMs, referenced, ...(opts.now !== undefined ? { now: opts.now } : {}) });
  }
}
