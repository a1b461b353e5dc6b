// `berth acr login` end to end: the CLI's identity exchanged for a registry refresh token, checked
// against the registry, written where docker/podman/skopeo read it; real skopeo then pulls with it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, adminRegistry, which, type TestBerth } from './helpers/berth.js';
import { pushTinyImage } from './helpers/tiny-image.js';
import { RegistryClient } from '../src/client/registry-client.js';

const skip = which('skopeo') ? undefined : 'skopeo is not installed';
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let home: string;

function skopeo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('skopeo', args, { timeout: 60_000 }, (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr }));
  });
}

before(async () => {
  b = await startTestBerth();
  reg = await adminRegistry(b, 'loginreg01');
  await pushTinyImage(new RegistryClient(reg.loginServer, { kind: 'basic', username: reg.username, password: reg.password }), 'hello', 'v1');
  home = await mkdtemp(join(tmpdir(), 'berth-login-home-'));
});
after(async () => {
  await b.cleanup();
  await rm(home, { recursive: true, force: true });
});

/** The CLI with its own HOME and containers auth file, so the test sees exactly what it writes. */
function cli(args: string[], authFile = join(home, 'containers', 'auth.json')) {
  const { DOCKER_CONFIG: _d, XDG_RUNTIME_DIR: _x, ...rest } = b.env;
  return b.cli(args, { env: { ...rest, HOME: home, REGISTRY_AUTH_FILE: authFile } as NodeJS.ProcessEnv });
}

test('acr login -n R: checks the identity token at the registry, writes docker config and auth.json (0600, merged), skopeo pulls with either', { skip, timeout: 120_000 }, async () => {
  const dockerConfig = join(home, '.docker', 'config.json');
  await mkdir(join(home, '.docker'), { recursive: true });
  const other = Buffer.from('someone:else').toString('base64');
  await writeFile(dockerConfig, JSON.stringify({ auths: { 'other.example': { auth: other } }, psFormat: 'table {{.ID}}' }));
  const r = await cli(['acr', 'login', '--name', 'loginreg01']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Login Succeeded\n');
  assert.match(r.stderr, /stored unencrypted \(mode 0600\).*expires in 3 hours/);
  const authFile = join(home, 'containers', 'auth.json');
  for (const f of [dockerConfig, authFile]) {
    assert.equal((await stat(f)).mode & 0o777, 0o600, f);
    const doc = JSON.parse(await readFile(f, 'utf8'));
    const [user, token] = Buffer.from(doc.auths[reg.loginServer].auth, 'base64').toString().split(':');
    assert.equal(user, '00000000-0000-0000-0000-000000000000');
    assert.equal(token!.split('.').length, 3, 'a registry refresh token (JWT)');
    const got = await skopeo(['inspect', '--authfile', f, '--tls-verify=false', `docker://${reg.loginServer}/hello:v1`]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(JSON.parse(got.stdout).Name, `${reg.loginServer}/hello`);
  }
  const merged = JSON.parse(await readFile(dockerConfig, 'utf8'));
  assert.equal(merged.auths['other.example'].auth, other, 'other entries are kept');
  assert.equal(merged.psFormat, 'table {{.ID}}', 'other keys are kept');
  // without the login, skopeo is refused: the entry is what made it work
  const anon = await skopeo(['inspect', '--authfile', join(home, 'none.json'), '--tls-verify=false', `docker://${reg.loginServer}/hello:v1`]);
  assert.notEqual(anon.code, 0);
});

test('acr login with a wrong password fails with "Login failed." and leaves the files as they were; a malformed file is named and nothing is written', { timeout: 60_000 }, async () => {
  const authFile = join(home, 'wrong', 'auth.json');
  const dockerConfig = join(home, '.docker', 'config.json');
  const before = await readFile(dockerConfig, 'utf8').catch(() => undefined);
  const r = await cli(['acr', 'login', '-n', 'loginreg01', '-u', reg.username, '-p', 'not-the-password'], authFile);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unauthorized.*\nERROR: Login failed\.\n$/s);
  assert.doesNotMatch(r.stderr, /not-the-password/);
  assert.equal(await readFile(dockerConfig, 'utf8').catch(() => undefined), before);
  await assert.rejects(stat(authFile));

  await mkdir(join(home, 'bad'), { recursive: true });
  await writeFile(join(home, 'bad', 'auth.json'), '{"auths": {');
  const bad = await cli(['acr', 'login', '-n', 'loginreg01', '-u', reg.username, '-p', reg.password], join(home, 'bad', 'auth.json'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ERROR: .*bad\/auth\.json is not valid JSON; fix or remove it/);
  assert.equal(await readFile(dockerConfig, 'utf8').catch(() => undefined), before, 'the good file is not written either');

  const usage = await cli(['acr', 'login', '-n', 'loginreg01', '--expose-token', '-u', 'x', '-p', 'y']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /`--expose-token` cannot be combined with `--username` or `--password`/);
});

test('acr login --expose-token prints {accessToken, loginServer} and az\'s docker login hint; the token logs skopeo in as the null GUID', { skip, timeout: 60_000 }, async () => {
  const r = await cli(['acr', 'login', '-n', 'loginreg01', '--expose-token']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ['accessToken', 'loginServer']);
  assert.equal(out.loginServer, reg.loginServer);
  assert.equal(r.stderr, "WARNING: You can perform manual login using the provided access token below, for example: 'docker login loginServer -u 00000000-0000-0000-0000-000000000000 -p accessToken'\n");
  const tsv = await cli(['acr', 'login', '-n', 'loginreg01', '--expose-token', '--query', 'accessToken', '-o', 'tsv', '--only-show-errors']);
  assert.equal(tsv.stderr, '');
  const got = await skopeo(['inspect', '--tls-verify=false', '--creds', `00000000-0000-0000-0000-000000000000:${tsv.stdout.trim()}`, `docker://${reg.loginServer}/hello:v1`]);
  assert.equal(got.code, 0, got.stderr);
  const missing = await cli(['acr', 'login', '-n', 'noregistryhere', '--expose-token']);
  assert.equal(missing.code, 3);
});

// A credential helper that keeps what `store` is given in $HELPER_DIR/store.json and answers `get` from it;
// `store` fails when $HELPER_DIR/fail exists.
const HELPER = `#!/bin/sh
case "$1" in
  store) [ -f "$HELPER_DIR/fail" ] && { echo "keyring locked" >&2; exit 1; }; cat > "$HELPER_DIR/store.json" ;;
  get) cat > /dev/null; if [ -f "$HELPER_DIR/store.json" ]; then cat "$HELPER_DIR/store.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) exit 2 ;;
esac
`;

test('acr login with a credsStore or credHelpers entry stores through docker-credential-<name> store (the file keeps an empty entry), as docker login; a failing helper writes nothing; skopeo reads it back', { skip, timeout: 120_000 }, async () => {
  const h = await mkdtemp(join(tmpdir(), 'berth-login-helper-'));
  try {
    const bin = join(h, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'docker-credential-berthstore'), HELPER);
    await chmod(join(bin, 'docker-credential-berthstore'), 0o755);
    await mkdir(join(h, '.docker'));
    const dockerConfig = join(h, '.docker', 'config.json');
    await writeFile(dockerConfig, JSON.stringify({ credsStore: 'berthstore' }));
    const { DOCKER_CONFIG: _d, XDG_RUNTIME_DIR: _x, REGISTRY_AUTH_FILE: _r, ...rest } = b.env;
    const env = { ...rest, HOME: h, HELPER_DIR: h, PATH: `${bin}:${process.env.PATH}` } as NodeJS.ProcessEnv;

    await writeFile(join(h, 'fail'), '');
    const failed = await b.cli(['acr', 'login', '-n', 'loginreg01'], { env });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /ERROR: credential helper docker-credential-berthstore \(config\.json\) for server localhost:\d+: store failed with exit code 1; its output is withheld.*Nothing was written\./);
    assert.doesNotMatch(failed.stderr, /keyring locked/);
    assert.deepEqual(JSON.parse(await readFile(dockerConfig, 'utf8')), { credsStore: 'berthstore' });
    await rm(join(h, 'fail'));

    const r = await b.cli(['acr', 'login', '-n', 'loginreg01'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /stored by docker-credential-berthstore\./);
    const doc = JSON.parse(await readFile(dockerConfig, 'utf8'));
    assert.deepEqual(doc, { credsStore: 'berthstore', auths: { [reg.loginServer]: {} } }, 'no credential in the file');
    const stored = JSON.parse(await readFile(join(h, 'store.json'), 'utf8'));
    assert.equal(stored.ServerURL, reg.loginServer);
    assert.equal(stored.Username, '00000000-0000-0000-0000-000000000000');
    assert.equal(stored.Secret.split('.').length, 3);
    // Berth's own keychain reads it back through the helper and the registry takes it
    const { DockerConfigKeychain } = await import('../src/keychain/docker-config.js');
    const cred = await new DockerConfigKeychain({ path: dockerConfig, env }).resolve({ registry: reg.loginServer });
    assert.equal(cred?.kind, 'basic');
    const auth = 'Basic ' + Buffer.from(`${(cred as { username: string }).username}:${(cred as { password: string }).password}`).toString('base64');
    assert.equal((await fetch(`http://${reg.loginServer}/v2/`, { headers: { Authorization: auth } })).status, 200);
    // credHelpers for the server (which skopeo and podman honour too; they ignore credsStore): skopeo asks the helper itself
    await rm(join(h, 'store.json'));
    await writeFile(dockerConfig, JSON.stringify({ credHelpers: { [reg.loginServer]: 'berthstore' } }));
    const again = await b.cli(['acr', 'login', '-n', 'loginreg01'], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(await readFile(dockerConfig, 'utf8')).auths, { [reg.loginServer]: {} });
    const got = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile('skopeo', ['inspect', '--authfile', dockerConfig, '--tls-verify=false', `docker://${reg.loginServer}/hello:v1`], { env, timeout: 60_000 },
        (e, _out, stderr) => resolve({ code: e ? 1 : 0, stderr }));
    });
    assert.equal(got.code, 0, got.stderr);
  } finally {
    await rm(h, { recursive: true, force: true });
  }
});
