// Decides what kind of image SOURCE names: an OCI layout directory, any other directory (a root
// filesystem), or an archive file. "PATH:NAME" picks one image out of a layout or archive.
import { stat } from 'node:fs/promises';
import { openImageArchive } from './archive.js';
import { isOciLayout, openOciLayout } from './oci-layout.js';
import { openRootfs, type RootfsOptions } from './rootfs.js';
import { ImageSourceError, type ImageSource } from './source.js';

async function kindOf(p: string): Promise<'dir' | 'file' | undefined> {
  const st = await stat(p).catch(() => undefined);
  if (!st) return undefined;
  return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : undefined;
}

export async function openImageSource(source: string, opts: RootfsOptions = {}): Promise<ImageSource> {
  let path = source;
  let ref: string | undefined;
  let kind = await kindOf(path);
  if (!kind) {
    // PATH:NAME, where NAME may itself hold colons (repo:tag): the first prefix that exists is the path.
    for (let i = source.indexOf(':'); i > 0 && !kind; i = source.indexOf(':', i + 1)) {
      const k = await kindOf(source.slice(0, i));
      if (k) {
        kind = k;
        path = source.slice(0, i);
        ref = source.slice(i + 1) || undefined;
      }
    }
  }
  if (!kind) throw new ImageSourceError(`${source}: no such directory or file (SOURCE is a root filesystem directory, an OCI image layout, or a docker save archive)`);
  if (kind === 'dir') {
    if (await isOciLayout(path)) return openOciLayout(path, ref);
    if (ref !== undefined) throw new ImageSourceError(`${path} is a root filesystem directory, not an OCI layout; ":${ref}" does not apply`);
    return openRootfs(path, opts);
  }
  return openImageArchive(path, ref);
}
