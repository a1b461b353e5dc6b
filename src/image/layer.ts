// Layers made on the client: a directory packed as a tar, and any tar gzipped into a layer blob, with
// both the compressed digest (the blob) and the uncompressed one (the config's diff_id) computed in one
// streaming pass. Nothing is held in memory.
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, readlink, rename, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zc } from 'node:zlib';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import { newHasher, type Digest } from '../oci/digest.js';

export interface BuiltLayer {
  /** sha256 of the gzipped blob. */
  digest: Digest;
  /** sha256 of the uncompressed tar (diff_id). */
  diffId: Digest;
  size: number;
  path: string;
}

function hashing(onDone: (hex: string, bytes: number) => void): Transform {
  const h = newHasher('sha256');
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      onDone(h.digest('hex'), n);
      cb();
    },
  });
}

/** Gzips a tar stream into `outPath` (atomically), returning the blob and diff_id digests. */
export async function gzipLayer(tarStream: Readable, outPath: string): Promise<BuiltLayer> {
  let diffId = '';
  let digest = '';
  let size = 0;
  const tmp = `${outPath}.tmp-${process.pid}`;
  try {
    await pipeline(
      tarStream,
      hashing((hex) => (diffId = `sha256:${hex}`)),
      createGzip({ level: zc.Z_DEFAULT_COMPRESSION }),
      hashing((hex, n) => { digest = `sha256:${hex}`; size = n; }),
      createWriteStream(tmp),
    );
    await rename(tmp, outPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { digest: digest as Digest, diffId: diffId as Digest, size, path: outPath };
}

/** Hashes a stream without keeping it. */
export async function digestStream(s: Readable): Promise<{ digest: Digest; size: number }> {
  let digest = '';
  let size = 0;
  await pipeline(s, hashing((hex, n) => { digest = `sha256:${hex}`; size = n; }), new PassThrough().resume());
  return { digest: digest as Digest, size };
}

/**
 * Packs a root filesystem directory as a tar stream: entries sorted by name for a reproducible layer,
 * owners and modes as on disk, symlinks kept, hard links as tar links, FIFOs and device nodes as such.
 * Sockets are skipped (a tar cannot hold them).
 */
export function tarDirectory(root: string): Readable {
  const pack = tarPack();
  const seen = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const n of names) {
      const full = join(dir, n);
      const name = relative(root, full).split(sep).join('/');
      const st = await lstat(full);
      const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) {
        await entry(pack, { ...base, type: 'directory' });
        await walk(full);
      } else if (st.isSymbolicLink()) {
        await entry(pack, { ...base, type: 'symlink', linkname: await readlink(full) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await entry(pack, { ...base, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) seen.set(key, name);
        await new Promise<void>((res, rej) => {
          const e = pack.entry({ ...base, type: 'file', size: st.size }, (err) => (err ? rej(err) : res()));
          const rs = createReadStream(full);
          rs.on('error', rej);
          rs.pipe(e as unknown as NodeJS.WritableStream);
        });
      } else if (st.isFIFO()) {
        await entry(pack, { ...base, type: 'fifo' });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
        const minor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
        await entry(pack, { ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
      }
    }
  };
  walk(root).then(() => pack.finalize(), (e: Error) => pack.destroy(e));
  return pack as unknown as Readable;
}

function entry(pack: Pack, header: Partial<Header> & { name: string }): Promise<void> {
  return new Promise((res, rej) => pack.entry(header, (err) => (err ? rej(err) : res())));
}
