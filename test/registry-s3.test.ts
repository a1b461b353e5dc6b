// Berth with its registry blobs in S3 (`--blob-store s3://...`) against a real radosgw
// (scripts/start-s3.sh): skopeo pushes an image with a 20 MiB layer (several 8 MiB segments, assembled by
// server-side multipart copy) and pulls it back byte for byte; the data directory holds no blob; a
// restarted server serves the same blobs; a kill -9 of `berth serve --blob-store` mid-upload leaves no
// partial blob and the upload resumes after a restart; `berth serve` refuses credentials in the URL without echoing
// them. Skips with the reason when Ceph's packages or the image tools are missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { startTestBerth, adminRegistry, cliAdminRegistry, runCli, type TestBerth } from './helpers/berth.js';
import { startServeChild } from './helpers/serve-child.js';
import { haveImageTools, multiLayerLayout } from './helpers/images.js';
import { startTestS3, type TestS3 } from './helpers/s3.js';
import { S3BlobStore } from '../src/storage/s3-blob-store.js';
import { parseS3Location } from '../src/storage/s3-location.js';
import { parseDigest } from '../src/oci/digest.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let skip: string | undefined = haveImageTools();
let s3: TestS3 | undefined;
let b: TestBerth | undefined;
let blobStore = '';
let bucket = '';
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let layout: string;

before(async () => {
  if (skip) { console.log(`# skipping: ${skip}`); return; }
  const started = await startTestS3();
  if (typeof started === 'string') { skip = started; console.log(`# skipping: ${skip}`); return; }
  s3 = started;
  Object.assign(process.env, s3.env);
  bucket = s3.bucketName();
  blobStore = `s3://${bucket}/registry?endpoint=${encodeURIComponent(s3.endpoint)}`;
  b = await startTestBerth(undefined, [], 0, { blobStore, tls: false });
  reg = await adminRegistry(b, 's3reg01');
  layout = await multiLayerLayout('v1', 1, 20 * MiB);
});
after(async () => {
  await b?.cleanup();
  if (bucket) await s3?.removeBucket(bucket);
  await s3?.stop();
});

const creds = () => `${reg.username}:${reg.password}`;

async function layoutBlobs(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const hex of await readdir(join(dir, 'blobs', 'sha256'))) {
    out.set(`sha256:${hex}`, createHash('sha256').update(await readFile(join(dir, 'blobs', 'sha256', hex))).digest('hex'));
  }
  return out;
}

/** skopeo pulls the image into a fresh layout: every blob of it is byte for byte what was pushed. */
async function pullMatches(): Promise<void> {
  const out = join(await mkdtemp(join(tmpdir(), 'berth-s3-pull-')), 'out');
  await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds(), `docker://${reg.loginServer}/s3/big:v1`, `oci:${out}:v1`]);
  const sent = await layoutBlobs(layout);
  const got = await layoutBlobs(out);
  // (The source layout also holds umoci's intermediate blobs: compare what the image has.)
  assert.ok(got.size >= 3);
  for (const [d, sum] of got) assert.equal(sum, sent.get(d), `blob ${d} comes back byte for byte`);
}

test('skopeo pushes to and pulls from Berth with S3 blobs; the blobs are in the bucket, not the data directory', { timeout: 300_000 }, async (t) => {
  if (skip) { t.skip(skip); return; }
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds(), `oci:${layout}:v1`, `docker://${reg.loginServer}/s3/big:v1`]);
  await pullMatches();

  // Every layer and the config are objects in the bucket; nothing was written under the data directory.
  const store = new S3BlobStore(parseS3Location(blobStore));
  try {
    const inBucket = new Set<string>();
    for await (const d of store.list()) inBucket.add(d);
    const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256',
      (JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!.digest.slice(7)), 'utf8')) as
      { config: { digest: string }; layers: { digest: string; size: number }[] };
    for (const l of [manifest.config, ...manifest.layers]) assert.ok(inBucket.has(l.digest), `${l.digest} is in the bucket`);
    const big = manifest.layers.find((l) => l.size > 16 * MiB);
    assert.ok(big, 'the image has a layer of more than two segments');
    assert.equal((await store.stat(parseDigest(big.digest)))?.size, big.size);
    const uploads: string[] = [];
    for await (const u of store.listUploads()) uploads.push(u.id);
    assert.deepEqual(uploads, [], 'no upload session is left behind');
  } finally {
    store.close();
  }
  assert.ok(!existsSync(join(b!.dataDir, 'blobs')), 'no blobs directory in the data directory');
  assert.ok(!existsSync(join(b!.dataDir, 'uploads')), 'no uploads directory in the data directory');
  assert.ok(b!.logs.some((l) => l.includes('registry blobs in S3')), 'the server says where blobs go');
  assert.ok(!b!.logs.some((l) => l.includes(s3!.env.AWS_SECRET_ACCESS_KEY)), 'no log line holds the S3 secret');
});

test('a restarted server serves the same blobs from S3', { timeout: 300_000 }, async (t) => {
  if (skip) { t.skip(skip); return; }
  b = await b!.restart(true);
  await pullMatches();
});

test('berth serve refuses credentials in --blob-store without echoing them, and says why a bucket is unreachable', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-s3-cli-'));
  const env = { ...process.env, BERTH_DATA_DIR: dataDir };
  const r = await runCli(['serve', '--port', '0', '--blob-store', 's3://AKIAEXAMPLE:s3cr3tvalue@bucket1?endpoint=http://127.0.0.1:1'], env);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /credentials do not belong in the URL/);
  assert.doesNotMatch(r.stderr + r.stdout, /s3cr3tvalue|AKIAEXAMPLE/);
  const bad = await runCli(['serve', '--port', '0', '--blob-store', 's3://bucket1?region=x&foo=1'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown parameter "foo"/);
  // Nothing listens on port 1: the server does not start, and says which store it could not reach.
  const down = await runCli(['serve', '--port', '0', '--no-tls', '--blob-store', 's3://bucket1?endpoint=http://127.0.0.1:1'],
    { ...env, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_MAX_ATTEMPTS: '1' });
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /blob store s3:\/\/bucket1\/ at http:\/\/127\.0\.0\.1:1/);
  assert.doesNotMatch(down.stderr, /\n\s+at /, 'no stack trace');
});

/** Sends part of a request body and never finishes it. */
function hangingRequest(url: string, headers: Record<string, string>, part: Buffer): Promise<void> {
  return new Promise((res) => {
    const req = request(url, { method: 'PATCH', headers });
    req.on('error', () => undefined);
    req.write(part, () => setTimeout(res, 500));
  });
}

test('kill -9 of berth serve --blob-store mid-upload: no partial blob; the upload resumes after a restart', { timeout: 300_000 }, async (t) => {
  if (skip) { t.skip(skip); return; }
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-s3-crash-'));
  const env = { ...process.env, BERTH_DATA_DIR: dataDir };
  const args = ['--data-dir', dataDir, '--port', '0', '--no-tls', '--blob-store', blobStore];
  let server = await startServeChild(args, env);
  try {
    const { loginServer: login, auth } = await cliAdminRegistry({ ...env, BERTH_SERVER: server.url }, 's3crash01');
    const base = `http://${login}/v2/crash/data`;
    const sha = (x: Buffer) => `sha256:${createHash('sha256').update(x).digest('hex')}`;
    const blob = randomBytes(12 * MiB);
    const firstLen = 9 * MiB; // one full 8 MiB segment and a short one
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: { Authorization: auth } });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location')!, `http://${login}`).toString();
    const first = await fetch(location, { method: 'PATCH', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${firstLen - 1}` }, body: blob.subarray(0, firstLen) });
    assert.equal(first.status, 202);
    await hangingRequest(location, { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' }, blob.subarray(firstLen, firstLen + MiB));
    server.child.kill('SIGKILL');
    await new Promise((r) => server.child.once('exit', r));

    server = await startServeChild(args, env);
    assert.equal((await fetch(`${base}/blobs/${sha(blob)}`, { method: 'HEAD', headers: { Authorization: auth } })).status, 404, 'no partial blob');
    const status = await fetch(location, { headers: { Authorization: auth } });
    assert.equal(status.status, 204);
    const have = Number(/^0-(\d+)$/.exec(status.headers.get('range') ?? '')?.[1]) + 1;
    assert.ok(have >= firstLen && have <= firstLen + MiB, `the upload resumes from a byte the store holds (${have})`);
    const rest = await fetch(location, { method: 'PATCH', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `${have}-${blob.length - 1}` }, body: blob.subarray(have) });
    assert.equal(rest.status, 202);
    const fin = new URL(rest.headers.get('location')!, `http://${login}`);
    fin.searchParams.set('digest', sha(blob));
    assert.equal((await fetch(fin, { method: 'PUT', headers: { Authorization: auth }, body: '' })).status, 201);
    const got = Buffer.from(await (await fetch(`${base}/blobs/${sha(blob)}`, { headers: { Authorization: auth } })).arrayBuffer());
    assert.equal(sha(got), sha(blob));
  } finally {
    server.child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
