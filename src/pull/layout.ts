// Writes a pulled image as an OCI image layout directory (oci-layout, index.json naming the tag in
// org.opencontainers.image.ref.name, blobs/<alg>/<hex>), atomically: everything goes into a temporary
// sibling directory that is renamed into place at the end, so DIR is either absent or complete.
import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { digestAlgorithm, digestHex, type Digest } from '../oci/digest.js';
import type { ContentStore } from './content-store.js';
import { PullError } from './types.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface LayoutImage {
  manifest: { mediaType: string; digest: Digest; size: number };
  blobs: Digest[];
  /** The tag to record in index.json (none for a pull by digest). */
  tag?: string;
}

export async function writeOciLayout(dir: string, store: ContentStore, image: LayoutImage): Promise<void> {
  const target = resolve(dir);
  const existing = await stat(target).catch(() => undefined);
  if (existing && !(existing.isDirectory() && (await readdir(target)).length === 0)) {
    throw new PullError('UNSUPPORTED', `${dir} already exists`, 'Berth writes a new OCI layout; remove the directory or choose another --to.');
  }
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(tmp, { recursive: true });
    for (const d of [image.manifest.digest, ...image.blobs]) {
      const dest = join(tmp, 'blobs', digestAlgorithm(d), digestHex(d));
      await mkdir(dirname(dest), { recursive: true });
      // A hard link when the layout is on the store's file system (the store's files are read-only), else a copy.
      await link(store.path(d), dest).catch(async () => copyFile(store.path(d), dest));
    }
    await writeFile(join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const entry = { ...image.manifest, ...(image.tag ? { annotations: { [REF_NAME]: image.tag } } : {}) };
    await writeFile(join(tmp, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] }));
    if (existing) await rmdir(target);
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
