// Reads `docker save` / `podman save` archives: the tar (optionally gzipped) is unpacked into a temporary
// directory with every path checked to stay inside it, then read as an OCI layout (Docker 25+ and
// `oci-archive`) or as the legacy manifest.json format, whose layers are gzipped here for the push.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { digestOf } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { MediaTypes } from '../oci/media-types.js';
import { gzipLayer, digestStream, type BuiltLayer } from './layer.js';
import { isOciLayout, openOciLayout } from './oci-layout.js';
import { ImageSourceError, type ImageSource } from './source.js';

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** Resolves an archive member name under `root`, refusing anything that would land outside it. */
function safeJoin(root: string, name: string): string {
  const n = normalize(name).replace(/^(\.\/)+/, '');
  if (n.startsWith('/') || n === '..' || n.startsWith(`..${sep}`)) throw new ImageSourceError(`archive member "${name}" points outside the archive; refusing it`);
  const p = resolve(root, n);
  if (p !== root && !p.startsWith(root + sep)) throw new ImageSourceError(`archive member "${name}" points outside the archive; refusing it`);
  return p;
}

/** Unpacks the archive's regular files, directories and in-archive symlinks into `dest`. */
export async function unpackArchive(path: string, dest: string): Promise<void> {
  const extract = tarExtract();
  extract.on('entry', (h, stream, next) => {
    const done = (e?: unknown) => (e ? extract.destroy(e as Error) : next());
    (async () => {
      const target = safeJoin(dest, h.name);
      if (h.type === 'directory') {
        await mkdir(target, { recursive: true });
        stream.resume();
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(stream, createWriteStream(target));
      } else if (h.type === 'symlink' && h.linkname) {
        // Legacy docker save links a repeated layer to its first copy: keep such links, inside only.
        safeJoin(dest, join(dirname(h.name), h.linkname));
        await mkdir(dirname(target), { recursive: true });
        await symlink(h.linkname, target);
        stream.resume();
      } else {
        stream.resume();
      }
    })().then(() => done(), done);
  });
  const input = createReadStream(path);
  try {
    if (await isGzip(path)) await pipeline(input, createGunzip(), extract);
    else await pipeline(input, extract);
  } catch (e) {
    if (e instanceof ImageSourceError) throw e;
    throw new ImageSourceError(`${path} is not a readable image archive: ${(e as Error).message}`);
  }
}

interface LegacyEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export async function openImageArchive(path: string, ref: string | undefined): Promise<ImageSource> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-archive-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    await unpackArchive(path, dir);
    // Docker 25+ writes both formats; the OCI index carries the real manifests, so it wins.
    if (await isOciLayout(dir)) return await openOciLayout(dir, ref, 'oci-archive', cleanup);
    return await openLegacyArchive(dir, path, ref, cleanup);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

async function insideFile(root: string, name: string): Promise<string> {
  const p = safeJoin(root, name);
  const real = await realpath(p).catch(() => {
    throw new ImageSourceError(`the archive lacks "${name}"`);
  });
  const realRoot = await realpath(root);
  if (!real.startsWith(realRoot + sep)) throw new ImageSourceError(`archive member "${name}" links outside the archive; refusing it`);
  return real;
}

async function openLegacyArchive(dir: string, path: string, ref: string | undefined, cleanup: () => Promise<void>): Promise<ImageSource> {
  let entries: LegacyEntry[];
  try {
    entries = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as LegacyEntry[];
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
  const configPath = await insideFile(dir, entry.Config);
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
    const p = await insideFile(dir, name);
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
