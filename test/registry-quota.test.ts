// Per-registry storage quotas (a tiny Basic limit for the test): usage counts each distinct blob of
// a registry once, acr show-usage reports it against the limit, a push past the limit is refused
// with DENIED (skopeo prints the message) and leaves no upload behind, a delete makes room again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, adminRegistry, cliJson, which, type TestBerth } from './helpers/berth.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const LIMIT = 6 * MiB;
const skip = ['umoci', 'skopeo'].find((t) => !which(t)) ? 'umoci and skopeo are needed (bash scripts/install.sh)' : undefined;

let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
const tmp: string[] = [];

before(async () => {
  if (skip) return;
  b = await startTestBerth(undefined, [], 0, { tls: false, skuStorageLimits: { Basic: LIMIT } });
  reg = await adminRegistry(b, 'quotareg01');
});
after(async () => {
  await b?.cleanup();
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

/** An OCI layout whose one layer holds `mib` MiB of random bytes (gzip cannot shrink it). */
async function randomLayout(mib: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-quota-'));
  tmp.push(dir);
  const layout = join(dir, 'layout');
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:v1`]);
  await writeFile(join(dir, 'blob.bin'), randomBytes(mib * MiB));
  await run('umoci', ['insert', '--image', `${layout}:v1`, join(dir, 'blob.bin'), '/blob.bin']);
  return layout;
}

const creds = () => `${reg.username}:${reg.password}`;
const push = (layout: string, ref: string) => run('skopeo', ['copy', '--dest-tls-verify=false', '--retry-times', '0',
  '--dest-creds', creds(), `oci:${layout}:v1`, `docker://${reg.loginServer}/${ref}`], { timeout: 60_000 });

/** Bytes an image occupies in a registry: its manifest, config and layers, as the registry serves them. */
async function imageBytes(repo: string, tag: string): Promise<number> {
  const r = await fetch(`${reg.base}/v2/${repo}/manifests/${tag}`, { headers: { Authorization: reg.auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 200);
  const body = Buffer.from(await r.arrayBuffer());
  const m = JSON.parse(body.toString()) as { config: { size: number }; layers: Array<{ size: number }> };
  return body.length + m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
}

const usage = async () => {
  const u = await cliJson<{ value: Array<{ name: string; limit: number; currentValue: number; unit: string }> }>(b, ['acr', 'show-usage', '-n', 'quotareg01']);
  assert.equal(u.value.length, 1);
  assert.equal(u.value[0]!.name, 'Size');
  assert.equal(u.value[0]!.unit, 'Bytes');
  assert.equal(u.value[0]!.limit, LIMIT);
  return u.value[0]!.currentValue;
};

test('acr show-usage counts each distinct blob of a registry once', { skip, timeout: 120_000 }, async () => {
  assert.equal(await usage(), 0);
  const a = await randomLayout(2);
  await push(a, 'apps/a:v1');
  const size = await imageBytes('apps/a', 'v1');
  assert.ok(size > 2 * MiB);
  assert.equal(await usage(), size);
  // The same image in a second repository of the registry adds nothing.
  await push(a, 'copies/a:v1');
  assert.equal(await usage(), size);
  const table = await b.cli(['acr', 'show-usage', '-n', 'quotareg01', '-o', 'table']);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^Name\s+Limit\s+Current Value\s+Unit/im);
  assert.match(table.stdout, new RegExp(`Size\\s+${LIMIT}\\s+${size}\\s+Bytes`));
});

test('a push past the quota is refused with DENIED, leaves nothing, and fits after a delete', { skip, timeout: 120_000 }, async () => {
  const before = await usage();
  const big = await randomLayout(5);
  const refused = await push(big, 'apps/big:v1').then(() => undefined, (e: Error & { stderr?: string }) => e);
  assert.ok(refused, 'the push past the quota fails');
  assert.match(String(refused.stderr), /denied: storage quota exceeded: registry quotareg01 \(SKU Basic\) uses [\d.]+ MiB of its 6\.0 MiB/);
  assert.equal(await usage(), before, 'nothing of the refused push counts');
  assert.deepEqual(await readdir(join(b.dataDir, 'uploads')), [], 'no upload is left');
  assert.equal((await b.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM uploads'))!.n, 0);

  // A chunked upload that crosses the limit mid-way is ended: its session is gone.
  const start = await fetch(`${reg.base}/v2/apps/chunks/blobs/uploads/`, { method: 'POST', headers: { Authorization: reg.auth } });
  assert.equal(start.status, 202);
  const loc = start.headers.get('location')!;
  const patch = await fetch(new URL(loc, reg.base), { method: 'PATCH', headers: { Authorization: reg.auth, 'Content-Type': 'application/octet-stream' }, body: randomBytes(LIMIT) });
  assert.equal(patch.status, 403);
  const err = (await patch.json() as { errors: Array<{ code: string; message: string }> }).errors[0]!;
  assert.equal(err.code, 'DENIED');
  assert.match(err.message, /storage quota exceeded.*berth acr update -n quotareg01 --sku Standard/);
  const status = await fetch(new URL(loc, reg.base), { headers: { Authorization: reg.auth } });
  assert.equal(status.status, 404, 'the upload session was removed');

  // Room again once the first image's repositories are deleted.
  for (const repo of ['apps/a', 'copies/a']) {
    const del = await b.cli(['acr', 'repository', 'delete', '-n', 'quotareg01', '--repository', repo, '--yes']);
    assert.equal(del.code, 0, del.stderr);
  }
  assert.equal(await usage(), 0);
  await push(big, 'apps/big:v1');
  assert.equal(await usage(), await imageBytes('apps/big', 'v1'));
});

test('another registry has a quota of its own', { skip, timeout: 60_000 }, async () => {
  await b.registries.createOrUpdate('rg', 'quotareg02', { sku: 'Standard', adminUserEnabled: false });
  const u = await cliJson<{ value: Array<{ limit: number; currentValue: number }> }>(b, ['acr', 'show-usage', '-n', 'quotareg02']);
  assert.equal(u.value[0]!.currentValue, 0);
  assert.equal(u.value[0]!.limit, 100 * 1024 ** 3, 'Standard keeps ACR\'s 100 GiB');
});
