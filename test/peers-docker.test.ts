// A real Docker engine against a Berth registry: Debian's dockerd, started by the test with a socket,
// data root and exec root of its own (test/helpers/dockerd.ts). `docker login` with the admin user, a
// service principal (seed 003: acrpull pulls and cannot push, acrpush pushes) and a repository-scoped
// token (seed 004: myimage only); `docker pull` of a single image and of a multi-platform index, and a
// container run from the pulled image.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { busyboxLayout, haveImageTools, pushMultiPlatform } from './helpers/images.js';
import { dockerdUnavailable, startDockerd, type Dockerd } from './helpers/dockerd.js';

const run = promisify(execFile);
let skip: string | undefined = haveImageTools() ?? dockerdUnavailable();
let b: TestBerth;
let d: Dockerd | undefined;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let configDir: string;
const deniedRe = /denied|unauthorized|authentication required/i;

before(async () => {
  if (skip) {
    console.log(`# docker tests skipped: ${skip}`);
    return;
  }
  try {
    d = await startDockerd();
  } catch (e) {
    // Only a daemon that cannot start on this machine skips; the reason is printed in full.
    skip = `dockerd cannot start here: ${(e as Error).message}`;
    console.log(`# docker tests skipped: ${skip}`);
    return;
  }
  console.log(`# dockerd running at ${d.host} (storage driver ${d.storageDriver})`);
  b = await startTestBerth();
  configDir = await mkdtemp(join(tmpdir(), 'berth-cfg-'));
  reg = await adminRegistry(b, 'dockerreg01');
  const layout = await busyboxLayout('v1');
  for (const repo of ['myimage', 'other']) {
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${reg.username}:${reg.password}`, `oci:${layout}:v1`, `docker://${reg.loginServer}/${repo}:v1`]);
  }
});

after(async () => {
  await d?.stop();
  await b?.cleanup();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

async function berth(...args: string[]): Promise<string> {
  const r = await b.cli(args, { env: { BERTH_CONFIG_DIR: configDir } });
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

const login = (user: string, password: string) => d!.docker(['login', '-u', user, '--password-stdin', reg.loginServer], { input: password });

/** Removes every image from the engine, so the next pull really talks to the registry. */
async function forgetImages(): Promise<void> {
  const ids = (await d!.ok(['images', '-aq'])).split('\n').filter(Boolean);
  if (ids.length) await d!.ok(['rmi', '-f', ...new Set(ids)]);
}

/** Tags the engine's copy of myimage:v1 as REPO:TAG and pushes it. */
async function pushAs(repo: string, tag: string) {
  const ref = `${reg.loginServer}/${repo}:${tag}`;
  await d!.ok(['tag', `${reg.loginServer}/myimage:v1`, ref]);
  return d!.docker(['push', ref]);
}

/** Whether this engine can run a container at all, found with an image that never touched Berth. */
async function engineRunsContainers(): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-rootfs-'));
  try {
    await run('sh', ['-c', 'mkdir -p "$1/r/bin" && cp "$(command -v busybox)" "$1/r/bin/busybox" && tar -C "$1/r" -cf "$1/r.tar" .', 'sh', dir]);
    await d!.ok(['import', join(dir, 'r.tar'), 'berth-probe:1']);
    const r = await d!.docker(['run', '--rm', '--network', 'none', 'berth-probe:1', '/bin/busybox', 'true']);
    await d!.docker(['rmi', 'berth-probe:1']);
    return r.code === 0 ? undefined : `the engine cannot run containers here: ${r.stderr.trim()}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('docker login with the admin user, pull an image pushed to Berth, and run it', { skip: skip ?? false }, async (t) => {
  if (skip) return t.skip(skip);
  const li = await login(reg.username, reg.password);
  assert.equal(li.code, 0, li.stderr);
  assert.match(li.stdout, /Login Succeeded/);
  await d!.ok(['pull', `${reg.loginServer}/myimage:v1`]);
  const inspected = JSON.parse(await d!.ok(['image', 'inspect', `${reg.loginServer}/myimage:v1`])) as Array<{ Architecture: string; Os: string; RepoDigests: string[] }>;
  assert.equal(inspected[0]!.Architecture, 'amd64');
  const digest = (await fetch(`${reg.base}/v2/myimage/manifests/v1`, { method: 'HEAD', headers: { Authorization: reg.auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } })).headers.get('docker-content-digest');
  assert.deepEqual(inspected[0]!.RepoDigests, [`${reg.loginServer}/myimage@${digest}`], 'docker records the digest Berth serves');
  const cannotRun = await engineRunsContainers();
  if (cannotRun) {
    console.log(`# docker run step skipped: ${cannotRun}`);
  } else {
    const out = await d!.ok(['run', '--rm', '--network', 'none', `${reg.loginServer}/myimage:v1`, '/bin/busybox', 'echo', 'hi']);
    assert.equal(out.trim(), 'hi');
  }
  // the admin user pushes too, and a pull after forgetting everything gets the pushed copy back
  const pushed = await pushAs('fromdocker', 'v2');
  assert.equal(pushed.code, 0, pushed.stderr);
  await forgetImages();
  await d!.ok(['pull', `${reg.loginServer}/fromdocker:v2`]);
  const wrong = await login(reg.username, 'not-the-password');
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, deniedRe);
  await d!.ok(['logout', reg.loginServer]);
  await forgetImages();
});

test('docker pulls a multi-platform index and takes the amd64 manifest', { skip: skip ?? false }, async (t) => {
  if (skip) return t.skip(skip);
  const { indexDigest, platforms } = await pushMultiPlatform(reg, `${reg.username}:${reg.password}`, 'multi/busybox');
  assert.equal((await login(reg.username, reg.password)).code, 0);
  await d!.ok(['pull', `${reg.loginServer}/multi/busybox:latest`]);
  const [img] = JSON.parse(await d!.ok(['image', 'inspect', `${reg.loginServer}/multi/busybox:latest`])) as Array<{ Id: string; Architecture: string; RepoDigests: string[] }>;
  const amd64 = platforms.find((p) => p.arch === 'amd64')!;
  assert.equal(img!.Architecture, 'amd64');
  assert.equal(img!.Id, amd64.configDigest, 'the image docker stored is the amd64 one (its ID is the config digest)');
  assert.deepEqual(img!.RepoDigests, [`${reg.loginServer}/multi/busybox@${indexDigest}`], 'docker names it by the index digest');
  await d!.ok(['logout', reg.loginServer]);
  await forgetImages();
});

test('seed 003 with docker: create-for-rbac --role acrpull logs in and pulls, push refused; --role acrpush pushes', { skip: skip ?? false }, async (t) => {
  if (skip) return t.skip(skip);
  const ACR_ID = await berth('acr', 'show', '--name', 'dockerreg01', '--query', 'id', '--output', 'tsv');
  const pullSp = JSON.parse(await berth('ad', 'sp', 'create-for-rbac', '--name', 'http://dockerreg01-pull', '--scopes', ACR_ID, '--role', 'acrpull')) as { appId: string; password: string };
  const li = await login(pullSp.appId, pullSp.password);
  assert.equal(li.code, 0, li.stderr);
  await d!.ok(['pull', `${reg.loginServer}/myimage:v1`]);
  const refused = await pushAs('myimage', 'from-acrpull');
  assert.notEqual(refused.code, 0, 'an AcrPull principal cannot push');
  assert.match(refused.stderr, deniedRe);
  t.diagnostic(`acrpull push: ${refused.stderr.trim()}`);
  assert.match(refused.stderr, /push\/write/, 'the denial names the missing permission');

  const pushSp = JSON.parse(await berth('ad', 'sp', 'create-for-rbac', '--name', 'http://dockerreg01-push', '--scopes', ACR_ID, '--role', 'acrpush')) as { appId: string; password: string };
  assert.equal((await login(pushSp.appId, pushSp.password)).code, 0);
  const pushed = await pushAs('myimage', 'from-acrpush');
  assert.equal(pushed.code, 0, pushed.stderr);
  const tags = JSON.parse(await berth('acr', 'repository', 'show-tags', '-n', 'dockerreg01', '--repository', 'myimage')) as string[];
  assert.ok(tags.includes('from-acrpush'));
  assert.ok(!tags.includes('from-acrpull'));
  await d!.ok(['logout', reg.loginServer]);
  await forgetImages();
});

test('seed 004 with docker: a repository-scoped token pulls myimage only and cannot push', { skip: skip ?? false }, async (t) => {
  if (skip) return t.skip(skip);
  await berth('acr', 'scope-map', 'create', '-r', 'dockerreg01', '-n', 'sm_pull', '--repository', 'myimage', 'content/read', 'metadata/read');
  await berth('acr', 'token', 'create', '-r', 'dockerreg01', '-n', 'tok_pull', '--scope-map', 'sm_pull');
  const TOKEN_PASS = await berth('acr', 'token', 'credential', 'generate', '-r', 'dockerreg01', '-n', 'tok_pull', '--query', 'passwords[0].value', '-o', 'tsv');
  const li = await login('tok_pull', TOKEN_PASS);
  assert.equal(li.code, 0, li.stderr);
  await d!.ok(['pull', `${reg.loginServer}/myimage:v1`]);
  const other = await d!.docker(['pull', `${reg.loginServer}/other:v1`]);
  assert.notEqual(other.code, 0, 'the token is not scoped to other');
  assert.match(other.stderr, deniedRe);
  t.diagnostic(`token pull of other: ${other.stderr.trim()}`);
  const push = await pushAs('myimage', 'from-token');
  assert.notEqual(push.code, 0, 'the token has no content/write');
  assert.match(push.stderr, deniedRe);
  t.diagnostic(`token push: ${push.stderr.trim()}`);
  assert.match(push.stderr, /content\/write/, 'the denial names the missing scope-map action');
  await d!.ok(['logout', reg.loginServer]);
  await forgetImages();
});

test('docker login with the null GUID and a refresh token from ACR exchange (az acr login --expose-token)', { skip: skip ?? false }, async (t) => {
  if (skip) return t.skip(skip);
  const ACR_ID = await berth('acr', 'show', '--name', 'dockerreg01', '--query', 'id', '--output', 'tsv');
  const sp = JSON.parse(await berth('ad', 'sp', 'create-for-rbac', '--name', 'exchange-sp', '--scopes', ACR_ID, '--role', 'AcrPull')) as { appId: string; password: string; tenant: string };
  const form = (o: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o) });
  const aad = await fetch(`${b.url}/${sp.tenant}/oauth2/v2.0/token`, form({ grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.password, scope: 'https://management.azure.com/.default' }));
  assert.equal(aad.status, 200);
  const { access_token } = await aad.json() as { access_token: string };
  const ex = await fetch(`${reg.base}/oauth2/exchange`, form({ grant_type: 'access_token', service: reg.loginServer, tenant: sp.tenant, access_token }));
  assert.equal(ex.status, 200);
  const { refresh_token } = await ex.json() as { refresh_token: string };
  const li = await login('00000000-0000-0000-0000-000000000000', refresh_token);
  assert.equal(li.code, 0, li.stderr);
  await d!.ok(['pull', `${reg.loginServer}/myimage:v1`]);
  const refused = await pushAs('myimage', 'from-exchange');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /push\/write/);
  await d!.ok(['logout', reg.loginServer]);
  await forgetImages();
});
