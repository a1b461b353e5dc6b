// The pull client against real registries: a Berth registry (admin user, service principal, repository
// token, the CLI's own identity) and the reference docker-registry with htpasswd; OCI and Docker
// schema 2 manifests, a multi-platform index, the OCI layout `berth pull --to` writes compared with
// skopeo's, and each class of failure produced for real.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startTestBerth, adminRegistry, runCli, type TestBerth } from './helpers/berth.js';
import { busyboxLayout, haveImageTools } from './helpers/images.js';
import { haveReferenceRegistry, startReferenceRegistry, type ReferenceRegistry } from './helpers/reference-registry.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { RegistryPuller } from '../src/pull/puller.js';
import { Transport } from '../src/client/transport.js';
import { PullError, type PullErrorCode } from '../src/pull/types.js';
import { InlineKeychain } from '../src/keychain/inline.js';
import { MultiKeychain, type Keychain } from '../src/keychain/keychain.js';
import { parseReference, formatReference } from '../src/oci/reference.js';
import { findRole } from '../src/identity/roles.js';
import { armId } from '../src/registry/registries.js';
import { freeLoopbackPort } from '../src/net/listeners.js';
import { diagnosePull } from '../src/pull/diagnosis.js';
import { makeCerts } from './helpers/certs.js';

const run = promisify(execFile);
const skip = haveImageTools();
const skipRef = skip ?? haveReferenceRegistry();
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let refReg: ReferenceRegistry | undefined;
let work: string;
const sha = (s: string | Buffer) => 'sha256:' + createHash('sha256').update(s).digest('hex');
const admin = (): Keychain => new InlineKeychain({ server: reg.loginServer, username: reg.username, password: reg.password }, 'admin user');

async function puller(extra: Partial<ConstructorParameters<typeof RegistryPuller>[0]> = {}): Promise<RegistryPuller> {
  return new RegistryPuller({ contentDir: await mkdtemp(join(tmpdir(), 'berth-content-')), backoffMs: 20, ...extra });
}

async function failure(p: Promise<unknown>, code: PullErrorCode): Promise<PullError> {
  const e = await p.then(() => undefined, (x) => x);
  assert.ok(e instanceof PullError, `expected a PullError ${code}, got ${e}`);
  assert.equal(e.code, code, e.message);
  return e;
}

before(async () => {
  if (skip) return;
  b = await startTestBerth();
  reg = await adminRegistry(b, 'pullreg01');
  work = await mkdtemp(join(tmpdir(), 'berth-pullc-'));
  const layout = await busyboxLayout('v1');
  const push = (src: string, dest: string, ...extra: string[]) => run('skopeo', ['copy', ...extra, '--dest-tls-verify=false', '--dest-creds', `${reg.username}:${reg.password}`, src, `docker://${reg.loginServer}/${dest}`]);
  await push(`oci:${layout}:v1`, 'tools/busybox:v1');
  await push(`oci:${layout}:v1`, 'tools/busybox:v2');
  await push(`oci:${layout}:v1`, 'tools/docker:v1', '--format', 'v2s2');
  if (!skipRef) refReg = await startReferenceRegistry();
});
after(async () => {
  await refReg?.stop();
  await b?.cleanup();
});

test('references normalise the docker way, and docker.io is served by registry-1.docker.io', () => {
  const D = 'sha256:' + 'b'.repeat(64);
  assert.equal(formatReference(parseReference('busybox', { defaultTag: 'latest' })), 'docker.io/library/busybox:latest');
  assert.equal(formatReference(parseReference('registry-1.docker.io/busybox:1', { defaultTag: 'latest' })), 'docker.io/library/busybox:1');
  assert.equal(formatReference(parseReference('docker.io/org/app', { defaultTag: 'latest' })), 'docker.io/org/app:latest');
  assert.equal(formatReference(parseReference(`localhost:5000/a/b:v1@${D}`)), `localhost:5000/a/b:v1@${D}`);
  const t = new Transport();
  assert.equal(t.baseUrl('docker.io'), 'https://registry-1.docker.io');
  assert.equal(t.baseUrl('localhost:5000'), 'http://localhost:5000');
  assert.equal(t.baseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  assert.equal(t.baseUrl('myreg.example.com'), 'https://myreg.example.com', 'plain http only for loopback by default');
  assert.equal(new Transport({ insecure: true }).baseUrl('myreg.example.com'), 'http://myreg.example.com');
});

test('berth pull --to writes the same OCI layout skopeo does (same manifest digest and blobs), atomically', { skip }, async () => {
  const ref = `${reg.loginServer}/tools/busybox:v1`;
  const out = join(work, 'layout');
  const r = await b.cli(['pull', ref, '--to', out, '--creds', `${reg.username}:${reg.password}`]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.credentialSource, `--creds for ${reg.loginServer} (user ${reg.username})`);
  assert.match(r.stderr, /Pull complete/);
  assert.match(r.stderr, /Pulled .* 1 layers, .* downloaded in/);
  const sk = join(work, 'skopeo');
  await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `${reg.username}:${reg.password}`, `docker://${ref}`, `oci:${sk}:v1`]);
  const ours = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
  const theirs = JSON.parse(await readFile(join(sk, 'index.json'), 'utf8'));
  assert.equal(ours.manifests[0].digest, theirs.manifests[0].digest);
  assert.equal(ours.manifests[0].digest, res.digest);
  assert.equal(ours.manifests[0].annotations['org.opencontainers.image.ref.name'], 'v1');
  assert.deepEqual((await readdir(join(out, 'blobs', 'sha256'))).sort(), (await readdir(join(sk, 'blobs', 'sha256'))).sort());
  assert.deepEqual(JSON.parse(await readFile(join(out, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  // skopeo reads our layout back
  const { stdout } = await run('skopeo', ['inspect', `oci:${out}:v1`]);
  assert.equal(JSON.parse(stdout).Digest, res.digest);
  // an existing directory is refused, not overwritten
  const again = await b.cli(['pull', ref, '--to', out, '--creds', `${reg.username}:${reg.password}`]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
  // no temporary directory is left next to it
  assert.deepEqual((await readdir(work)).filter((f) => f.includes('.tmp')), []);
});

test('berth pull --print with the CLI identity on a Berth registry: digest, platform, layers, source; -o and --query work', { skip }, async () => {
  const ref = `${reg.loginServer}/tools/busybox:v1`;
  const r = await b.cli(['pull', ref, '--print']);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.match(p.credentialSource, /^berth CLI identity/);
  assert.deepEqual(p.platform, { os: 'linux', architecture: 'amd64' });
  assert.equal(p.layers.length, 1);
  assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(p.config.cmd, ['/bin/busybox', 'echo', 'hello']);
  const tsv = await b.cli(['pull', ref, '--print', '--query', 'digest', '-o', 'tsv']);
  assert.equal(tsv.stdout.trim(), p.digest);
  const usage = await b.cli(['pull', ref]);
  assert.equal(usage.code, 2);
  const bad = await b.cli(['pull', 'Bad/Ref', '--print']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /must be lowercase/);
});

test('a service principal with AcrPull and a repository token pull; a principal with no role is DENIED', { skip }, async () => {
  const r = await b.registries.get('rg', 'pullreg01');
  const sp = async (role?: string) => {
    const app = await b.applications.createApplication(`pull-sp-${role ?? 'none'}`);
    await b.applications.createServicePrincipal(app.appId);
    const pw = await b.applications.addPassword(app.id, {});
    if (role) await b.identity.assignRole(app.id, findRole(role)!, armId(r));
    return new InlineKeychain({ server: reg.loginServer, username: app.appId, password: pw.secretText }, `sp ${role ?? 'without role'}`);
  };
  const p = await puller();
  try {
    const ok = await p.pull(`${reg.loginServer}/tools/busybox:v1`, { keychain: await sp('AcrPull') });
    assert.match(ok.credentialSource, /^sp AcrPull/);
    await b.repoTokens.createOrUpdateToken(r, 'pulltok', { scopeMap: '_repositories_pull' });
    const c = await b.repoTokens.generateCredentials(r, 'pulltok', { name: 'password1' });
    const viaToken = await p.resolve(`${reg.loginServer}/tools/busybox:v1`, { keychain: new InlineKeychain({ server: reg.loginServer, username: 'pulltok', password: c.passwords[0]!.value }, 'token pulltok') });
    assert.equal(viaToken.digest, ok.digest);
    const e = await failure(p.resolve(`${reg.loginServer}/tools/busybox:v1`, { keychain: await sp() }), 'DENIED');
    assert.match(e.message, /denied/);
    assert.match(e.diagnosis, /sp without role/);
  } finally {
    await p.close();
  }
});

test('Docker schema 2 manifests and a multi-platform index with platform selection', { skip }, async () => {
  const p = await puller();
  try {
    const d = await p.resolve(`${reg.loginServer}/tools/docker:v1`, { keychain: admin() });
    assert.equal(d.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(d.layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    // an OCI index over an amd64 and an arm64/v8 image
    const layout = await busyboxLayout('amd');
    await run('umoci', ['new', '--image', `${layout}:arm`]);
    await run('umoci', ['config', '--image', `${layout}:arm`, '--architecture', 'arm64', '--os', 'linux', '--config.cmd', 'arm']);
    const idx = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    const entries = idx.manifests.map((m: any) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size,
      platform: m.annotations['org.opencontainers.image.ref.name'] === 'amd' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64', variant: 'v8' } }));
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }));
    await writeFile(join(layout, 'blobs', 'sha256', sha(index).slice(7)), index);
    idx.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha(index), size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
    await writeFile(join(layout, 'index.json'), JSON.stringify(idx));
    await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-creds', `${reg.username}:${reg.password}`, `oci:${layout}:multi`, `docker://${reg.loginServer}/tools/multi:v1`]);
    const amd = await p.resolve(`${reg.loginServer}/tools/multi:v1`, { keychain: admin() });
    assert.equal(amd.indexDigest, sha(index));
    assert.equal(amd.platform.architecture, 'amd64');
    for (const plat of ['linux/arm64', 'linux/arm64/v8', 'linux/aarch64']) {
      const arm = await p.resolve(`${reg.loginServer}/tools/multi:v1`, { keychain: admin(), platform: plat });
      assert.equal(arm.platform.architecture, 'arm64', plat);
      assert.deepEqual(arm.config.cmd, ['arm']);
    }
    const byDigest = await p.resolve(`${reg.loginServer}/tools/multi@${sha(index)}`, { keychain: admin(), platform: 'linux/arm64' });
    assert.equal(byDigest.platform.architecture, 'arm64');
    const e = await failure(p.resolve(`${reg.loginServer}/tools/multi:v1`, { keychain: admin(), platform: 'linux/s390x' }), 'PLATFORM_NOT_FOUND');
    assert.match(e.diagnosis, /linux\/amd64, linux\/arm64\/v8/);
    await failure(p.resolve(`${reg.loginServer}/tools/busybox:v1`, { keychain: admin(), platform: 'linux/arm64' }), 'PLATFORM_NOT_FOUND');
  } finally {
    await p.close();
  }
});

test('unknown tag lists the tags that exist; unknown repository is NAME_UNKNOWN (Berth)', { skip }, async () => {
  const p = await puller();
  try {
    const e = await failure(p.resolve(`${reg.loginServer}/tools/busybox:v9`, { keychain: admin() }), 'MANIFEST_UNKNOWN');
    assert.deepEqual(e.opts.existingTags, ['v1', 'v2']);
    assert.match(e.message, /manifest unknown/);
    assert.match(e.diagnosis, /Tags that exist: v1, v2/);
    await failure(p.resolve(`${reg.loginServer}/nothing/here:v1`, { keychain: admin() }), 'NAME_UNKNOWN');
    const wrongDigest = 'sha256:' + '0'.repeat(64);
    await failure(p.resolve(`${reg.loginServer}/tools/busybox@${wrongDigest}`, { keychain: admin() }), 'MANIFEST_UNKNOWN');
  } finally {
    await p.close();
  }
});

test('the reference registry with htpasswd: pull, wrong password, no credential, unknown tag and repository', { skip: skipRef }, async () => {
  const rr = refReg!;
  const layout = await busyboxLayout('v1');
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${rr.username}:${rr.password}`, `oci:${layout}:v1`, `docker://${rr.host}/lib/busybox:v1`]);
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${rr.username}:${rr.password}`, `oci:${layout}:v1`, `docker://${rr.host}/lib/busybox:stable`]);
  const p = await puller();
  const kc = (pw: string) => new InlineKeychain({ server: rr.host, username: rr.username, password: pw }, 'inline');
  try {
    const img = await p.pull(`${rr.host}/lib/busybox:v1`, { keychain: kc(rr.password) });
    assert.match(img.credentialSource, /^inline/);
    assert.equal(sha(await readFile(img.layers[0]!.path)), img.layers[0]!.digest);
    const wrong = await failure(p.resolve(`${rr.host}/lib/busybox:v1`, { keychain: kc('not-the-password') }), 'UNAUTHORIZED');
    assert.match(wrong.message, /unauthorized: authentication required/);
    assert.match(wrong.diagnosis, /inline .*user "?refuser/);
    assert.ok(!wrong.message.includes('not-the-password'));
    const none = await failure(p.resolve(`${rr.host}/lib/busybox:v1`, { keychain: new MultiKeychain([]) }), 'UNAUTHORIZED');
    assert.match(none.diagnosis, /No credential was found/);
    const tag = await failure(p.resolve(`${rr.host}/lib/busybox:v3`, { keychain: kc(rr.password) }), 'MANIFEST_UNKNOWN');
    assert.deepEqual(tag.opts.existingTags?.sort(), ['stable', 'v1']);
    await failure(p.resolve(`${rr.host}/lib/nothing:v1`, { keychain: kc(rr.password) }), 'NAME_UNKNOWN');
    // berth pull --registry-config takes the credential from a docker config.json
    const cfg = join(work, 'config.json');
    await writeFile(cfg, JSON.stringify({ auths: { [`https://${rr.host}/v1/`]: { auth: Buffer.from(`${rr.username}:${rr.password}`).toString('base64') } } }));
    const viaConfig = await runCli(['pull', `${rr.host}/lib/busybox:v1`, '--print', '--registry-config', cfg], { ...process.env, HOME: work, BERTH_DATA_DIR: work });
    assert.equal(viaConfig.code, 0, viaConfig.stderr);
    assert.match(JSON.parse(viaConfig.stdout).credentialSource, /config\.json/);
    const missing = await runCli(['pull', `${rr.host}/lib/busybox:v1`, '--print', '--registry-config', join(work, 'nope.json')], { ...process.env, HOME: work });
    assert.equal(missing.code, 2);
    // the skopeo comparison against a non-Berth registry too
    const sk = join(work, 'ref-skopeo');
    await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `${rr.username}:${rr.password}`, `docker://${rr.host}/lib/busybox:v1`, `oci:${sk}:v1`]);
    assert.equal(JSON.parse(await readFile(join(sk, 'index.json'), 'utf8')).manifests[0].digest, img.digest);
  } finally {
    await p.close();
  }
});

test('network failures: no such host, connection refused, timeout', async () => {
  const p = await puller({ timeoutMs: 500, maxAttempts: 2 });
  const kc = new MultiKeychain([]);
  let silent: Server | undefined;
  try {
    // Each is worded by what failed, not as something a registry answered.
    const said = (e: PullError) => diagnosePull(e, { caller: 'pull' });
    const host = await failure(p.resolve('nonexistent.invalid/app:v1', { keychain: kc }), 'NO_SUCH_HOST');
    assert.match(host.message, /no such host/);
    assert.match(said(host), /^DNS lookup failed: lookup nonexistent\.invalid: no such host/);
    const port = await freeLoopbackPort();
    const refused = await failure(p.resolve(`127.0.0.1:${port}/app:v1`, { keychain: kc }), 'CONNECTION_REFUSED');
    assert.match(refused.message, /connection refused/);
    assert.match(said(refused), /^Connection refused: /);
    // a server that accepts connections and never answers: the URL and the wait are named, not undici's code
    silent = createServer(() => {});
    await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', () => r()));
    const sp = (silent.address() as { port: number }).port;
    const t = await failure(p.resolve(`127.0.0.1:${sp}/app:v1`, { keychain: kc }), 'TIMEOUT');
    const words = said(t);
    assert.match(words, new RegExp(`^Timed out: http://127\\.0\\.0\\.1:${sp}/v2/\\S+: no answer within 500 ms`), words);
    assert.match(words, new RegExp(`waited 500 ms for an answer from 127\\.0\\.0\\.1:${sp}`));
    for (const e of [host, refused, t]) {
      assert.doesNotMatch(said(e), /UND_ERR|The registry answered/, said(e));
    }
  } finally {
    silent?.close();
    await p.close();
  }
});

test('TLS: a registry behind TLS pulls with --ca-file; an untrusted certificate and TLS to a plain-HTTP port are TLS errors', { skip }, async () => {
  const certs = await makeCerts(await mkdtemp(join(tmpdir(), 'berth-certs-')));
  let tls: FaultProxy | undefined;
  try {
    tls = await startFaultProxy(reg.loginServer, { tls: { key: certs.key, cert: certs.cert } });
    const ref = `${tls.host}/tools/busybox:v1`;
    const kc = new InlineKeychain({ server: tls.host, username: reg.username, password: reg.password });
    const good = await puller({ caFile: certs.ca });
    try {
      const img = await good.pull(ref, { keychain: kc });
      assert.equal(img.layers.length, 1);
      assert.ok(tls.requests.some((r) => r.path.startsWith('/oauth2/token')), 'the token came over TLS from the same host');
    } finally {
      await good.close();
    }
    const wrongCa = await puller({ caFile: certs.otherCa });
    try {
      const e = await failure(wrongCa.resolve(ref, { keychain: kc }), 'TLS');
      assert.match(diagnosePull(e, { caller: 'pull' }), /--ca-file FILE/);
      assert.ok(e.diagnosis.includes(certs.otherCa));
    } finally {
      await wrongCa.close();
    }
    // TLS to a port that speaks only plain HTTP (Berth's own ports speak both, so a plain proxy in front)
    const plainProxy = await startFaultProxy(reg.loginServer);
    const plain = await puller({ caFile: certs.ca });
    try {
      const e = await failure(plain.resolve(`${plainProxy.host}/tools/busybox:v1`, { keychain: admin() }), 'TLS');
      assert.match(e.diagnosis, /does not speak TLS/);
    } finally {
      await plain.close();
      await plainProxy.stop();
    }
    // Berth's registry itself over https, trusting Berth's CA with --ca-file
    assert.ok(b.tls, 'the test Berth serves TLS');
    const viaBerthCa = await puller({ caFile: b.tls.caPath });
    try {
      const img = await viaBerthCa.resolve(`${reg.loginServer}/tools/busybox:v1`, { keychain: admin() });
      assert.equal(img.layers.length, 1);
    } finally {
      await viaBerthCa.close();
    }
    // the CLI names the CA option when the certificate is not trusted
    const r = await b.cli(['pull', ref, '--print', '--creds', `${reg.username}:${reg.password}`, '--ca-file', certs.otherCa]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--ca-file/);
    assert.match(r.stderr, /\[TLS\]/);
  } finally {
    await tls?.stop();
  }
});

test('no secret in the CLI output or errors', { skip }, async () => {
  const r = await b.cli(['pull', `${reg.loginServer}/tools/busybox:v1`, '--print', '--creds', `${reg.username}:wrong-secret-123`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[UNAUTHORIZED\]/);
  assert.ok(!r.stderr.includes('wrong-secret-123'));
  const ok = await b.cli(['pull', `${reg.loginServer}/tools/busybox:v1`, '--print', '--creds', `${reg.username}:${reg.password}`]);
  assert.ok(!ok.stdout.includes(reg.password) && !ok.stderr.includes(reg.password));
});

test('token cache: one fetch for parallel requests, reuse until near expiry, issued_at honoured, realm validated', async () => {
  const { createServer: createHttpServer } = await import('node:http');
  const { TokenCache } = await import('../src/client/auth.js');
  const { Agent } = await import('undici');
  let issuedAgo = 0;
  let hits = 0;
  const seenAuth: Array<string | undefined> = [];
  const srv = createHttpServer((req, res) => {
    hits++;
    seenAuth.push(req.headers.authorization);
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: `t${hits}`, expires_in: 300, issued_at: new Date(Date.now() - issuedAgo * 1000).toISOString() }));
    }, 20);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const realm = `http://127.0.0.1:${(srv.address() as { port: number }).port}/token`;
  const agent = new Agent();
  const cache = new TokenCache(agent);
  const ch = { scheme: 'bearer', params: { realm, service: 'svc' } };
  const cred = { kind: 'basic' as const, username: 'u', password: 'p', source: 'test' };
  const opts = { registryIsPlainHttp: true };
  try {
    const tokens = await Promise.all(Array.from({ length: 10 }, () => cache.token('127.0.0.1:1', ch, ['repository:a:pull'], cred, opts)));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(hits, 1, 'ten parallel requests share one token fetch');
    assert.equal(seenAuth[0], 'Basic ' + Buffer.from('u:p').toString('base64'), 'a password goes to the realm as Basic');
    await cache.token('127.0.0.1:1', ch, ['repository:a:pull'], cred, opts);
    assert.equal(hits, 1, 'a fresh token is reused');
    await cache.token('127.0.0.1:1', ch, ['repository:b:pull'], cred, opts);
    assert.equal(hits, 2, 'another scope gets its own token');
    await cache.token('127.0.0.1:1', ch, ['repository:a:pull'], { ...cred, password: 'rotated' }, opts);
    assert.equal(hits, 3, 'another credential gets its own token');
    issuedAgo = 290; // issued 290 s ago with 300 s to live: too close to expiry to keep
    await cache.token('127.0.0.1:1', ch, ['repository:c:pull'], cred, opts);
    await cache.token('127.0.0.1:1', ch, ['repository:c:pull'], cred, opts);
    assert.equal(hits, 5, 'a token near its expiry is fetched again');
    await assert.rejects(cache.token('127.0.0.1:1', { scheme: 'bearer', params: { realm: 'ftp://x/token' } }, [], cred, opts), /scheme ftp/);
    await assert.rejects(cache.token('reg.example.com', ch, [], cred, { registryIsPlainHttp: false }), /over plain HTTP/);
    await assert.rejects(cache.token('127.0.0.1:1', { scheme: 'bearer', params: { realm: 'not a url' } }, [], cred, opts), /invalid realm/);
    assert.equal(hits, 5, 'no credential went to a refused realm');
  } finally {
    srv.close();
    await agent.close();
  }
});

test('an oversized manifest is refused while it streams', async () => {
  const { createServer: createHttpServer } = await import('node:http');
  const srv = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    const chunk = Buffer.alloc(1 << 20, 32);
    let n = 0;
    const write = () => { while (n++ < 8) if (!res.write(chunk)) return void res.once('drain', write); res.end(); };
    write();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const p = await puller();
  try {
    const e = await failure(p.resolve(`127.0.0.1:${(srv.address() as { port: number }).port}/big/manifest:v1`, { keychain: new MultiKeychain([]) }), 'UNSUPPORTED');
    assert.match(e.message, /larger than 4194304 bytes/);
  } finally {
    srv.closeAllConnections();
    srv.close();
    await p.close();
  }
});

test('the server\'s own puller (RunningBerth.puller) stores layers under <dataDir>/content', { skip }, async () => {
  const img = await b.puller.pull(`${reg.loginServer}/tools/busybox:v1`, { keychain: admin() });
  assert.ok(img.layers[0]!.path.startsWith(join(b.dataDir, 'content', 'blobs', 'sha256') + '/'), img.layers[0]!.path);
  assert.equal(sha(await readFile(img.layers[0]!.path)), img.layers[0]!.digest);
  assert.deepEqual(img.config.cmd, ['/bin/busybox', 'echo', 'hello']);
  assert.match(img.configDigest, /^sha256:/);
});

test('import rules: the pull client depends only on oci, keychain, the registry client, platform helpers and undici', async () => {
  const { readdir: ls } = await import('node:fs/promises');
  const dir = join(import.meta.dirname, '..', '..', 'src', 'pull');
  const allowed = [/^node:/, /^undici$/, /^\.\//, /^\.\.\/oci\//, /^\.\.\/keychain\/keychain\.js$/, /^\.\.\/client\//, /^\.\.\/lib\//];
  for (const f of (await ls(dir)).filter((x) => x.endsWith('.ts'))) {
    const text = await readFile(join(dir, f), 'utf8');
    for (const m of text.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)) {
      assert.ok(allowed.some((re) => re.test(m[1]!)), `src/pull/${f} imports ${m[1]} (the pull client must not depend on the CLI, the server or storage)`);
    }
  }
});

test('the content store sweeps downloads a crashed process left behind, but not fresh ones', async () => {
  const { ContentStore } = await import('../src/pull/content-store.js');
  const { utimes, mkdir: mk, readdir: ls } = await import('node:fs/promises');
  const root = await mkdtemp(join(tmpdir(), 'berth-content-'));
  await mk(join(root, 'tmp'), { recursive: true });
  await writeFile(join(root, 'tmp', 'old.partial'), 'x');
  await writeFile(join(root, 'tmp', 'fresh.partial'), 'y');
  const old = new Date(Date.now() - 2 * 24 * 3600_000);
  await utimes(join(root, 'tmp', 'old.partial'), old, old);
  const store = new ContentStore(root);
  await store.tempPath(sha('z') as never);
  assert.deepEqual((await ls(join(root, 'tmp'))).sort(), ['fresh.partial']);
});

test('a download that would cross the disk\'s reserve stops, leaves nothing, and says what to free', { skip }, async () => {
  const { DiskSpace } = await import('../src/storage/disk-space.js');
  const contentDir = await mkdtemp(join(tmpdir(), 'berth-content-'));
  // A reserve larger than the disk: no blob byte fits.
  const p = new RegistryPuller({ contentDir, backoffMs: 20, space: new DiskSpace(contentDir, { reserve: Number.MAX_SAFE_INTEGER }) });
  try {
    const e = await failure(p.pull(`${reg.loginServer}/tools/busybox:v1`, { keychain: admin() }), 'STORAGE_FULL');
    assert.match(e.registryMessage, /could not be stored: only .* free, and .* is kept in reserve/);
    const { diagnosePull } = await import('../src/pull/diagnosis.js');
    const group = diagnosePull(e, { caller: 'group' });
    assert.match(group, /^Disk space: blob sha256:/);
    assert.match(group, /berth container prune-images/);
    assert.match(diagnosePull(e, { caller: 'pull' }), /Free space on the disk that holds the content store/);
    const tmp = await readdir(join(contentDir, 'tmp')).catch(() => []);
    assert.deepEqual(tmp, [], 'no partial download is left');
  } finally {
    await p.close();
  }
});
