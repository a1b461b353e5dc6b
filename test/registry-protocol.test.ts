// The OCI distribution API of a Berth registry, endpoint by endpoint, with the spec's status and error
// codes. Talks HTTP directly (fetch) so every header and body is visible.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';

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
  r = await req('PATCH', loc, { body: data.subarray(0, 5), headers: { 'Content-Range': '0-4', 'Content-Type': 'application/octet-stream', 'Content-Length': '5' } });
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
