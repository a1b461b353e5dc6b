// `berth acr check-health` against a running server: az's "<check> : OK" lines for DNS, the TLS
// challenge, the refresh and access tokens; az's error titles (CONNECTIVITY_SSL_ERROR, LOGIN_SERVER_ERROR)
// that stop the run, or are printed and passed over with --ignore-errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';

let b: TestBerth;
let loginServer: string;
let noCa: string;
const TS = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{6}';

before(async () => {
  b = await startTestBerth();
  loginServer = (await adminRegistry(b, 'healthreg01')).loginServer;
  // The owner credential without Berth's CA: TLS to the login server cannot be verified.
  noCa = await mkdtemp(join(tmpdir(), 'berth-noca-'));
  await copyFile(join(b.dataDir, 'owner-credential.json'), join(noCa, 'owner-credential.json'));
});
after(async () => {
  await b.cleanup();
  await rm(noCa, { recursive: true, force: true });
});

test('acr check-health -n R: DNS, TLS challenge, refresh and access token with the CLI identity, each "<check> : OK"', { timeout: 60_000 }, async () => {
  const r = await b.cli(['acr', 'check-health', '-n', 'healthreg01', '--yes']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n');
  assert.match(lines[0]!, /^WARNING: Berth CLI version: 0\.1\.0 /);
  assert.match(lines[1]!, new RegExp(`^WARNING: DNS lookup to ${loginServer} at IP (127\\.0\\.0\\.1|::1) : OK$`));
  assert.deepEqual(lines.slice(2), [
    `WARNING: Challenge endpoint https://${loginServer}/v2/ : OK`,
    `WARNING: Fetch refresh token for registry '${loginServer}' : OK`,
    `WARNING: Fetch access token for registry '${loginServer}' : OK`,
    'WARNING: ',
    'Please refer to https://aka.ms/acr/health-check for more information.',
    '',
  ]);
});

test('an untrusted TLS certificate is CONNECTIVITY_SSL_ERROR: it stops the run (exit 1, deep link), or with --ignore-errors is printed and the token checks are skipped', { timeout: 60_000 }, async () => {
  const env = { BERTH_DATA_DIR: noCa, BERTH_SERVER: b.url };
  const r = await b.cli(['acr', 'check-health', '-n', 'healthreg01'], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`ERROR: ${TS} An error occurred: CONNECTIVITY_SSL_ERROR\\nUnable to establish a secure connection to the registry '${loginServer}'\\. Are you using a proxy server\\?\\nTLS: .*\\nPlease refer to https://aka\\.ms/acr/errors#connectivity_ssl_error for more information\\.\\n$`));
  assert.doesNotMatch(r.stderr, /Challenge endpoint/);
  const ignored = await b.cli(['acr', 'check-health', '-n', 'healthreg01', '--ignore-errors'], { env });
  assert.equal(ignored.code, 0, ignored.stderr);
  assert.match(ignored.stderr, /DNS lookup to .* : OK\nERROR: .*An error occurred: CONNECTIVITY_SSL_ERROR\n/);
  assert.doesNotMatch(ignored.stderr, /Fetch refresh token/);
  assert.match(ignored.stderr, /Please refer to https:\/\/aka\.ms\/acr\/health-check for more information\.\n$/);
});

test('an unknown registry is LOGIN_SERVER_ERROR; without -n only the environment is checked', { timeout: 60_000 }, async () => {
  const r = await b.cli(['acr', 'check-health', '-n', 'nosuchregistry']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /An error occurred: LOGIN_SERVER_ERROR\nAn error occurred while retrieving the login server for registry 'nosuchregistry'\./);
  const env = await b.cli(['acr', 'check-health']);
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stderr, /WARNING: Registry name must be provided to check connectivity\./);
});
