// `berth login` without --service-principal: az's browser, device-code, user and managed identity
// sign-ins cannot work against a Berth server; the CLI says what does instead, and changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, cliJson, type TestBerth } from './helpers/berth.js';

let b: TestBerth;
let config: string;
before(async () => {
  b = await startTestBerth();
  config = await mkdtemp(join(tmpdir(), 'berth-login-config-'));
});
after(async () => {
  await b.cleanup();
  await rm(config, { recursive: true, force: true });
});

test('berth login (interactive, --use-device-code, -u user -p pw, --identity) names the owner context and service-principal login, and signs nothing in', { timeout: 60_000 }, async () => {
  const env = { BERTH_CONFIG_DIR: config };
  const cases: Array<[string[], RegExp]> = [
    [[], /^ERROR: berth login has no interactive sign-in: a Berth server has no Microsoft Entra ID to sign a user in\. What works instead:\n/],
    [['--use-device-code'], /^ERROR: berth login has no device code sign-in:/],
    [['-u', 'someone@example.com', '-p', 'pw'], /^ERROR: berth login has no user sign-in:/],
    [['--identity'], /^ERROR: berth login --identity is not supported: managed identities belong to container groups, and the CLI runs outside them\./],
  ];
  for (const [args, why] of cases) {
    const r = await b.cli(['login', ...args], { env });
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, why);
    assert.ok(r.stderr.includes(`the CLI already acts as the local owner of ${b.url} (credential ${join(b.dataDir, 'owner-credential.json')})`), r.stderr);
    assert.match(r.stderr, /berth login --service-principal -u APPID -p PASSWORD --tenant TENANT/);
    assert.doesNotMatch(r.stderr, /\bpw\b/);
  }
  assert.equal(existsSync(join(config, 'profile.json')), false, 'nothing signed in');
  assert.equal((await cliJson(b, ['account', 'show'])).user.localOwner, true);
  const none = await b.cli(['login'], { env: { ...env, BERTH_DATA_DIR: config } });
  assert.match(none.stderr, /owner-credential\.json; none at .*owner-credential\.json\)/);
});
