// An image built from a root filesystem directory: one gzipped layer, an OCI config and manifest.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { digestOf } from '../oci/digest.js';
import type { Descriptor, Platform } from '../oci/manifest.js';
import { MediaTypes } from '../oci/media-types.js';
import { gzipLayer, tarDirectory } from './layer.js';
import { ImageSourceError, type ImageSource } from './source.js';

export interface RootfsOptions {
  platform?: Platform;
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  workingDir?: string;
  /** Fixed creation time for reproducible configs (ISO 8601). */
  created?: string;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  return { architecture: GO_ARCH[process.arch] ?? process.arch, os: 'linux' };
}

export async function openRootfs(dir: string, opts: RootfsOptions = {}): Promise<ImageSource> {
  const work = await mkdtemp(join(tmpdir(), 'berth-rootfs-'));
  const cleanup = () => rm(work, { recursive: true, force: true });
  try {
    const layer = await gzipLayer(tarDirectory(dir), join(work, 'layer.tar.gz')).catch((e: Error) => {
      throw new ImageSourceError(`could not pack ${dir}: ${e.message}`);
    });
    const platform = opts.platform ?? hostPlatform();
    const created = opts.created ?? new Date().toISOString();
    const imageConfig: Record<string, unknown> = { Env: opts.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] };
    if (opts.cmd) imageConfig.Cmd = opts.cmd;
    if (opts.entrypoint) imageConfig.Entrypoint = opts.entrypoint;
    if (opts.workingDir) imageConfig.WorkingDir = opts.workingDir;
    const config = Buffer.from(JSON.stringify({
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: imageConfig,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: `berth image push ${dir}` }],
    }));
    const configDesc: Descriptor = { mediaType: MediaTypes.ociConfig, digest: digestOf(config), size: config.length };
    const layerDesc: Descriptor = { mediaType: MediaTypes.ociLayerGzip, digest: layer.digest, size: layer.size };
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: configDesc, layers: [layerDesc] }));
    const root: Descriptor = { mediaType: MediaTypes.ociManifest, digest: digestOf(manifest), size: manifest.length };
    return {
      kind: 'rootfs',
      root,
      async readManifest(d) {
        if (d.digest !== root.digest) throw new ImageSourceError(`no manifest ${d.digest} built from ${dir}`);
        return manifest;
      },
      openBlob(d) {
        if (d.digest === layer.digest) return createReadStream(layer.path);
        const s = new PassThrough();
        if (d.digest === configDesc.digest) s.end(config);
        else s.destroy(new ImageSourceError(`no blob ${d.digest} built from ${dir}`));
        return s;
      },
      close: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
