// Path resolution inside a root with chroot semantics: every component is looked up one at a time,
// symlinks are followed as the container would see them (an absolute target starts again at the root,
// `..` at the root stays at the root), so the result is always inside the root — never through a
// symlink that leads out of it. The root is a directory on disk (resolveInRoot: what a layer extractor
// and anything that reads files from an image's root filesystem, e.g. /etc/passwd, must use instead of
// path.join) or any tree that can say where its symlinks are (resolveIn: an archive's member table).
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';

const MAX_SYMLINKS = 255;

export class PathEscapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathEscapeError';
  }
}

/** A tree resolved against: the target of the symlink at `path` (components from the root), or undefined when it is not one. */
export type LinkLookup = (path: readonly string[]) => Promise<string | undefined>;

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
 * Resolves `path` (relative to the root, or absolute meaning "from the root") to components inside the
 * tree `linkAt` describes. Intermediate symlinks are always followed with chroot semantics; the final
 * component only when `followFinal` is set. `where` names the root in errors.
 */
export async function resolveIn(linkAt: LinkLookup, path: string, opts: { followFinal?: boolean; where?: string } = {}): Promise<string[]> {
  const resolved: string[] = [];
  const pending = components(path);
  let links = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const target = pending.length > 0 || opts.followFinal ? await linkAt([...resolved, c]) : undefined;
    if (target !== undefined) {
      if (++links > MAX_SYMLINKS) throw new PathEscapeError(`too many levels of symbolic links resolving "${path}" inside ${opts.where ?? 'the root'}`);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...components(target));
      continue;
    }
    resolved.push(c);
  }
  return resolved;
}

/** The symlinks of a directory on disk; components that do not exist are not symlinks. */
function diskLinks(root: string): LinkLookup {
  return async (path) => {
    const p = join(root, ...path);
    try {
      if (!(await lstat(p)).isSymbolicLink()) return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    return readlink(p);
  };
}

/**
 * Resolves `path` (relative to `root`, or absolute meaning "from the root") to a host path inside `root`.
 * Intermediate symlinks are always followed with chroot semantics; the final component only when
 * `followFinal` is set. Components that do not exist are appended as they are (they cannot be symlinks).
 */
export async function resolveInRoot(root: string, path: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  return join(root, ...(await resolveIn(diskLinks(root), path, { ...opts, where: root })));
}
