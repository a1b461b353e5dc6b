// The pull client against a Berth registry behind a fault-injecting proxy: 429 with Retry-After, 503,
// a connection dropped mid-blob (resumed with Range), corrupted bytes (DIGEST_MISMATCH, nothing in the
// cache), 20 concurrent pulls fetching each blob once, credentials never following a redirect to
// another host, and one re-challenge after the keychain refreshes a refused credential.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { haveImageTools, multiLayerLayout } from './helpers/images.js';
import { startFaultProxy, startStorageServer, type FaultProxy } from './helpers/fault-proxy.js';
import { RegistryPuller } from '../src/pull/puller.js';
import { PullError } from '../src/pull/types.js';
import { InlineKeychain } from '../src/keychain/inline.js';
import { MultiKeychain } from '../src/keychain/keychain.js';
import { diagnosePull } from '../src/pull/diagnosis.js';
import type { Keychain, KeychainTarget, RegistryCredential } from '../src/keychain/keychain.js';

const run = promisify(execFile);
const skip = haveImageTools();
let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let proxy: FaultProxy;
let image: { digest: string; layers: Array<{ digest: string; size: number }>; config: string };

before(async () => {
  if (skip) return;
  b = await startTestBerth();
  reg = await adminRegistry(b, 'faultreg01');
  const layout = await multiLayerLayout('v1', 2, 768 * 1024);
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${reg.username}:${reg.password}`, `oci:${layout}:v1`, `docker://${reg.loginServer}/app/faulty:v1`]);
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `${reg.username}:${reg.password}`, `docker://${reg.loginServer}/app/faulty:v1`]);
  const m = JSON.parse(stdout);
  const { createHash } = await import('node:crypto');
  image = { digest: 'sha256:' + createHash('sha256').update(stdout).digest('hex'), layers: m.layers, config: m.config.digest };
  proxy = await startFaultProxy(reg.loginServer);
});
after(async () => {
  await proxy?.stop();
  await b?.cleanup();
});

const keychain = () => new InlineKeychain({ server: proxy.host, username: reg.username, password: reg.password });
async function newPuller(extra: Partial<ConstructorParameters<typeof RegistryPuller>[0]> = {}) {
  const contentDir = await mkdtemp(join(tmpdir(), 'berth-content-'));
  return new RegistryPuller({ contentDir, backoffMs: 20, ...extra });
}
const blobGets = (digest: string) => proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`));
const ref = () => `${proxy.host}/app/faulty:v1`;

test('429 with Retry-After and 503 are retried, and the pull completes with verified blobs', { skip }, async () => {
  proxy.reset();
  const big = image.layers[1]!.digest;
  proxy.rule = (r, nth) => {
    if (r.path.includes('/manifests/') && nth === 0) return { kind: 'status', status: 429, retryAfter: '1' };
    if (r.path.endsWith(big) && nth < 2) return { kind: 'status', status: 503 };
    return undefined;
  };
  const p = await newPuller();
  try {
    const img = await p.pull(ref(), { keychain: keychain() });
    assert.equal(img.digest, image.digest);
    assert.equal(img.layers.length, image.layers.length);
    assert.equal(blobGets(big).length, 3, 'two 503s, then the blob');
    assert.ok(proxy.requests.filter((r) => r.path.includes('/manifests/v1')).length >= 2, 'the manifest GET was retried after the 429');
    for (const l of img.layers) assert.ok((await readFile(l.path)).length === l.size);
  } finally {
    proxy.rule = () => undefined;
    await p.close();
  }
});

test('a 429 asking to wait longer than Berth waits fails with TOOMANYREQUESTS and the retry time', { skip }, async () => {
  proxy.reset();
  proxy.rule = (r) => (r.path.includes('/manifests/') ? { kind: 'status', status: 429, retryAfter: '120' } : undefined);
  const p = await newPuller();
  try {
    const e = await p.pull(ref(), { keychain: keychain() }).then(() => undefined, (x) => x);
    assert.ok(e instanceof PullError, String(e));
    assert.equal(e.code, 'TOOMANYREQUESTS');
    assert.equal(e.opts.retryAfterSeconds, 120);
    assert.match(e.message, /toomanyrequests: rate limit exceeded/);
    assert.match(e.message, /retry after 120 s/);
    // Credentials were given (the 429 came before the registry asked for them): the identity is limited.
    const words = diagnosePull(e, { caller: 'pull' });
    assert.match(words, /^The registry answered: toomanyrequests: rate limit exceeded \(TOOMANYREQUESTS\)/);
    assert.ok(words.includes(`${proxy.host} is rate-limiting requests made with user ${reg.username} from inline credentials`), words);
    assert.match(words, /; retry after 120 s \(at \d{4}-/);
    assert.doesNotMatch(words, /Authenticate/);
    assert.ok(!words.includes(reg.password));
    // Without credentials, authenticating does raise the limit.
    const anon = await p.pull(ref(), { keychain: new MultiKeychain([]) }).then(() => undefined, (x) => x);
    assert.ok(anon instanceof PullError, String(anon));
    assert.match(diagnosePull(anon, { caller: 'pull' }), /limits the request rate of anonymous pulls; retry after 120 s .*Authenticate to get a higher limit/);
  } finally {
    proxy.rule = () => undefined;
    await p.close();
  }
});

test('a connection dropped mid-blob resumes with Range and the blob verifies', { skip }, async () => {
  proxy.reset();
  const big = image.layers[1]!;
  proxy.rule = (r, nth) => (r.path.endsWith(big.digest) && nth === 0 ? { kind: 'drop', afterBytes: 300_000 } : undefined);
  const p = await newPuller();
  try {
    const img = await p.pull(ref(), { keychain: keychain() });
    const gets = blobGets(big.digest);
    assert.equal(gets.length, 2, 'the dropped GET and one resumed GET');
    assert.equal(gets[0]!.range, undefined);
    assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/, `the second GET asks for the rest: ${gets[1]!.range}`);
    const from = Number(/bytes=(\d+)-/.exec(gets[1]!.range!)![1]);
    assert.ok(from <= 300_000, `resumes at or before the bytes sent (${from})`);
    const l = img.layers.find((x) => x.digest === big.digest)!;
    const { createHash } = await import('node:crypto');
    assert.equal('sha256:' + createHash('sha256').update(await readFile(l.path)).digest('hex'), big.digest);
  } finally {
    proxy.rule = () => undefined;
    await p.close();
  }
});

test('corrupted bytes fail with DIGEST_MISMATCH naming the blob, and nothing lands in the cache', { skip }, async () => {
  proxy.reset();
  const big = image.layers[1]!.digest;
  proxy.rule = (r) => (r.path.endsWith(big) ? { kind: 'corrupt', at: 1000 } : undefined);
  const p = await newPuller();
  try {
    const e = await p.pull(ref(), { keychain: keychain() }).then(() => undefined, (x) => x);
    assert.ok(e instanceof PullError, String(e));
    assert.equal(e.code, 'DIGEST_MISMATCH');
    assert.ok(e.message.includes(big), e.message);
    assert.match(diagnosePull(e, { caller: 'group' }), /^Digest check: blob sha256:/, 'Berth\'s check, not something the registry said');
    assert.equal(await p.store.has(big as never), false, 'the corrupted blob is not in the store');
    assert.deepEqual(await readdir(join(p.store.root, 'tmp')), [], 'no temp file is left');
  } finally {
    proxy.rule = () => undefined;
    await p.close();
  }
});

test('20 concurrent pulls of the same image fetch each blob once and share one token fetch', { skip }, async () => {
  proxy.reset();
  const p = await newPuller();
  try {
    const kc = keychain();
    const imgs = await Promise.all(Array.from({ length: 20 }, () => p.pull(ref(), { keychain: kc })));
    for (const i of imgs) assert.equal(i.digest, image.digest);
    for (const d of [image.config, ...image.layers.map((l) => l.digest)]) {
      assert.equal(blobGets(d).length, 1, `blob ${d} fetched once`);
    }
    assert.equal(proxy.requests.filter((r) => r.path.startsWith('/oauth2/token')).length, 1, 'one token fetch for all pulls');
    // a later pull finds everything in the cache
    proxy.requests.length = 0;
    await p.pull(ref(), { keychain: kc });
    assert.equal(proxy.requests.filter((r) => r.path.includes('/blobs/')).length, 0);
  } finally {
    await p.close();
  }
});

test('a blob redirect to another host gets no Authorization header', { skip }, async () => {
  proxy.reset();
  const storage = await startStorageServer(reg.loginServer, reg.auth);
  proxy.rule = (r) => (r.path.includes('/blobs/') ? { kind: 'redirect', to: storage.url } : undefined);
  const p = await newPuller();
  try {
    const img = await p.pull(ref(), { keychain: keychain() });
    assert.equal(img.layers.length, image.layers.length);
    assert.equal(storage.seen.length, image.layers.length + 1, 'config and layers came from the storage server');
    for (const s of storage.seen) assert.equal(s.authorization, undefined, `${s.path} got no credentials`);
    assert.ok(proxy.requests.some((r) => r.path.includes('/blobs/') && r.authorization), 'the registry itself did get the token');
  } finally {
    proxy.rule = () => undefined;
    await p.close();
    await storage.stop();
  }
});

test('a refused credential is invalidated and resolved again once; a second refusal is UNAUTHORIZED', { skip }, async () => {
  class Rotating implements Keychain {
    readonly description = 'rotating test source';
    invalidated = 0;
    constructor(private readonly passwords: string[]) {}
    async resolve(t: KeychainTarget): Promise<RegistryCredential | undefined> {
      if (t.registry !== proxy.host) return undefined;
      return { kind: 'basic', username: reg.username, password: this.passwords[Math.min(this.invalidated, this.passwords.length - 1)]!, source: 'rotating' };
    }
    invalidate(): void { this.invalidated++; }
  }
  const p = await newPuller();
  try {
    const good = new Rotating(['stale-password', reg.password]);
    const img = await p.pull(ref(), { keychain: good });
    assert.equal(img.digest, image.digest);
    assert.equal(img.credentialSource, 'rotating');
    assert.equal(good.invalidated, 1);
    const bad = new Rotating(['stale-password', 'still-wrong']);
    const e = await p.pull(`${proxy.host}/app/faulty:v1`, { keychain: bad }).then(() => undefined, (x) => x);
    assert.ok(e instanceof PullError, String(e));
    assert.equal(e.code, 'UNAUTHORIZED');
    assert.match(e.message, /rotating/);
    assert.ok(!e.message.includes('still-wrong'), 'the password is not in the message');
  } finally {
    await p.close();
  }
});

test('a corrupted manifest fails with DIGEST_MISMATCH and is not stored', { skip }, async () => {
  proxy.reset();
  proxy.rule = (r) => (r.path.includes('/manifests/') ? { kind: 'corrupt', at: 20 } : undefined);
  const p = await newPuller();
  try {
    const byTag = await p.pull(ref(), { keychain: keychain() }).then(() => undefined, (x) => x);
    assert.ok(byTag instanceof PullError, String(byTag));
    assert.equal(byTag.code, 'DIGEST_MISMATCH', byTag.message);
    const byDigest = await p.pull(`${proxy.host}/app/faulty@${image.digest}`, { keychain: keychain() }).then(() => undefined, (x) => x);
    assert.equal(byDigest?.code, 'DIGEST_MISMATCH');
    assert.ok(byDigest.message.includes(image.digest));
    assert.equal(await p.store.has(image.digest as never), false);
  } finally {
    proxy.rule = () => undefined;
    await p.close();
  }
});
