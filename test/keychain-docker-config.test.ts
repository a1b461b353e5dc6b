// DockerConfigKeychain: config.json `auths` in every spelling docker writes, `identitytoken`,
// `registrytoken`, malformed files, default locations (docker and podman), and real credential helpers
// (`docker-credential-berthtest` shell scripts on PATH) for `credHelpers` and `credsStore`; then the
// reference docker-registry with token auth, pulled from through config.json credentials.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DockerConfigKeychain, defaultDockerConfigPaths, parseDockerConfig } from '../src/keychain/docker-config.js';
import { MultiKeychain, type RegistryCredential } from '../src/keychain/keychain.js';
import { RegistryClient, type RegistryCredential as ClientCredential } from '../src/client/registry-client.js';
import { haveReferenceRegistry, startTokenAuthRegistry, type TokenAuthRegistry } from './helpers/reference-registry.js';
import { getManifest, pushTinyImage } from './helpers/tiny-image.js';
import { rejectsWithoutSecrets } from './helpers/no-secrets.js';
import { which } from './helpers/berth.js';

const run = promisify(execFile);
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** Every secret any test here puts anywhere: none may appear in an error message. */
const SECRETS = ['s3cret:with:colons', 'pw-fields-1', 'idtok-abc', 'regtok-xyz', 'helper-secret-1', 'helper-token-2', 'hub-secret', 'leaky-secret-in-bad-json', 'store-secret', 'fallback-pw'];

let dir: string;
let bin: string;
let helperDir: string;
const savedPath = process.env.PATH;

async function configFile(name: string, content: unknown): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

async function resolveIn(content: unknown, registry: string): Promise<RegistryCredential | undefined> {
  return new DockerConfigKeychain({ path: await configFile(`c-${Math.random().toString(36).slice(2)}.json`, content), helperTimeoutMs: 5000 }).resolve({ registry });
}

const rejectsClean = (p: Promise<unknown>, pattern: RegExp) => rejectsWithoutSecrets(p, pattern, SECRETS);

// The helper answers from files named after the server URL it is given on stdin:
// NAME.out (printed), NAME.err (to stderr), NAME.code (exit code), NAME.sleep (seconds, then exits).
const HELPER = `#!/bin/sh
[ "$1" = get ] || { echo "unsupported action $1" >&2; exit 2; }
server=$(cat)
echo "$(basename "$0") $* <- $server" >> "$BERTHTEST_DIR/requests.log"
f="$BERTHTEST_DIR/$(printf %s "$server" | tr -c 'A-Za-z0-9.-' '_')"
if [ -f "$f.sleep" ]; then exec sleep "$(cat "$f.sleep")"; fi
if [ -f "$f.out" ]; then cat "$f.out"; fi
if [ -f "$f.err" ]; then cat "$f.err" >&2; fi
if [ -f "$f.code" ]; then exit "$(cat "$f.code")"; fi
[ -f "$f.out" ] || { echo "credentials not found in native keychain"; exit 1; }
exit 0
`;

async function helperAnswer(server: string, files: { out?: string; err?: string; code?: number; sleep?: number }): Promise<void> {
  const f = join(helperDir, server.replace(/[^A-Za-z0-9.-]/g, '_'));
  if (files.out !== undefined) await writeFile(`${f}.out`, files.out);
  if (files.err !== undefined) await writeFile(`${f}.err`, files.err);
  if (files.code !== undefined) await writeFile(`${f}.code`, String(files.code));
  if (files.sleep !== undefined) await writeFile(`${f}.sleep`, String(files.sleep));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-dockercfg-'));
  bin = join(dir, 'bin');
  helperDir = join(dir, 'helper');
  await mkdir(bin);
  await mkdir(helperDir);
  for (const name of ['berthtest', 'berthtest2']) {
    await writeFile(join(bin, `docker-credential-${name}`), HELPER);
    await chmod(join(bin, `docker-credential-${name}`), 0o755);
  }
  // The helpers are found on the PATH of the test process's child processes, as docker finds them.
  process.env.PATH = `${bin}:${savedPath}`;
  process.env.BERTHTEST_DIR = helperDir;
  await helperAnswer('basic.example', { out: JSON.stringify({ ServerURL: 'basic.example', Username: 'helperuser', Secret: 'helper-secret-1' }) });
  await helperAnswer('token.example', { out: JSON.stringify({ ServerURL: 'token.example', Username: '<token>', Secret: 'helper-token-2' }) });
  await helperAnswer('https://index.docker.io/v1/', { out: JSON.stringify({ ServerURL: 'https://index.docker.io/v1/', Username: 'hubuser', Secret: 'hub-secret' }) });
  await helperAnswer('crash.example', { err: 'error: the keyring is locked', code: 3 });
  await helperAnswer('garbage.example', { out: 'Username=x Secret=leaky-secret-in-bad-json' });
  await helperAnswer('nofields.example', { out: JSON.stringify({ ServerURL: 'nofields.example', User: 'x' }) });
  await helperAnswer('slow.example', { sleep: 30 });
  await helperAnswer('store.example', { out: JSON.stringify({ ServerURL: 'store.example', Username: 'storeuser', Secret: 'store-secret' }) });
});

after(async () => {
  process.env.PATH = savedPath;
  delete process.env.BERTHTEST_DIR;
  await rm(dir, { recursive: true, force: true });
});

describe('auths entries', () => {
  test('base64 auth (the password may contain colons), under every spelling of the server key', async () => {
    const entry = { auth: b64('appid-1234:s3cret:with:colons') };
    for (const key of ['https://myreg.azurecr.io', 'myreg.azurecr.io', 'https://MyReg.azurecr.io/v2/', 'http://myreg.azurecr.io', 'myreg.azurecr.io:443']) {
      const c = await resolveIn({ auths: { [key]: entry } }, 'myreg.azurecr.io');
      assert.deepEqual(c && { ...c, source: undefined }, { kind: 'basic', username: 'appid-1234', password: 's3cret:with:colons', source: undefined }, key);
      assert.match(c!.source, /docker config .*auths\[/);
      assert.ok(!c!.source.includes('s3cret'));
    }
    // seed 001's exact file shape, for a target written with a port-less host
    const seed = await resolveIn({ auths: { 'https://acrname.azurecr.io': { auth: b64('principal_id:password') } } }, 'acrname.azurecr.io');
    assert.equal(seed?.kind === 'basic' && seed.password, 'password');
  });

  test('username/password fields, identitytoken (a refresh token), registrytoken', async () => {
    const c = await resolveIn({ auths: { 'reg.example:5000': { username: 'u1', password: 'pw-fields-1' } } }, 'reg.example:5000');
    assert.equal(c?.kind, 'basic');
    assert.equal(c?.kind === 'basic' && c.password, 'pw-fields-1');
    const t = await resolveIn({ auths: { 'myreg.azurecr.io': { auth: b64('00000000-0000-0000-0000-000000000000:'.padEnd(40, 'x')), identitytoken: 'idtok-abc' } } }, 'myreg.azurecr.io');
    assert.deepEqual(t?.kind === 'refreshToken' && [t.refreshToken, t.username], ['idtok-abc', '00000000-0000-0000-0000-000000000000']);
    const r = await resolveIn({ auths: { 'reg.example': { registrytoken: 'regtok-xyz' } } }, 'reg.example');
    assert.deepEqual(r?.kind === 'registryToken' && r.token, 'regtok-xyz');
  });

  test('Docker Hub: https://index.docker.io/v1/ answers docker.io, index.docker.io and registry-1.docker.io', async () => {
    const cfg = { auths: { 'https://index.docker.io/v1/': { auth: b64('janedoe1:fallback-pw') } } };
    for (const registry of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      const c = await resolveIn(cfg, registry);
      assert.equal(c?.kind === 'basic' && c.username, 'janedoe1', registry);
    }
  });

  test('no entry, an empty entry, or another server: no credential', async () => {
    assert.equal(await resolveIn({ auths: { 'a.example': { auth: b64('u:p') } } }, 'b.example'), undefined);
    assert.equal(await resolveIn({ auths: { 'a.example': {} } }, 'a.example'), undefined);
    assert.equal(await resolveIn({ auths: { 'a.example': { auth: '' } } }, 'a.example'), undefined);
    assert.equal(await resolveIn({}, 'a.example'), undefined);
    assert.equal(await resolveIn({ auths: { 'a.example:5000': { auth: b64('u:p') } } }, 'a.example'), undefined, 'a port makes another server');
  });

  test('a malformed file is a KeychainError naming the file and what is wrong, never a secret', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{"auths": {"r.example": {"auth": leaky-secret-in-bad-json}}}', /not valid JSON/],
      ['{"auths": {"r.example": {"password": "leaky-secret-in-bad-json"', /not valid JSON(: it ends too early| at line 1, column 64)/],
      ['{"auths": {"r.example": {"password": "leaky-secret-in-bad-json",}}}', /not valid JSON at line 1, column \d+/],
      [[{ auths: {} }], /top level must be a JSON object/],
      [{ auths: ['r.example'] }, /"auths" must be an object/],
      [{ auths: { 'r.example': 'leaky-secret-in-bad-json' } }, /auths\["r.example"\] must be an object/],
      [{ auths: { 'r.example': { auth: 'leaky-secret-in-bad-json!' } } }, /auths\["r.example"\]\.auth is not base64 of "username:password"/],
      [{ auths: { 'r.example': { auth: b64('no-colon-leaky-secret-in-bad-json') } } }, /auths\["r.example"\]\.auth is not base64/],
      [{ auths: { 'r.example': { auth: 12345 } } }, /auths\["r.example"\]\.auth must be a string/],
      [{ auths: { 'r.example': { username: 'u' } } }, /has a username but no password/],
      [{ auths: { 'bad host name': { auth: b64('u:p') } } }, /auths\["bad host name"\]: the key is not a registry server/],
      [{ credHelpers: { 'r.example': 7 } }, /credHelpers\["r.example"\] must be a helper name/],
      [{ credHelpers: ['x'] }, /"credHelpers" must be an object/],
      [{ credsStore: { name: 'x' } }, /"credsStore" must be a helper name/],
    ];
    for (const [content, pattern] of cases) {
      const path = await configFile('bad.json', content);
      const e = await rejectsClean(new DockerConfigKeychain({ path }).resolve({ registry: 'r.example' }), pattern);
      assert.ok(e.message.includes(path), `names the file: ${e.message}`);
      assert.match(e.message, /is malformed/);
    }
  });

  test('a missing file: an error when named explicitly, nothing at the default locations', async () => {
    await rejectsClean(new DockerConfigKeychain({ path: join(dir, 'nope.json') }).resolve({ registry: 'r.example' }), /docker config .*nope\.json does not exist/);
    assert.equal(await new DockerConfigKeychain({ path: join(dir, 'nope.json'), optional: true }).resolve({ registry: 'r.example' }), undefined);
    await rejectsClean(new DockerConfigKeychain({ path: dir }).resolve({ registry: 'r.example' }), /is not a file/);
  });

  test('default locations: $DOCKER_CONFIG/config.json (else ~/.docker/config.json), then podman auth.json', async () => {
    assert.deepEqual(defaultDockerConfigPaths({ HOME: '/home/jane' }), ['/home/jane/.docker/config.json']);
    assert.deepEqual(defaultDockerConfigPaths({ HOME: '/h', DOCKER_CONFIG: '/etc/dc', XDG_RUNTIME_DIR: '/run/user/0' }), ['/etc/dc/config.json', '/run/user/0/containers/auth.json']);
    assert.deepEqual(defaultDockerConfigPaths({ HOME: '/h', REGISTRY_AUTH_FILE: '/x/auth.json', XDG_RUNTIME_DIR: '/run/user/0' }), ['/h/.docker/config.json', '/x/auth.json']);
    const home = join(dir, 'home');
    const runtime = join(dir, 'run');
    await mkdir(join(runtime, 'containers'), { recursive: true });
    await writeFile(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { 'podman.example': { auth: b64('podder:fallback-pw') } } }));
    const dockerDir = join(dir, 'dockercfg');
    await mkdir(dockerDir);
    await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ auths: { 'docker.example': { auth: b64('dockeruser:fallback-pw') } } }));
    const plain = new DockerConfigKeychain({ env: { DOCKER_CONFIG: dockerDir } });
    assert.equal(plain.path, join(dockerDir, 'config.json'));
    const d = await plain.resolve({ registry: 'docker.example' });
    assert.equal(d?.kind === 'basic' && d.username, 'dockeruser');
    assert.equal(await new DockerConfigKeychain({ env: { HOME: home } }).resolve({ registry: 'docker.example' }), undefined, 'the default file may be missing');
    const chain = DockerConfigKeychain.defaults({ ...process.env, HOME: home, XDG_RUNTIME_DIR: runtime });
    assert.equal(chain.length, 2);
    assert.equal(await chain[0]!.resolve({ registry: 'podman.example' }), undefined, 'no ~/.docker/config.json: nothing, no error');
    const c = await chain[1]!.resolve({ registry: 'podman.example' });
    assert.equal(c?.kind === 'basic' && c.username, 'podder');
  });

  test('podman namespaced keys (quay.io/org, no scheme): the most specific entry for the repository', async () => {
    const path = await configFile('ns.json', { auths: {
      'quay.io': { auth: b64('hostwide:fallback-pw') },
      'quay.io/org-a': { auth: b64('org-a-robot:fallback-pw') },
      'quay.io/org-a/special': { auth: b64('special-robot:fallback-pw') },
      'https://quay.io/v2/': { auth: b64('hostwide:fallback-pw') },
    } });
    const kc = new DockerConfigKeychain({ path });
    const user = async (repository?: string) => { const c = await kc.resolve({ registry: 'quay.io', ...(repository ? { repository } : {}) }); return c?.kind === 'basic' ? c.username : c?.kind; };
    assert.equal(await user('org-a/app'), 'org-a-robot');
    assert.equal(await user('org-a/special/app'), 'special-robot');
    assert.equal(await user('org-a/special'), 'special-robot');
    assert.equal(await user('org-b/app'), 'hostwide');
    assert.equal(await user(), 'hostwide');
  });

  test('parseDockerConfig keeps the key written without scheme when two spellings name one server', () => {
    const cfg = parseDockerConfig(JSON.stringify({ auths: { 'https://r.example/v1/': { auth: b64('a:1') }, 'r.example': { auth: b64('b:2') } } }), 'x.json');
    assert.equal(cfg.auths.get('r.example')?.username, 'b');
  });
});

describe('credential helpers', () => {
  const requests = async () => (await readFile(join(helperDir, 'requests.log'), 'utf8').catch(() => '')).trim().split('\n');

  test('credHelpers runs docker-credential-<name> get with the server on stdin; <token> means an identity token', async () => {
    const cfg = { credHelpers: { 'basic.example': 'berthtest', 'token.example': 'berthtest2', 'docker.io': 'berthtest' } };
    const c = await resolveIn(cfg, 'basic.example');
    assert.deepEqual(c && { kind: c.kind, username: c.kind === 'basic' && c.username, password: c.kind === 'basic' && c.password }, { kind: 'basic', username: 'helperuser', password: 'helper-secret-1' });
    assert.match(c!.source, /credential helper docker-credential-berthtest \(docker config /);
    const t = await resolveIn(cfg, 'token.example');
    assert.deepEqual(t?.kind === 'refreshToken' && t.refreshToken, 'helper-token-2');
    const hub = await resolveIn(cfg, 'registry-1.docker.io');
    assert.equal(hub?.kind === 'basic' && hub.username, 'hubuser');
    const log = await requests();
    assert.ok(log.includes('docker-credential-berthtest get <- basic.example'), log.join('\n'));
    assert.ok(log.includes('docker-credential-berthtest2 get <- token.example'));
    assert.ok(log.includes('docker-credential-berthtest get <- https://index.docker.io/v1/'), 'Docker Hub is asked for by its legacy URL');
  });

  test('credsStore answers every server without a credHelpers entry; not found falls back to auths', async () => {
    const cfg = { credsStore: 'berthtest', credHelpers: { 'token.example': 'berthtest2' }, auths: { 'fallback.example': { auth: b64('fbuser:fallback-pw') }, 'store.example': {} } };
    const s = await resolveIn(cfg, 'store.example');
    assert.equal(s?.kind === 'basic' && s.username, 'storeuser');
    assert.match(s!.source, /docker-credential-berthtest /);
    const t = await resolveIn(cfg, 'token.example');
    assert.equal(t?.kind, 'refreshToken');
    const f = await resolveIn(cfg, 'fallback.example');
    assert.equal(f?.kind === 'basic' && f.username, 'fbuser', '"credentials not found in native keychain" is not an error');
    assert.equal(await resolveIn(cfg, 'nowhere.example'), undefined);
    const log = await requests();
    assert.ok(log.includes('docker-credential-berthtest get <- fallback.example'));
    assert.ok(log.every((l) => !SECRETS.some((sec) => l.includes(sec))), 'no secret on the helper command line');
  });

  test('helper failures: not found on PATH, a crash, output that is not JSON, JSON without fields, a timeout, a bad name', async () => {
    const at = (helper: string) => ({ credHelpers: { 'basic.example': helper, 'crash.example': helper, 'garbage.example': helper, 'nofields.example': helper, 'slow.example': helper } });
    const go = async (helper: string, registry: string, timeout = 5000) =>
      new DockerConfigKeychain({ path: await configFile('helpers.json', at(helper)), helperTimeoutMs: timeout }).resolve({ registry });
    let e = await rejectsClean(go('nothere', 'basic.example'), /credential helper docker-credential-nothere \(credHelpers in .*helpers\.json\) for server basic\.example: not found on PATH/);
    assert.ok(e.source.includes('docker-credential-nothere'));
    e = await rejectsClean(go('berthtest', 'crash.example'), /docker-credential-berthtest .* for server crash\.example: failed with exit code 3; its output is withheld \(it may hold a secret\): to see it, run `echo crash\.example \| docker-credential-berthtest get`/);
    assert.doesNotMatch(e.message, /keyring is locked/, 'what the helper printed stays out of the error');
    assert.ok(!e.message.includes(tmpdir()), `no server path in the error: ${e.message}`);
    e = await rejectsClean(go('berthtest', 'garbage.example'), /docker-credential-berthtest .* for server garbage\.example: printed something that is not JSON \(\d+ bytes\)/);
    e = await rejectsClean(go('berthtest', 'nofields.example'), /for server nofields\.example: printed JSON without the string fields Username and Secret/);
    e = await rejectsClean(go('berthtest', 'slow.example', 300), /for server slow\.example: no answer within 300 ms; the helper was stopped/);
    e = await rejectsClean(go('../../bin/sh', 'basic.example'), /invalid helper name '..\/..\/bin\/sh'/);
  });

  test('a helper is run asynchronously: a server in this process keeps answering while it runs', async () => {
    // The helper asks for a server URL and, while it sleeps, this process must stay responsive.
    await helperAnswer('async.example', { sleep: 1 });
    const kc = new DockerConfigKeychain({ path: await configFile('async.json', { credHelpers: { 'async.example': 'berthtest' } }), helperTimeoutMs: 200 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await rejectsClean(kc.resolve({ registry: 'async.example' }), /no answer within 200 ms/);
    clearInterval(timer);
    assert.ok(ticks > 0, 'the event loop ran while the helper ran');
  });
});

describe('the reference registry with token auth', () => {
  const skip = haveReferenceRegistry();
  let reg: TokenAuthRegistry;
  let digest: string;
  const clientFor = (c: RegistryCredential | ClientCredential) => {
    assert.ok(c.kind !== 'registryToken');
    return new RegistryClient(reg.host, c as ClientCredential, { realmHosts: [new URL(reg.tokens.realm).host] });
  };

  before(async () => {
    if (skip) return;
    reg = await startTokenAuthRegistry({
      users: [
        { username: 'refuser', password: 'refuser-pw-1', actions: () => ['pull', 'push'] },
        { username: 'reader', password: 'reader-pw-1', actions: (repo) => (repo === 'team/app' ? ['pull'] : []) },
      ],
      anonymous: (repo) => (repo.startsWith('public/') ? ['pull'] : []),
    });
    digest = (await pushTinyImage(clientFor({ kind: 'basic', username: 'refuser', password: 'refuser-pw-1' }), 'team/app', 'v1')).digest;
  });
  after(async () => reg?.stop());

  test('challenges point at the token server, which issues tokens the registry accepts', { skip }, async () => {
    const res = await fetch(`http://${reg.host}/v2/team/app/manifests/v1`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="${reg.tokens.realm}",service="berth-reference-registry",scope="repository:team/app:pull"`));
    assert.ok(reg.tokens.counts.basic > 0, 'the push got its tokens with Basic credentials');
  });

  test('a GET of a manifest with basic credentials from config.json, through the registry client', { skip }, async () => {
    const path = await configFile('refreg.json', { auths: { [`http://${reg.host}`]: { auth: b64('reader:reader-pw-1') } } });
    const cred = await new DockerConfigKeychain({ path }).resolve({ registry: reg.host, repository: 'team/app' });
    assert.equal(cred?.kind, 'basic');
    const m = await getManifest(clientFor(cred!), 'team/app', 'v1');
    assert.equal(m.status, 200, m.text);
    assert.equal(m.digest, digest);
    // the same user has no pull on another repository, and a wrong password gets no token at all
    await pushTinyImage(clientFor({ kind: 'basic', username: 'refuser', password: 'refuser-pw-1' }), 'other/app', 'v1');
    const denied = await getManifest(clientFor(cred!), 'other/app', 'v1');
    assert.equal(denied.status, 401);
    assert.match(denied.text, /UNAUTHORIZED/);
    await assert.rejects(getManifest(clientFor({ kind: 'basic', username: 'reader', password: 'wrong' }), 'team/app', 'v1'), /wrong username or password/);
  });

  test('an identitytoken in config.json is used as a refresh token at the realm', { skip }, async () => {
    const tok = await fetch(`${reg.tokens.realm}?service=berth-reference-registry&offline_token=true&scope=repository:team/app:pull`, { headers: { authorization: 'Basic ' + b64('reader:reader-pw-1') } });
    const refresh = ((await tok.json()) as { refresh_token: string }).refresh_token;
    const path = await configFile('refreg-id.json', { auths: { [reg.host]: { auth: b64('reader:'), identitytoken: refresh } } });
    const cred = await new DockerConfigKeychain({ path }).resolve({ registry: reg.host });
    assert.equal(cred?.kind, 'refreshToken');
    const before = reg.tokens.counts.refresh;
    const m = await getManifest(clientFor(cred!), 'team/app', 'v1');
    assert.equal(m.status, 200, m.text);
    assert.equal(reg.tokens.counts.refresh, before + 1);
  });

  test('a credsStore helper supplies the credentials for the token-auth registry', { skip }, async () => {
    await helperAnswer(reg.host, { out: JSON.stringify({ ServerURL: reg.host, Username: 'reader', Secret: 'reader-pw-1' }) });
    const cred = await resolveIn({ credsStore: 'berthtest' }, reg.host);
    assert.equal(cred?.kind === 'basic' && cred.username, 'reader');
    assert.equal((await getManifest(clientFor(cred!), 'team/app', 'v1')).status, 200);
  });

  test('no source has credentials: the anonymous credential pulls what the token server gives anonymously', { skip }, async () => {
    const path = await configFile('refreg-other.json', { auths: { 'elsewhere.example': { auth: b64('reader:reader-pw-1') } } });
    const cred = await new MultiKeychain([new DockerConfigKeychain({ path })]).resolve({ registry: reg.host });
    assert.equal(cred.kind, 'anonymous');
    await pushTinyImage(clientFor({ kind: 'basic', username: 'refuser', password: 'refuser-pw-1' }), 'public/app', 'v1');
    assert.equal((await getManifest(clientFor(cred), 'public/app', 'v1')).status, 200);
    assert.equal((await getManifest(clientFor(cred), 'team/app', 'v1')).status, 401);
    assert.ok(reg.tokens.counts.anonymous >= 2);
  });

  test('the auth file `skopeo login` writes (the containers auth.json format) is read as it is', { skip: skip ?? (which('skopeo') ? undefined : 'skopeo is not installed') }, async () => {
    const authfile = join(dir, 'skopeo-auth.json');
    await new Promise<void>((resolve, reject) => {
      // async spawn; the password goes on stdin, not on the command line
      const p = execFile('skopeo', ['login', '--authfile', authfile, '--tls-verify=false', '--username', 'reader', '--password-stdin', reg.host], (e) => (e ? reject(e) : resolve()));
      p.stdin!.end('reader-pw-1');
    });
    const written = JSON.parse(await readFile(authfile, 'utf8')) as { auths: Record<string, unknown> };
    assert.deepEqual(Object.keys(written.auths), [reg.host]);
    const cred = await new DockerConfigKeychain({ path: authfile }).resolve({ registry: reg.host, repository: 'team/app' });
    assert.equal(cred?.kind === 'basic' && cred.username, 'reader');
    assert.equal((await getManifest(clientFor(cred!), 'team/app', 'v1')).status, 200);
  });

  test('skopeo (a real client) pulls through the token server too', { skip: skip ?? (which('skopeo') ? undefined : 'skopeo is not installed') }, async () => {
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', 'reader:reader-pw-1', '--raw', `docker://${reg.host}/team/app:v1`]);
    assert.equal(JSON.parse(stdout).schemaVersion, 2);
    await assert.rejects(run('skopeo', ['inspect', '--tls-verify=false', '--creds', 'reader:nope', '--raw', `docker://${reg.host}/team/app:v1`]), /unauthorized|authentication/i);
  });
});
