// The contract every BlobStore implementation passes (issue 16): registered once per implementation by
// test/blob-store-contract.test.ts. Only the interface is used, so a new store runs the same cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import { DigestMismatchError, UploadOffsetError, UploadTooLargeError, type BlobStore } from '../../src/storage/blob-store.js';

export interface ContractBackend {
  /** A store on fresh, empty storage. */
  store: BlobStore;
  /** A second instance on the same storage (another replica, or the same server after a restart). */
  replica(): Promise<BlobStore>;
  /** A size that makes the store split an upload into several stored pieces (its part size), if it has one. */
  partSize?: number;
}

const MiB = 1024 * 1024;

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A readable that yields `data` in pieces of `piece` bytes. */
function pieces(data: Buffer, piece = 64 * 1024): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) out.push(data.subarray(i, i + piece));
  return Readable.from(out, { objectMode: false });
}

/** A readable that yields `data`, then fails. */
function failingAfter(data: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) { sent = true; this.push(data); return; }
      setImmediate(() => this.destroy(new Error('client went away')));
    },
  });
}

async function put(store: BlobStore, data: Buffer, digest: Digest = digestOf(data)): Promise<Digest> {
  const id = randomUUID();
  await store.startUpload(id);
  await store.appendUpload(id, 0, pieces(data));
  await store.commitUpload(id, digest);
  return digest;
}

export function blobStoreContract(name: string, backend: () => ContractBackend | string | undefined): void {
  // node:test runs what test() registers; its promise needs no await.
  const t = (title: string, fn: (b: ContractBackend) => Promise<void>): void => void
    test(`${name}: ${title}`, { timeout: 180_000 }, async (ctx) => {
      const b = backend();
      if (typeof b === 'string') { ctx.skip(b); return; }
      assert.ok(b, 'the backend was not set up');
      await fn(b);
    });

  t('an unknown digest has no stat; deleting it is no error', async ({ store }) => {
    const d = digestOf(randomBytes(16));
    assert.equal(await store.stat(d), undefined);
    await store.delete(d);
  });

  t('one upload: started empty, appended, committed; read whole and by range', async ({ store }) => {
    const data = randomBytes(300 * 1024);
    const id = randomUUID();
    await store.startUpload(id);
    assert.equal(await store.uploadSize(id), 0);
    assert.equal(await store.appendUpload(id, 0, pieces(data)), data.length);
    assert.equal(await store.uploadSize(id), data.length);
    const d = digestOf(data);
    assert.equal(await store.stat(d), undefined, 'nothing is visible before the commit');
    const info = await store.commitUpload(id, d);
    assert.equal(info.size, data.length);
    assert.ok(Math.abs(info.modifiedAt - Date.now()) < 10 * 60_000, 'modifiedAt is a time near now');
    assert.equal((await store.stat(d))?.size, data.length);
    assert.ok((await readAll(store.open(d))).equals(data));
    assert.ok((await readAll(store.open(d, { start: 1000, end: 1999 }))).equals(data.subarray(1000, 2000)));
    assert.ok((await readAll(store.open(d, { start: data.length - 1, end: data.length - 1 }))).equals(data.subarray(-1)));
    assert.equal(await store.uploadSize(id), undefined, 'a committed session is gone');
  });

  t('chunked appends are held to their offset; the blob is their concatenation', async (b) => {
    const { store } = b;
    const part = b.partSize ?? MiB;
    // Sizes around the part size: a short tail continued, a part filled exactly, one crossing two parts.
    const sizes = [1000, part - 1000 - 7, 7, 3, part + 5, Math.floor(part / 2), 1];
    const chunks = sizes.map((n) => randomBytes(n));
    const all = Buffer.concat(chunks);
    const id = randomUUID();
    await store.startUpload(id);
    let offset = 0;
    for (const c of chunks) {
      await assert.rejects(store.appendUpload(id, offset + 1, pieces(c)), UploadOffsetError);
      offset = await store.appendUpload(id, offset, pieces(c, 4096));
      assert.equal(await store.uploadSize(id), offset);
    }
    assert.equal(offset, all.length);
    const d = digestOf(all);
    assert.equal((await store.commitUpload(id, d)).size, all.length);
    const back = await readAll(store.open(d));
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(all).digest('hex'));
    const mid = Math.floor(all.length / 2);
    assert.ok((await readAll(store.open(d, { start: mid, end: mid + part }))).equals(all.subarray(mid, mid + part + 1)));
  });

  t('a digest that does not match keeps nothing', async ({ store }) => {
    const data = randomBytes(5000);
    const wrong = digestOf(Buffer.from('something else'));
    const id = randomUUID();
    await store.startUpload(id);
    await store.appendUpload(id, 0, pieces(data));
    await assert.rejects(store.commitUpload(id, wrong), (e: unknown) => e instanceof DigestMismatchError && e.actual === digestOf(data));
    assert.equal(await store.stat(wrong), undefined);
    assert.equal(await store.stat(digestOf(data)), undefined);
    assert.equal(await store.uploadSize(id), undefined);
  });

  t('an empty blob, a sha512 digest, and the same content twice', async ({ store }) => {
    const empty = await put(store, Buffer.alloc(0));
    assert.equal((await store.stat(empty))?.size, 0);
    assert.equal((await readAll(store.open(empty))).length, 0);
    const data = randomBytes(70_000);
    const d512 = await put(store, data, digestOf(data, 'sha512'));
    assert.ok((await readAll(store.open(d512))).equals(data));
    const d = await put(store, data);
    await put(store, data);
    assert.ok((await readAll(store.open(d))).equals(data));
  });

  t('abort removes a session; unknown sessions have no size and take no bytes', async ({ store }) => {
    const id = randomUUID();
    await store.startUpload(id);
    await store.appendUpload(id, 0, pieces(randomBytes(1000)));
    await store.abortUpload(id);
    assert.equal(await store.uploadSize(id), undefined);
    const unknown = randomUUID();
    assert.equal(await store.uploadSize(unknown), undefined);
    await assert.rejects(store.appendUpload(unknown, 0, pieces(randomBytes(10))));
    await assert.rejects(store.commitUpload(unknown, digestOf(Buffer.alloc(0))));
  });

  t('list shows committed blobs; delete removes one; listUploads shows open sessions', async ({ store }) => {
    const a = await put(store, randomBytes(100));
    const b = await put(store, randomBytes(200));
    const id = randomUUID();
    await store.startUpload(id);
    const listed = new Set<string>();
    for await (const d of store.list()) listed.add(d);
    assert.ok(listed.has(a) && listed.has(b));
    await store.delete(a);
    assert.equal(await store.stat(a), undefined);
    listed.clear();
    for await (const d of store.list()) listed.add(d);
    assert.ok(!listed.has(a) && listed.has(b));
    const uploads: { id: string; modifiedAt: number }[] = [];
    for await (const u of store.listUploads()) uploads.push(u);
    const mine = uploads.find((u) => u.id === id);
    assert.ok(mine, 'the open session is listed');
    assert.ok(Math.abs(mine.modifiedAt - Date.now()) < 10 * 60_000);
    assert.ok(!uploads.some((u) => u.id.length < 8), 'only session ids are listed');
    await store.abortUpload(id);
  });

  t('a chunk longer than allowed is refused', async ({ store }) => {
    const id = randomUUID();
    await store.startUpload(id);
    await assert.rejects(store.appendUpload(id, 0, pieces(randomBytes(10_000), 1000), 4000), UploadTooLargeError);
    const size = (await store.uploadSize(id)) ?? 0;
    assert.ok(size <= 4000, `at most the allowed bytes are kept (${size})`);
    await store.abortUpload(id);
  });

  t('a body that fails midway keeps a prefix; the upload resumes from uploadSize()', async (b) => {
    const { store } = b;
    const data = randomBytes((b.partSize ?? MiB) + 300_000);
    const cut = (b.partSize ?? MiB) + 1000;
    const id = randomUUID();
    await store.startUpload(id);
    await assert.rejects(store.appendUpload(id, 0, failingAfter(data.subarray(0, cut))));
    const kept = await store.uploadSize(id);
    assert.ok(kept !== undefined && kept <= cut, `a prefix of what was sent is kept (${kept} of ${cut})`);
    await store.appendUpload(id, kept, pieces(data.subarray(kept)));
    const d = digestOf(data);
    await store.commitUpload(id, d);
    assert.ok((await readAll(store.open(d))).equals(data));
  });

  t('another instance on the same storage continues and commits an upload', async (b) => {
    const first = b.store;
    const second = await b.replica();
    const part = b.partSize ?? MiB;
    const one = randomBytes(part + 12_345);
    const two = randomBytes(54_321);
    const id = randomUUID();
    await first.startUpload(id);
    await first.appendUpload(id, 0, pieces(one));
    assert.equal(await second.uploadSize(id), one.length);
    await second.appendUpload(id, one.length, pieces(two));
    const d = digestOf(Buffer.concat([one, two]));
    await second.commitUpload(id, d);
    assert.equal((await first.stat(d))?.size, one.length + two.length);
    assert.ok((await readAll(first.open(d))).equals(Buffer.concat([one, two])));
  });
}
