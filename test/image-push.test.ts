// `berth image push` from each kind of source, checked by pulling back with skopeo; against a Berth
// registry with the CLI's own identity, and against the reference registry with --username/--password.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, mkdir, copyFile, symlink, readFile, writeFile, access } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { pack } from 'tar-stream';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { busyboxLayout, haveImageTools } from './helpers/images.js';
import { haveReferenceRegistry, startReferenceRegistry, type ReferenceRegistry } from './helpers/reference-registry.js';

const run = promisify(execFile);
const skip = haveImageTools();
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let work: string;

before(async () => {
  if (skip) return;
  b = await startTestBerth();
  reg = await adminRegistry(b, 'pushreg01');
  work = await mkdtemp(join(tmpdir(), 'berth-push-'));
});
after(async () => b?.cleanup());

const creds = () => `${reg.username}:${reg.password}`;

async function pullDir(ref: string, c = creds()): Promise<{ manifest: any; config: any; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pulled-'));
  await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', c, `docker://${ref}`, `dir:${dir}`]);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  const config = JSON.parse(await readFile(join(dir, manifest.config.digest.split(':')[1]), 'utf8'));
  return { manifest, config, dir };
}

test('image push builds one layer from a root filesystem directory and pushes with the CLI identity', { skip }, async () => {
  const rootfs = join(work, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await mkdir(join(rootfs, 'etc'));
  await copyFile(execFileSync('sh', ['-c', 'command -v busybox']).toString().trim(), join(rootfs, 'bin', 'busybox'));
  await symlink('busybox', join(rootfs, 'bin', 'sh'));
  await writeFile(join(rootfs, 'etc', 'motd'), 'hello from berth\n');
  const r = await b.cli(['image', 'push', rootfs, `${reg.loginServer}/tools/rootfs:v1`, '--cmd', '["/bin/sh","-c","cat /etc/motd"]', '--platform', 'linux/arm64']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.sourceKind, 'rootfs');
  assert.equal(out.blobsPushed, 2);
  assert.match(r.stderr, /Pushed/, 'progress is reported on stderr');
  const pulled = await pullDir(`${reg.loginServer}/tools/rootfs:v1`);
  assert.equal(pulled.manifest.layers.length, 1);
  assert.equal(pulled.manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.deepEqual(pulled.config.config.Cmd, ['/bin/sh', '-c', 'cat /etc/motd']);
  assert.equal(pulled.config.architecture, 'arm64');
  const layerFile = join(pulled.dir, pulled.manifest.layers[0].digest.split(':')[1]);
  const listing = execFileSync('tar', ['tvzf', layerFile]).toString();
  assert.match(listing, /bin\/busybox/);
  assert.match(listing, /bin\/sh -> busybox/);
  assert.match(listing, /etc\/motd/);
  // diff_id is the digest of the uncompressed tar
  const diff = 'sha256:' + createHash('sha256').update(execFileSync('sh', ['-c', `gunzip -c ${layerFile}`], { maxBuffer: 64 << 20 })).digest('hex');
  assert.deepEqual(pulled.config.rootfs.diff_ids, [diff]);
  // a second push of the same directory finds the layer already there
  const again = await b.cli(['image', 'push', rootfs, `${reg.loginServer}/tools/rootfs:v2`, '--platform', 'linux/arm64']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already exists/);
});

test('image push takes an image from an OCI layout by name, and a whole multi-platform index', { skip }, async () => {
  const layout = await busyboxLayout('v1');
  execFileSync('umoci', ['new', '--image', `${layout}:arm`]);
  execFileSync('umoci', ['config', '--image', `${layout}:arm`, '--architecture', 'arm64', '--os', 'linux']);
  // with two images and no name, the error lists the names
  const ambiguous = await b.cli(['image', 'push', layout, `${reg.loginServer}/tools/layout:v1`]);
  assert.equal(ambiguous.code, 1);
  assert.match(ambiguous.stderr, /holds 2 images; name one as SOURCE:NAME \(v1, arm\)/);
  const r = await b.cli(['image', 'push', `${layout}:v1`, `${reg.loginServer}/tools/layout:v1`]);
  assert.equal(r.code, 0, r.stderr);
  const idx = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  assert.equal(JSON.parse(r.stdout).digest, idx.manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === 'v1').digest);
  // add an index over both images to the layout and push it: children go first, by digest
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: idx.manifests.map((m: any, i: number) => ({
    mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } })) }));
  const indexDigest = 'sha256:' + createHash('sha256').update(index).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', indexDigest.slice(7)), index);
  idx.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
  await writeFile(join(layout, 'index.json'), JSON.stringify(idx));
  const m = await b.cli(['image', 'push', `${layout}:multi`, `${reg.loginServer}/tools/multi:latest`]);
  assert.equal(m.code, 0, m.stderr);
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', creds(), `docker://${reg.loginServer}/tools/multi:latest`]);
  assert.equal(JSON.parse(stdout).manifests.length, 2);
  for (const arch of ['amd64', 'arm64']) {
    const { stdout: info } = await run('skopeo', ['inspect', '--override-arch', arch, '--tls-verify=false', '--creds', creds(), `docker://${reg.loginServer}/tools/multi:latest`]);
    assert.equal(JSON.parse(info).Architecture, arch);
  }
});

test('image push reads docker save archives (legacy and OCI, plain and gzipped)', { skip }, async () => {
  const layout = await busyboxLayout('v1');
  const legacy = join(work, 'legacy.tar');
  const ociArchive = join(work, 'oci.tar');
  await run('skopeo', ['copy', `oci:${layout}:v1`, `docker-archive:${legacy}:example/busybox:v1`]);
  await run('skopeo', ['copy', `oci:${layout}:v1`, `oci-archive:${ociArchive}:v1`]);
  execFileSync('sh', ['-c', `gzip -c ${legacy} > ${legacy}.gz`]);
  const r1 = await b.cli(['image', 'push', legacy, `${reg.loginServer}/archives/legacy:v1`]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(JSON.parse(r1.stdout).mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const r2 = await b.cli(['image', 'push', `${legacy}.gz:example/busybox:v1`, `${reg.loginServer}/archives/legacygz:v1`]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).digest, JSON.parse(r1.stdout).digest, 'the same archive gives the same image, gzipped or not');
  const r3 = await b.cli(['image', 'push', ociArchive, `${reg.loginServer}/archives/oci:v1`]);
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(JSON.parse(r3.stdout).sourceKind, 'oci-archive');
  const pulled = await pullDir(`${reg.loginServer}/archives/legacy:v1`);
  assert.equal(pulled.manifest.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  // umoci writes its layer tar without the end-of-archive blocks, so GNU tar lists it and then complains
  const listing = spawnSync('tar', ['tzf', join(pulled.dir, pulled.manifest.layers[0].digest.split(':')[1])]).stdout.toString();
  assert.match(listing, /bin\/busybox/);
  const missing = await b.cli(['image', 'push', `${legacy}:nope`, `${reg.loginServer}/archives/x:v1`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no image tagged "nope"; it has: .*example\/busybox:v1/);
});

test('an archive member that climbs out of the archive is refused and nothing is written outside', { skip }, async () => {
  const evil = join(work, 'evil.tar');
  const p = pack();
  p.entry({ name: 'manifest.json' }, '[]');
  p.entry({ name: '../../berth-escape-marker' }, 'x');
  p.finalize();
  await pipeline(p as unknown as NodeJS.ReadableStream, createWriteStream(evil));
  const r = await b.cli(['image', 'push', evil, `${reg.loginServer}/evil/x:v1`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /points outside the archive; refusing it/);
  assert.doesNotMatch(r.stderr, /at .*\.js/, 'no stack trace');
  await assert.rejects(access(join(tmpdir(), '..', 'berth-escape-marker')));
  await assert.rejects(access(join(tmpdir(), 'berth-escape-marker')));
});

test('image push errors: bad reference, no host, wrong password, nothing listening', { skip }, async () => {
  const layout = await busyboxLayout('v1');
  const bad = await b.cli(['image', 'push', layout, 'Local/Thing:v1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^ERROR: invalid reference "Local\/Thing:v1": repository name must be lowercase/);
  const noHost = await b.cli(['image', 'push', layout, 'tools/x:v1']);
  assert.equal(noHost.code, 2);
  assert.match(noHost.stderr, /names no registry host/);
  const wrong = await b.cli(['image', 'push', layout, `${reg.loginServer}/tools/x:v1`, '--username', reg.username, '--password-stdin'], { input: 'not-the-password\n' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /authentication failed/);
  assert.doesNotMatch(wrong.stderr, /not-the-password/);
  const refused = await b.cli(['image', 'push', layout, 'localhost:1/tools/x:v1', '-u', 'a', '-p', 'b']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /cannot connect to localhost:1: connection refused/);
});

test('image push to the reference registry with --username and --password-stdin', { skip: skip ?? haveReferenceRegistry() }, async () => {
  let ref: ReferenceRegistry | undefined;
  try {
    ref = await startReferenceRegistry();
    const layout = await busyboxLayout('v1');
    const r = await b.cli(['image', 'push', `${layout}:v1`, `${ref.host}/mirror/busybox:v1`, '-u', ref.username, '--password-stdin'], { input: ref.password });
    assert.equal(r.code, 0, r.stderr);
    const { manifest } = await pullDir(`${ref.host}/mirror/busybox:v1`, `${ref.username}:${ref.password}`);
    assert.equal(manifest.layers.length, 1);
  } finally {
    await ref?.stop();
  }
});
