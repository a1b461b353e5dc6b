// Acceptance scenarios S1, S2, S3, S7, S8 and S10 of SPEC §2 (issue 6), end to end: the real CLI against
// a real `berth serve` child process (so the runc runtime is the one serve opens), busybox httpd groups
// answering on their published ports, command groups' logs, and each create failure's wording and diagnosis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';
import { dataPaths } from '../src/lib/data-dir.js';
import { REPO_ROOT, runCli, type CliResult } from './helpers/berth.js';
import { startServeChild } from './helpers/serve-child.js';
import { busyboxLayer, busyboxPath, imageWorkDir } from './helpers/runtime-images.js';
import { haveReferenceRegistry, startReferenceRegistry, startTokenAuthRegistry, type ReferenceRegistry, type TokenAuthRegistry } from './helpers/reference-registry.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';

const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed') ?? haveReferenceRegistry();
if (skip) console.log(`# skipping registry scenario tests: ${skip}`);

const HTTPD = '/bin/busybox httpd -f -p 80 -h /www';
const PAGE = 'hello from busybox httpd\n';

let work: string;
let dataDir: string;
let server: ChildProcess | undefined;
let url: string;
let serverStderr = '';
let env: NodeJS.ProcessEnv;
let refReg: ReferenceRegistry;
let tokReg: TokenAuthRegistry;
let proxy: FaultProxy;
let acr: { loginServer: string; username: string; password: string };
const created = new Set<string>();
const publishedUrls = new Map<string, string>();
let serverOut = '';

const cli = (args: string[], input?: string): Promise<CliResult> => runCli(args, env, input);
async function ok(args: string[], input?: string): Promise<any> {
  const r = await cli(args, input);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim().startsWith('{') || r.stdout.trim().startsWith('[') ? JSON.parse(r.stdout) : r.stdout;
}

/** Polls a condition a bounded number of times (a process's progress, not a timing assertion). */
async function eventually<T>(what: string, f: () => Promise<T | undefined>, tries = 150): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not happen`);
}

async function create(name: string, args: string[], input?: string): Promise<CliResult> {
  created.add(name);
  return cli(['container', 'create', '-g', 'demo', '-n', name, ...args], input);
}
const show = (name: string): Promise<any> => ok(['container', 'show', '-g', 'demo', '-n', name]);
async function remove(name: string): Promise<void> {
  const r = await cli(['container', 'delete', '-g', 'demo', '-n', name, '--yes']);
  assert.equal(r.code, 0, r.stderr);
  created.delete(name);
  // Its published port is closed with it (checked at once: another program may take port 80 later).
  const where = publishedUrls.get(name);
  if (where) await assert.rejects(fetch(where), `${where} of ${name} no longer listens`);
  publishedUrls.delete(name);
}

/** Where a group's port 80 is published (`hostPort` when Berth had to pick another than 80). */
function published(g: any): string {
  const ip = g.ipAddress;
  const p = ip.ports.find((x: { port: number }) => x.port === 80);
  return `http://${ip.ip}:${p.hostPort ?? p.port}/`;
}

async function page(name: string): Promise<string> {
  const g = await eventually(`${name} running with an IP`, async () => { const x = await show(name); return x.ipAddress?.ip ? x : undefined; });
  const where = published(g);
  publishedUrls.set(name, where);
  return eventually(`a page from ${name} at ${where}`, async () => {
    try {
      const res = await fetch(where);
      return res.ok ? await res.text() : undefined;
    } catch { return undefined; }
  });
}

const logs = (name: string, container?: string): Promise<CliResult> =>
  cli(['container', 'logs', '-g', 'demo', '-n', name, ...(container ? ['--container-name', container] : [])]);

async function startServe(): Promise<void> {
  const started = await startServeChild(['--data-dir', dataDir, '--port', '0'],
    { ...process.env, DOCKER_CONFIG: join(work, 'docker'), PATH: `${join(work, 'bin')}:${process.env.PATH}` },
    (text, stream) => { if (stream === 'stdout') serverOut += text; else serverStderr += text; });
  server = started.child;
  url = started.url;
  env = { ...process.env, BERTH_SERVER: url, BERTH_DATA_DIR: dataDir };
}

before(async () => {
  if (skip) return;
  work = await imageWorkDir();
  dataDir = await mkdtemp(join(tmpdir(), 'berth-scen-'));
  await busyboxLayer(work); // leaves the root filesystem in work/busybox-rootfs
  [refReg, tokReg] = await Promise.all([startReferenceRegistry(), startTokenAuthRegistry()]);
  proxy = await startFaultProxy(refReg.host);
  // S8: the server's platform default docker config: `auths` for the htpasswd registry, a credential
  // helper (a script on the server's PATH) for the token-auth one.
  await mkdir(join(work, 'docker'));
  await mkdir(join(work, 'bin'));
  await writeFile(join(work, 'docker', 'config.json'), JSON.stringify({
    auths: { [refReg.host]: { auth: Buffer.from(`${refReg.username}:${refReg.password}`).toString('base64') } },
    credHelpers: { [tokReg.host]: 'berthscen' },
  }));
  await writeFile(join(work, 'bin', 'docker-credential-berthscen'), [
    '#!/bin/sh',
    `[ "$1" = get ] || exit 1`,
    'read server',
    `[ "$server" = "${tokReg.host}" ] || { echo "credentials not found in native keychain"; exit 1; }`,
    `echo '${JSON.stringify({ ServerURL: tokReg.host, Username: tokReg.username, Secret: tokReg.password })}'`,
    '',
  ].join('\n'));
  await chmod(join(work, 'bin', 'docker-credential-berthscen'), 0o755);
  await startServe();
  await ok(['group', 'create', '-n', 'demo', '-l', 'westus']);
  const reg = await ok(['acr', 'create', '-n', 'scenreg01', '-g', 'demo', '--sku', 'Basic', '--admin-enabled', 'true']);
  const cred = await ok(['acr', 'credential', 'show', '-n', 'scenreg01']);
  acr = { loginServer: reg.loginServer, username: cred.username, password: cred.passwords[0].value };
  const rootfs = join(work, 'busybox-rootfs');
  // Third-party registries with the user's credentials; the token-auth one names a token server on another port.
  for (const reg of [refReg, tokReg]) await ok(['image', 'push', rootfs, `${reg.host}/tools/app:v1`, '-u', reg.username, '--password-stdin'], reg.password);
  await ok(['image', 'push', rootfs, `${acr.loginServer}/my-app:v1.0`]);
});

after(async () => {
  if (skip) return;
  try {
    for (const name of [...created]) await cli(['container', 'delete', '-g', 'demo', '-n', name, '--yes']);
    // Nothing of the groups is left: no runc container under the server's runtime state.
    const runcRoot = join(dataPaths(dataDir).runtime, 'runc');
    const { stdout } = await promisify(execFile)('runc', ['--root', runcRoot, 'list', '--format', 'json']);
    assert.deepEqual(JSON.parse(stdout || 'null') ?? [], [], 'no runc container left');
    const groups = await readdir(join(dataPaths(dataDir).runtime, 'groups')).catch(() => []);
    assert.deepEqual(groups, [], 'no group state left under the runtime directory');
  } finally {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server!.once('exit', r));
    }
    for (const d of [dataDir, work]) if (d) await rm(d, { recursive: true, force: true });
    await Promise.all([refReg?.stop(), tokReg?.stop(), proxy?.stop()]);
    if (url) await assert.rejects(fetch(`${url}/`), 'the server stopped listening');
  }
});

test('S1: an admin-user ACR image runs as an httpd group and answers on its published port; events Pulling, Pulled, Started, Killing on stop', { skip }, async () => {
  const r = await create('web', ['--image', `${acr.loginServer}/my-app:v1.0`, '--registry-login-server', acr.loginServer,
    '--registry-username', acr.username, '--registry-password', acr.password, '--ports', '80', '--ip-address', 'Public', '--command-line', HTTPD]);
  assert.equal(r.code, 0, r.stderr);
  const g = JSON.parse(r.stdout);
  assert.equal(g.provisioningState, 'Succeeded');
  assert.equal(JSON.stringify(g).includes(acr.password), false, 'no password in the create output');
  assert.equal(await page('web'), PAGE);
  // S10: the events table reads like seed 002's.
  const table = await cli(['container', 'show', '-g', 'demo', '-n', 'web', '--query', 'containers[0].instanceView.events', '-o', 'table']);
  assert.equal(table.code, 0, table.stderr);
  for (const name of ['Pulling', 'Pulled', 'Started']) assert.match(table.stdout, new RegExp(`\\b${name}\\b`), table.stdout);
  assert.match(table.stdout.split('\n')[0]!, /Count/i);
  const ps = await promisify(execFile)('ps', ['-eo', 'args']);
  assert.equal(ps.stdout.includes(acr.password), false, 'no password on a process command line');
  // Stopping kills the running httpd: a Killing event.
  const stop = await cli(['container', 'stop', '-g', 'demo', '-n', 'web']);
  assert.equal(stop.code, 0, stop.stderr);
  const stopped = await cli(['container', 'show', '-g', 'demo', '-n', 'web', '--query', 'containers[0].instanceView.events', '-o', 'table']);
  assert.match(stopped.stdout, /\bKilling\b/, stopped.stdout);
  await remove('web');
});

test('S2: images from a third-party registry (docker-registry with htpasswd, and with token auth)', { skip }, async () => {
  for (const [name, reg] of [['refweb', refReg], ['tokweb', tokReg]] as const) {
    const r = await create(name, ['--image', `${reg.host}/tools/app:v1`, '--registry-login-server', reg.host,
      '--registry-username', reg.username, '--registry-password', reg.password, '--ports', '80', '--ip-address', 'Public', '--command-line', HTTPD]);
    assert.equal(r.code, 0, r.stderr);
  }
  // Both groups listen on port 80; each is published on its own host port.
  assert.equal(await page('refweb'), PAGE);
  assert.equal(await page('tokweb'), PAGE);
  assert.ok(tokReg.tokens, 'token-auth registry');
  await remove('refweb');
  await remove('tokweb');
});

/** The seed's multi-registry YAML with this test's registries and commands. */
async function multiRegistryYaml(): Promise<string> {
  const doc = parseYaml(await readFile(join(REPO_ROOT, 'test', 'fixtures', 'aci', 'seed002-multi-registry.yaml'), 'utf8'));
  const [app, sidecar] = doc.properties.containers;
  app.properties.image = `${acr.loginServer}/my-app:v1.0`;
  app.properties.command = ['/bin/busybox', 'httpd', '-f', '-p', '80', '-h', '/www'];
  sidecar.properties.image = `${refReg.host}/tools/app:v1`;
  sidecar.properties.command = ['/bin/sh', '-c', 'while true; do wget -q -O - http://localhost:80/ && echo fetched-ok; sleep 0.3; done'];
  doc.properties.imageRegistryCredentials = [
    { server: acr.loginServer, username: acr.username, password: acr.password },
    { server: refReg.host, username: refReg.username, password: refReg.password },
  ];
  return toYaml(doc);
}

test('S3: container create --file (YAML, ACI schema) with two containers from two registries reaching each other on localhost', { skip }, async () => {
  const file = join(work, 'group.yaml');
  await writeFile(file, await multiRegistryYaml());
  const r = await create('multi-registry-app', ['--file', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await page('multi-registry-app'), PAGE);
  const out = await eventually('the sidecar fetching the app on localhost', async () => {
    const l = await logs('multi-registry-app', 'sidecar');
    return l.code === 0 && /hello from busybox httpd\nfetched-ok/.test(l.stdout) ? l.stdout : undefined;
  });
  assert.match(out, /fetched-ok/);
  await remove('multi-registry-app');

  // --file - reads standard input (the seed's private-registry YAML).
  const doc = parseYaml(await readFile(join(REPO_ROOT, 'test', 'fixtures', 'aci', 'seed002-private-registry.yaml'), 'utf8'));
  doc.properties.containers[0].properties.image = `${acr.loginServer}/my-app:v1.0`;
  doc.properties.containers[0].properties.command = HTTPD.split(' ');
  doc.properties.imageRegistryCredentials = [{ server: acr.loginServer, username: acr.username, password: acr.password }];
  const s = await create('my-private-app', ['--file', '-'], toYaml(doc));
  assert.equal(s.code, 0, s.stderr);
  assert.equal(await page('my-private-app'), PAGE);
  await remove('my-private-app');
});

test('S7: an expired token password fails with InaccessibleImage saying so; a new password works', { skip }, async () => {
  const tok = await ok(['acr', 'token', 'create', '-n', 'deploytoken', '-r', 'scenreg01', '--repository', 'my-app', 'content/read', '--no-passwords']);
  assert.equal(tok.name, 'deploytoken');
  const expiry = new Date(Date.now() + 3000).toISOString().replace(/\.\d+Z$/, 'Z');
  const gen = await ok(['acr', 'token', 'credential', 'generate', '-n', 'deploytoken', '-r', 'scenreg01', '--password1', '--expiration', expiry]);
  const password = gen.passwords[0].value as string;
  const username = gen.username as string;
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiry) - Date.now()) + 1500));
  const args = (pw: string) => ['--image', `${acr.loginServer}/my-app:v1.0`, '--registry-login-server', acr.loginServer,
    '--registry-username', username, '--registry-password', pw, '--restart-policy', 'Never', '--command-line', '/bin/sh -c "echo token-ok"'];
  const failed = await create('tokenjob', args(password));
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /InaccessibleImage/);
  assert.match(failed.stderr, /expired/i, failed.stderr);
  assert.ok(failed.stderr.includes(expiry.slice(0, 16)), `names when it expired: ${failed.stderr}`);
  assert.equal(failed.stderr.includes(password), false);
  assert.equal((await cli(['container', 'show', '-g', 'demo', '-n', 'tokenjob'])).code, 3, 'no group left behind');

  const again = await ok(['acr', 'token', 'credential', 'generate', '-n', 'deploytoken', '-r', 'scenreg01', '--password1']);
  const r = await create('tokenjob', args(again.passwords[0].value));
  assert.equal(r.code, 0, r.stderr);
  await eventually('the job output', async () => ((await logs('tokenjob')).stdout.includes('token-ok') ? true : undefined));
  await remove('tokenjob');
});

test('S8: the server\'s docker config.json: auths (base64 auth) and a credHelpers helper on its PATH', { skip }, async () => {
  for (const [name, reg] of [['fromauths', refReg], ['fromhelper', tokReg]] as const) {
    const r = await create(name, ['--image', `${reg.host}/tools/app:v1`, '--restart-policy', 'Never', '--command-line', `/bin/sh -c "echo ${name}-ok"`]);
    assert.equal(r.code, 0, r.stderr);
    await eventually(`${name} output`, async () => ((await logs(name)).stdout.includes(`${name}-ok`) ? true : undefined));
    assert.equal(JSON.stringify(await show(name)).includes(reg.password), false);
    await remove(name);
  }
});

test('S10: BackOff with count and the last output', { skip }, async () => {
  const r = await create('crashy', ['--image', `${acr.loginServer}/my-app:v1.0`, '--registry-login-server', acr.loginServer,
    '--registry-username', acr.username, '--registry-password', acr.password, '--restart-policy', 'OnFailure',
    '--command-line', '/bin/sh -c "echo crash-output-line; exit 3"']);
  assert.equal(r.code, 0, r.stderr);
  const backoff = await eventually('a BackOff event', async () => {
    const g = await show('crashy');
    const e = g.containers[0].instanceView?.events?.find((x: { name: string }) => x.name === 'BackOff');
    return e?.count >= 2 ? e : undefined; // the second exit comes after the first back-off (10 s)
  });
  assert.ok(backoff.lastTimestamp >= backoff.firstTimestamp);
  assert.equal(backoff.type, 'Warning');
  assert.match(backoff.message, /exited with code 3/);
  assert.match(backoff.message, /; last output: crash-output-line$/, 'the last run\'s output only');
  const stop = await cli(['container', 'stop', '-g', 'demo', '-n', 'crashy']);
  assert.equal(stop.code, 0, stop.stderr);
  const table = await cli(['container', 'show', '-g', 'demo', '-n', 'crashy', '--query', 'containers[0].instanceView.events', '-o', 'table']);
  assert.match(table.stdout, /BackOff .*last output: crash-output-line/);
  await remove('crashy');
});

test('S10: create failures carry the registry\'s wording and the diagnosis; nothing is left behind', { skip }, async () => {
  const base = ['--restart-policy', 'Never', '--command-line', 'true'];
  const creds = (server: string, user: string, pw: string) => ['--registry-login-server', server, '--registry-username', user, '--registry-password', pw];

  const wrong = await create('bad1', ['--image', `${acr.loginServer}/my-app:v1.0`, ...creds(acr.loginServer, acr.username, 'not-the-password'), ...base]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /InaccessibleImage/);
  assert.match(wrong.stderr, /unauthorized/i);
  assert.match(wrong.stderr, /incorrect password for the admin user scenreg01/);
  assert.match(wrong.stderr, /refused user scenreg01 from imageRegistryCredentials for /, 'names the credential source');
  assert.equal(wrong.stderr.split('\n')[0]!.split('imageRegistryCredentials for').length, 2, 'names it once');

  const missing = await create('bad2', ['--image', `${acr.loginServer}/my-app:v9`, ...creds(acr.loginServer, acr.username, acr.password), ...base]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /InaccessibleImage/);
  assert.match(missing.stderr, /manifest unknown/i);
  assert.match(missing.stderr, /Tags that exist: v1\.0/, 'names the tags that exist');

  const nohost = await create('bad3', ['--image', 'nonexistent.invalid:5000/app:v1', ...base]);
  assert.equal(nohost.code, 1);
  assert.match(nohost.stderr, /InaccessibleImage/);
  assert.match(nohost.stderr, /no such host/i);
  assert.match(nohost.stderr, /does not resolve/);

  proxy.rule = (req) => (req.path.includes('/manifests/') && req.authorization ? { kind: 'status', status: 429, retryAfter: '1' } : undefined);
  const limited = await create('bad4', ['--image', `${proxy.host}/tools/app:v1`, ...creds(proxy.host, refReg.username, refReg.password), ...base]);
  proxy.reset();
  assert.equal(limited.code, 1);
  assert.match(limited.stderr, /InaccessibleImage/);
  assert.match(limited.stderr, /toomanyrequests/i);
  assert.match(limited.stderr, /retry after 1 s/);
  assert.doesNotMatch(limited.stderr, /Authenticate to get a higher limit/, 'the limited requests were authenticated');

  for (const name of ['bad1', 'bad2', 'bad3', 'bad4']) {
    assert.equal((await cli(['container', 'show', '-g', 'demo', '-n', name])).code, 3, `${name} is not left behind`);
    created.delete(name);
  }
  for (const r of [wrong, missing, nohost, limited]) assert.equal(r.stderr.includes(acr.password) || r.stderr.includes(refReg.password), false);

  const tags = await cli(['acr', 'repository', 'show-tags', '-n', 'scenreg01', '--repository', 'my-app', '-o', 'table']);
  assert.equal(tags.code, 0, tags.stderr);
  assert.match(tags.stdout, /v1\.0/);
});

test('no registry password in the server\'s output', { skip }, () => {
  for (const secret of [acr.password, refReg.password, tokReg.password]) {
    assert.equal(serverOut.includes(secret) || serverStderr.includes(secret), false);
  }
});
