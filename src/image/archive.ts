// Reads `docker save` / `podman save` archives: the tar (optionally gzipped) is read member by member
// into a private temporary directory without extracting it (./archive-members.ts: no member name or
// link becomes a path on disk), then read as an OCI layout (Docker 25+ and `oci-archive`) or as the
// legacy manifest.json format, whose layers are gzipped here for the push.
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { digestOf } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { MediaTypes } from '../oci/media-types.js';
import { ArchiveMembers, isGzip } from './archive-members.js';
import { gzipLayer, digestStream, type BuiltLayer } from './layer.js';
import { isOciLayout, openOciLayout } from './oci-layout.js';
import { ImageSourceError, type ImageSource } from './source.js';

interface LegacyEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export async function openImageArchive(path: string, ref: string | undefined): Promise<ImageSource> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-archive-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const members = await ArchiveMembers.read(path, join(dir, 'members'));
    const locate = (name: string) => members.file(name);
    // Docker 25+ writes both formats; the OCI index carries the real manifests, so it wins.
    if (await isOciLayout(locate)) return await openOciLayout(path, ref, 'oci-archive', cleanup, locate);
    return await openLegacyArchive(members, dir, path, ref, cleanup);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

async function memberFile(members: ArchiveMembers, path: string, name: string): Promise<string> {
  const p = await members.file(name);
  if (p === undefined) throw new ImageSourceError(`${path}: the archive lacks "${name}" (or it is not a file)`);
  return p;
}

async function openLegacyArchive(members: ArchiveMembers, dir: string, path: string, ref: string | undefined, cleanup: () => Promise<void>): Promise<ImageSource> {
  let entries: LegacyEntry[];
  try {
    entries = JSON.parse(await readFile(await memberFile(members, path, 'manifest.json'), 'utf8')) as LegacyEntry[];
  } catch {
    throw new ImageSourceError(`${path} is neither an OCI archive (oci-layout) nor a docker save archive (manifest.json)`);
  }
  if (!Array.isArray(entries) || entries.length === 0) throw new ImageSourceError(`${path}: manifest.json lists no images`);
  let entry: LegacyEntry;
  const tags = (e: LegacyEntry) => e.RepoTags ?? [];
  if (ref !== undefined) {
    const hit = entries.find((e) => tags(e).some((t) => t === ref || t.endsWith(`/${ref}`) || t.endsWith(`:${ref}`) || `docker.io/library/${t}` === ref));
    if (!hit) throw new ImageSourceError(`${path} has no image tagged "${ref}"; it has: ${entries.flatMap(tags).join(', ') || 'untagged images only'}`);
    entry = hit;
  } else if (entries.length === 1) {
    entry = entries[0]!;
  } else {
    throw new ImageSourceError(`${path} holds ${entries.length} images; name one as SOURCE:TAG (${entries.flatMap(tags).join(', ')})`);
  }
  const configPath = await memberFile(members, path, entry.Config);
  const configBytes = await readFile(configPath);
  const config = JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== entry.Layers.length) {
    throw new ImageSourceError(`${path}: the image config lists ${diffIds.length} layers but manifest.json has ${entry.Layers.length}`);
  }
  const blobs = new Map<string, string>();
  const layers: Descriptor[] = [];
  const outDir = join(dir, '.berth-layers');
  await mkdir(outDir, { recursive: true });
  for (const [i, name] of entry.Layers.entries()) {
    const p = await memberFile(members, path, name);
    let built: BuiltLayer;
    if (await isGzip(p)) {
      const { digest, size } = await digestStream(createReadStream(p));
      built = { digest, size, path: p, diffId: diffIds[i] as BuiltLayer['diffId'] };
    } else {
      built = await gzipLayer(createReadStream(p), join(outDir, `layer-${i}.tar.gz`));
      if (built.diffId !== diffIds[i]) throw new ImageSourceError(`${path}: layer ${name} has digest ${built.diffId} but the config says ${diffIds[i]}; the archive is damaged`);
    }
    blobs.set(built.digest, built.path);
    layers.push({ mediaType: MediaTypes.dockerLayerGzip, digest: built.digest, size: built.size });
  }
  const configDesc: Descriptor = { mediaType: MediaTypes.dockerConfig, digest: digestOf(configBytes), size: configBytes.length };
  blobs.set(configDesc.digest, configPath);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: configDesc, layers }));
  const root: Descriptor = { mediaType: MediaTypes.dockerManifest, digest: digestOf(manifest), size: manifest.length };
  return {
    kind: 'docker-archive',
    root,
    async readManifest(d) {
      if (d.digest !== root.digest) throw new ImageSourceError(`no manifest ${d.digest} in ${path}`);
      return manifest;
    },
    openBlob(d) {
      const p = blobs.get(d.digest);
      if (!p) {
        const s = new PassThrough();
        s.destroy(new ImageSourceError(`no blob ${d.digest} in ${path}`));
        return s;
      }
      return createReadStream(p);
    },
    close: cleanup,
  };
}
