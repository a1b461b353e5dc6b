// Real clients against a Berth registry: skopeo and podman push and pull with the admin user, over
// plain HTTP on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, adminRegistry, which, type TestBerth } from './helpers/berth.js';
import { busyboxLayout, haveImageTools, pushMultiPlatform } from './helpers/images.js';

const run = promisify(execFile);
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let layout: string;
const skip = haveImageTools();

before(async () => {
  if (skip) return;
  b = await startTestBerth();
  reg = await adminRegistry(b, 'peerreg01');
  layout = await busyboxLayout('v1');
});
after(async () => b?.cleanup());

const creds = () => `${reg.username}:${reg.password}`;

test('skopeo copy pushes to Berth and pulls back the same image', { skip }, async () => {
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds(), `oci:${layout}:v1`, `docker://${reg.loginServer}/tools/busybox:v1`]);
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', creds(), `docker://${reg.loginServer}/tools/busybox:v1`]);
  const info = JSON.parse(stdout) as { Layers: string[]; Architecture: string; Os: string };
  assert.equal(info.Layers.length, 1);
  assert.equal(info.Architecture, 'amd64');
  const out = join(await mkdtemp(join(tmpdir(), 'berth-pull-')), 'out');
  await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds(), `docker://${reg.loginServer}/tools/busybox:v1`, `oci:${out}:v1`]);
  const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: unknown[] };
  assert.equal(idx.manifests.length, 1);
  const srcIdx = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const dstIdx = idx as { manifests: Array<{ digest: string }> };
  assert.equal(dstIdx.manifests[0]!.digest, srcIdx.manifests[0]!.digest, 'the manifest digest survives the round trip');
  // a second push to another repository mounts the layer instead of uploading it again
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds(), `docker://${reg.loginServer}/tools/busybox:v1`, `docker://${reg.loginServer}/copy/busybox:v1`, '--src-tls-verify=false', '--src-creds', creds()]);
  const { stdout: tags } = await run('skopeo', ['list-tags', '--tls-verify=false', '--creds', creds(), `docker://${reg.loginServer}/copy/busybox`]);
  assert.deepEqual((JSON.parse(tags) as { Tags: string[] }).Tags, ['v1']);
});

test('skopeo with a wrong password is refused with unauthorized', { skip }, async () => {
  await assert.rejects(
    run('skopeo', ['inspect', '--tls-verify=false', '--creds', `${reg.username}:wrong`, `docker://${reg.loginServer}/tools/busybox:v1`]),
    (e: Error & { stderr?: string }) => /unauthorized|authentication required/i.test(String(e.stderr)),
  );
});

test('a multi-platform index pushes and resolves per platform', { skip }, async () => {
  const { platforms } = await pushMultiPlatform(reg, creds(), 'multi/busybox');
  for (const { arch, manifestDigest } of platforms) {
    const out = join(await mkdtemp(join(tmpdir(), 'berth-mp-')), 'o');
    await run('skopeo', ['copy', '--override-arch', arch, '--src-tls-verify=false', '--src-creds', creds(), `docker://${reg.loginServer}/multi/busybox:latest`, `oci:${out}:x`]);
    const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(idx.manifests[0]!.digest, manifestDigest, `skopeo picks the ${arch} manifest from the index`);
  }
});

const podmanSkip = skip ?? (which('podman') ? undefined : 'podman is not installed');

test('podman pushes to and pulls from Berth', { skip: podmanSkip }, async () => {
  const storage = await mkdtemp(join(tmpdir(), 'berth-podman-'));
  const podman = (...args: string[]) => run('podman', ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'vfs', '--cgroup-manager=cgroupfs', ...args], { maxBuffer: 16 * 1024 * 1024 });
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds(), `oci:${layout}:v1`, `docker://${reg.loginServer}/src/busybox:v1`]);
  await podman('pull', '--tls-verify=false', '--creds', creds(), `${reg.loginServer}/src/busybox:v1`);
  await podman('tag', `${reg.loginServer}/src/busybox:v1`, `${reg.loginServer}/podman/busybox:v1`);
  await podman('push', '--tls-verify=false', '--creds', creds(), `${reg.loginServer}/podman/busybox:v1`);
  await podman('rmi', '-a', '-f');
  await podman('pull', '--tls-verify=false', '--creds', creds(), `${reg.loginServer}/podman/busybox:v1`);
  const { stdout: after } = await podman('images', '--format', '{{.Repository}}:{{.Tag}}');
  assert.match(after, new RegExp(`${reg.loginServer}/podman/busybox:v1`));
});
