// Images for runtime tests, built here from busybox-static the way `berth image push` builds layers
// (src/image/layer.ts), and handed to the runtime as PulledImage values (what the pull client makes).
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pack, type Header } from 'tar-stream';
import { gzipLayer, tarDirectory, type BuiltLayer } from '../../src/image/layer.js';
import { MediaTypes } from '../../src/oci/media-types.js';
import type { ImageRunConfig, PulledImage } from '../../src/pull/types.js';

export function busyboxPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v busybox']).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A busybox root filesystem: /bin/busybox and its applets as symlinks, users root, nobody and app (1000). */
export async function busyboxLayer(workDir: string): Promise<BuiltLayer> {
  const root = join(workDir, 'busybox-rootfs');
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'www'), { recursive: true });
  await mkdir(join(root, 'opt', 'lower'), { recursive: true });
  const bb = busyboxPath()!;
  await copyFile(bb, join(root, 'bin', 'busybox'));
  const applets = execFileSync(bb, ['--list']).toString().split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) await symlink('busybox', join(root, 'bin', a));
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n');
  await writeFile(join(root, 'etc', 'motd'), 'from the lower layer\n');
  await writeFile(join(root, 'opt', 'lower', 'file'), 'lower\n');
  await writeFile(join(root, 'www', 'index.html'), 'hello from busybox httpd\n');
  return gzipLayer(tarDirectory(root), join(workDir, 'busybox.tar.gz'));
}

/** A layer made of explicit tar entries (whiteouts, files), gzipped like a pushed layer. */
export async function entriesLayer(workDir: string, name: string, entries: Array<Partial<Header> & { name: string; body?: string }>): Promise<BuiltLayer> {
  const p = pack();
  const done = gzipLayer(p as unknown as Readable, join(workDir, `${name}.tar.gz`));
  for (const { body, ...h } of entries) {
    await new Promise<void>((res, rej) => {
      const header = { type: 'file' as const, mode: 0o644, mtime: new Date(), ...h };
      const cb = (err?: Error | null) => (err ? rej(err) : res());
      if (header.type === 'file') p.entry(header, body ?? '', cb);
      else (p.entry(header, cb) as unknown as { end(): void }).end();
    });
  }
  p.finalize();
  return done;
}

/** A layer holding one file `name` of `bytes` zeros, streamed: it gzips to about a thousandth of that. */
export async function zeroFileLayer(workDir: string, name: string, bytes: number): Promise<BuiltLayer> {
  const p = pack();
  const done = gzipLayer(p as unknown as Readable, join(workDir, `${name}.tar.gz`));
  const entry = p.entry({ name, size: bytes, mode: 0o644, mtime: new Date(0) });
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = bytes; left > 0; left -= zeros.length) {
    if (!entry.write(left >= zeros.length ? zeros : zeros.subarray(0, left))) await new Promise<void>((r) => entry.once('drain', () => r()));
  }
  (entry as unknown as { end(): void }).end();
  p.finalize();
  return done;
}

export function pulledImage(layers: BuiltLayer[], config: ImageRunConfig, reference = 'localhost/test/busybox:latest'): PulledImage {
  return {
    reference,
    digest: `sha256:${'0'.repeat(64)}`,
    platform: { os: 'linux', architecture: 'amd64' },
    config,
    configDigest: `sha256:${'1'.repeat(64)}`,
    layers: layers.map((l) => ({ digest: l.digest, mediaType: MediaTypes.ociLayerGzip, size: l.size, path: l.path })),
    credentialSource: 'none (test image)',
  };
}

export async function imageWorkDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'berth-rtimg-'));
}
