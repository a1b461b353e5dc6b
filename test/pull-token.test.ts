// The pull client against the reference docker-registry with token auth (`auth: token`), the way Docker
// Hub and most private registries work: the registry answers 401 with a Bearer challenge naming a token
// server started by the test helper (JWTs with an x5c chain the registry trusts). Covers tokens for
// a password (GET with Basic), for a refresh token (POST grant_type=refresh_token), anonymous tokens for
// a public repository, insufficient scope (DENIED), and one token fetch shared by parallel requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxLayout, haveImageTools } from './helpers/images.js';
import { haveReferenceRegistry, startTokenAuthRegistry, type TokenAuthRegistry } from './helpers/reference-registry.js';
import { RegistryPuller } from '../src/pull/puller.js';
import { PullError } from '../src/pull/types.js';
import { InlineKeychain } from '../src/keychain/inline.js';
import { MultiKeychain, type Keychain } from '../src/keychain/keychain.js';

const run = promisify(execFile);
const skip = haveImageTools() ?? haveReferenceRegistry();
let reg: TokenAuthRegistry | undefined;

before(async () => {
  if (skip) return;
  reg = await startTokenAuthRegistry({
    users: [
      { username: 'pusher', password: 'push-pw', actions: () => ['pull', 'push'] },
      { username: 'reader', password: 'read-pw', actions: () => ['pull'] },
      { username: 'nobody', password: 'nobody-pw', actions: () => [] },
    ],
    anonymous: (repo) => (repo.startsWith('public/') ? ['pull'] : []),
  });
  const layout = await busyboxLayout('v1');
  for (const repo of ['private/busybox:v1', 'public/busybox:v1']) {
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'pusher:push-pw', `oci:${layout}:v1`, `docker://${reg.host}/${repo}`]);
  }
});
after(async () => {
  await reg?.stop();
});

const counts = () => ({ ...reg!.tokens.counts });

async function puller(): Promise<RegistryPuller> {
  return new RegistryPuller({ contentDir: await mkdtemp(join(tmpdir(), 'berth-content-')), backoffMs: 20 });
}
const pullErr = (p: Promise<unknown>) => p.then(() => assert.fail('expected a PullError'), (e: unknown) => { assert.ok(e instanceof PullError, String(e)); return e; });

test('token auth: a password gets a token with GET + Basic; parallel pulls share one token fetch', { skip }, async () => {
  const p = await puller();
  try {
    const before = counts();
    const kc = new InlineKeychain({ server: reg!.host, username: 'reader', password: 'read-pw' }, 'inline');
    const imgs = await Promise.all(Array.from({ length: 5 }, () => p.pull(`${reg!.host}/private/busybox:v1`, { keychain: kc })));
    assert.equal(new Set(imgs.map((i) => i.digest)).size, 1);
    assert.match(imgs[0]!.credentialSource, /^inline/);
    assert.equal(counts().basic - before.basic, 1, 'one token (GET with Basic) for five parallel pulls');
  } finally {
    await p.close();
  }
});

test('token auth: a refresh token is sent as grant_type=refresh_token', { skip }, async () => {
  const p = await puller();
  try {
    // an offline token, as `docker login` keeps it as identitytoken
    const res = await fetch(`${reg!.tokens.realm}?service=${reg!.tokens.service}&offline_token=true`, { headers: { authorization: 'Basic ' + Buffer.from('reader:read-pw').toString('base64') } });
    const refreshToken = ((await res.json()) as { refresh_token: string }).refresh_token;
    assert.ok(refreshToken);
    const before = counts();
    const kc: Keychain = { description: 'test identity', resolve: async () => ({ kind: 'refreshToken', refreshToken, source: 'identity token' }) };
    const img = await p.resolve(`${reg!.host}/private/busybox:v1`, { keychain: kc });
    assert.equal(img.credentialSource, 'identity token');
    assert.equal(counts().refresh - before.refresh, 1);
    assert.equal(counts().basic - before.basic, 0);
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
    assert.match(wrong.message, /wrong username or password/);
    assert.match(wrong.diagnosis, /user "?reader/);
    const denied = await pullErr(p.resolve(`${reg!.host}/private/busybox:v1`, { keychain: new InlineKeychain({ server: reg!.host, username: 'nobody', password: 'nobody-pw' }, 'inline') }));
    assert.equal(denied.code, 'DENIED');
    assert.match(denied.diagnosis, /user "?nobody/);
  } finally {
    await p.close();
  }
});
