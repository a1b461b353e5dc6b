// The Azure SDK for container registries (@azure/container-registry 1.1, unmodified) against a Berth
// registry: the challenge flow (401 → /oauth2/exchange → /oauth2/token), the metadata API
// (repositories, manifests, tags, changeable attributes, paging, ordering), content upload/download,
// deletes, the anonymous client, and what each ACR role may do through the SDK.
//
// The SDK's bearerTokenAuthenticationPolicy refuses plain http outright, whatever the client options
// ("Bearer token authentication is not permitted for non-TLS protected (non-https) URLs."). When the
// data directory holds Berth's CA (the TLS listener), the SDK talks https to the registry, trusting that
// CA through an https.Agent (checked against the tls branch: all tests pass that way). Until TLS is
// merged the SDK is given an https:// endpoint and an HttpClient that sends the same requests over plain
// http to the same port, with allowInsecureConnection: the SDK's own code, policies and parsing run as
// over https. After the TLS merge that fallback is dead code and can be deleted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  ContainerRegistryClient, ContainerRegistryContentClient, KnownManifestMediaType,
  type ContainerRegistryClientOptions, type OciImageManifest,
} from '@azure/container-registry';
import { createDefaultHttpClient, RestError, type HttpClient, type PipelinePolicy } from '@azure/core-rest-pipeline';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { startTestBerth, type TestBerth } from './helpers/berth.js';
import { principalWithRole, tokenFor, type TestPrincipal } from './helpers/vault.js';
import { armId } from '../src/registry/registries.js';
import { RegistryClient } from '../src/client/registry-client.js';

const AUDIENCE = 'https://management.azure.com';
let b: TestBerth;
let loginServer: string;
let endpoint: string;
let regScope: string;
let owner: TestPrincipal;
const aadScopes: string[] = [];
/** Every secret and token handed out in this file: none may appear in the server's log. */
const secrets: string[] = [];

/** Records the ACR refresh and access tokens the SDK gets from /oauth2/exchange and /oauth2/token. */
const captureTokens: PipelinePolicy = {
  name: 'captureAcrTokens',
  async sendRequest(req, next) {
    const res = await next(req);
    if (/\/oauth2\/(exchange|token)$/.test(new URL(req.url).pathname) && res.status === 200 && res.bodyAsText) {
      const body = JSON.parse(res.bodyAsText) as { refresh_token?: string; access_token?: string };
      for (const t of [body.refresh_token, body.access_token]) if (t) secrets.push(t);
    }
    return res;
  },
};

function findCa(dir: string): string | undefined {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) { const r = findCa(p); if (r) return r; } else if (/^ca\.(crt|pem)$/.test(f)) return p;
  }
  return undefined;
}

/** Client options: over https with Berth's CA when there is one, else the http transport described above. */
function transport(): Partial<ContainerRegistryClientOptions> {
  const additionalPolicies = [{ policy: captureTokens, position: 'perCall' as const }];
  const ca = findCa(b.dataDir);
  if (ca) return { agent: new Agent({ ca: readFileSync(ca) }), additionalPolicies };
  const inner = createDefaultHttpClient();
  const httpClient: HttpClient = {
    sendRequest(req) {
      req.url = req.url.replace(/^https:\/\//, 'http://');
      req.allowInsecureConnection = true;
      return inner.sendRequest(req);
    },
  };
  return { httpClient, allowInsecureConnection: true, additionalPolicies };
}

/** A TokenCredential that gets client-credentials tokens from Berth's identity endpoint. */
function credential(p: TestPrincipal): TokenCredential {
  return {
    async getToken(scopes: string | string[]): Promise<AccessToken> {
      const list = Array.isArray(scopes) ? scopes : [scopes];
      aadScopes.push(...list);
      if (!secrets.includes(p.secret)) secrets.push(p.secret);
      const t = await tokenFor(b, p, list[0]);
      secrets.push(t.token);
      return t;
    },
  };
}

const registryClient = (p?: TestPrincipal) => (p
  ? new ContainerRegistryClient(endpoint, credential(p), { audience: AUDIENCE, ...transport() })
  : new ContainerRegistryClient(endpoint, { audience: AUDIENCE, ...transport() }));
const contentClient = (repo: string, p?: TestPrincipal) => (p
  ? new ContainerRegistryContentClient(endpoint, repo, credential(p), { audience: AUDIENCE, ...transport() })
  // no credential: the SDK's anonymous mode (its typings want one; its code takes undefined as anonymous)
  : new ContainerRegistryContentClient(endpoint, repo, undefined as unknown as TokenCredential, { audience: AUDIENCE, ...transport() }));

const sha = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
let seq = 0;

/** Pushes a one-layer image through the content client; returns the manifest digest. */
async function pushImage(c: ContainerRegistryContentClient, tag: string | undefined, arch = 'amd64'): Promise<{ digest: string; manifest: OciImageManifest; layer: Buffer }> {
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: seq++ }));
  const layer = Buffer.from(`layer ${seq} ${'x'.repeat(100)}`);
  const cfg = await c.uploadBlob(config);
  assert.equal(cfg.digest, sha(config));
  const ly = await c.uploadBlob(Readable.from([layer]));
  assert.equal(ly.sizeInBytes, layer.length);
  const manifest: OciImageManifest = {
    schemaVersion: 2, mediaType: KnownManifestMediaType.OciImageManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: ly.digest, size: layer.length }],
  };
  const r = await c.setManifest(manifest, tag ? { tag } : {});
  return { digest: r.digest, manifest, layer };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const isRestError = (status: number[]) => (e: unknown) => {
  assert.ok(e instanceof RestError, `expected a RestError, got ${String(e)}`);
  assert.ok(status.includes(e.statusCode ?? 0), `expected status ${status.join('/')}, got ${e.statusCode}: ${e.message}`);
  return true;
};

before(async () => {
  b = await startTestBerth();
  await b.groups.createOrUpdate('rg', 'westus');
  const { registry } = await b.registries.createOrUpdate('rg', 'sdkreg01', { sku: 'Basic' });
  loginServer = b.registries.loginServer(registry);
  endpoint = `https://${loginServer}`;
  regScope = armId(registry);
  owner = await principalWithRole(b, 'Contributor', regScope);
});
after(async () => b?.cleanup());

test('content client: uploadBlob, setManifest with a tag, getManifest, downloadBlob, deleteBlob, deleteManifest', async () => {
  const c = contentClient('sdk/content', owner);
  const { digest, manifest, layer } = await pushImage(c, 'v1');
  assert.ok(aadScopes.every((s) => s === `${AUDIENCE}/.default`), `AAD scopes asked for: ${aadScopes.join(', ')}`);
  const byTag = await c.getManifest('v1');
  assert.equal(byTag.digest, digest);
  assert.equal(byTag.mediaType, KnownManifestMediaType.OciImageManifest);
  assert.deepEqual(byTag.manifest, manifest);
  const byDigest = await c.getManifest(digest);
  assert.equal(byDigest.content.toString(), JSON.stringify(manifest));
  const dl = await c.downloadBlob(manifest.layers[0]!.digest);
  const got = Buffer.concat(await collect(dl.content as AsyncIterable<Buffer>));
  assert.deepEqual(got, layer);
  // a multi-chunk blob (the SDK uploads 4 MiB chunks), streamed both ways
  const big = Buffer.alloc(9 * 1024 * 1024 + 7, 'ab');
  const up = await c.uploadBlob(Readable.from([big.subarray(0, 5_000_000), big.subarray(5_000_000)]));
  assert.equal(up.digest, sha(big));
  assert.equal(up.sizeInBytes, big.length);
  const bigDl = await c.downloadBlob(up.digest);
  const h = createHash('sha256');
  for await (const chunk of bigDl.content) h.update(chunk as Buffer);
  assert.equal('sha256:' + h.digest('hex'), up.digest);
  // a manifest pushed by digest only, with an explicit media type (Docker schema 2)
  const docker = {
    schemaVersion: 2, mediaType: KnownManifestMediaType.DockerManifest,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: manifest.config.digest, size: manifest.config.size },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: up.digest, size: big.length }],
  };
  const dockerBody = Buffer.from(JSON.stringify(docker));
  const set = await c.setManifest(dockerBody, { mediaType: KnownManifestMediaType.DockerManifest });
  assert.equal(set.digest, sha(dockerBody));
  assert.equal((await c.getManifest(set.digest)).mediaType, KnownManifestMediaType.DockerManifest);
  await c.deleteManifest(set.digest);
  await assert.rejects(c.getManifest(set.digest), isRestError([404]));
  await c.deleteBlob(up.digest);
  await assert.rejects(c.downloadBlob(up.digest), isRestError([404]));
  await c.deleteManifest(digest);
  await assert.rejects(c.getManifest('v1'), isRestError([404]));
});

test('registry client: repositories (paged), properties, manifests (ordered), tags, attributes, deletes', async () => {
  const names = ['sdk/alpha', 'sdk/beta', 'sdk/gamma'];
  const digests: Record<string, string[]> = {};
  for (const n of names) {
    const c = contentClient(n, owner);
    digests[n] = [];
    for (const [i, tag] of ['one', 'two', 'three'].entries()) {
      digests[n].push((await pushImage(c, tag, i === 1 ? 'arm64' : 'amd64')).digest);
      await new Promise((r) => setTimeout(r, 15)); // distinct lastUpdateTime for the ordering checks
    }
  }
  const rc = registryClient(owner);
  const all = await collect(rc.listRepositoryNames());
  for (const n of names) assert.ok(all.includes(n), `${n} listed in ${all.join(', ')}`);
  const pages: string[][] = [];
  for await (const page of rc.listRepositoryNames().byPage({ maxPageSize: 2 })) pages.push([...page]);
  assert.ok(pages.length >= 2, `paged in twos: ${JSON.stringify(pages)}`);
  assert.ok(pages.every((p) => p.length <= 2));
  assert.deepEqual(pages.flat(), all);

  const repo = rc.getRepository('sdk/alpha');
  const props = await repo.getProperties();
  assert.equal(props.name, 'sdk/alpha');
  assert.equal(props.registryLoginServer, loginServer);
  assert.equal(props.manifestCount, 3);
  assert.equal(props.tagCount, 3);
  assert.ok(props.createdOn instanceof Date && props.lastUpdatedOn instanceof Date);
  assert.deepEqual([props.canDelete, props.canWrite, props.canRead, props.canList], [true, true, true, true]);
  const upd = await repo.updateProperties({ canDelete: false, canList: true, canRead: true, canWrite: true });
  assert.equal(upd.canDelete, false);
  assert.equal((await repo.getProperties()).canDelete, false);
  await assert.rejects(rc.deleteRepository('sdk/alpha'), isRestError([403, 405, 409]));
  await repo.updateProperties({ canDelete: true });
  assert.equal((await repo.getProperties()).canDelete, true, 'properties not sent are left as they were');

  const asc = await collect(repo.listManifestProperties({ order: 'LastUpdatedOnAscending' }));
  assert.deepEqual(asc.map((m) => m.digest), digests['sdk/alpha']);
  const desc = await collect(repo.listManifestProperties({ order: 'LastUpdatedOnDescending' }));
  assert.deepEqual(desc.map((m) => m.digest), [...digests['sdk/alpha']!].reverse());
  assert.equal(desc[1]!.architecture, 'arm64');
  assert.equal(desc[1]!.operatingSystem, 'linux');
  assert.deepEqual(desc[0]!.tags, ['three']);
  assert.equal(desc[0]!.repositoryName, 'sdk/alpha');
  assert.ok((desc[0]!.sizeInBytes ?? 0) > 0);
  const mPages: string[][] = [];
  for await (const page of repo.listManifestProperties({ order: 'LastUpdatedOnAscending' }).byPage({ maxPageSize: 2 })) mPages.push(page.map((m) => m.digest));
  assert.deepEqual(mPages, [digests['sdk/alpha']!.slice(0, 2), digests['sdk/alpha']!.slice(2)]);

  const art = rc.getArtifact('sdk/alpha', 'two');
  const mp = await art.getManifestProperties();
  assert.equal(mp.digest, digests['sdk/alpha']![1]);
  assert.deepEqual(mp.tags, ['two']);
  assert.equal(mp.architecture, 'arm64');
  const mpu = await art.updateManifestProperties({ canWrite: false, canDelete: false });
  assert.deepEqual([mpu.canWrite, mpu.canDelete, mpu.canRead, mpu.canList], [false, false, true, true]);
  // a locked manifest can be neither deleted nor overwritten through its tag
  await assert.rejects(art.delete(), isRestError([403, 405, 409]));
  await art.updateManifestProperties({ canWrite: true, canDelete: true });

  const tags = await collect(art.listTagProperties({ order: 'LastUpdatedOnDescending' }));
  assert.deepEqual(tags.map((t) => t.name), ['three', 'two', 'one']);
  assert.equal(tags[0]!.repositoryName, 'sdk/alpha');
  const tagPages: string[][] = [];
  for await (const page of art.listTagProperties({ order: 'LastUpdatedOnAscending' }).byPage({ maxPageSize: 2 })) tagPages.push(page.map((t) => t.name));
  assert.deepEqual(tagPages, [['one', 'two'], ['three']]);
  const tp = await art.getTagProperties('one');
  assert.equal(tp.digest, digests['sdk/alpha']![0]);
  assert.equal(tp.name, 'one');
  assert.equal(tp.repositoryName, 'sdk/alpha');
  assert.equal(tp.canWrite, true);
  const tpu = await art.updateTagProperties('one', { canWrite: false, canDelete: false });
  assert.deepEqual([tpu.canWrite, tpu.canDelete, tpu.canRead, tpu.canList], [false, false, true, true]);
  assert.equal((await art.getTagProperties('one')).canWrite, false);
  // a tag that is not writable cannot be moved by a push, nor deleted
  const cc = contentClient('sdk/alpha', owner);
  await assert.rejects(pushImage(cc, 'one'), isRestError([403, 405, 409]));
  await assert.rejects(art.deleteTag('one'), isRestError([403, 405, 409]));
  await art.updateTagProperties('one', { canWrite: true, canDelete: true });
  await art.deleteTag('one');
  await assert.rejects(art.getTagProperties('one'), isRestError([404]));

  // delete a manifest through the artifact (resolved from its tag), then the repository
  await rc.getArtifact('sdk/beta', 'two').delete();
  assert.deepEqual((await collect(rc.getRepository('sdk/beta').listManifestProperties())).map((m) => m.digest).sort(), [digests['sdk/beta']![0], digests['sdk/beta']![2]].sort());
  // without an audience the SDK asks Entra for https://containerregistry.azure.net/.default; the exchange takes that too
  const before = aadScopes.length;
  const noAudience = new ContainerRegistryClient(endpoint, credential(owner), transport());
  assert.equal((await noAudience.getRepository('sdk/gamma').getProperties()).manifestCount, 3);
  assert.deepEqual([...new Set(aadScopes.slice(before))], ['https://containerregistry.azure.net/.default']);
  await rc.deleteRepository('sdk/gamma');
  assert.ok(!(await collect(rc.listRepositoryNames())).includes('sdk/gamma'));
  await assert.rejects(rc.getRepository('sdk/gamma').getProperties(), isRestError([404]));
});

test('a multi-platform index: its references (relatedArtifacts); read and list locks', async () => {
  const c = contentClient('sdk/multi', owner);
  const amd = await pushImage(c, undefined, 'amd64');
  const arm = await pushImage(c, undefined, 'arm64');
  const size = async (d: string) => (await c.getManifest(d)).content.length;
  const index = {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd.digest, size: await size(amd.digest), platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm.digest, size: await size(arm.digest), platform: { architecture: 'arm64', os: 'linux' } },
    ],
  };
  const set = await c.setManifest(Buffer.from(JSON.stringify(index)), { tag: 'latest', mediaType: 'application/vnd.oci.image.index.v1+json' });
  const got = await c.getManifest('latest');
  assert.equal(got.digest, set.digest);
  assert.equal(got.mediaType, 'application/vnd.oci.image.index.v1+json');
  const art = registryClient(owner).getArtifact('sdk/multi', 'latest');
  const props = await art.getManifestProperties();
  assert.deepEqual(props.relatedArtifacts.map((r) => [r.digest, r.architecture, r.operatingSystem]), [[amd.digest, 'amd64', 'linux'], [arm.digest, 'arm64', 'linux']]);
  const listed = await collect(registryClient(owner).getRepository('sdk/multi').listManifestProperties());
  assert.equal(listed.find((m) => m.digest === set.digest)?.relatedArtifacts.length, 2);
  // readEnabled=false: the manifest cannot be pulled, and listEnabled=false hides it from listings
  await registryClient(owner).getArtifact('sdk/multi', amd.digest).updateManifestProperties({ canRead: false, canList: false });
  await assert.rejects(c.getManifest(amd.digest), isRestError([403, 405]));
  const visible = await collect(registryClient(owner).getRepository('sdk/multi').listManifestProperties());
  assert.ok(!visible.some((m) => m.digest === amd.digest));
  assert.equal((await registryClient(owner).getArtifact('sdk/multi', amd.digest).getManifestProperties()).canRead, false);
  await registryClient(owner).getArtifact('sdk/multi', amd.digest).updateManifestProperties({ canRead: true, canList: true });
  assert.equal((await c.getManifest(amd.digest)).digest, amd.digest);
  // a repository with listEnabled=false is left out of the catalog, and still answers by name
  const repo = registryClient(owner).getRepository('sdk/multi');
  await repo.updateProperties({ canList: false });
  assert.ok(!(await collect(registryClient(owner).listRepositoryNames())).includes('sdk/multi'));
  assert.equal((await repo.getProperties()).canList, false);
  await repo.updateProperties({ canList: true });
  assert.ok((await collect(registryClient(owner).listRepositoryNames())).includes('sdk/multi'));
});

test('/acr/v1 directly: tags filtered by digest, bad orderby and bad PATCH bodies are 400 with a reason', async () => {
  const c = contentClient('sdk/raw', owner);
  const a = await pushImage(c, 'a');
  await c.setManifest(a.manifest, { tag: 'b' });
  await pushImage(c, 'c');
  const rc = new RegistryClient(loginServer, { kind: 'basic', username: owner.appId, password: owner.secret });
  const scope = 'repository:sdk/raw:metadata_read,metadata_write';
  const { body } = await rc.getJson<{ tags: Array<{ name: string }> }>(`/acr/v1/sdk%2Fraw/_tags?digest=${encodeURIComponent(a.digest)}`, scope);
  assert.deepEqual(body.tags.map((t) => t.name), ['a', 'b']);
  const bad = await rc.send('GET', '/acr/v1/sdk/raw/_tags?orderby=sideways', scope);
  assert.equal(bad.status, 400);
  assert.match(await bad.body.text(), /orderby must be timeasc or timedesc/);
  for (const [payload, why] of [['{"writeEnabled":"no"}', /writeEnabled must be true or false/], ['not json', /not JSON/], ['[1]', /JSON object/]] as const) {
    const res = await rc.send('PATCH', '/acr/v1/sdk/raw/_tags/a', scope, { headers: { 'content-type': 'application/json' }, body: payload });
    assert.equal(res.status, 400);
    assert.match(await res.body.text(), why);
  }
  const notDigest = await rc.send('GET', '/acr/v1/sdk/raw/_manifests/latest', scope);
  assert.equal(notDigest.status, 400);
  assert.match(await notDigest.body.text(), /DIGEST_INVALID.*use _tags for tags/);
  const paged = await rc.send('GET', '/acr/v1/sdk/raw/_tags?n=1&orderby=timedesc', scope);
  assert.equal(paged.headers.link, '</acr/v1/sdk/raw/_tags?last=c&n=1&orderby=timedesc>; rel="next"');
  await paged.body.dump();
});

test('anonymous client: refused, since Berth has no anonymous pull', async () => {
  await pushImage(contentClient('sdk/anon', owner), 'v1');
  await assert.rejects(contentClient('sdk/anon').getManifest('v1'), isRestError([401]));
  await assert.rejects(collect(registryClient().listRepositoryNames()), isRestError([401]));
  await assert.rejects(registryClient().getRepository('sdk/anon').getProperties(), (e: unknown) => {
    isRestError([401])(e);
    assert.match((e as RestError).message, /does not allow anonymous access/);
    return true;
  });
});

test('roles through the SDK: AcrPull reads, cannot push; AcrPush pushes, cannot delete; AcrDelete deletes', async () => {
  const puller = await principalWithRole(b, 'AcrPull', regScope);
  const pusher = await principalWithRole(b, 'AcrPush', regScope);
  const deleter = await principalWithRole(b, 'AcrDelete', regScope);
  const nobody = await principalWithRole(b, undefined);
  const seeded = await pushImage(contentClient('sdk/roles', owner), 'v1');

  const pull = contentClient('sdk/roles', puller);
  assert.equal((await pull.getManifest('v1')).digest, seeded.digest);
  assert.deepEqual(Buffer.concat(await collect((await pull.downloadBlob(seeded.manifest.layers[0]!.digest)).content as AsyncIterable<Buffer>)), seeded.layer);
  assert.equal((await registryClient(puller).getArtifact('sdk/roles', 'v1').getManifestProperties()).digest, seeded.digest);
  await assert.rejects(pull.uploadBlob(Buffer.from('nope')), isRestError([401, 403]));
  await assert.rejects(pull.setManifest(seeded.manifest, { tag: 'v2' }), isRestError([401, 403]));
  await assert.rejects(pull.deleteManifest(seeded.digest), (e: unknown) => {
    isRestError([403])(e);
    assert.match((e as RestError).message, /DENIED.*registries\/artifacts\/delete.*assign AcrDelete there/);
    return true;
  });

  const push = contentClient('sdk/roles', pusher);
  const pushed = await pushImage(push, 'v2');
  assert.equal((await push.getManifest('v2')).digest, pushed.digest);
  await assert.rejects(push.deleteManifest(pushed.digest), isRestError([401, 403]));

  await contentClient('sdk/roles', deleter).deleteManifest(pushed.digest);
  await assert.rejects(contentClient('sdk/roles', deleter).getManifest('v1'), isRestError([401, 403]));
  await registryClient(deleter).getArtifact('sdk/roles', 'v1').deleteTag('v1');
  await assert.rejects(pull.getManifest('v1'), isRestError([404]));

  await assert.rejects(contentClient('sdk/roles', nobody).getManifest(seeded.digest), isRestError([401, 403]));
});

test('no client secret, Entra token or registry token appears in the server log', () => {
  assert.ok(secrets.some((t) => t.split('.').length === 3 && JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).token_type === 'refresh'),
    'the ACR refresh tokens the SDK received were captured (a JWT with exp, as the SDK requires)');
  const log = b.logs.join('\n');
  assert.ok(log.includes('registry request'), 'the server logged the registry requests');
  for (const s of secrets) assert.ok(!log.includes(s), `the server log holds a secret (${s.slice(0, 8)}...)`);
});
