// `berth image push ARCHIVE` against the extractor breakout table (./helpers/breakout-cases.ts): each
// case's entries are put in front of a valid image, in both archive forms (docker save's manifest.json
// and an OCI archive), and pushed by the CLI with its temporary directory beside a sentinel directory
// the entries aim at. The push either fails with a clear error or succeeds; either way nothing outside
// the CLI's temporary folder is written, and the CLI leaves nothing behind. Plus archives whose own
// manifest, index or blobs are symlinks to host files: those are never read.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { CASES, hostPasswd, snapshot, tarOf, type Entry } from './helpers/breakout-cases.js';
import { haveImageTools } from './helpers/images.js';

const skip = haveImageTools();
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
const bases: string[] = [];

before(async () => {
  if (skip) return;
  b = await startTestBerth();
  reg = await adminRegistry(b, 'breakreg01');
});
after(async () => {
  for (const d of bases) await rm(d, { recursive: true, force: true });
  await b?.cleanup();
});

const sha = (x: Buffer | string) => `sha256:${createHash('sha256').update(x).digest('hex')}`;

/** A one-layer image: its layer tar, config and (OCI) manifest. */
async function tinyImage() {
  const layer = await tarOf([{ name: 'hello', body: 'world' }]);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
  }));
  return { layer, config, manifest };
}

type Form = 'docker-save' | 'oci-archive';

/** The members that make an archive of `form` hold the tiny image. */
async function imageMembers(form: Form): Promise<Entry[]> {
  const { layer, config, manifest } = await tinyImage();
  if (form === 'docker-save') {
    return [
      { name: 'config.json', body: config },
      { name: 'layer/layer.tar', body: layer },
      { name: 'manifest.json', body: JSON.stringify([{ Config: 'config.json', RepoTags: ['evil/x:v1'], Layers: ['layer/layer.tar'] }]) },
    ];
  }
  const blob = (x: Buffer) => ({ name: `blobs/sha256/${sha(x).slice(7)}`, body: x });
  return [
    { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
    blob(config), blob(layer), blob(manifest),
    { name: 'index.json', body: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length }] }) },
  ];
}

/** A folder for the CLI's temporary files with a sentinel directory in it, so `../sentinel` from the archive's folder reaches the sentinel. */
async function fixture() {
  const base = await mkdtemp(join(tmpdir(), 'berth-push-breakout-'));
  bases.push(base);
  const sentinel = join(base, 'sentinel');
  await mkdir(join(sentinel, 'dir'), { recursive: true });
  await writeFile(join(sentinel, 'file'), 'keep me');
  await writeFile(join(sentinel, 'dir', 'x'), 'keep me too');
  const archives = await mkdtemp(join(tmpdir(), 'berth-push-archives-'));
  bases.push(archives);
  return { base, sentinel, archives };
}

/** Pushes `entries` as an archive with the CLI's TMPDIR at `base`; checks the sentinel, /etc/passwd and that nothing is left. */
async function pushChecked(f: Awaited<ReturnType<typeof fixture>>, entries: Entry[], repo: string) {
  const before = await snapshot(f.sentinel);
  const passwd = await hostPasswd();
  const archive = join(f.archives, `${repo.replaceAll('/', '_')}.tar`);
  await writeFile(archive, await tarOf(entries));
  const r = await b.cli(['image', 'push', archive, `${reg.loginServer}/${repo}:v1`], { env: { TMPDIR: f.base } });
  assert.deepEqual(await snapshot(f.sentinel), before, `the sentinel directory outside the archive's folder changed (${r.stderr})`);
  assert.deepEqual(await readdir(f.base), ['sentinel'], 'something was created beside the archive\'s folder, or the folder was left behind');
  assert.equal(await hostPasswd(), passwd);
  if (r.code !== 0) {
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^ERROR: .*archive/m, 'a failed push says what in the archive is wrong');
    assert.doesNotMatch(r.stderr, /\n\s+at .*\.js/, 'no stack trace');
  }
  return r;
}

for (const form of ['docker-save', 'oci-archive'] as Form[]) {
  describe(`image push of a malicious ${form} archive`, () => {
    // Lower layers and overlay whiteouts have no meaning in an archive; every other case applies.
    for (const [i, c] of CASES.entries()) {
      if (c.lower || c.mode === 'overlay') continue;
      test(c.name, { skip }, async () => {
        const f = await fixture();
        const refused = 'refused' in c.expect ? c.expect.refused : undefined;
        const r = await pushChecked(f, [...c.entries(f), ...(await imageMembers(form))], `breakout/${form}-${i}`);
        // The malicious entries are not the image's: refused ones fail the push naming the entry, the rest are harmless.
        if (refused !== undefined && r.code !== 0) assert.match(r.stderr, new RegExp(`"${refused.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
        else assert.equal(r.code, 0, r.stderr);
      });
    }
  });
}

test('an archive whose manifest.json is a symlink to a host file is not read through it', { skip }, async () => {
  const f = await fixture();
  const members = await imageMembers('docker-save');
  const manifest = members.find((m) => m.name === 'manifest.json')!;
  const outsideDir = await mkdtemp(join(tmpdir(), 'berth-push-outside-'));
  bases.push(outsideDir);
  const outside = join(outsideDir, 'manifest.json');
  await writeFile(outside, manifest.body!);
  const r = await pushChecked(f, [...members.filter((m) => m !== manifest), { name: 'manifest.json', type: 'symlink', linkname: outside }], 'breakout/read-manifest');
  assert.equal(r.code, 1, 'the host file was read as the archive\'s manifest.json');
  assert.match(r.stderr, /neither an OCI archive \(oci-layout\) nor a docker save archive \(manifest\.json\)/);
});

test('an OCI archive whose index.json and blobs are symlinks to host files is not read through them', { skip }, async () => {
  const f = await fixture();
  const members = await imageMembers('oci-archive');
  const outside = await mkdtemp(join(tmpdir(), 'berth-push-outside-'));
  bases.push(outside);
  const linked: Entry[] = [];
  for (const m of members) {
    if (m.name === 'oci-layout') { linked.push(m); continue; }
    const host = join(outside, m.name.replaceAll('/', '_'));
    await writeFile(host, m.body!);
    linked.push({ name: m.name, type: 'symlink', linkname: host });
  }
  const r = await pushChecked(f, linked, 'breakout/read-index');
  assert.equal(r.code, 1, 'host files were read as the archive\'s index and blobs');
  assert.match(r.stderr, /is not a readable OCI image layout: index\.json/);
});

test('import rules: image push code does not depend on the runtime, and root-path.ts only on node', async () => {
  const { readFile, readdir: ls } = await import('node:fs/promises');
  const src = join(import.meta.dirname, '..', '..', 'src');
  const importsOf = async (file: string) => [...(await readFile(file, 'utf8')).matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
  for (const f of (await ls(join(src, 'image'))).filter((x) => x.endsWith('.ts'))) {
    for (const i of await importsOf(join(src, 'image', f))) assert.doesNotMatch(i, /(^|\/)runtime\//, `src/image/${f} imports ${i} (image push must not depend on the container runtime)`);
  }
  for (const i of await importsOf(join(src, 'lib', 'root-path.ts'))) assert.match(i, /^node:/, `src/lib/root-path.ts imports ${i} (it is shared by the runtime and image push: node only)`);
});
