// The blob store's transfer helpers on their own: the upload writer (chunks of any size in, pieces of
// at most one buffer out, in order, one at a time; a refused or failed body leaves the request as it
// was) and the file sender (whole files and ranges, a client that goes away mid-way).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { TooManyBytesError, writeCoalesced } from '../src/storage/coalesce.js';
import { sendFile } from '../src/storage/file-sender.js';
import { BUFFER_BYTES } from '../src/storage/buffer-pool.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A flush that copies each piece (the writer reuses its buffers), takes a turn of the loop, and checks one runs at a time. */
function collector() {
  const pieces: Buffer[] = [];
  let busy = false;
  const flush = async (p: Buffer) => {
    assert.equal(busy, false, 'two flushes at once');
    assert.ok(p.length > 0 && p.length <= BUFFER_BYTES, `piece of ${p.length} bytes`);
    busy = true;
    pieces.push(Buffer.from(p));
    await tick();
    busy = false;
  };
  return { pieces, flush, all: () => Buffer.concat(pieces) };
}

test('the upload writer passes every byte on in order, in pieces of at most one buffer, whatever the chunk sizes', async () => {
  const sizes = [1, 100_000, BUFFER_BYTES - 1, 2, BUFFER_BYTES, 17, 3 * BUFFER_BYTES + 5, 0, 65_536];
  const chunks = sizes.map((n) => randomBytes(n));
  const c = collector();
  const n = await writeCoalesced(Readable.from(chunks), c.flush);
  const want = Buffer.concat(chunks);
  assert.equal(n, want.length);
  assert.ok(c.all().equals(want));
  assert.ok(c.pieces.slice(0, -1).every((p) => p.length === BUFFER_BYTES), 'every piece but the last is full');
  // An empty body: no flush at all.
  const e = collector();
  assert.equal(await writeCoalesced(Readable.from([]), e.flush), 0);
  assert.equal(e.pieces.length, 0);
});

test('a body past maxBytes: what came before the offending chunk is flushed, the body is left readable', async () => {
  const chunks = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
  const body = new PassThrough();
  const c = collector();
  const writing = writeCoalesced(body, c.flush, 3500);
  for (const ch of chunks) body.write(ch);
  await assert.rejects(writing, TooManyBytesError);
  assert.ok(c.all().equals(Buffer.concat(chunks.slice(0, 2))));
  assert.equal(body.destroyed, false);
  // The caller can still read (drain) what comes after: the offending chunk itself is gone.
  body.end(randomBytes(500));
  let rest = 0;
  for await (const x of body) rest += (x as Buffer).length;
  assert.equal(rest, 500);
});

test('a body that fails mid-way rejects with its error; a failing flush rejects with the flush error', async () => {
  const body = new PassThrough();
  const c = collector();
  const writing = writeCoalesced(body, c.flush);
  body.write(randomBytes(BUFFER_BYTES + 10));
  await tick();
  body.destroy(new Error('client went away'));
  await assert.rejects(writing, /client went away/);

  const failing = writeCoalesced(Readable.from([randomBytes(2 * BUFFER_BYTES + 1)]), async () => {
    throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
  });
  await assert.rejects(failing, /no space/);
});

test('the file sender sends whole files and ranges, and stops when the client goes away', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-send-'));
  try {
    const data = randomBytes(2 * BUFFER_BYTES + 12345);
    const path = join(dir, 'blob');
    await writeFile(path, data);
    const collect = async (start: number, end: number) => {
      const out = new PassThrough();
      const got: Buffer[] = [];
      // Copied at once: the sender reuses a buffer when its write callback has run.
      out.on('data', (d: Buffer) => got.push(Buffer.from(d)));
      await sendFile(path, out, start, end);
      out.end();
      await tick();
      return Buffer.concat(got);
    };
    assert.ok((await collect(0, data.length - 1)).equals(data));
    assert.ok((await collect(1000, BUFFER_BYTES + 5000)).equals(data.subarray(1000, BUFFER_BYTES + 5001)));
    assert.ok((await collect(7, 7)).equals(data.subarray(7, 8)));
    await assert.rejects(sendFile(path, new PassThrough().resume(), 0, data.length + 10), /ended at/);

    // A slow client that disconnects after the first piece: the send resolves, it does not hang.
    let seen = 0;
    const gone = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        setTimeout(() => (seen > 0 ? this.destroy() : cb()), 5);
      },
    });
    await sendFile(path, gone, 0, data.length - 1);
    assert.ok(gone.destroyed && seen < data.length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
