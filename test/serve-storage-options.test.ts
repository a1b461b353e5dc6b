// berth serve's size options: parsed as people write sizes, refused with the flag's name when they are
// not sizes, and --storage-reserve reaches the registry (a reserve larger than the disk refuses every
// upload with 507 and the reserve in the message).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBytes } from '../src/lib/bytes.js';
import { cliAdminRegistry, runCli } from './helpers/berth.js';
import { startServeChild, stopServeChild, type ServeChild } from './helpers/serve-child.js';

const dirs: string[] = [];
let served: ServeChild | undefined;
let env: NodeJS.ProcessEnv = process.env;
after(async () => {
  await stopServeChild(served?.child, env);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('sizes: units are powers of 1024, with or without "i"; anything else is refused', () => {
  assert.equal(parseBytes('256MB'), 256 * 1024 ** 2);
  assert.equal(parseBytes('1GiB'), 1024 ** 3);
  assert.equal(parseBytes('512k'), 512 * 1024);
  assert.equal(parseBytes('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(parseBytes('4096'), 4096);
  for (const bad of ['', 'lots', '-1MB', '10 PB', 'MB']) assert.throws(() => parseBytes(bad), /is not a size/);
});

test('a size option that is not a size exits 2 naming the flag', { timeout: 30_000 }, async () => {
  for (const flag of ['--storage-reserve', '--max-layer-unpacked', '--max-image-unpacked']) {
    const r = await runCli(['serve', '--data-dir', '/nonexistent/never-created', flag, 'lots'], process.env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`argument ${flag}: 'lots' is not a size`));
  }
});

test('--storage-reserve reaches the registry: a reserve past the free space refuses uploads with 507', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-serve-'));
  dirs.push(dir);
  env = { ...process.env, BERTH_DATA_DIR: dir };
  served = await startServeChild(['--data-dir', dir, '--port', '0', '--no-tls', '--storage-reserve', '100TB'], env);
  env = { ...env, BERTH_SERVER: served.url };
  const { loginServer: login, auth, creds } = await cliAdminRegistry(env, 'reservereg01');
  const r = await fetch(`http://${login}/v2/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: auth } });
  assert.equal(r.status, 507);
  const e = ((await r.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
  assert.equal(e.code, 'UNKNOWN');
  assert.match(e.message, /Berth keeps 100 TiB in reserve for its metadata/);
  // Berth's own push client reads the body of a 5xx answer: the user sees the message.
  const rootDir = await mkdtemp(join(tmpdir(), 'berth-img-'));
  dirs.push(rootDir);
  await writeFile(join(rootDir, 'hello.txt'), 'hello\n');
  const [user, pass] = creds.split(/:(.*)/s) as [string, string];
  const push = await runCli(['image', 'push', rootDir, `${login}/app:v1`, '--username', user, '--password', pass], env);
  assert.equal(push.code, 1);
  assert.match(push.stderr, /unknown: insufficient storage: the disk holding the Berth server's data directory is full/);
});
