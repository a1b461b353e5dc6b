// A refused upload chunk is answered only once the client has sent its whole body: Go clients
// (skopeo, podman, docker) that get an answer while still sending often report "broken pipe" instead
// of the registry's message. Checked on a raw socket, so the test sees when the answer comes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';

let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
before(async () => {
  b = await startTestBerth(undefined, [], 0, { tls: false });
  reg = await adminRegistry(b, 'drainreg01');
});
after(async () => b?.cleanup());

test('a chunk refused before its body is read gets its answer after the body, on a connection that stays usable', { timeout: 30_000 }, async () => {
  const start = await fetch(`${reg.base}/v2/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: reg.auth } });
  assert.equal(start.status, 202);
  const path = start.headers.get('location')!;
  const [host, port] = reg.loginServer.split(':');
  const sock = connect(Number(port), host === 'localhost' ? '127.0.0.1' : host);
  await new Promise((r) => sock.once('connect', r));
  let received = '';
  sock.on('data', (d) => { received += d.toString('latin1'); });
  const half = Buffer.alloc(512 * 1024, 7);
  // Content-Range starts at 5 on an empty upload: refused (416) before a byte of the body is read.
  sock.write(`PATCH ${path} HTTP/1.1\r\nHost: ${reg.loginServer}\r\nAuthorization: ${reg.auth}\r\nContent-Type: application/octet-stream\r\n` +
    `Content-Length: ${2 * half.length}\r\nContent-Range: 5-${5 + 2 * half.length - 1}\r\n\r\n`);
  sock.write(half);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(received, '', 'no answer while the body is still coming');
  sock.write(half);
  const deadline = Date.now() + 10_000;
  while (!received.includes('\r\n\r\n') || !received.includes('}')) {
    assert.ok(Date.now() < deadline, `an answer after the body (got ${JSON.stringify(received.slice(0, 200))})`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(received, /^HTTP\/1\.1 416 /);
  assert.match(received, /BLOB_UPLOAD_INVALID/);
  // The same connection serves the next request.
  received = '';
  sock.write(`GET ${path} HTTP/1.1\r\nHost: ${reg.loginServer}\r\nAuthorization: ${reg.auth}\r\n\r\n`);
  while (!received.includes('\r\n\r\n')) {
    assert.ok(Date.now() < deadline, 'the connection still answers');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(received, /^HTTP\/1\.1 204 /);
  sock.destroy();
});
