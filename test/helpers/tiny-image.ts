// Pushes a one-file image (built from a temp root filesystem) with a RegistryClient: enough for tests
// that need something to pull from a registry, Berth's or another.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImageSource } from '../../src/image/open.js';
import { pushImage } from '../../src/image/push.js';
import type { RegistryClient } from '../../src/client/registry-client.js';
import type { Platform } from '../../src/oci/manifest.js';

export async function pushTinyImage(client: RegistryClient, repository: string, tag: string, opts: { platform?: Platform } = {}): Promise<{ digest: string; mediaType: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tiny-'));
  try {
    await writeFile(join(dir, 'hello.txt'), `hello from ${repository}:${tag}\n`);
    const src = await openImageSource(dir, { created: '2024-01-01T00:00:00Z', ...(opts.platform ? { platform: opts.platform } : {}) });
    try {
      const r = await pushImage(client, repository, tag, src);
      return { digest: r.digest, mediaType: r.mediaType };
    } finally {
      await src.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** GETs a manifest by tag; returns the status and the body text (the registry's error when not 200). */
export async function getManifest(client: RegistryClient, repository: string, ref: string): Promise<{ status: number; digest?: string; text: string }> {
  const res = await client.send('GET', `/v2/${repository}/manifests/${ref}`, `repository:${repository}:pull`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const text = await res.body.text();
  const d = res.headers['docker-content-digest'];
  return { status: res.status, ...(typeof d === 'string' ? { digest: d } : {}), text };
}
