// The pull client against the reference docker-registry with token auth (`auth: token`), the way Docker
// Hub and most private registries work: the registry answers 401 with a Bearer challenge naming a token
// server started here, which signs JWTs (ES256 with an x5c chain the registry trusts). Covers tokens for
// a password (GET with Basic), for a refresh token (POST grant_type=refresh_token), anonymous tokens for
// a public repository, insufficient scope (DENIED), and one token fetch shared by parallel requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { busyboxLayout, haveImageTools } from './helpers/images.js';
import { haveReferenceRegistry, startReferenceRegistry, type ReferenceRegistry } from './helpers/reference-registry.js';
import { RegistryPuller } from '../src/pull/puller.js';
import { PullError } from '../src/pull/types.js';
import { InlineKeychain } from '../src/keychain/inline.js';
import { MultiKeychain, type Keychain } from '../src/keychain/keychain.js';
import { which } from './helpers/berth.js';

const run = promisify(execFile);
const skip = haveImageTools() ?? haveReferenceRegistry() ?? (which('openssl') ? undefined : 'openssl is not installed');
const SERVICE = 'berth-test-registry';
const ISSUER = 'berth-test-issuer';
const USERS: Record<string, { password: string; actions: string[] }> = {
  pusher: { password: 'push-pw', actions: ['pull', 'push'] },
  reader: { password: 'read-pw', actions: ['pull'] },
  nobody: { password: 'nobody-pw', actions: [] },
};
const REFRESH_TOKENS: Record<string, string> = { 'rt-for-reader': 'reader' };

let reg: ReferenceRegistry | undefined;
let tokenServer: Server | undefined;
const tokenRequests: Array<{ method: string; grant?: string; user?: string; scopes: string[] }> = [];

async function startTokenServer(dir: string): Promise<{ realm: string; bundle: string }> {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=berth-test-token-signer'], { cwd: dir });
  const key = createPrivateKey(await readFile(join(dir, 'key.pem'), 'utf8'));
  const certDer = (await readFile(join(dir, 'cert.pem'), 'utf8')).replace(/-----[^-]+-----|\s/g, '');
  const body = (req: IncomingMessage) => new Promise<string>((r) => { let s = ''; req.on('data', (d) => (s += d)); req.on('end', () => r(s)); });
  tokenServer = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let user: string | undefined;
    let scopes: string[];
    let grant: string | undefined;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await body(req));
      grant = form.get('grant_type') ?? undefined;
      scopes = form.getAll('scope').flatMap((s) => s.split(' '));
      user = grant === 'refresh_token' ? REFRESH_TOKENS[form.get('refresh_token') ?? ''] : undefined;
      if (!user) { res.writeHead(401, { 'content-type': 'application/json' }); res.end('{"errors":[{"code":"UNAUTHORIZED","message":"invalid refresh token"}]}'); return; }
    } else {
      scopes = url.searchParams.getAll('scope');
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const [u, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
        if (!u || USERS[u]?.password !== p) { res.writeHead(401, { 'content-type': 'application/json' }); res.end('{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}'); return; }
        user = u;
      }
    }
    tokenRequests.push({ method: req.method ?? 'GET', ...(grant ? { grant } : {}), ...(user ? { user } : {}), scopes });
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(':');
      const wanted = (actions ?? '').split(',');
      const allowed = user ? USERS[user]!.actions : name!.startsWith('public/') ? ['pull'] : [];
      return { type, name, actions: wanted.filter((a) => allowed.includes(a)) };
    });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [certDer] })
      .setIssuer(ISSUER).setAudience(SERVICE).setSubject(user ?? '').setIssuedAt(now).setNotBefore(now - 10).setExpirationTime(now + 300).setJti(randomUUID())
      .sign(key);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => tokenServer!.listen(0, '127.0.0.1', () => r()));
  return { realm: `http://127.0.0.1:${(tokenServer.address() as { port: number }).port}/token`, bundle: join(dir, 'cert.pem') };
}

before(async () => {
  if (skip) return;
  const dir = await mkdtemp(join(tmpdir(), 'berth-tokreg-'));
  const ts = await startTokenServer(dir);
  reg = await startReferenceRegistry({ token: { realm: ts.realm, service: SERVICE, issuer: ISSUER, rootCertBundle: ts.bundle } });
  const layout = await busyboxLayout('v1');
  for (const repo of ['private/busybox:v1', 'public/busybox:v1']) {
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'pusher:push-pw', `oci:${layout}:v1`, `docker://${reg.host}/${repo}`]);
  }
});
after(async () => {
  await reg?.stop();
  tokenServer?.close();
});

async function puller(): Promise<RegistryPuller> {
  return new RegistryPuller({ contentDir: await mkdtemp(join(tmpdir(), 'berth-content-')), backoffMs: 20 });
}
const pullErr = (p: Promise<unknown>) => p.then(() => assert.fail('expected a PullError'), (e: unknown) => { assert.ok(e instanceof PullError, String(e)); return e; });

test('token auth: a password gets a token with GET + Basic; parallel pulls share one token fetch', { skip }, async () => {
  const p = await puller();
  try {
    tokenRequests.length = 0;
    const kc = new InlineKeychain({ server: reg!.host, username: 'reader', password: 'read-pw' }, 'inline');
    const imgs = await Promise.all(Array.from({ length: 5 }, () => p.pull(`${reg!.host}/private/busybox:v1`, { keychain: kc })));
    assert.equal(new Set(imgs.map((i) => i.digest)).size, 1);
    assert.match(imgs[0]!.credentialSource, /^inline/);
    assert.equal(tokenRequests.length, 1, 'one token for five parallel pulls');
    assert.deepEqual(tokenRequests[0], { method: 'GET', user: 'reader', scopes: ['repository:private/busybox:pull'] });
  } finally {
    await p.close();
  }
});

test('token auth: a refresh token is sent as grant_type=refresh_token', { skip }, async () => {
  const p = await puller();
  try {
    tokenRequests.length = 0;
    const kc: Keychain = { description: 'test identity', resolve: async () => ({ kind: 'refreshToken', refreshToken: 'rt-for-reader', source: 'identity token' }) };
    const img = await p.resolve(`${reg!.host}/private/busybox:v1`, { keychain: kc });
    assert.equal(img.credentialSource, 'identity token');
    assert.equal(tokenRequests[0]!.grant, 'refresh_token');
    assert.equal(tokenRequests[0]!.user, 'reader');
  } finally {
    await p.close();
  }
});

test('token auth: anonymous tokens pull a public repository; a private one says no credential was found', { skip }, async () => {
  const p = await puller();
  try {
    const img = await p.pull(`${reg!.host}/public/busybox:v1`, { keychain: new MultiKeychain([]) });
    assert.equal(img.credentialSource, 'anonymous');
    const e = await pullErr(p.resolve(`${reg!.host}/private/busybox:v1`, { keychain: new MultiKeychain([]) }));
    assert.equal(e.code, 'UNAUTHORIZED');
    assert.match(e.diagnosis, /No credential was found/);
  } finally {
    await p.close();
  }
});

test('token auth: wrong password is UNAUTHORIZED naming the user; a user without pull is DENIED', { skip }, async () => {
  const p = await puller();
  try {
    const wrong = await pullErr(p.resolve(`${reg!.host}/private/busybox:v1`, { keychain: new InlineKeychain({ server: reg!.host, username: 'reader', password: 'nope' }, 'inline') }));
    assert.equal(wrong.code, 'UNAUTHORIZED');
    assert.match(wrong.message, /incorrect username or password/);
    assert.match(wrong.diagnosis, /user "?reader/);
    const denied = await pullErr(p.resolve(`${reg!.host}/private/busybox:v1`, { keychain: new InlineKeychain({ server: reg!.host, username: 'nobody', password: 'nobody-pw' }, 'inline') }));
    assert.equal(denied.code, 'DENIED');
    assert.match(denied.diagnosis, /user "?nobody/);
  } finally {
    await p.close();
  }
});
