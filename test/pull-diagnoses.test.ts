// Issue 17's diagnoses, each induced for real: Berth's own registry (and the reference docker-registry
// behind TLS), real managed identities, role assignments, scope maps, Key Vault references and
// credential helpers, through the real `berth` CLI where a user would see it. The runtime is the test
// double (nothing here runs a container); the pull client is the real one. Every output is checked
// for the secrets the test handed out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, type RunningBerth } from '../src/platform/berth.js';
import { FakeRuntime } from './helpers/fake-runtime.js';
import { adminRegistry, runCli, which, type CliResult } from './helpers/berth.js';
import { pushTinyImage } from './helpers/tiny-image.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { haveReferenceRegistry, startReferenceRegistry, type ReferenceRegistry } from './helpers/reference-registry.js';
import { RegistryClient } from '../src/client/registry-client.js';
import { RegistryPuller } from '../src/pull/puller.js';
import { PullError } from '../src/pull/types.js';
import { diagnosePull } from '../src/pull/diagnosis.js';
import { InlineKeychain } from '../src/keychain/inline.js';
import { DockerConfigKeychain } from '../src/keychain/docker-config.js';
import { findRole } from '../src/identity/roles.js';
import { armId } from '../src/registry/registries.js';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';
import { startServeChild, stopServeChild } from './helpers/serve-child.js';

const run = promisify(execFile);
let b: RunningBerth;
let dir: string;
let runtime: FakeRuntime;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
let ACR_ID: string;
let env: NodeJS.ProcessEnv;
/** Every secret handed out; no output may hold one. */
const secrets: string[] = [];
const outputs: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-diag-'));
  runtime = new FakeRuntime(dir);
  b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime, reconciler: { sleep: async () => undefined } });
  reg = await adminRegistry(b, 'diagreg01');
  secrets.push(reg.password);
  ACR_ID = armId(await b.registries.get('rg', 'diagreg01'));
  env = { ...process.env, BERTH_SERVER: b.url, BERTH_DATA_DIR: dir };
  const client = new RegistryClient(reg.loginServer, { kind: 'basic', username: reg.username, password: reg.password });
  await pushTinyImage(client, 'app', 'v1');
  await pushTinyImage(client, 'gone', 'v1');
  await pushTinyImage(client, 'armonly', 'v1', { platform: { os: 'linux', architecture: 'arm64' } });
});
after(async () => {
  await b?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<CliResult> {
  const r = await runCli(args, env);
  outputs.push(r.stdout, r.stderr);
  return r;
}
async function fails(args: string[]): Promise<string> {
  const r = await cli(args);
  assert.notEqual(r.code, 0, `berth ${args.join(' ')} should have failed: ${r.stdout}`);
  return r.stderr;
}
const image = (repo: string) => `${reg.loginServer}/${repo}`;
const create = (name: string, ...extra: string[]) => ['container', 'create', '-g', 'rg', '-n', name, '--restart-policy', 'Never', '--command-line', 'true', '--cpu', '0.5', '--memory', '0.5', ...extra];
const adminCreds = () => ['--registry-login-server', reg.loginServer, '--registry-username', reg.username, '--registry-password', reg.password];
const gone = async (name: string) => assert.equal((await cli(['container', 'show', '-g', 'rg', '-n', name])).code, 3, `no group ${name} is left behind`);
async function identity(name: string) {
  return (await b.managedIdentities.createOrUpdate('rg', name, {})).identity;
}
async function operationDone(rg: string, name: string) {
  for (let i = 0; i < 200; i++) {
    const g = await b.containerGroups.store.find(rg, name);
    if (g && g.state.provisioningState !== 'Pending' && g.state.provisioningState !== 'Creating') return g;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${name} did not finish provisioning`);
}

test('--acr-identity [system] without --assign-identity is refused before anything is created, naming the identity and the fix', { timeout: 60_000 }, async () => {
  const err = await fails(create('sysless', '--image', image('app:v1'), '--acr-identity', '[system]'));
  assert.match(err, /identity '\[system\]' is the group's system-assigned identity, but the group has none: give it one with --assign-identity/);
  assert.doesNotMatch(err, /InaccessibleImage|no credential/i, 'no pull was tried');
  await gone('sysless');
});

test('a group that holds an identity but pulls without it is told which --acr-identity to add (seed 004 app-mi)', { timeout: 60_000 }, async () => {
  const mi = await identity('unused-mi');
  await b.identity.assignRole(mi.principalId, findRole('AcrPull')!, ACR_ID);
  const err = await fails(create('app-mi', '--image', image('app:v1'), '--assign-identity', mi.id));
  assert.match(err, /InaccessibleImage/);
  assert.ok(err.includes(`The group has identity ${mi.id} but no imageRegistryCredentials entry uses it for ${reg.loginServer}; add --acr-identity ${mi.id}`), err);
  assert.match(err, /The token server answered: unauthorized/);
  assert.match(err, /Give the group credentials for .*--acr-identity ID/);
  await gone('app-mi');
});

test('a system-assigned identity at create is told to use a user-assigned one, with the commands (not a role it cannot hold yet)', { timeout: 60_000 }, async () => {
  const err = await fails(create('sys-new', '--image', image('app:v1'), '--assign-identity', '[system]', '--acr-identity', '[system]'));
  assert.match(err, /InaccessibleImage/);
  assert.match(err, /A system-assigned identity exists only with its group, and is deleted again when the create fails/);
  assert.match(err, /berth identity create -g rg -n pull-identity/);
  assert.ok(err.includes(`--role AcrPull --scope ${ACR_ID}`), err);
  assert.match(err, /--assign-identity \$\(berth identity show -g rg -n pull-identity --query id -o tsv\) --acr-identity \$\(berth identity show/);
  assert.doesNotMatch(err, /Fix: berth role assignment create --assignee [0-9a-f-]{36}/, 'no assignment to the identity that is deleted');
  await gone('sys-new');
});

test('an identity without AcrPull is told the roles it holds (and where), then the command that adds AcrPull', { timeout: 60_000 }, async () => {
  const mi = await identity('reader-mi');
  const rgScope = `/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg`;
  await b.identity.assignRole(mi.principalId, findRole('Key Vault Secrets User')!, rgScope);
  await b.identity.assignRole(mi.principalId, findRole('AcrDelete')!, ACR_ID);
  const err = await fails(create('mi-reader', '--image', image('app:v1'), '--assign-identity', mi.id, '--acr-identity', mi.id));
  assert.match(err, /InaccessibleImage/);
  assert.ok(err.includes(`the roles it holds: Key Vault Secrets User at ${rgScope}, AcrDelete at ${ACR_ID}`), err);
  assert.ok(err.includes(`Fix: berth role assignment create --assignee ${mi.clientId} --role AcrPull --scope ${ACR_ID}`), err);
  const bare = await identity('bare-mi');
  const none = await fails(create('mi-bare', '--image', image('app:v1'), '--assign-identity', bare.id, '--acr-identity', bare.id));
  assert.match(none, /it holds no role assignment/);
  assert.ok(none.includes(`--assignee ${bare.clientId} --role AcrPull`), none);
  await gone('mi-reader');
  await gone('mi-bare');
});

test('a repository-scoped token is given the scope-map command, not AcrPull', { timeout: 60_000 }, async () => {
  const r = await b.registries.get('rg', 'diagreg01');
  await b.repoTokens.createOrUpdateScopeMap(r, 'other_only', ['repositories/other/content/read']);
  await b.repoTokens.createOrUpdateToken(r, 'othertok', { scopeMap: 'other_only' });
  const pw = (await b.repoTokens.generateCredentials(r, 'othertok', { name: 'password1' })).passwords[0]!.value;
  secrets.push(pw);
  const err = await fails(create('tok-app', '--image', image('app:v1'), '--registry-login-server', reg.loginServer, '--registry-username', 'othertok', '--registry-password', pw));
  assert.match(err, /InaccessibleImage/);
  assert.match(err, /token othertok \(scope map other_only\) has no 'content\/read' action for repository app/);
  assert.match(err, /Fix: berth acr scope-map update -r diagreg01 -n other_only --add-repository app content\/read/);
  assert.doesNotMatch(err, /AcrPull/);
  await gone('tok-app');
});

test('a repository deleted after the group pulled it: restart answers InaccessibleImage at once, saying it was deleted; the group keeps running', { timeout: 60_000 }, async () => {
  const ok = await cli(create('was-here', '--image', image('gone:v1'), '--restart-policy', 'Always', ...adminCreds()));
  assert.equal(ok.code, 0, ok.stderr);
  await operationDone('rg', 'was-here');
  await runtime.running('was-here');
  const starts = runtime.calls.filter((c) => c === 'start was-here').length;
  await b.registryService.deleteRepository((await b.registries.get('rg', 'diagreg01')).id, 'gone');
  const err = await fails(['container', 'restart', '-g', 'rg', '-n', 'was-here']);
  assert.match(err, /InaccessibleImage/);
  assert.match(err, /The image '.*gone:v1' in container group 'was-here' is not accessible/);
  assert.match(err, /The registry answered: name unknown/);
  assert.ok(err.includes(`The repository of ${image('gone:v1')} no longer exists on ${reg.loginServer}: it was deleted after this group pulled the image (last pulled `), err);
  assert.equal(runtime.calls.filter((c) => c === 'start was-here').length, starts, 'nothing was restarted');
  assert.ok(!runtime.calls.some((c) => c.startsWith('kill was-here')), `nothing was stopped: ${runtime.calls.join(', ')}`);
  // A repository this group never pulled is just missing.
  const never = await fails(create('never-here', '--image', image('never:v1'), ...adminCreds()));
  assert.match(never, /The repository never does not exist in/);
  assert.doesNotMatch(never, /deleted after/);
  await cli(['container', 'delete', '-g', 'rg', '-n', 'was-here', '--yes']);
});

test('a platform mismatch suggests --platform to berth pull only; a group is told what to push', { timeout: 60_000 }, async () => {
  const err = await fails(create('arm', '--image', image('armonly:v1'), ...adminCreds()));
  assert.match(err, /InaccessibleImage/);
  assert.match(err, /Image check: image .*armonly:v1 is linux\/arm64, not linux\/amd64/);
  assert.match(err, /push a linux\/amd64 build of the image/);
  assert.doesNotMatch(err, /--platform/);
  const pull = await fails(['pull', image('armonly:v1'), '--print', '--creds', `${reg.username}:${reg.password}`]);
  assert.match(pull, /--platform linux\/arm64/);
  await gone('arm');
});

test('sources are named: Key Vault and a credential helper are not "the registry"; a registry answer is', { timeout: 60_000 }, async () => {
  const { vault } = await b.vaults.createOrUpdate('rg', 'diagkv', {});
  const vaultId = `/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/diagkv`;
  await b.secrets.set(vault, 'present', { value: JSON.stringify({ username: reg.username, password: reg.password }) });
  const spec = (secretName: string) => ({ location: 'westus', properties: { osType: 'Linux', imageRegistryCredentials: [{ server: reg.loginServer, password: { reference: { keyVault: { id: vaultId }, secretName } } }],
    containers: [{ name: 'app', properties: { image: image('app:v1'), resources: { requests: { cpu: 0.5, memoryInGB: 0.5 } } } }] } });
  const kv = await b.containerGroups.createOrUpdate('rg', 'kv-missing', spec('absent')).then(() => undefined, (e: Error) => e.message);
  assert.ok(kv, 'the create failed');
  assert.match(kv, /Key Vault: vault secret diagkv\/absent for .*: secret absent was not found in vault diagkv/);
  assert.doesNotMatch(kv, /The registry answered/);
  const unknownTag = await b.containerGroups.createOrUpdate('rg', 'kv-tag', { ...spec('present'), properties: { ...spec('present').properties,
    containers: [{ name: 'app', properties: { image: image('app:v9'), resources: { requests: { cpu: 0.5, memoryInGB: 0.5 } } } }] } }).then(() => undefined, (e: Error) => e.message);
  assert.match(unknownTag ?? '', /The registry answered: manifest unknown/);
  outputs.push(kv, unknownTag ?? '');

  // A credential helper that fails (and prints a token on stderr, as some do).
  const helperDir = await mkdtemp(join(tmpdir(), 'berth-helper-'));
  try {
    await writeFile(join(helperDir, 'docker-credential-diagfail'), '#!/bin/sh\necho "helper-token-s3cr3t" >&2\nexit 1\n');
    await chmod(join(helperDir, 'docker-credential-diagfail'), 0o755);
    await writeFile(join(helperDir, 'config.json'), JSON.stringify({ credHelpers: { [reg.loginServer]: 'diagfail' } }));
    secrets.push('helper-token-s3cr3t');
    const p = new RegistryPuller({ contentDir: join(helperDir, 'content') });
    try {
      const e = await p.resolve(image('app:v1'), { keychain: new DockerConfigKeychain({ path: join(helperDir, 'config.json'), env: { ...process.env, PATH: `${helperDir}:${process.env.PATH}` } }) })
        .then(() => undefined, (x: unknown) => x);
      assert.ok(e instanceof PullError, String(e));
      const words = diagnosePull(e, { caller: 'pull' });
      outputs.push(words);
      assert.match(words, /^Credential helper: credential helper docker-credential-diagfail .* failed with exit code 1/);
      assert.doesNotMatch(words, /The registry answered/);
    } finally {
      await p.close();
    }
  } finally {
    await rm(helperDir, { recursive: true, force: true });
  }
});

test('berth serve --registry-ca (and $BERTH_REGISTRY_CA): an unreadable or non-PEM file is refused at start', { timeout: 60_000 }, async () => {
  const r = await cli(['serve', '--data-dir', join(dir, 'unused'), '--port', '0', '--registry-ca', join(dir, 'no-such-ca.pem')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /argument --registry-ca: cannot read .*no-such-ca\.pem \(ENOENT\)/);
  const notPem = join(dir, 'not-a-ca.txt');
  await writeFile(notPem, 'hello\n');
  const r2 = await cli(['serve', '--data-dir', join(dir, 'unused'), '--port', '0', '--registry-ca', notPem]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /holds no PEM certificate/);
  const r3 = await runCli(['serve', '--data-dir', join(dir, 'unused'), '--port', '0'], { ...env, BERTH_REGISTRY_CA: `${notPem}` });
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /BERTH_REGISTRY_CA: .*not-a-ca\.txt holds no PEM certificate/);
});

/** HTTPS-only registries on loopback: a TLS proxy (Node) in front of Berth's registry, and the reference registry (Go) with TLS. */
test('an HTTPS-only registry on localhost: detected and named, the CA option named per caller; with berth serve --registry-ca groups pull from it', { timeout: 60_000 }, async () => {
  const certs: TestCerts = await makeCerts(await mkdtemp(join(tmpdir(), 'berth-diag-certs-')));
  let proxy: FaultProxy | undefined;
  let refReg: ReferenceRegistry | undefined;
  let b2: RunningBerth | undefined;
  let serveChild: ChildProcess | undefined;
  const noRunc = await runcUnavailable();
  const dir2 = await mkdtemp(join(tmpdir(), 'berth-diag2-'));
  try {
    proxy = await startFaultProxy(reg.loginServer, { tls: { key: certs.key, cert: certs.cert } });
    const hosts = [proxy.host];
    const creds: Record<string, { username: string; password: string }> = { [proxy.host]: { username: reg.username, password: reg.password } };
    const skipGo = haveReferenceRegistry() ?? (which('skopeo') ? undefined : 'skopeo is not installed');
    if (!skipGo) {
      refReg = await startReferenceRegistry({ tls: { keyFile: certs.keyFile, certFile: certs.certFile, ca: certs.ca } });
      secrets.push(refReg.password);
      await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `${reg.username}:${reg.password}`, '--dest-tls-verify=false', '--dest-creds', `${refReg.username}:${refReg.password}`,
        `docker://${image('app:v1')}`, `docker://${refReg.host}/app:v1`]);
      hosts.push(refReg.host);
      creds[refReg.host] = { username: refReg.username, password: refReg.password };
    } else {
      console.log(`# the reference registry part is skipped: ${skipGo}`);
    }
    for (const host of hosts) {
      const kc = new InlineKeychain({ server: host, username: creds[host]!.username, password: creds[host]!.password });
      // No CA: the registry is found to speak HTTPS only, and its certificate is not trusted.
      const p = new RegistryPuller({ contentDir: join(dir2, 'content') });
      try {
        const e = await p.resolve(`${host}/app:v1`, { keychain: kc }).then(() => undefined, (x: unknown) => x);
        assert.ok(e instanceof PullError, String(e));
        assert.equal(e.code, 'TLS', `${host}: ${e.message}`);
        const group = diagnosePull(e, { caller: 'group' });
        const pull = diagnosePull(e, { caller: 'pull' });
        outputs.push(group, pull);
        assert.match(group, /^TLS handshake failed: /);
        assert.ok(group.includes(`${host} speaks HTTPS only`), group);
        assert.match(group, /berth serve with --registry-ca FILE/);
        assert.doesNotMatch(group, /--ca-file|http 400|UNKNOWN/);
        assert.match(pull, /--ca-file FILE/);
        assert.doesNotMatch(pull, /--registry-ca/);
      } finally {
        await p.close();
      }
      // With the CA (as berth serve --registry-ca passes it) the same loopback registry pulls over https.
      const trusted = new RegistryPuller({ contentDir: join(dir2, 'content'), caFiles: [certs.ca] });
      try {
        const img = await trusted.pull(`${host}/app:v1`, { keychain: kc });
        assert.equal(img.layers.length, 1, host);
      } finally {
        await trusted.close();
      }
    }
    // A container group on a server without --registry-ca: InaccessibleImage naming the option.
    const regCreds = ['--registry-login-server', proxy.host, '--registry-username', reg.username, '--registry-password', reg.password];
    const err = await fails(create('tls-app', '--image', `${proxy.host}/app:v1`, ...regCreds));
    assert.match(err, /InaccessibleImage/);
    assert.match(err, /TLS handshake failed: .*speaks HTTPS only/);
    assert.match(err, /--registry-ca FILE/);
    assert.doesNotMatch(err, /--ca-file/);
    await gone('tls-app');
    // The same create on a server started with the registry's CA succeeds.
    const rt2 = new FakeRuntime(dir2);
    b2 = await startBerth({ dataDir: dir2, port: 0, logSink: () => undefined, runtime: rt2, reconciler: { sleep: async () => undefined }, registryCaFiles: [certs.ca] });
    await b2.groups.createOrUpdate('rg', 'westus');
    const body = { location: 'westus', properties: { osType: 'Linux', imageRegistryCredentials: [{ server: proxy.host, username: reg.username, password: reg.password }],
      containers: [{ name: 'app', properties: { image: `${proxy.host}/app:v1`, resources: { requests: { cpu: 0.5, memoryInGB: 0.5 } } } }] } };
    const { operation } = await b2.containerGroups.createOrUpdate('rg', 'tls-ok', body);
    await rt2.running('app');
    assert.notEqual((await b2.containerGroups.operation(operation.id))!.status, 'Failed');
    // And through `berth serve --registry-ca` itself (a real server with runc): the create's image check passes.
    if (!noRunc) {
      const dir3 = join(dir2, 'serve');
      const env3 = { ...process.env, BERTH_DATA_DIR: dir3 };
      const served = await startServeChild(['--data-dir', dir3, '--port', '0', '--registry-ca', certs.ca], env3);
      serveChild = served.child;
      const env4 = { ...env3, BERTH_SERVER: served.url };
      assert.equal((await runCli(['group', 'create', '-n', 'rg', '-l', 'westus'], env4)).code, 0);
      const r = await runCli(['container', 'create', '-g', 'rg', '-n', 'tls-serve', '--image', `${proxy.host}/app:v1`, ...regCreds, '--no-wait'], env4);
      outputs.push(r.stdout, r.stderr);
      assert.equal(r.code, 0, r.stderr);
      await stopServeChild(serveChild, env4);
    }
  } finally {
    if (serveChild && serveChild.exitCode === null) serveChild.kill('SIGKILL');
    await b2?.stop();
    await proxy?.stop();
    await refReg?.stop();
    await rm(dir2, { recursive: true, force: true });
  }
});

test('no secret in any diagnosis or CLI output of this file', { timeout: 10_000 }, () => {
  assert.ok(outputs.length > 10);
  for (const o of outputs) for (const s of secrets) assert.ok(!o.includes(s), `an output holds a secret: ${o.slice(0, 300)}`);
});
