// The members of an image archive (a tar, optionally gzipped), read in one pass without extracting it:
// each regular file's bytes are copied to a numbered file in a private directory — a member's name
// never becomes a path on disk, so no name, symlink or hard link can make anything be written
// outside that directory. Names are looked up with the same chroot-style resolution the runtime's
// layer extractor uses (src/lib/root-path.ts), following the archive's own symlinks inside the
// archive: a link that points out of it ends up at the archive's root, never on the host.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Header } from 'tar-stream';
import { cleanInRoot, resolveIn, PathEscapeError } from '../lib/root-path.js';
import { ImageSourceError } from './source.js';

type Member = { kind: 'file'; path: string } | { kind: 'symlink'; target: string } | { kind: 'directory' };

export async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

export class ArchiveMembers {
  private readonly members = new Map<string, Member>();
  private copies = 0;

  private constructor(private readonly archive: string, private readonly dir: string) {}

  /** Reads every member of the archive at `path`, copying regular files into `dir` (which must exist and be private). */
  static async read(path: string, dir: string): Promise<ArchiveMembers> {
    await mkdir(dir, { mode: 0o700 });
    const m = new ArchiveMembers(path, dir);
    const extract = tarExtract();
    extract.on('entry', (h, stream, next) => {
      m.add(h, stream as unknown as Readable).then(() => next(), (e: unknown) => extract.destroy(e as Error));
    });
    try {
      const input = createReadStream(path);
      if (await isGzip(path)) await pipeline(input, createGunzip(), extract);
      else await pipeline(input, extract);
    } catch (e) {
      if (e instanceof ImageSourceError) throw e;
      throw new ImageSourceError(`${path} is not a readable image archive: ${(e as Error).message}`);
    }
    return m;
  }

  private refuse(name: string, why: string): ImageSourceError {
    return new ImageSourceError(`${this.archive}: archive member "${name}" ${why}; refusing it`);
  }

  private readonly links = (path: readonly string[]) => {
    const m = this.members.get(path.join('/'));
    return Promise.resolve(m?.kind === 'symlink' ? m.target : undefined);
  };

  private async resolve(name: string, followFinal: boolean): Promise<string> {
    try {
      return (await resolveIn(this.links, name, { followFinal, where: this.archive })).join('/');
    } catch (e) {
      if (e instanceof PathEscapeError) throw this.refuse(name, 'is a chain of too many symbolic links');
      throw e;
    }
  }

  /** Records one entry where a safe extraction would put it: under its parent as resolved inside the archive. */
  private async add(h: Header, body: Readable): Promise<void> {
    const type = h.type ?? 'file';
    const rel = cleanInRoot(h.name);
    if (rel === undefined) throw this.refuse(h.name, 'points outside the archive');
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : await this.resolve(rel.slice(0, slash), true);
    const key = [parent, rel.slice(slash + 1)].filter((x) => x !== '').join('/');
    if (type === 'file' || type === 'contiguous-file') {
      const path = join(this.dir, String(this.copies++));
      await pipeline(body, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
      this.members.set(key, { kind: 'file', path });
      return;
    }
    body.resume();
    if (key === '') return; // "./": the archive's root itself
    if (type === 'directory') {
      if (this.members.get(key)?.kind !== 'directory') this.members.set(key, { kind: 'directory' });
    } else if (type === 'symlink') {
      this.members.set(key, { kind: 'symlink', target: h.linkname ?? '' });
    } else if (type === 'link') {
      const target = cleanInRoot(h.linkname ?? '');
      const m = target ? this.members.get(await this.resolve(target, false)) : undefined;
      // A hard link shares its target's inode: the same file, or the same symlink (not what it points to).
      if (!m || m.kind === 'directory') throw this.refuse(h.name, `is a hard link to "${h.linkname}", which is not a file earlier in the archive`);
      this.members.set(key, m);
    } else {
      throw this.refuse(h.name, `is a ${type}; image archives hold only files, directories and links`);
    }
  }

  /** The path of the copy of the regular file `name` denotes (symlinks followed inside the archive), or undefined. */
  async file(name: string): Promise<string | undefined> {
    const m = this.members.get(await this.resolve(name, true));
    return m?.kind === 'file' ? m.path : undefined;
  }
}
