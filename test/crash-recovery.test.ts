// kill -9 of `berth serve` in the middle of uploads: after a restart no partial blob is visible, the
// chunked upload resumes from what reached the disk, a new upload works, and what was stored before is
// intact (skopeo verifies every digest when it pulls it back).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BERTH_BIN, cliAdminRegistry } from './helpers/berth.js';
import { busyboxLayout, haveImageTools } from './helpers/images.js';

const run = promisify(execFile);
const skip = haveImageTools();
const dirs: string[] = [];
const procs: ChildProcess[] = [];
after(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function serve(dataDir: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [BERTH_BIN, 'serve', '--data-dir', dataDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /ready at (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]!);
    });
    proc.once('exit', (c) => rej(new Error(`berth serve exited ${c} before it was ready: ${out}`)));
  });
  return { proc, url };
}

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** Starts a request whose body is sent in part and never finished. */
function hangingRequest(url: string, method: string, headers: Record<string, string>, part: Buffer): Promise<void> {
  return new Promise((res) => {
    const req = request(url, { method, headers });
    req.on('error', () => undefined);
    req.write(part, () => setTimeout(res, 300));
  });
}

test('kill -9 mid-upload leaves no partial blob and nothing damaged; the upload resumes after a restart', { skip }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-crash-'));
  dirs.push(dataDir);
  let { proc, url } = await serve(dataDir);
  const env = { ...process.env, BERTH_SERVER: url, BERTH_DATA_DIR: dataDir };
  const { loginServer: login, creds, auth } = await cliAdminRegistry(env, 'crashreg01');
  const base = `http://${login}/v2/crash/data`;

  // something stored before the crash
  const layout = await busyboxLayout('v1');
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:v1`, `docker://${login}/kept/busybox:v1`]);

  // a chunked upload with one chunk accepted and a second one half-sent
  const blob = randomBytes(3 << 20);
  const digest = sha(blob);
  const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: { Authorization: auth } });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, `http://${login}`).toString();
  const first = await fetch(location, { method: 'PATCH', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${(1 << 20) - 1}` }, body: blob.subarray(0, 1 << 20) });
  assert.equal(first.status, 202);
  await hangingRequest(location, 'PATCH', { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' }, blob.subarray(1 << 20, (1 << 20) + (512 << 10)));
  // and a monolithic upload cut off half way
  const other = randomBytes(2 << 20);
  const start2 = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: { Authorization: auth } });
  const loc2 = new URL(start2.headers.get('location')!, `http://${login}`);
  loc2.searchParams.set('digest', sha(other));
  await hangingRequest(loc2.toString(), 'PUT', { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Content-Length': String(other.length) }, other.subarray(0, 1 << 20));

  proc.kill('SIGKILL');
  await new Promise((r) => proc.once('exit', r));
  ({ proc, url } = await serve(dataDir));

  // no partial blob is visible
  for (const d of [digest, sha(other)]) {
    const h = await fetch(`${base}/blobs/${d}`, { method: 'HEAD', headers: { Authorization: auth } });
    assert.equal(h.status, 404, `${d} must not exist after the crash`);
  }
  // the chunked upload reports what reached the disk and resumes from there
  const status = await fetch(location, { headers: { Authorization: auth } });
  assert.equal(status.status, 204);
  const have = Number(/^0-(\d+)$/.exec(status.headers.get('range') ?? '')?.[1]) + 1;
  assert.ok(have >= 1 << 20 && have <= (1 << 20) + (512 << 10), `upload resumes from a byte the server holds (${have})`);
  const rest = await fetch(location, { method: 'PATCH', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `${have}-${blob.length - 1}` }, body: blob.subarray(have) });
  assert.equal(rest.status, 202);
  const fin = new URL(rest.headers.get('location')!, `http://${login}`);
  fin.searchParams.set('digest', digest);
  const put = await fetch(fin, { method: 'PUT', headers: { Authorization: auth }, body: '' });
  assert.equal(put.status, 201);
  const got = Buffer.from(await (await fetch(`${base}/blobs/${digest}`, { headers: { Authorization: auth } })).arrayBuffer());
  assert.equal(sha(got), digest);
  // the cut-off monolithic upload can simply be done again
  const again = await fetch(`${base}/blobs/uploads/?digest=${sha(other)}`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' }, body: other });
  assert.equal(again.status, 201);
  // the image stored before the crash pulls back intact
  const out = join(await mkdtemp(join(tmpdir(), 'berth-crash-pull-')), 'o');
  dirs.push(join(out, '..'));
  await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${login}/kept/busybox:v1`, `oci:${out}:v1`]);
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
});
