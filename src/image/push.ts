// Pushes an ImageSource to a registry with the OCI distribution protocol: blobs first (skipping those
// the repository already has), then child manifests by digest, then the root under the tag.
import { Transform } from 'node:stream';
import type { Descriptor } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/media-types.js';
import { MediaTypes } from '../oci/media-types.js';
import type { RegistryClient } from '../client/registry-client.js';
import { RegistryHttpError, expectOk } from '../client/registry-error.js';
import type { ImageSource } from './source.js';

export interface PushProgress {
  blobStart(d: Descriptor): void;
  blobProgress(d: Descriptor, bytes: number): void;
  blobDone(d: Descriptor, how: 'pushed' | 'exists'): void;
}

export interface PushResult {
  digest: string;
  mediaType: string;
  size: number;
  blobsPushed: number;
  blobsSkipped: number;
  bytesPushed: number;
}

const noProgress: PushProgress = { blobStart() {}, blobProgress() {}, blobDone() {} };

export async function pushImage(client: RegistryClient, repository: string, target: string, src: ImageSource,
  opts: { progress?: PushProgress; concurrency?: number } = {}): Promise<PushResult> {
  const progress = opts.progress ?? noProgress;
  const scope = `repository:${repository}:pull,push`;
  const result: PushResult = { digest: src.root.digest, mediaType: src.root.mediaType, size: src.root.size, blobsPushed: 0, blobsSkipped: 0, bytesPushed: 0 };
  const done = new Map<string, Promise<void>>();

  const pushBlob = (d: Descriptor): Promise<void> => {
    let p = done.get(d.digest);
    if (!p) {
      p = uploadBlob(client, repository, scope, src, d, progress, result);
      done.set(d.digest, p);
    }
    return p;
  };

  const pushManifest = async (d: Descriptor, ref: string): Promise<void> => {
    const body = await src.readManifest(d);
    const doc = JSON.parse(body.toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    if (isIndexMediaType(d.mediaType) || Array.isArray(doc.manifests)) {
      for (const m of doc.manifests ?? []) await pushManifest(m, m.digest);
    } else {
      const blobs = [doc.config, ...(doc.layers ?? [])].filter((b): b is Descriptor => !!b && !(b.urls?.length && b.mediaType === MediaTypes.dockerLayerForeign));
      await runBounded(blobs, opts.concurrency ?? 3, pushBlob);
    }
    const res = await client.send('PUT', `/v2/${repository}/manifests/${ref}`, scope, { headers: { 'content-type': d.mediaType }, body });
    await expectOk(res, client.loginServer);
    await res.body.dump();
    const got = res.headers['docker-content-digest'];
    if (typeof got === 'string' && got !== d.digest) throw new RegistryHttpError(500, 'DIGEST_INVALID', `${client.loginServer} stored manifest ${ref} as ${got}, expected ${d.digest}`);
  };

  await pushManifest(src.root, target);
  return result;
}

async function uploadBlob(client: RegistryClient, repository: string, scope: string, src: ImageSource, d: Descriptor,
  progress: PushProgress, result: PushResult): Promise<void> {
  progress.blobStart(d);
  const head = await client.send('HEAD', `/v2/${repository}/blobs/${d.digest}`, scope);
  // expectOk reads the body for the registry's words, so only a 200 or 404 is dumped first (undici crashes
  // when a dumped body is read again).
  if (head.status !== 200 && head.status !== 404) await expectOk(head, client.loginServer, [404]);
  await head.body.dump();
  if (head.status === 200) {
    result.blobsSkipped++;
    progress.blobDone(d, 'exists');
    return;
  }
  const start = await client.send('POST', `/v2/${repository}/blobs/uploads/`, scope, { headers: { 'content-length': '0' } });
  await expectOk(start, client.loginServer, [202]);
  await start.body.dump();
  const loc = start.headers.location;
  if (typeof loc !== 'string' || loc === '') throw new RegistryHttpError(502, undefined, `${client.loginServer} started an upload without a Location`);
  const url = new URL(loc, client.base);
  if (url.origin !== new URL(client.base).origin) throw new RegistryHttpError(502, undefined, `${client.loginServer} sent the upload to another host (${url.host}); Berth does not send credentials there`);
  url.searchParams.set('digest', d.digest);
  const put = await client.send('PUT', url.pathname + url.search, scope, {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(d.size) },
    body: () => {
      const counter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          progress.blobProgress(d, chunk.length);
          cb(null, chunk);
        },
      });
      const s = src.openBlob(d);
      s.on('error', (e) => counter.destroy(e));
      return s.pipe(counter);
    },
  });
  await expectOk(put, client.loginServer, [201]);
  await put.body.dump();
  result.blobsPushed++;
  result.bytesPushed += d.size;
  progress.blobDone(d, 'pushed');
}

async function runBounded<T>(items: T[], limit: number, f: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
