// Builds small test images from busybox-static with umoci (Debian packages), as OCI layouts.
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from './berth.js';

export function haveImageTools(): string | undefined {
  for (const t of ['umoci', 'skopeo']) if (!which(t)) return `${t} is not installed (bash scripts/install.sh installs it)`;
  if (!which('busybox')) return 'busybox-static is not installed';
  return undefined;
}

/** An OCI layout holding one busybox image tagged `tag`; returns the layout directory. */
export async function busyboxLayout(tag = 'v1', cmd: string[] = ['/bin/busybox', 'echo', 'hello']): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'berth-img-')), 'layout');
  const run = (...args: string[]) => execFileSync('umoci', args, { stdio: 'pipe' });
  run('init', '--layout', dir);
  run('new', '--image', `${dir}:${tag}`);
  const busybox = execFileSync('sh', ['-c', 'command -v busybox']).toString().trim();
  run('insert', '--image', `${dir}:${tag}`, busybox, '/bin/busybox');
  run('config', '--image', `${dir}:${tag}`, '--architecture', 'amd64', '--os', 'linux', ...cmd.flatMap((c) => ['--config.cmd', c]));
  return dir;
}

export interface PlatformImage {
  arch: string;
  manifestDigest: string;
  configDigest: string;
}

/**
 * Pushes a busybox image per architecture (each by its own tag) with skopeo, then an OCI index over
 * them as `indexTag`; returns the index digest and each platform's manifest and config digests.
 * Runs skopeo asynchronously: the registry may live in this process.
 */
export async function pushMultiPlatform(
  reg: { loginServer: string; auth: string },
  creds: string,
  repo: string,
  archs: string[] = ['amd64', 'arm64'],
  indexTag = 'latest',
): Promise<{ indexDigest: string; platforms: PlatformImage[] }> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const base = `http://${reg.loginServer}/v2/${repo}/manifests/`;
  const platforms: PlatformImage[] = [];
  const entries: unknown[] = [];
  for (const arch of archs) {
    const layout = await busyboxLayout('v1');
    await run('umoci', ['config', '--image', `${layout}:v1`, '--architecture', arch]);
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:v1`, `docker://${reg.loginServer}/${repo}:${arch}`]);
    const r = await fetch(base + arch, { headers: { Authorization: reg.auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    if (r.status !== 200) throw new Error(`GET ${base}${arch}: HTTP ${r.status}`);
    const body = await r.text();
    const manifestDigest = r.headers.get('docker-content-digest')!;
    platforms.push({ arch, manifestDigest, configDigest: (JSON.parse(body) as { config: { digest: string } }).config.digest });
    entries.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: Buffer.byteLength(body), platform: { architecture: arch, os: 'linux' } });
  }
  const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries });
  const put = await fetch(base + indexTag, { method: 'PUT', headers: { Authorization: reg.auth, 'Content-Type': 'application/vnd.oci.image.index.v1+json' }, body: index });
  if (put.status !== 201) throw new Error(`PUT ${base}${indexTag}: HTTP ${put.status} ${await put.text()}`);
  return { indexDigest: put.headers.get('docker-content-digest')!, platforms };
}

/** A busybox layout with `extraLayers` more layers of random (incompressible) bytes, `layerBytes` each. */
export async function multiLayerLayout(tag = 'v1', extraLayers = 2, layerBytes = 512 * 1024): Promise<string> {
  const dir = await busyboxLayout(tag);
  for (let i = 0; i < extraLayers; i++) {
    const f = join(dir, '..', `random-${i}.bin`);
    await writeFile(f, randomBytes(layerBytes));
    execFileSync('umoci', ['insert', '--image', `${dir}:${tag}`, f, `/data/random-${i}.bin`], { stdio: 'pipe' });
  }
  return dir;
}
