// A full data disk: Berth on a 64 MiB tmpfs. Pushes with real skopeo until the reserve is reached get
// 507 Insufficient Storage with nothing half-written left, metadata writes still succeed, and after a
// delete and garbage collection a push works again. The filesystem's own ENOSPC (no reserve) is met
// the same way by the blob store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startTestBerth, adminRegistry, cliJson, type TestBerth } from './helpers/berth.js';
import { mountTmpfs } from './helpers/tmpfs.js';
import { busyboxLayout, haveImageTools } from './helpers/images.js';
import { FsBlobStore } from '../src/storage/fs-blob-store.js';
import { DiskSpace, StorageFullError } from '../src/storage/disk-space.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Files under `dir` (recursively), as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.path, e.name).slice(dir.length + 1));
  }
  return out;
}

let fs: { dir: string; unmount(): Promise<void> } | undefined;
let skip: string | undefined = haveImageTools();
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
const RESERVE = 12 * MiB;

before(async () => {
  if (skip) return;
  const m = await mountTmpfs('64m');
  if (typeof m === 'string') {
    skip = m;
    console.log(`# skipped: ${m}`);
    return;
  }
  fs = m;
  b = await startTestBerth(join(fs.dir, 'data'), [], 0, { storageReserve: RESERVE, tls: false });
  reg = await adminRegistry(b, 'fullreg01');
});
after(async () => {
  await b?.cleanup();
  await fs?.unmount();
});

/** An OCI layout whose one layer is `mib` MiB of random (incompressible) bytes. */
async function bigLayout(mib: number): Promise<string> {
  const layout = await busyboxLayout('v1');
  const file = join(await mkdtemp(join(tmpdir(), 'berth-big-')), 'blob.bin');
  await writeFile(file, randomBytes(mib * MiB));
  await run('umoci', ['insert', '--image', `${layout}:v1`, file, '/blob.bin']);
  await rm(file);
  return layout;
}

const push = (layout: string, ref: string) => run('skopeo', ['copy', '--dest-tls-verify=false', '--retry-times', '0',
  '--dest-creds', `${reg.username}:${reg.password}`, `oci:${layout}:v1`, `docker://${reg.loginServer}/${ref}`], { timeout: 60_000 });

test('pushes on a nearly full data disk get 507, leave nothing behind, and metadata writes still work', { skip, timeout: 180_000 }, async () => {
  const data = join(fs!.dir, 'data');
  let failure: (Error & { stderr?: string }) | undefined;
  const pushed: string[] = [];
  for (let i = 0; i < 6 && !failure; i++) {
    const layout = await bigLayout(10);
    try {
      await push(layout, `fill/img${i}:v1`);
      pushed.push(`fill/img${i}`);
    } catch (e) {
      failure = e as Error & { stderr?: string };
    } finally {
      await rm(join(layout, '..'), { recursive: true, force: true });
    }
  }
  assert.ok(failure, 'a push failed before six 10 MiB images filled a 64 MiB disk');
  assert.ok(pushed.length >= 1, 'the first pushes fit');
  assert.match(String(failure.stderr), /507 Insufficient Storage/, 'skopeo names the status');
  // What a client reading the body sees (a monolithic upload larger than what is left above the
  // reserve), and what the log says (one warning line, no stack).
  const r = await fetch(`${reg.base}/v2/fill/more/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, {
    method: 'POST', headers: { Authorization: reg.auth, 'Content-Type': 'application/octet-stream' }, body: randomBytes(16 * MiB),
  });
  assert.equal(r.status, 507);
  const body = await r.json() as { errors: Array<{ code: string; message: string }> };
  assert.equal(body.errors[0]!.code, 'UNKNOWN');
  assert.match(body.errors[0]!.message, /disk holding the Berth server's data directory is full .*reserve.*berth acr gc/);
  const warnings = b.logs.filter((l) => l.includes('registry storage full'));
  assert.ok(warnings.length >= 1);
  assert.ok(!warnings.some((l) => l.includes('    at ')), 'no stack in the log');
  assert.ok(!b.logs.some((l) => l.includes('registry internal error')), 'nothing logged as an internal error');

  // Nothing half-written: no upload session file, no upload row.
  assert.deepEqual(await filesUnder(join(data, 'uploads')), []);
  assert.equal((await b.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM uploads'))!.n, 0);

  // Another writer takes the disk below the reserve: a new manifest is refused, a new upload is
  // refused at its start, but metadata writes still succeed in what the reserve kept.
  const filler = join(fs!.dir, 'filler');
  const { free } = await new DiskSpace(data).read();
  await writeFile(filler, Buffer.alloc(free - RESERVE + MiB));
  const m = await fetch(`${reg.base}/v2/${pushed[0]}/manifests/v1`, { headers: { Authorization: reg.auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const stored = await m.text();
  const putManifest = (tag: string, body: string) => fetch(`${reg.base}/v2/${pushed[0]}/manifests/${tag}`, {
    method: 'PUT', headers: { Authorization: reg.auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body,
  });
  const changed = await putManifest('changed', JSON.stringify({ ...JSON.parse(stored), annotations: { note: 'a new manifest needs new bytes' } }));
  assert.equal(changed.status, 507);
  assert.match(((await changed.json()) as { errors: Array<{ message: string }> }).errors[0]!.message, /the manifest was not stored/);
  const start = await fetch(`${reg.base}/v2/fill/more/blobs/uploads/`, { method: 'POST', headers: { Authorization: reg.auth } });
  assert.equal(start.status, 507, 'no upload starts inside the reserve');
  // A new tag for a stored manifest needs no blob bytes: it is a metadata write, and it succeeds.
  const retag = await putManifest('retagged', stored);
  assert.equal(retag.status, 201);
  await cliJson(b, ['identity', 'create', '-g', 'rg', '-n', 'full-disk-id']);
  const id = await cliJson<{ principalId: string }>(b, ['identity', 'show', '-g', 'rg', '-n', 'full-disk-id']);
  const registryId = (await cliJson<{ id: string }>(b, ['acr', 'show', '-n', 'fullreg01'])).id;
  const ra = await cliJson<{ principalId: string }>(b, ['role', 'assignment', 'create', '--assignee', id.principalId, '--scope', registryId, '--role', 'AcrPull']);
  assert.equal(ra.principalId, id.principalId);
  assert.deepEqual(await filesUnder(join(data, 'uploads')), []);
  await rm(filler);

  // Delete what was pushed, collect it (as if the grace period had passed), and push again.
  for (const repo of pushed) await b.registryService.deleteRepository((await b.registries.get('rg', 'fullreg01')).id, repo);
  const gc = await b.registryService.collectGarbage(Date.now() + 48 * 3600_000);
  assert.ok(gc.bytesFreed >= 10 * MiB, `GC freed ${gc.bytesFreed} bytes`);
  const layout = await bigLayout(10);
  await push(layout, 'fill/again:v1');
  await rm(join(layout, '..'), { recursive: true, force: true });
});

test('the blob store removes an upload the filesystem has no room for (ENOSPC, no reserve)', { skip, timeout: 60_000 }, async () => {
  const small = await mountTmpfs('8m');
  if (typeof small === 'string') return;
  try {
    const root = join(small.dir, 'raw');
    await mkdir(root);
    // No reserve, and free space read once: the filesystem's own ENOSPC is what stops the write.
    const store = new FsBlobStore(root, { space: new DiskSpace(root, { reserve: 0, refreshBytes: Number.MAX_SAFE_INTEGER }) });
    await store.init();
    await store.startUpload('rawupload1');
    const filler = join(small.dir, 'filler');
    const chunks = async function* () {
      yield randomBytes(MiB);
      // Another writer fills the disk meanwhile.
      await fillUp(filler);
      for (let i = 0; i < 4; i++) yield randomBytes(MiB);
    };
    await assert.rejects(store.appendUpload('rawupload1', 0, Readable.from(chunks())),
      (e: unknown) => e instanceof StorageFullError && e.kind === 'full');
    assert.equal(await store.uploadSize('rawupload1'), undefined, 'the session file is gone');
    assert.deepEqual(await filesUnder(root), []);
    // With room again, a new upload commits.
    await rm(filler);
    await store.startUpload('rawupload2');
    await store.appendUpload('rawupload2', 0, Readable.from([Buffer.from('hello')]));
    const info = await store.commitUpload('rawupload2', 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' as never);
    assert.equal(info.size, 5);
  } finally {
    await small.unmount();
  }
});

/** Writes `path` until the filesystem answers ENOSPC. */
async function fillUp(path: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const buf = Buffer.alloc(MiB, 1);
    for (;;) await fh.write(buf);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    await fh.close();
  }
}
