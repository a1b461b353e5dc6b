// TLS on every Berth port: the local CA and the server certificate it issues, HTTPS and plain HTTP on
// one port, real clients over HTTPS with the CA trusted (never with verification turned off): skopeo
// (--dest-cert-dir/--src-cert-dir), podman (--cert-dir), the Azure identity SDK (NODE_EXTRA_CA_CERTS in
// a child node process), and the berth CLI itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { createConnection } from 'node:net';
import { Agent, fetch as undiciFetch, request } from 'undici';
import { startTestBerth, adminRegistry, which, REPO_ROOT, type TestBerth } from './helpers/berth.js';
import { busyboxLayout, haveImageTools } from './helpers/images.js';
import { startBerth } from '../src/platform/berth.js';
import { dataPaths } from '../src/lib/data-dir.js';
import { whyReissue } from '../src/net/tls.js';
import { serverNames } from '../src/platform/server-names.js';
import { armId } from '../src/registry/registries.js';
import { principalWithRole } from './helpers/vault.js';

const run = promisify(execFile);
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let certDir: string;
let trusting: Agent;

before(async () => {
  b = await startTestBerth();
  reg = await adminRegistry(b, 'tlsreg01');
  certDir = await mkdtemp(join(tmpdir(), 'berth-certs-'));
  await copyFile(b.tls!.caPath, join(certDir, 'ca.crt'));
  trusting = new Agent({ connect: { ca: [...rootCertificates, b.tls!.ca] } });
});
after(async () => {
  await trusting?.close();
  await b?.cleanup();
});

const regPort = () => reg.loginServer.split(':')[1]!;

test('the CA and the server certificate are in the data directory with the right modes', async () => {
  const p = dataPaths(b.dataDir).tls;
  assert.equal((await stat(p.ca)).mode & 0o777, 0o644);
  assert.equal((await stat(p.caKey)).mode & 0o777, 0o600);
  assert.equal((await stat(p.key)).mode & 0o777, 0o600);
  const ca = new X509Certificate(await readFile(p.ca));
  assert.equal(ca.ca, true);
  const cert = new X509Certificate(await readFile(p.cert));
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'the server certificate is signed by the CA');
  const san = cert.subjectAltName ?? '';
  for (const want of ['DNS:localhost', 'DNS:host.berth.internal', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']) assert.ok(san.includes(want), `SAN has ${want}: ${san}`);
  assert.ok(cert.checkIP('::1') && cert.checkIP('127.0.0.1') && cert.checkHost('localhost'));
  assert.equal(cert.checkHost('example.com'), undefined);
  assert.match(cert.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.1/, 'extended key usage: serverAuth');
  for (const x of [ca, cert]) {
    assert.equal(x.publicKey.asymmetricKeyType, 'ec');
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  }
  // OpenSSL (curl) accepts the chain as well as Go (skopeo, podman) and Node do below
  if (which('curl')) {
    const { stdout } = await run('curl', ['-sSf', '--cacert', p.ca, `https://localhost:${b.port}/${b.identity.ids.tenantId}/v2.0/.well-known/openid-configuration`]);
    assert.match(stdout, /"token_endpoint":"https:\/\/localhost:/);
  }
});

test('one port speaks HTTPS and plain HTTP; realms and discovery follow the scheme the client used', async () => {
  // management API + identity endpoint
  const tenant = b.identity.ids.tenantId;
  const docPath = `/${tenant}/v2.0/.well-known/openid-configuration`;
  const secure = await undiciFetch(`https://localhost:${b.port}${docPath}`, { dispatcher: trusting });
  assert.equal(secure.status, 200);
  const doc = (await secure.json()) as { issuer: string; token_endpoint: string; jwks_uri: string };
  assert.equal(doc.token_endpoint, `https://localhost:${b.port}/${tenant}/oauth2/v2.0/token`);
  assert.ok(doc.issuer.startsWith('https://localhost:') && doc.jwks_uri.startsWith('https://localhost:'));
  const plain = (await (await fetch(`http://127.0.0.1:${b.port}${docPath}`)).json()) as { issuer: string; token_endpoint: string };
  assert.equal(plain.token_endpoint, `http://127.0.0.1:${b.port}/${tenant}/oauth2/v2.0/token`);
  // a token's issuer is the one of the discovery document its client read; either is accepted everywhere
  const owner = JSON.parse(await readFile(dataPaths(b.dataDir).ownerCredential, 'utf8')) as { clientId: string; clientSecret: string };
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: owner.clientId, client_secret: owner.clientSecret, scope: 'https://management.azure.com/.default' }).toString();
  const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' };
  const sTok = (await (await undiciFetch(doc.token_endpoint, { method: 'POST', headers: formHeaders, body: form, dispatcher: trusting })).json()) as { access_token: string };
  const pTok = (await (await fetch(plain.token_endpoint, { method: 'POST', headers: formHeaders, body: form })).json()) as { access_token: string };
  const iss = (t: string) => (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { iss: string }).iss;
  assert.equal(iss(sTok.access_token), doc.issuer);
  assert.equal(iss(pTok.access_token), plain.issuer);
  const subs = `/subscriptions?api-version=2022-12-01`;
  assert.equal((await fetch(`http://127.0.0.1:${b.port}${subs}`, { headers: { authorization: `Bearer ${sTok.access_token}` } })).status, 200);
  assert.equal((await undiciFetch(`https://localhost:${b.port}${subs}`, { headers: { authorization: `Bearer ${pTok.access_token}` }, dispatcher: trusting })).status, 200);
  // a Host the server does not answer to gets the canonical issuer, not an echo of the header
  const odd = (await (await request(`http://127.0.0.1:${b.port}${docPath}`, { headers: { host: 'evil.example' } })).body.json()) as { issuer: string; token_endpoint: string };
  assert.equal(odd.token_endpoint, `http://evil.example/${tenant}/oauth2/v2.0/token`, 'the Host header reached the server');
  assert.equal(odd.issuer, `http://127.0.0.1:${b.port}/${tenant}/v2.0`);

  // ARM's challenge points at the identity endpoint on the same scheme
  const arm = await undiciFetch(`https://localhost:${b.port}/subscriptions?api-version=2022-12-01`, { dispatcher: trusting });
  assert.equal(arm.status, 401);
  assert.match(arm.headers.get('www-authenticate') ?? '', new RegExp(`authorization_uri="https://localhost:${b.port}/${tenant}"`));

  // a registry's login server
  const s = await undiciFetch(`https://localhost:${regPort()}/v2/`, { dispatcher: trusting });
  assert.equal(s.status, 401);
  assert.match(s.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="https://localhost:${regPort()}/oauth2/token"`));
  const h = await fetch(`http://${reg.loginServer}/v2/`);
  assert.equal(h.status, 401);
  assert.match(h.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="http://${reg.loginServer}/oauth2/token"`));
  const ok = await undiciFetch(`https://localhost:${regPort()}/v2/`, { dispatcher: trusting, headers: { authorization: reg.auth } });
  assert.equal(ok.status, 200);

  // without the CA, verification fails: the certificate is really checked
  await assert.rejects(fetch(`https://localhost:${regPort()}/v2/`), (e: Error & { cause?: { code?: string } }) =>
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(String(e.cause?.code)));
});

const skip = haveImageTools();
const creds = () => `${reg.username}:${reg.password}`;

test('TLS 1.3 with AES-128-GCM first: a client that lists AES-256-GCM first still gets AES-128-GCM; one offering only AES-256 gets it', async () => {
  const ca = await readFile(dataPaths(b.dataDir).tls.ca, 'utf8');
  const negotiated = (ciphersuites: string, port: number) => new Promise<string>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port, ca: [ca], minVersion: 'TLSv1.3', ciphers: ciphersuites }, () => {
      const name = s.getCipher().name;
      s.end();
      resolve(name);
    });
    s.on('error', reject);
  });
  // OpenSSL's own client order (AES-256 first), on the main port and on a registry's
  for (const port of [b.port, Number(regPort())]) {
    assert.equal(await negotiated('TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256', port), 'TLS_AES_128_GCM_SHA256');
    assert.equal(await negotiated('TLS_AES_256_GCM_SHA384', port), 'TLS_AES_256_GCM_SHA384');
    assert.equal(await negotiated('TLS_CHACHA20_POLY1305_SHA256', port), 'TLS_CHACHA20_POLY1305_SHA256');
  }
});

test('skopeo pushes and pulls over HTTPS with the CA in --dest-cert-dir/--src-cert-dir', { skip }, async () => {
  const layout = await busyboxLayout('v1');
  const target = `docker://localhost:${regPort()}/tls/busybox:v1`;
  await run('skopeo', ['copy', '--dest-cert-dir', certDir, '--dest-creds', creds(), `oci:${layout}:v1`, target]);
  const out = join(await mkdtemp(join(tmpdir(), 'berth-tls-pull-')), 'out');
  await run('skopeo', ['copy', '--src-cert-dir', certDir, '--src-creds', creds(), target, `oci:${out}:v1`]);
  const src = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const dst = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  assert.equal(dst.manifests[0]!.digest, src.manifests[0]!.digest, 'the manifest survives the HTTPS round trip');
  // the token requests went over HTTPS too (the realm skopeo followed was https)
  assert.ok(b.logs.some((l) => l.includes('"registry":"tlsreg01"') && l.includes('/oauth2/token')), 'skopeo used the token realm');
  // without the CA, skopeo refuses the certificate (verification is on)
  await assert.rejects(run('skopeo', ['inspect', '--creds', creds(), target]),
    (e: Error & { stderr?: string }) => /x509|certificate/i.test(String(e.stderr)));
});

test('50 parallel skopeo pulls over HTTPS with a new service principal (cold secret cache) all succeed', { skip, timeout: 180_000 }, async () => {
  const layout = await busyboxLayout('v1');
  const target = `docker://localhost:${regPort()}/parallel/busybox:v1`;
  await run('skopeo', ['copy', '--dest-cert-dir', certDir, '--dest-creds', creds(), `oci:${layout}:v1`, target]);
  const sp = await principalWithRole(b, 'AcrPull', armId(await b.registries.get('rg', 'tlsreg01')));
  const out = await mkdtemp(join(tmpdir(), 'berth-tls-par-'));
  try {
    const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const started = Date.now();
      try {
        await run('skopeo', ['copy', '--src-cert-dir', certDir, '--src-creds', `${sp.appId}:${sp.secret}`, target, `dir:${join(out, String(i))}`], { timeout: 90_000 });
        return { ms: Date.now() - started };
      } catch (e) {
        return { ms: Date.now() - started, error: String((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n').pop() };
      }
    }));
    const ms = results.map((r) => r.ms).sort((a, c) => a - c);
    console.log(`# 50 parallel skopeo pulls over HTTPS: p50 ${ms[25]} ms, p99 ${ms[49]} ms`);
    assert.deepEqual(results.filter((r) => r.error).map((r) => r.error), [], 'every pull succeeds');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

const podmanSkip = skip ?? (which('podman') ? undefined : 'podman is not installed');

test('podman pulls and pushes over HTTPS with --cert-dir', { skip: podmanSkip }, async () => {
  const layout = await busyboxLayout('v1');
  const login = `localhost:${regPort()}`;
  await run('skopeo', ['copy', '--dest-cert-dir', certDir, '--dest-creds', creds(), `oci:${layout}:v1`, `docker://${login}/psrc/busybox:v1`]);
  const storage = await mkdtemp(join(tmpdir(), 'berth-podman-tls-'));
  const podman = (...args: string[]) => run('podman', ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'vfs', '--cgroup-manager=cgroupfs', ...args], { maxBuffer: 16 * 1024 * 1024 });
  try {
    await podman('pull', '--cert-dir', certDir, '--creds', creds(), `${login}/psrc/busybox:v1`);
    await podman('tag', `${login}/psrc/busybox:v1`, `${login}/ppush/busybox:v1`);
    await podman('push', '--cert-dir', certDir, '--creds', creds(), `${login}/ppush/busybox:v1`);
    await podman('rmi', '-a', '-f');
    await podman('pull', '--cert-dir', certDir, '--creds', creds(), `${login}/ppush/busybox:v1`);
    const { stdout } = await podman('images', '--format', '{{.Repository}}:{{.Tag}}');
    assert.match(stdout, new RegExp(`${login}/ppush/busybox:v1`));
  } finally {
    await podman('rmi', '-a', '-f').catch(() => undefined);
    await rm(storage, { recursive: true, force: true }).catch(() => undefined);
  }
});

/** Runs a module snippet in a child node with NODE_EXTRA_CA_CERTS (read at process start only). */
async function nodeWithCa(code: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], {
    cwd: REPO_ROOT, env: { ...process.env, NODE_EXTRA_CA_CERTS: b.tls!.caPath, ...env },
  });
  return stdout;
}

// The SDK's own ClientSecretCredential against Berth's identity endpoint, then the token on ARM over HTTPS.
// The secret reaches the child through its environment, never its command line.
const SDK_SNIPPET = `
import { ClientSecretCredential } from '@azure/identity';
const cred = new ClientSecretCredential(process.env.T_TENANT, process.env.T_CLIENT, process.env.T_SECRET,
  { authorityHost: process.env.T_AUTHORITY, disableInstanceDiscovery: true });
const out = {};
try {
  const t = await cred.getToken('https://management.azure.com/.default');
  out.token = t.token.split('.').length === 3;
  out.expiresInSeconds = Math.round((t.expiresOnTimestamp - Date.now()) / 1000);
  const r = await fetch(process.env.T_AUTHORITY + '/subscriptions?api-version=2022-12-01', { headers: { authorization: 'Bearer ' + t.token } });
  out.status = r.status;
  out.subscriptions = (await r.json()).value.map((s) => s.subscriptionId);
} catch (e) { out.error = e.name + ': ' + e.message; }
console.log(JSON.stringify(out));
`;

test('@azure/identity ClientSecretCredential gets a token from Berth over HTTPS (CA via NODE_EXTRA_CA_CERTS)', async () => {
  const sub = b.identity.ids.subscriptionId;
  // a service principal made with the domain service, with Reader on the subscription
  const app = await b.applications.createApplication('tls-sdk-app');
  await b.applications.createServicePrincipal(app.appId);
  const pw = await b.applications.addPassword(app.id, {});
  const reader = (await import('../src/identity/roles.js')).findRole('Reader')!;
  await b.identity.assignRole(app.id, reader, `/subscriptions/${sub}`);
  const env = { T_TENANT: b.identity.ids.tenantId, T_CLIENT: app.appId, T_SECRET: pw.secretText, T_AUTHORITY: `https://localhost:${b.port}` };
  const res = JSON.parse(await nodeWithCa(SDK_SNIPPET, env)) as { token?: boolean; expiresInSeconds?: number; status?: number; subscriptions?: string[]; error?: string };
  assert.equal(res.error, undefined);
  assert.equal(res.token, true);
  assert.ok(res.expiresInSeconds! > 3000 && res.expiresInSeconds! <= 3600, `expires in ${res.expiresInSeconds}s`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.subscriptions, [sub]);

  // the local owner credential works the same way
  const owner = JSON.parse(await readFile(dataPaths(b.dataDir).ownerCredential, 'utf8')) as { tenantId: string; clientId: string; clientSecret: string };
  const o = JSON.parse(await nodeWithCa(SDK_SNIPPET, { ...env, T_CLIENT: owner.clientId, T_SECRET: owner.clientSecret })) as { status?: number; error?: string };
  assert.equal(o.error, undefined);
  assert.equal(o.status, 200);

  // a wrong secret is refused by Berth (not by TLS)
  const bad = JSON.parse(await nodeWithCa(SDK_SNIPPET, { ...env, T_SECRET: 'wrong-secret' })) as { error?: string };
  assert.match(bad.error ?? '', /invalid_client|invalid client secret/i);
  // without the CA the SDK cannot reach the endpoint: TLS verification is on
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', SDK_SNIPPET], { cwd: REPO_ROOT, env: { ...process.env, ...env, NODE_EXTRA_CA_CERTS: '' } });
  assert.ok((JSON.parse(stdout) as { error?: string }).error, 'an untrusted certificate is refused');
});

test('the berth CLI talks HTTPS to BERTH_SERVER with the CA from the data directory; berth ca explains trust', async () => {
  const sub = b.identity.ids.subscriptionId;
  const https = { BERTH_SERVER: `https://localhost:${b.port}` };
  const sp = await b.cli(['ad', 'sp', 'create-for-rbac', '-n', 'tls-cli-sp', '--role', 'Reader', '--scopes', `/subscriptions/${sub}`], { env: https });
  assert.equal(sp.code, 0, sp.stderr);
  const created = JSON.parse(sp.stdout) as { appId: string; password: string; tenant: string };
  assert.ok(created.appId && created.password);
  const list = await b.cli(['acr', 'list', '--query', '[].name', '-o', 'tsv'], { env: https });
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout.trim(), 'tlsreg01');
  // the SP made by the CLI signs in with the SDK too
  const res = JSON.parse(await nodeWithCa(SDK_SNIPPET, { T_TENANT: created.tenant, T_CLIENT: created.appId, T_SECRET: created.password, T_AUTHORITY: `https://localhost:${b.port}` })) as { status?: number; error?: string };
  assert.equal(res.error, undefined);
  assert.equal(res.status, 200);

  const path = await b.cli(['ca', '--path']);
  assert.equal(path.code, 0, path.stderr);
  assert.equal(path.stdout.trim(), b.tls!.caPath);
  const help = await b.cli(['ca']);
  assert.equal(help.code, 0, help.stderr);
  for (const want of ['NODE_EXTRA_CA_CERTS', '--cacert', '/etc/docker/certs.d/', '--cert-dir', '--dest-cert-dir', '/etc/containers/certs.d/', b.tls!.caPath]) {
    assert.ok(help.stdout.includes(want), `berth ca mentions ${want}`);
  }
  const none = await b.cli(['ca'], { env: { BERTH_DATA_DIR: join(tmpdir(), 'berth-no-such-dir') } });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^ERROR: There is no CA in .*berth serve/);
});

test('the CA survives restarts; the server certificate is kept, re-issued when deleted, expiring or missing a name', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tls-restart-'));
  const p = dataPaths(dir).tls;
  try {
    let s = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined });
    const ca1 = await readFile(p.ca, 'utf8');
    const cert1 = await readFile(p.cert, 'utf8');
    await s.stop();

    s = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined });
    assert.equal(await readFile(p.ca, 'utf8'), ca1, 'same CA after a restart');
    assert.equal(await readFile(p.cert, 'utf8'), cert1, 'a valid server certificate is kept');
    await s.stop();

    await rm(p.cert);
    s = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined });
    const cert2 = await readFile(p.cert, 'utf8');
    assert.notEqual(cert2, cert1, 'a deleted server certificate is issued again');
    assert.equal(await readFile(p.ca, 'utf8'), ca1);
    assert.ok(new X509Certificate(cert2).checkIssued(new X509Certificate(ca1)));
    // and it is the one served
    const agent = new Agent({ connect: { ca: [ca1] } });
    const r = await undiciFetch(`https://localhost:${s.port}/${s.identity.ids.tenantId}/v2.0/.well-known/openid-configuration`, { dispatcher: agent });
    assert.equal(r.status, 200);
    await agent.close();
    // neither a client that refuses the certificate mid-handshake nor one that connects and sends
    // nothing keeps the server from stopping
    await assert.rejects(fetch(`https://localhost:${s.port}/`));
    const silent = createConnection(s.port, '127.0.0.1');
    silent.on('error', () => undefined);
    await new Promise((res) => silent.once('connect', res));
    await s.stop();
    silent.destroy();

    const logs: string[] = [];
    s = await startBerth({ dataDir: dir, port: 0, domain: 'berth.example.test', logSink: (l) => logs.push(l) });
    const cert3 = new X509Certificate(await readFile(p.cert, 'utf8'));
    assert.ok(cert3.checkHost('berth.example.test') && cert3.checkHost('localhost'), 'a new --domain gets a certificate that covers it');
    assert.ok(logs.some((l) => l.includes('server certificate issued') && l.includes('does not cover berth.example.test')));
    await s.stop();

    // expiry is checked too (the certificate is re-issued 30 days before it expires)
    const later = Date.now() + 380 * 24 * 3600 * 1000;
    assert.match(whyReissue(cert3.toString(), ca1, serverNames('berth.example.test'), later) ?? '', /^expires /);
    assert.equal(whyReissue(cert3.toString(), ca1, serverNames('berth.example.test')), undefined);
    assert.match(whyReissue(cert1, ca1, serverNames('other.example.test')) ?? '', /does not cover other\.example\.test/);

    // a CA key that does not belong to the CA certificate is an error that says what to do, not a new CA
    await copyFile(p.key, p.caKey);
    await assert.rejects(startBerth({ dataDir: dir, port: 0, logSink: () => undefined }), /ca-key\.pem is not the key of .*ca\.pem/);
    await rm(p.caKey);
    await assert.rejects(startBerth({ dataDir: dir, port: 0, logSink: () => undefined }), /ca-key\.pem is missing/);
    // a CA key without its certificate (a crash while the CA was created) is replaced by a new CA
    await rm(p.ca);
    await copyFile(p.key, p.caKey);
    s = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined });
    const ca2 = await readFile(p.ca, 'utf8');
    assert.notEqual(ca2, ca1);
    assert.equal(whyReissue(await readFile(p.cert, 'utf8'), ca2, serverNames()), undefined, 'the server certificate is issued by the new CA');
    await s.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('--no-tls serves plain HTTP only and creates no CA; a bad --domain is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-notls-'));
  try {
    const s = await startBerth({ dataDir: dir, port: 0, tls: false, logSink: () => undefined });
    assert.equal(s.httpsUrl, undefined);
    assert.equal((await fetch(`${s.url}/${s.identity.ids.tenantId}/v2.0/.well-known/openid-configuration`)).status, 200);
    await assert.rejects(stat(dataPaths(dir).tls.ca));
    await s.stop();
    await assert.rejects(startBerth({ dataDir: dir, port: 0, tls: false, domain: 'x.test', logSink: () => undefined }), /cannot be used with --no-tls/);
    await mkdir(dir, { recursive: true });
    await assert.rejects(startBerth({ dataDir: dir, port: 0, domain: 'not a name', logSink: () => undefined }), /--domain 'not a name' is not a valid host name/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
