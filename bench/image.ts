// Writes the benchmark image as an OCI image layout: N layers, each a tar holding one file of random
// (incompressible) bytes, in a gzip stream. Everything is streamed: random chunks go into the tar
// entry, through two sha256 hashers (diff_id before gzip, blob digest after) and gzip, to disk.
//
// Why gzip and not a plain `application/vnd.oci.image.layer.v1.tar`: skopeo gzips uncompressed layers
// when the destination is a registry (an uncompressed OCI layer pushed with `skopeo copy oci:… docker://…`
// arrives as a new tar+gzip blob), so an uncompressed source would make the push measure skopeo's gzip,
// not the registry. Already-gzipped layers are sent byte for byte.
// Why gzip level 0 (stored deflate blocks): random data does not compress, so level 1 gives the same
// size while costing ~20 MB/s of CPU here (15 s per 300 MB); level 0 is a valid gzip stream written at
// disk speed. The blob is the tar plus a few bytes of framing.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { pack as tarPack, type Pack } from 'tar-stream';

const randomBytesAsync = promisify(randomBytes);
const CHUNK = 1 << 20;

export const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';

export interface Blob {
  digest: string;
  size: number;
}

export interface BenchImage {
  /** The OCI layout directory; the image is `oci:<dir>:<tag>`. */
  dir: string;
  tag: string;
  layers: Blob[];
  config: Blob;
  manifest: Blob;
  /** Bytes of every blob and the manifest: what one push or pull moves. */
  totalBytes: number;
}

function hashing(onDone: (digest: string, bytes: number) => void): Transform {
  const h = createHash('sha256');
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      onDone(`sha256:${h.digest('hex')}`, n);
      cb();
    },
  });
}

/** Fills a tar entry (a streamx Writable) with random bytes, honouring its backpressure. */
async function writeRandom(entry: ReturnType<Pack['entry']>, bytes: number): Promise<void> {
  let left = bytes;
  while (left > 0) {
    const chunk = await randomBytesAsync(Math.min(CHUNK, left));
    left -= chunk.length;
    if (!entry.write(chunk)) await new Promise<void>((r) => entry.once('drain', () => r()));
  }
  entry.end(null); // streamx: end(data) with no data
}

async function writeLayer(blobsDir: string, index: number, dataBytes: number): Promise<{ blob: Blob; diffId: string }> {
  const pack = tarPack();
  const entry = pack.entry({ name: `bench/layer-${index}.bin`, size: dataBytes, mode: 0o644, mtime: new Date(0) });
  const filling = writeRandom(entry, dataBytes).then(() => pack.finalize());
  let diffId = '';
  let blob: Blob = { digest: '', size: 0 };
  const tmp = join(blobsDir, `.layer-${index}.tmp`);
  await Promise.all([
    filling,
    pipeline(
      pack,
      hashing((d) => (diffId = d)),
      createGzip({ level: 0 }),
      hashing((digest, size) => (blob = { digest, size })),
      createWriteStream(tmp),
    ),
  ]);
  await rename(tmp, join(blobsDir, blob.digest.slice('sha256:'.length)));
  return { blob, diffId };
}

async function writeJsonBlob(blobsDir: string, value: unknown): Promise<Blob> {
  const body = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(body).digest('hex');
  await writeFile(join(blobsDir, hex), body);
  return { digest: `sha256:${hex}`, size: body.length };
}

export async function writeBenchImage(dir: string, layerCount: number, layerBytes: number, tag = 'bench'): Promise<BenchImage> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const layers: Blob[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < layerCount; i++) {
    const { blob, diffId } = await writeLayer(blobsDir, i, layerBytes);
    layers.push(blob);
    diffIds.push(diffId);
  }
  const config = await writeJsonBlob(blobsDir, {
    created: new Date(0).toISOString(),
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: new Date(0).toISOString(), created_by: `berth bench: random layer ${i}` })),
  });
  const manifest = await writeJsonBlob(blobsDir, {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    config: { mediaType: CONFIG_MEDIA_TYPE, ...config },
    layers: layers.map((l) => ({ mediaType: LAYER_MEDIA_TYPE, ...l })),
  });
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: MANIFEST_MEDIA_TYPE, ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const totalBytes = layers.reduce((n, l) => n + l.size, 0) + config.size + manifest.size;
  return { dir, tag, layers, config, manifest, totalBytes };
}
