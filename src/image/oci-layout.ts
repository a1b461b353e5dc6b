// Reads an OCI image layout directory (oci-layout + index.json + blobs/<alg>/<hex>), as umoci, skopeo,
// buildah and `docker save` (Docker 25+) write it.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestAlgorithm, digestHex, digestOf } from '../oci/digest.js';
import { parseDescriptor, type Descriptor } from '../oci/manifest.js';
import { MediaTypes } from '../oci/media-types.js';
import { ImageSourceError, type ImageSource, type ImageSourceKind } from './source.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

export async function isOciLayout(dir: string): Promise<boolean> {
  try {
    const layout = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion?: string };
    return typeof layout.imageLayoutVersion === 'string';
  } catch {
    return false;
  }
}

function refNames(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  return [a[REF_NAME], a[CONTAINERD_NAME]].filter((x): x is string => typeof x === 'string');
}

/** Picks the index entry for `ref` (a tag or full name), or the only entry when `ref` is not given. */
export function selectEntry(entries: Descriptor[], ref: string | undefined, where: string): Descriptor {
  if (ref !== undefined) {
    const hit = entries.find((d) => refNames(d).some((n) => n === ref || n.endsWith(`:${ref}`)));
    if (hit) return hit;
    const byDigest = entries.find((d) => d.digest === ref);
    if (byDigest) return byDigest;
    const names = entries.flatMap(refNames);
    throw new ImageSourceError(`${where} has no image named "${ref}"${names.length ? `; it has: ${names.join(', ')}` : ''}`);
  }
  if (entries.length === 1) return entries[0]!;
  if (entries.length === 0) throw new ImageSourceError(`${where} holds no image (index.json lists no manifests)`);
  const names = entries.flatMap(refNames);
  throw new ImageSourceError(`${where} holds ${entries.length} images; name one as SOURCE:NAME (${names.join(', ') || 'they carry no names'})`);
}

export async function openOciLayout(dir: string, ref: string | undefined, kind: ImageSourceKind = 'oci-layout', cleanup: () => Promise<void> = async () => {}): Promise<ImageSource> {
  let index: { manifests?: unknown };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests?: unknown };
  } catch (e) {
    throw new ImageSourceError(`${dir} is not a readable OCI image layout: index.json: ${(e as Error).message}`);
  }
  if (!Array.isArray(index.manifests)) throw new ImageSourceError(`${dir}/index.json has no "manifests" array`);
  let entries: Descriptor[];
  try {
    entries = index.manifests.map((m, i) => parseDescriptor(m, `index.json manifests[${i}]`));
  } catch (e) {
    throw new ImageSourceError(`${dir}/index.json: ${(e as Error).message}`);
  }
  const root = selectEntry(entries, ref, dir);
  const blobPath = (d: Descriptor) => join(dir, 'blobs', digestAlgorithm(d.digest), digestHex(d.digest));
  const source: ImageSource = {
    kind,
    root: { mediaType: root.mediaType, digest: root.digest, size: root.size },
    async readManifest(d) {
      const buf = await readFile(blobPath(d)).catch(() => {
        throw new ImageSourceError(`${dir} is missing ${d.digest} (${d.mediaType})`);
      });
      if (digestOf(buf, digestAlgorithm(d.digest)) !== d.digest) throw new ImageSourceError(`${dir}: ${d.digest} does not match its content; the layout is damaged`);
      return buf;
    },
    openBlob(d) {
      return createReadStream(blobPath(d));
    },
    close: cleanup,
  };
  // Fail early, naming the blob, when the layout lacks something the image needs.
  await assertBlobsPresent(source, root, blobPath, dir);
  return source;
}

async function assertBlobsPresent(src: ImageSource, d: Descriptor, path: (d: Descriptor) => string, dir: string): Promise<void> {
  const body = JSON.parse((await src.readManifest(d)).toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  if (Array.isArray(body.manifests)) {
    for (const m of body.manifests) await assertBlobsPresent(src, m, path, dir);
    return;
  }
  for (const b of [body.config, ...(body.layers ?? [])]) {
    if (!b) continue;
    if (b.urls?.length && b.mediaType === MediaTypes.dockerLayerForeign) continue;
    const st = await stat(path(b)).catch(() => undefined);
    if (!st) throw new ImageSourceError(`${dir} is missing blob ${b.digest} (${b.mediaType}) that manifest ${d.digest} needs`);
    if (st.size !== b.size) throw new ImageSourceError(`${dir}: blob ${b.digest} is ${st.size} bytes but the manifest says ${b.size}`);
  }
}
