// The OCI distribution API of a Berth registry, endpoint by endpoint, with the spec's status and error
// codes. Talks HTTP directly (fetch) so every header and body is visible.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { RegistryService } from '../src/registry/service.js';
import { SqlRegistryMetadata } from '../src/storage/sql-registry-metadata.js';
import { SqliteSql } from '../src/storage/sql/sqlite-sql.js';
import { FsBlobStore } from '../src/storage/fs-blob-store.js';

let b: TestBerth;
let base: string;
let auth: string;

const sha256 = (d: Buffer | string) => 'sha256:' + createHash('sha256').update(d).digest('hex');
const sha512 = (d: Buffer | string) => 'sha512:' + createHash('sha512').update(d).digest('hex');
const req = (method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer | string } = {}) =>
  fetch(base + path, { method, headers: { Authorization: auth, ...init.headers }, ...(init.body !== undefined ? { body: init.body as unknown as BodyInit } : {}), redirect: 'manual' });
const errCode = async (r: Response) => ((await r.json()) as { errors: Array<{ code: string }> }).errors[0]!.code;

async function pushBlob(repo: string, data: Buffer | string): Promise<string> {
  const d = sha256(data);
  const r = await req('POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201);
  return d;
}

async function pushImage(repo: string, tag: string, layers: string[] = ['layer-a']): Promise<{ digest: string; body: string; config: string; layers: string[] }> {
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const cd = await pushBlob(repo, config);
  const lds = [];
  for (const l of layers) lds.push(await pushBlob(repo, l));
  const body = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: Buffer.byteLength(config) },
    layers: lds.map((d, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: Buffer.byteLength(layers[i]!) })),
  });
  const r = await req('PUT', `/v2/${repo}/manifests/${tag}`, { body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 201, await r.text());
  return { digest: r.headers.get('docker-content-digest')!, body, config: cd, layers: lds };
}

before(async () => {
  b = await startTestBerth();
  ({ base, auth } = await adminRegistry(b));
});
after(async () => b.cleanup());

test('GET /v2/ needs credentials and answers the Docker token challenge', async () => {
  const anon = await fetch(base + '/v2/');
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate')!, /^Bearer realm="http:\/\/localhost:\d+\/oauth2\/token",service="localhost:\d+"$/);
  assert.equal(await errCode(anon), 'UNAUTHORIZED');
  const ok = await req('GET', '/v2/');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('docker-distribution-api-version'), 'registry/2.0');
  const bad = await fetch(base + '/v2/', { headers: { Authorization: 'Basic ' + Buffer.from('testreg01:wrong').toString('base64') } });
  assert.equal(bad.status, 401);
});

test('token flow: Basic → /oauth2/token → bearer with only the requested scope', async () => {
  const anon = await fetch(base + '/v2/tok/manifests/latest');
  const challenge = anon.headers.get('www-authenticate')!;
  assert.match(challenge, /scope="repository:tok:pull"/);
  const t = await fetch(`${base}/oauth2/token?service=x&scope=repository:tok:pull`, { headers: { Authorization: auth } });
  assert.equal(t.status, 200);
  const { access_token: token } = (await t.json()) as { access_token: string };
  const withToken = await fetch(base + '/v2/', { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(withToken.status, 200);
  // The token covers pull on "tok" only: a push needs a new token.
  const push = await fetch(base + '/v2/tok/blobs/uploads/', { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(push.status, 401);
  assert.match(push.headers.get('www-authenticate')!, /scope="repository:tok:push",error="insufficient_scope"/);
  const forged = await fetch(base + '/v2/', { headers: { Authorization: `Bearer ${token.slice(0, -4)}AAAA` } });
  assert.equal(forged.status, 401);
  const noCreds = await fetch(`${base}/oauth2/token?service=x&scope=repository:tok:pull`);
  assert.equal(noCreds.status, 401);
});

test('monolithic, chunked and streamed uploads; blob HEAD, GET, Range and DELETE', async () => {
  const data = Buffer.from('hello chunked world');
  const d = sha256(data);
  // chunked
  let r = await req('POST', '/v2/up/blobs/uploads/');
  assert.equal(r.status, 202);
  let loc = r.headers.get('location')!;
  assert.ok(r.headers.get('docker-upload-uuid'));
  assert.equal(r.headers.get('range'), '0-0');
  r = await req('PATCH', loc, { body: data.subarray(0, 5), headers: { 'Content-Range': '0-4', 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 202);
  assert.equal(r.headers.get('range'), '0-4');
  loc = r.headers.get('location')!;
  // out of order → 416 and nothing written
  r = await req('PATCH', loc, { body: data.subarray(10), headers: { 'Content-Range': `10-${data.length - 1}`, 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 416);
  r = await req('GET', loc);
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('range'), '0-4');
  r = await req('PATCH', loc, { body: data.subarray(5), headers: { 'Content-Range': `5-${data.length - 1}`, 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 202);
  r = await req('PUT', `${loc}?digest=${d}`);
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('location'), `/v2/up/blobs/${d}`);
  assert.equal(r.headers.get('docker-content-digest'), d);
  // HEAD / GET / Range
  r = await req('HEAD', `/v2/up/blobs/${d}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), String(data.length));
  r = await req('GET', `/v2/up/blobs/${d}`);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), data);
  r = await req('GET', `/v2/up/blobs/${d}`, { headers: { Range: 'bytes=6-12' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes 6-12/${data.length}`);
  assert.equal(await r.text(), 'chunked');
  r = await req('GET', `/v2/up/blobs/${d}`, { headers: { Range: 'bytes=500-600' } });
  assert.equal(r.status, 416);
  // streamed PATCH (no Content-Range) then PUT with the last chunk
  r = await req('POST', '/v2/up/blobs/uploads/');
  loc = r.headers.get('location')!;
  r = await req('PATCH', loc, { body: 'stream-', headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 202);
  r = await req('PUT', `${r.headers.get('location')}?digest=${sha256('stream-end')}`, { body: 'end', headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201);
  // sha512
  r = await req('POST', `/v2/up/blobs/uploads/?digest=${sha512('five-twelve')}`, { body: 'five-twelve', headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201);
  r = await req('HEAD', `/v2/up/blobs/${sha512('five-twelve')}`);
  assert.equal(r.status, 200);
  // delete
  r = await req('DELETE', `/v2/up/blobs/${d}`);
  assert.equal(r.status, 202);
  r = await req('HEAD', `/v2/up/blobs/${d}`);
  assert.equal(r.status, 404);
  r = await req('GET', `/v2/up/blobs/${d}`);
  assert.equal(await errCode(r), 'BLOB_UNKNOWN');
});

test('upload errors: digest mismatch, bad digest, unknown session, cancel', async () => {
  let r = await req('POST', `/v2/err/blobs/uploads/?digest=${sha256('other')}`, { body: 'content', headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 400);
  assert.equal(await errCode(r), 'DIGEST_INVALID');
  r = await req('HEAD', `/v2/err/blobs/${sha256('other')}`);
  assert.equal(r.status, 404, 'a mismatched upload leaves nothing behind');
  r = await req('GET', '/v2/err/blobs/sha256:nothex');
  assert.equal(r.status, 400);
  assert.equal(await errCode(r), 'DIGEST_INVALID');
  r = await req('GET', '/v2/err/blobs/uploads/00000000-0000-4000-8000-000000000000');
  assert.equal(r.status, 404);
  assert.equal(await errCode(r), 'BLOB_UPLOAD_UNKNOWN');
  r = await req('POST', '/v2/err/blobs/uploads/');
  const loc = r.headers.get('location')!;
  r = await req('DELETE', loc);
  assert.equal(r.status, 204);
  r = await req('GET', loc);
  assert.equal(r.status, 404);
  r = await req('PUT', loc.replace('/err/', '/other/') + `?digest=${sha256('x')}`);
  assert.equal(r.status, 404);
  r = await req('GET', '/v2/Bad_Name/tags/list');
  assert.equal(r.status, 400);
  assert.equal(await errCode(r), 'NAME_INVALID');
});

test('cross-repository mount', async () => {
  const d = await pushBlob('mount-src', 'shared-layer');
  let r = await req('POST', `/v2/mount-dst/blobs/uploads/?mount=${d}&from=mount-src`);
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('location'), `/v2/mount-dst/blobs/${d}`);
  r = await req('HEAD', `/v2/mount-dst/blobs/${d}`);
  assert.equal(r.status, 200);
  // unknown blob: falls back to a normal upload session
  r = await req('POST', `/v2/mount-dst/blobs/uploads/?mount=${sha256('nope')}&from=mount-src`);
  assert.equal(r.status, 202);
});

test('manifests by tag and digest, Accept/Content-Type, errors', async () => {
  const img = await pushImage('app', 'v1');
  assert.equal(img.digest, sha256(img.body));
  let r = await req('GET', '/v2/app/manifests/v1', { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(r.headers.get('docker-content-digest'), img.digest);
  assert.equal(await r.text(), img.body);
  r = await req('HEAD', `/v2/app/manifests/${img.digest}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(img.body)));
  r = await req('GET', '/v2/app/manifests/nope');
  assert.equal(r.status, 404);
  assert.equal(await errCode(r), 'MANIFEST_UNKNOWN');
  r = await req('GET', '/v2/nosuchrepo/manifests/latest');
  assert.equal(await errCode(r), 'NAME_UNKNOWN');
  // missing blob
  const bad = JSON.parse(img.body);
  bad.layers[0].digest = sha256('missing');
  r = await req('PUT', '/v2/app/manifests/broken', { body: JSON.stringify(bad), headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 400);
  assert.equal(await errCode(r), 'MANIFEST_BLOB_UNKNOWN');
  // bad JSON
  r = await req('PUT', '/v2/app/manifests/broken', { body: '{"schemaVersion":', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(await errCode(r), 'MANIFEST_INVALID');
  // digest reference that does not match the body
  r = await req('PUT', `/v2/app/manifests/${sha256('x')}`, { body: img.body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(await errCode(r), 'DIGEST_INVALID');
  // oversize
  r = await req('PUT', '/v2/app/manifests/huge', { body: Buffer.alloc(4 * 1024 * 1024 + 1, 32), headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 413);
  assert.equal(await errCode(r), 'SIZE_INVALID');
  // Docker schema 2 and a manifest list
  const dockerBody = JSON.stringify({ ...JSON.parse(img.body), mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { ...JSON.parse(img.body).config, mediaType: 'application/vnd.docker.container.image.v1+json' } });
  r = await req('PUT', '/v2/app/manifests/docker', { body: dockerBody, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(r.status, 201);
  const list = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [
    { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha256(dockerBody), size: Buffer.byteLength(dockerBody), platform: { architecture: 'amd64', os: 'linux' } }] });
  r = await req('PUT', '/v2/app/manifests/multi', { body: list, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.list.v2+json' } });
  assert.equal(r.status, 201);
  r = await req('GET', '/v2/app/manifests/multi');
  assert.equal(r.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.list.v2+json');
  // an index naming a manifest that is not there
  const badIndex = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('nothing'), size: 7 }] });
  r = await req('PUT', '/v2/app/manifests/badindex', { body: badIndex, headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' } });
  assert.equal(r.status, 400);
  assert.equal(await errCode(r), 'MANIFEST_BLOB_UNKNOWN');
});

test('tags list with pagination, catalog, delete tag and manifest', async () => {
  const tags = ['a', 'b', 'c', 'd', 'e'];
  const pushed = [];
  for (const t of tags) pushed.push(await pushImage('paged', t));
  const first = pushed[0];
  let r = await req('GET', '/v2/paged/tags/list');
  assert.deepEqual(await r.json(), { name: 'paged', tags });
  r = await req('GET', '/v2/paged/tags/list?n=2');
  assert.deepEqual(await r.json(), { name: 'paged', tags: ['a', 'b'] });
  assert.equal(r.headers.get('link'), '</v2/paged/tags/list?n=2&last=b>; rel="next"');
  r = await req('GET', '/v2/paged/tags/list?n=2&last=b');
  assert.deepEqual(((await r.json()) as { tags: string[] }).tags, ['c', 'd']);
  r = await req('GET', '/v2/paged/tags/list?n=0');
  assert.deepEqual(((await r.json()) as { tags: string[] }).tags, []);
  r = await req('GET', '/v2/_catalog');
  assert.ok(((await r.json()) as { repositories: string[] }).repositories.includes('paged'));
  r = await req('GET', '/v2/_catalog?n=1');
  assert.match(r.headers.get('link')!, /^<\/v2\/_catalog\?n=1&last=[^>]+>; rel="next"$/);
  // delete a tag: the manifest stays reachable by digest
  r = await req('DELETE', '/v2/paged/manifests/e');
  assert.equal(r.status, 202);
  r = await req('GET', '/v2/paged/manifests/e');
  assert.equal(r.status, 404);
  r = await req('GET', `/v2/paged/manifests/${first!.digest}`);
  assert.equal(r.status, 200);
  // delete by digest removes every tag pointing at it
  r = await req('DELETE', `/v2/paged/manifests/${first!.digest}`);
  assert.equal(r.status, 202);
  r = await req('GET', '/v2/paged/tags/list');
  assert.deepEqual(((await r.json()) as { tags: string[] }).tags, []);
  r = await req('DELETE', `/v2/paged/manifests/${first!.digest}`);
  assert.equal(r.status, 404);
  r = await req('GET', '/v2/nope/tags/list');
  assert.equal(await errCode(r), 'NAME_UNKNOWN');
});

test('referrers API with subject and artifactType filter', async () => {
  const img = await pushImage('ref', 'v1');
  const emptyCfg = await pushBlob('ref', '{}');
  const sig = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.sig',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyCfg, size: 2 }, layers: [],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.digest, size: Buffer.byteLength(img.body) },
    annotations: { 'org.example': 'yes' },
  });
  let r = await req('PUT', `/v2/ref/manifests/${sha256(sig)}`, { body: sig, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('oci-subject'), img.digest);
  r = await req('GET', `/v2/ref/referrers/${img.digest}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
  const idx = (await r.json()) as { manifests: Array<{ digest: string; artifactType: string; annotations: object }> };
  assert.equal(idx.manifests.length, 1);
  assert.equal(idx.manifests[0]!.digest, sha256(sig));
  assert.equal(idx.manifests[0]!.artifactType, 'application/vnd.example.sig');
  r = await req('GET', `/v2/ref/referrers/${img.digest}?artifactType=application/other`);
  assert.equal(r.headers.get('oci-filters-applied'), 'artifactType');
  assert.equal(((await r.json()) as { manifests: unknown[] }).manifests.length, 0);
  r = await req('GET', `/v2/ref/referrers/${sha256('unknown')}`);
  assert.equal(r.status, 200);
  r = await req('GET', '/v2/ref/referrers/sha256:bad');
  assert.equal(r.status, 400);
});

test('unsupported methods are 405 and unknown paths 404', async () => {
  let r = await req('PUT', '/v2/_catalog');
  assert.equal(r.status, 405);
  assert.equal(await errCode(r), 'UNSUPPORTED');
  r = await req('GET', '/v3/');
  assert.equal(r.status, 404);
});

test('garbage collection removes unreferenced blobs after the grace period, keeps referenced ones', async () => {
  const img = await pushImage('gc', 'v1', ['keep-me']);
  const orphan = await pushBlob('gc', 'orphan-bytes');
  await req('DELETE', `/v2/gc/blobs/${orphan}`);
  let rep = await b.registryService.collectGarbage();
  assert.equal(rep.blobsDeleted, 0, 'young blobs are kept');
  rep = await b.registryService.collectGarbage(Date.now() + 2 * 3600_000);
  assert.ok(rep.blobsDeleted >= 1);
  const r = await req('GET', `/v2/gc/blobs/${img.layers[0]}`);
  assert.equal(r.status, 200, 'a layer that a manifest references survives GC');
  assert.equal(await r.text(), 'keep-me');
});

test('a manifest reference that is neither a valid tag nor a digest is 404 MANIFEST_UNKNOWN (not 400) on GET, HEAD and DELETE', async () => {
  await pushImage('badref', 'v1');
  for (const ref of ['.INVALID_MANIFEST_NAME', '-dash', 'x'.repeat(129)]) {
    let r = await req('GET', `/v2/badref/manifests/${ref}`);
    assert.equal(r.status, 404, ref);
    assert.equal(await errCode(r), 'MANIFEST_UNKNOWN');
    r = await req('HEAD', `/v2/badref/manifests/${ref}`);
    assert.equal(r.status, 404, ref);
    r = await req('DELETE', `/v2/badref/manifests/${ref}`);
    assert.equal(r.status, 404, ref);
    assert.equal(await errCode(r), 'MANIFEST_UNKNOWN');
  }
  // In a repository that does not exist it is the repository that is unknown.
  const r = await req('GET', '/v2/nosuchrepo/manifests/.INVALID');
  assert.equal(r.status, 404);
  assert.equal(await errCode(r), 'NAME_UNKNOWN');
  // A malformed digest is still the client's error, and pushing to an invalid tag is TAG_INVALID.
  assert.equal((await req('GET', '/v2/badref/manifests/sha256:short')).status, 400);
  const put = await req('PUT', '/v2/badref/manifests/.bad', { body: '{}', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(put.status, 400);
  assert.equal(await errCode(put), 'TAG_INVALID');
});

test('the closing PUT of a chunked upload obeys Content-Range ordering: out of order is 416 and the session survives', async () => {
  const data = Buffer.from('0123456789abcdefghij');
  const d = sha256(data);
  let r = await req('POST', '/v2/putrange/blobs/uploads/');
  let loc = r.headers.get('location')!;
  r = await req('PATCH', loc, { body: data.subarray(0, 10), headers: { 'Content-Range': '0-9', 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 202);
  loc = r.headers.get('location')!;
  // Skips bytes 10-14: refused before anything is written, with where the upload stands.
  r = await req('PUT', `${loc}?digest=${d}`, { body: data.subarray(15), headers: { 'Content-Range': `15-${data.length - 1}`, 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 416);
  assert.equal(await errCode(r), 'BLOB_UPLOAD_INVALID');
  assert.equal(r.headers.get('range'), '0-9');
  assert.equal(r.headers.get('location'), loc);
  // A chunk going back to the start is refused the same way, by PATCH as by PUT.
  r = await req('PATCH', loc, { body: data.subarray(0, 5), headers: { 'Content-Range': '0-4', 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('location'), loc);
  r = await req('GET', loc);
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('range'), '0-9');
  assert.equal((await req('HEAD', `/v2/putrange/blobs/${d}`)).status, 404, 'nothing was committed');
  // The in-order closing chunk completes it.
  r = await req('PUT', `${loc}?digest=${d}`, { body: data.subarray(10), headers: { 'Content-Range': `10-${data.length - 1}`, 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201);
  r = await req('GET', `/v2/putrange/blobs/${d}`);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), data);
  // A Content-Range that is not <start>-<end> is refused too.
  r = await req('POST', '/v2/putrange/blobs/uploads/');
  r = await req('PATCH', r.headers.get('location')!, { body: 'abc', headers: { 'Content-Range': 'bytes 0-2/3', 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 416);
});

test('referrers list artifactType as the manifest\'s, else its config media type; an index without one has none', async () => {
  const img = await pushImage('reftype', 'v1');
  const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.digest, size: Buffer.byteLength(img.body) };
  const cfg = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const cfgDigest = sha256(cfg);
  // No artifactType, a standard OCI image config: listed with the config's media type.
  const plain = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: Buffer.byteLength(cfg) }, layers: [], subject });
  // An empty artifactType counts as missing.
  const emptyType = JSON.stringify({ ...JSON.parse(plain), artifactType: '', annotations: { n: '2' } });
  // An index with no artifactType: listed without one.
  const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], subject });
  for (const [body, ct] of [[plain, 'application/vnd.oci.image.manifest.v1+json'], [emptyType, 'application/vnd.oci.image.manifest.v1+json'], [index, 'application/vnd.oci.image.index.v1+json']] as const) {
    const r = await req('PUT', `/v2/reftype/manifests/${sha256(body)}`, { body, headers: { 'Content-Type': ct } });
    assert.equal(r.status, 201, await r.text());
    assert.equal(r.headers.get('oci-subject'), img.digest);
  }
  let r = await req('GET', `/v2/reftype/referrers/${img.digest}`);
  const list = ((await r.json()) as { manifests: Array<{ digest: string; artifactType?: string }> }).manifests;
  const byDigest = new Map(list.map((m) => [m.digest, m]));
  assert.equal(list.length, 3);
  assert.equal(byDigest.get(sha256(plain))!.artifactType, 'application/vnd.oci.image.config.v1+json');
  assert.equal(byDigest.get(sha256(emptyType))!.artifactType, 'application/vnd.oci.image.config.v1+json');
  assert.equal('artifactType' in byDigest.get(sha256(index))!, false);
  r = await req('GET', `/v2/reftype/referrers/${img.digest}?artifactType=${encodeURIComponent('application/vnd.oci.image.config.v1+json')}`);
  assert.equal(r.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(((await r.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest).sort(), [sha256(plain), sha256(emptyType)].sort());
  // A row stored by an older Berth (no artifactType kept for a standard config) is listed the same way.
  await b.sql.run('UPDATE manifests SET artifact_type = NULL WHERE digest = ?', [sha256(plain)]);
  r = await req('GET', `/v2/reftype/referrers/${img.digest}?artifactType=${encodeURIComponent('application/vnd.oci.image.config.v1+json')}`);
  assert.deepEqual(((await r.json()) as { manifests: Array<{ digest: string; artifactType: string }> }).manifests.map((m) => [m.digest, m.artifactType]).sort(),
    [sha256(plain), sha256(emptyType)].sort().map((d) => [d, 'application/vnd.oci.image.config.v1+json']));
});

test('non-distributable layers with URLs need not be pushed; without a URL they are ordinary blobs', async () => {
  const cfg = await pushBlob('foreign', JSON.stringify({ architecture: 'amd64', os: 'windows', rootfs: { type: 'layers', diff_ids: [] } }));
  const local = await pushBlob('foreign', 'local-layer');
  const ext = (mediaType: string, seed: string, urls?: string[]) => ({ mediaType, digest: sha256(seed), size: 12345, ...(urls ? { urls } : {}) });
  const manifest = (layers: object[]) => JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: Buffer.byteLength(JSON.stringify({ architecture: 'amd64', os: 'windows', rootfs: { type: 'layers', diff_ids: [] } })) },
    layers: [...layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: local, size: Buffer.byteLength('local-layer') }],
  });
  const body = manifest([
    ext('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'nd1', ['https://store.example.com/blobs/nd1']),
    ext('application/vnd.oci.image.layer.nondistributable.v1.tar', 'nd2', ['https://store.example.com/blobs/nd2']),
    ext('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'nd3', ['http://mirror.example.com/nd3']),
  ]);
  let r = await req('PUT', '/v2/foreign/manifests/win', { body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 201, await r.text());
  r = await req('GET', '/v2/foreign/manifests/win', { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), body);
  r = await req('HEAD', `/v2/foreign/manifests/${sha256(body)}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(body)));
  assert.equal((await req('HEAD', `/v2/foreign/blobs/${sha256('nd1')}`)).status, 404, 'the registry still does not hold the external layer');
  // Without a URL (or with one that is not http/https), or as an ordinary layer with URLs, the blob must be pushed.
  for (const layer of [
    ext('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'nd4'),
    ext('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'nd5', ['file:///etc/passwd']),
    ext('application/vnd.oci.image.layer.v1.tar+gzip', 'nd6', ['https://store.example.com/blobs/nd6']),
  ]) {
    r = await req('PUT', '/v2/foreign/manifests/broken', { body: manifest([layer]), headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(r.status, 400);
    assert.equal(await errCode(r), 'MANIFEST_BLOB_UNKNOWN');
  }
});

test('manifest Accept negotiation: by tag the stored type must be acceptable; wildcards, no Accept and digests always are', async () => {
  const img = await pushImage('accept', 'oci');
  const oci = 'application/vnd.oci.image.manifest.v1+json';
  const dockerOnly = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';
  for (const method of ['GET', 'HEAD']) {
    let r = await req(method, '/v2/accept/manifests/oci', { headers: { Accept: dockerOnly } });
    assert.equal(r.status, 404, `${method} with a Docker-only Accept`);
    if (method === 'GET') {
      const e = ((await r.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
      assert.equal(e.code, 'MANIFEST_UNKNOWN');
      assert.match(e.message, /application\/vnd\.oci\.image\.manifest\.v1\+json.*Accept/);
    }
    // q=0 means "not this one".
    r = await req(method, '/v2/accept/manifests/oci', { headers: { Accept: `${oci};q=0, application/vnd.oci.image.index.v1+json` } });
    assert.equal(r.status, 404);
    // Everything a real client sends, in one header or several, with parameters.
    for (const accept of [
      undefined, '*/*', 'application/json', 'application/*',
      `${oci}`, `${dockerOnly}, ${oci};q=0.5`,
      // skopeo / podman (containers/image)
      `${oci}, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws, application/vnd.docker.distribution.manifest.v1+json`,
      // containerd / docker pull
      `application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*`,
    ]) {
      r = await req(method, '/v2/accept/manifests/oci', accept === undefined ? {} : { headers: { Accept: accept } });
      assert.equal(r.status, 200, `${method} Accept: ${accept}`);
      assert.equal(r.headers.get('content-type'), oci);
    }
    // By digest the client named exact content: served whatever Accept says.
    r = await req(method, `/v2/accept/manifests/${img.digest}`, { headers: { Accept: dockerOnly } });
    assert.equal(r.status, 200);
  }
});

test('tag query parameters on a manifest push by digest tag it too, answered with OCI-Tag', async () => {
  const img = await pushImage('tagparam', 'base');
  let r = await req('PUT', `/v2/tagparam/manifests/${img.digest}?tag=1.2.3&tag=1.2&tag=latest&tag=1.2`, { body: img.body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('oci-tag'), '1.2.3, 1.2, latest');
  r = await req('GET', '/v2/tagparam/tags/list');
  assert.deepEqual(((await r.json()) as { tags: string[] }).tags, ['1.2', '1.2.3', 'base', 'latest']);
  r = await req('HEAD', '/v2/tagparam/manifests/1.2.3');
  assert.equal(r.headers.get('docker-content-digest'), img.digest);
  // One invalid tag refuses the whole push; nothing is tagged.
  r = await req('PUT', `/v2/tagparam/manifests/${img.digest}?tag=ok&tag=.bad`, { body: img.body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 400);
  assert.equal(await errCode(r), 'TAG_INVALID');
  assert.equal((await req('HEAD', '/v2/tagparam/manifests/ok')).status, 404);
  // A push without tag parameters has no OCI-Tag header.
  r = await req('PUT', `/v2/tagparam/manifests/${img.digest}`, { body: img.body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('oci-tag'), null);
});

test('garbage collection marks once and re-checks each candidate with an indexed look-up, not a full re-mark', async () => {
  const kept = (await pushImage('gc2', 'v1', ['still-referenced'])).layers[0]!;
  const orphans = [];
  for (let i = 0; i < 5; i++) {
    const d = await pushBlob('gc2', `orphan-${i}`);
    assert.equal((await req('DELETE', `/v2/gc2/blobs/${d}`)).status, 202);
    orphans.push(d);
  }
  const meta = new SqlRegistryMetadata(b.sql);
  assert.equal(await meta.isReferenced(kept), true);
  assert.equal(await meta.isReferenced(orphans[0]!), false);
  const calls = { referencedDigests: 0, isReferenced: 0 };
  const counting = new Proxy(meta, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop === 'referencedDigests' || prop === 'isReferenced') {
        return (...args: unknown[]) => { calls[prop]++; return (v as (...a: unknown[]) => unknown).apply(target, args); };
      }
      return v;
    },
  });
  const blobs = new FsBlobStore(b.dataDir);
  await blobs.init();
  const gc = new RegistryService(counting, blobs);
  const rep = await gc.collectGarbage(Date.now() + 2 * 3600_000);
  assert.ok(rep.blobsDeleted >= orphans.length);
  assert.equal(calls.referencedDigests, 1);
  assert.equal(calls.isReferenced, rep.blobsDeleted, 'one look-up per blob about to be deleted');
  for (const d of orphans) assert.equal(await blobs.stat(d as never), undefined);
  const r = await req('GET', `/v2/gc2/blobs/${kept}`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'still-referenced');
});

test('remaining corners of the API: open and suffix ranges, mount without from, digest mismatch on the closing PUT, OCI index, catalog last, DENIED', async () => {
  const data = Buffer.from('0123456789');
  const d = await pushBlob('corners', data);
  let r = await req('GET', `/v2/corners/blobs/${d}`, { headers: { Range: 'bytes=7-' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), 'bytes 7-9/10');
  assert.equal(await r.text(), '789');
  r = await req('GET', `/v2/corners/blobs/${d}`, { headers: { Range: 'bytes=-4' } });
  assert.equal(r.status, 206);
  assert.equal(await r.text(), '6789');
  r = await req('GET', `/v2/corners/blobs/${d}`, { headers: { Range: 'bytes=5-100' } });
  assert.equal(r.status, 206, 'an end past the blob is cut to its size');
  assert.equal(r.headers.get('content-range'), 'bytes 5-9/10');
  // mount without "from": Berth finds the blob in a repository the caller can read
  r = await req('POST', `/v2/corners-dst/blobs/uploads/?mount=${d}`);
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('docker-content-digest'), d);
  assert.equal((await req('HEAD', `/v2/corners-dst/blobs/${d}`)).status, 200);
  // a chunked upload whose content does not match the digest of its closing PUT
  r = await req('POST', '/v2/corners/blobs/uploads/');
  r = await req('PATCH', r.headers.get('location')!, { body: 'abc', headers: { 'Content-Range': '0-2', 'Content-Type': 'application/octet-stream' } });
  const loc = r.headers.get('location')!;
  r = await req('PUT', `${loc}?digest=${sha256('abd')}`);
  assert.equal(r.status, 400);
  assert.equal(await errCode(r), 'DIGEST_INVALID');
  assert.equal((await req('HEAD', `/v2/corners/blobs/${sha256('abd')}`)).status, 404);
  r = await req('PUT', `${loc}?digest=${sha256('abc')}`);
  assert.equal(r.status, 404, 'the refused upload is gone');
  assert.equal(await errCode(r), 'BLOB_UPLOAD_UNKNOWN');
  // an OCI index over an image, by tag and by digest
  const img = await pushImage('corners', 'amd64');
  const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.digest, size: Buffer.byteLength(img.body), platform: { architecture: 'amd64', os: 'linux' } }] });
  r = await req('PUT', '/v2/corners/manifests/multi', { body: index, headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('location'), `/v2/corners/manifests/${sha256(index)}`);
  r = await req('GET', '/v2/corners/manifests/multi', { headers: { Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
  assert.equal(r.headers.get('docker-content-digest'), sha256(index));
  assert.equal(await r.text(), index);
  // the catalog resumes after "last"
  r = await req('GET', '/v2/_catalog');
  const all = ((await r.json()) as { repositories: string[] }).repositories;
  r = await req('GET', `/v2/_catalog?last=${encodeURIComponent(all[0]!)}`);
  assert.deepEqual(((await r.json()) as { repositories: string[] }).repositories, all.slice(1));
  // a pull-only repository token may read but is DENIED a push
  const reg = await b.registries.get('rg', 'testreg01');
  await b.repoTokens.createOrUpdateToken(reg, 'pullonly', { scopeMap: '_repositories_pull' });
  const pw = (await b.repoTokens.generateCredentials(reg, 'pullonly', { name: 'password1' })).passwords[0]!.value;
  const tokenAuth = 'Basic ' + Buffer.from(`pullonly:${pw}`).toString('base64');
  r = await fetch(`${base}/v2/corners/manifests/multi`, { headers: { Authorization: tokenAuth } });
  assert.equal(r.status, 200);
  r = await fetch(`${base}/v2/corners/blobs/uploads/`, { method: 'POST', headers: { Authorization: tokenAuth } });
  assert.equal(r.status, 403);
  assert.equal(await errCode(r), 'DENIED');
});
