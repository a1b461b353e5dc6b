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
