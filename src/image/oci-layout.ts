// Reads an OCI image layout directory (oci-layout + index.json + blobs/<alg>/<hex>), as umoci, skopeo,
// buildah and `docker save` (Docker 25+) write it: a directory, or the members of an archive (a
// locator says where the file a layout name denotes is, or that there is none).
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestAlgorithm, digestHex, digestOf } from '../oci/digest.js';
import { parseDescriptor, type Descriptor } from '../oci/manifest.js';
import { MediaTypes } from '../oci/media-types.js';
import { ImageSourceError, type ImageSource, type ImageSourceKind } from './source.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/** Where the file a layout-relative name (e.g. `blobs/sha256/<hex>`) denotes is on disk, or undefined when there is none. */
export type LayoutLocator = (name: string) => Promise<string | undefined>;

export const inDirectory = (dir: string): LayoutLocator => async (name) => join(dir, name);

async function readLocated(locate: LayoutLocator, name: string): Promise<Buffer> {
  const p = await locate(name);
  if (p === undefined) throw new Error('not found');
  return readFile(p);
}

export async function isOciLayout(dir: string | LayoutLocator): Promise<boolean> {
  const locate = typeof dir === 'string' ? inDirectory(dir) : dir;
  try {
    const layout = JSON.parse((await readLocated(locate, 'oci-layout')).toString('utf8')) as { imageLayoutVersion?: string };
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

/** Opens the layout in directory `dir`, or (with `locate`) the one whose files `locate` finds; `dir` then only names it. */
export async function openOciLayout(dir: string, ref: string | undefined, kind: ImageSourceKind = 'oci-layout', cleanup: () => Promise<void> = async () => {},
  locate: LayoutLocator = inDirectory(dir)): Promise<ImageSource> {
  let index: { manifests?: unknown };
  try {
    index = JSON.parse((await readLocated(locate, 'index.json')).toString('utf8')) as { manifests?: unknown };
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
  const blobName = (d: Descriptor) => `blobs/${digestAlgorithm(d.digest)}/${digestHex(d.digest)}`;
  const blobPath = (d: Descriptor) => locate(blobName(d));
  const source: ImageSource = {
    kind,
    root: { mediaType: root.mediaType, digest: root.digest, size: root.size },
    async readManifest(d) {
      const buf = await readLocated(locate, blobName(d)).catch(() => {
        throw new ImageSourceError(`${dir} is missing ${d.digest} (${d.mediaType})`);
      });
      if (digestOf(buf, digestAlgorithm(d.digest)) !== d.digest) throw new ImageSourceError(`${dir}: ${d.digest} does not match its content; the layout is damaged`);
      return buf;
    },
    openBlob(d) {
      const out = new PassThrough();
      blobPath(d).then((p) => {
        if (p === undefined) throw new ImageSourceError(`${dir} is missing blob ${d.digest}`);
        return pipeline(createReadStream(p), out);
      }).catch((e: Error) => out.destroy(e));
      return out as Readable;
    },
    close: cleanup,
  };
  // Fail early, naming the blob, when the layout lacks something the image needs.
  await assertBlobsPresent(source, root, blobPath, dir);
  return source;
}

async function assertBlobsPresent(src: ImageSource, d: Descriptor, path: (d: Descriptor) => Promise<string | undefined>, dir: string): Promise<void> {
  const body = JSON.parse((await src.readManifest(d)).toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  if (Array.isArray(body.manifests)) {
    for (const m of body.manifests) await assertBlobsPresent(src, m, path, dir);
    return;
  }
  for (const b of [body.config, ...(body.layers ?? [])]) {
    if (!b) continue;
    if (b.urls?.length && b.mediaType === MediaTypes.dockerLayerForeign) continue;
    const p = await path(b);
    const st = p === undefined ? undefined : await stat(p).catch(() => undefined);
    if (!st) throw new ImageSourceError(`${dir} is missing blob ${b.digest} (${b.mediaType}) that manifest ${d.digest} needs`);
    if (st.size !== b.size) throw new ImageSourceError(`${dir}: blob ${b.digest} is ${st.size} bytes but the manifest says ${b.size}`);
  }
}
