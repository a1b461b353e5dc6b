// Path resolution inside a root directory with chroot semantics: every component is looked up on disk
// one at a time, symlinks are followed as the container would see them (an absolute target starts
// again at the root, `..` at the root stays at the root), so the result is always inside the root —
// never through a symlink that leads out of it. This is what a layer extractor and anything that reads
// files from an image's root filesystem (e.g. /etc/passwd) must use instead of path.join.
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';

const MAX_SYMLINKS = 255;

export class PathEscapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathEscapeError';
  }
}

/** Splits a slash-separated path into its non-empty, non-`.` components. */
function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Cleans a path that names something inside a root (a tar entry name, a hard link target): leading
 * slashes are dropped (an absolute name means "from the root"), `.` components removed and `..`
 * applied lexically. Returns undefined when `..` would climb above the root.
 */
export function cleanInRoot(name: string): string | undefined {
  const out: string[] = [];
  for (const c of components(name)) {
    if (c === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(c);
  }
  return out.join('/');
}

/**
 * Resolves `path` (relative to `root`, or absolute meaning "from the root") to a host path inside `root`.
 * Intermediate symlinks are always followed with chroot semantics; the final component only when
 * `followFinal` is set. Components that do not exist are appended as they are (they cannot be symlinks).
 */
export async function resolveInRoot(root: string, path: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  const resolved: string[] = [];
  const pending = components(path);
  let links = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, c);
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
    }
    if (isLink && (pending.length > 0 || opts.followFinal)) {
      if (++links > MAX_SYMLINKS) throw new PathEscapeError(`too many levels of symbolic links resolving "${path}" inside ${root}`);
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...components(target));
      continue;
    }
    resolved.push(c);
  }
  return join(root, ...resolved);
}
