// The CLI keeps its management token between runs (a 0600 file next to the credential) and recovers
// when the server refuses a cached token; lazily loaded commands still show their full --help.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestBerth, type TestBerth } from './helpers/berth.js';

let b: TestBerth;
let cachePath: string;
let secret: string;

before(async () => {
  b = await startTestBerth();
  cachePath = join(b.env.BERTH_DATA_DIR!, 'cli-token-cache.json');
  secret = (JSON.parse(await readFile(join(b.env.BERTH_DATA_DIR!, 'owner-credential.json'), 'utf8')) as { clientSecret: string }).clientSecret;
});
after(async () => {
  await b?.cleanup();
});

const tokens = async () => Object.values(JSON.parse(await readFile(cachePath, 'utf8')) as Record<string, { accessToken: string; expiresOn: number }>);

test('the second command reuses the cached token; the cache is owner-only and holds no secret', async () => {
  const r1 = await b.cli(['group', 'create', '-n', 'rg1', '-l', 'westus']);
  assert.equal(r1.code, 0, r1.stderr);
  const st = await stat(cachePath);
  assert.equal(st.mode & 0o777, 0o600);
  const text = await readFile(cachePath, 'utf8');
  assert.ok(!text.includes(secret), 'the client secret is not in the token cache');
  const [first] = await tokens();
  assert.ok(first && first.accessToken.split('.').length === 3, 'a JWT is cached');
  assert.ok(first.expiresOn > Date.now() + 30 * 60_000, 'with its expiry');
  assert.ok(!r1.stdout.includes(first.accessToken) && !r1.stderr.includes(first.accessToken), 'the token is never printed');

  const r2 = await b.cli(['group', 'show', '-n', 'rg1', '--query', 'name', '-o', 'tsv']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.stdout, 'rg1\n');
  assert.deepEqual(await tokens(), [first], 'no new token was requested (the cache file is unchanged)');
});

test('a cached token the server refuses is replaced, and the command succeeds', async () => {
  const all = JSON.parse(await readFile(cachePath, 'utf8')) as Record<string, { accessToken: string; expiresOn: number }>;
  for (const e of Object.values(all)) e.accessToken = 'eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.bm90LWEtc2lnbmF0dXJl';
  await writeFile(cachePath, JSON.stringify(all), { mode: 0o600 });
  const r = await b.cli(['group', 'list', '--query', '[].name', '-o', 'tsv']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'rg1\n');
  const [e] = await tokens();
  assert.notEqual(e!.accessToken, 'eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.bm90LWEtc2lnbmF0dXJl');
});

test('an expired cached token is not used', async () => {
  const all = JSON.parse(await readFile(cachePath, 'utf8')) as Record<string, { accessToken: string; expiresOn: number }>;
  for (const e of Object.values(all)) e.expiresOn = Date.now() + 60_000; // inside the 5-minute margin
  await writeFile(cachePath, JSON.stringify(all), { mode: 0o600 });
  const r = await b.cli(['group', 'list', '-o', 'none']);
  assert.equal(r.code, 0, r.stderr);
  const [e] = await tokens();
  assert.ok(e!.expiresOn > Date.now() + 30 * 60_000, 'a fresh token was fetched and cached');
});

test('commands whose implementation loads lazily still show their options in --help', async () => {
  for (const [args, want] of [[['container', 'create', '--help'], '--registry-password'], [['pull', '--help'], '--registry-config'],
    [['image', 'push', '--help'], '--password-stdin'], [['vault', 'rotate-kek', '--help'], '--data-dir'], [['acr', 'repository', 'list', '--help'], '--top']] as const) {
    const r = await b.cli([...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(want), args.join(' '));
  }
  const v = await b.cli(['--version']);
  assert.equal(v.stdout.trim(), '0.1.0');
});
