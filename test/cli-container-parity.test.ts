// az container parity through the real `berth` CLI and server, with the test runtime and puller of
// test/helpers/fake-runtime.ts: --assign-identity with --scope/--role (az's one step), container export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, cliJson, type TestBerth } from './helpers/berth.js';
import { FakePuller, FakeRuntime, inlineKeychainFactory } from './helpers/fake-runtime.js';

let b: TestBerth;
let runDir: string;
let regId: string;

before(async () => {
  runDir = await mkdtemp(join(tmpdir(), 'berth-parity-run-'));
  const runtime = new FakeRuntime(runDir);
  // Published on other host ports (as when the group's port is taken on the host): port p on 40000 + p.
  const createSandbox = runtime.createSandbox.bind(runtime);
  runtime.createSandbox = async (spec) => {
    const s = await createSandbox(spec);
    return { ...s, hostPorts: Object.fromEntries(Object.keys(s.hostPorts).map((p) => [Number(p), 40000 + Number(p)])) };
  };
  b = await startTestBerth(undefined, [], 0, { runtime, puller: new FakePuller(), keychainFactory: inlineKeychainFactory, reconciler: { sleep: async () => undefined } });
  await cliJson(b, ['group', 'create', '-n', 'rg', '-l', 'westus']);
  regId = (await cliJson(b, ['acr', 'create', '-n', 'parityreg01', '-g', 'rg', '--sku', 'Basic'])).id;
});
after(async () => {
  await b?.cleanup();
  await rm(runDir, { recursive: true, force: true });
});

async function rolesAt(scope: string, principalId: string): Promise<string[]> {
  const all = await cliJson<Array<{ principalId: string; roleDefinitionName: string; scope: string }>>(b, ['role', 'assignment', 'list', '--scope', scope]);
  return all.filter((a) => a.principalId === principalId && a.scope === scope).map((a) => a.roleDefinitionName);
}

test('container create --assign-identity --scope S gives the system identity Contributor at S (az\'s default); --role R gives R', { timeout: 60_000 }, async () => {
  const g = await cliJson(b, ['container', 'create', '-g', 'rg', '-n', 'sysid', '--image', 'r.io/app:1', '--assign-identity', '--scope', regId]);
  assert.equal(g.identity.type, 'SystemAssigned');
  assert.match(g.identity.principalId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(await rolesAt(regId, g.identity.principalId), ['Contributor']);

  const p = await cliJson(b, ['container', 'create', '-g', 'rg', '-n', 'sysid2', '--image', 'r.io/app:1', '--assign-identity', '[system]', '--scope', regId, '--role', 'AcrPull']);
  assert.deepEqual(await rolesAt(regId, p.identity.principalId), ['AcrPull']);
  assert.notEqual(p.identity.principalId, g.identity.principalId);
});

test('container create --scope/--role usage errors are az\'s, and nothing is created', { timeout: 60_000 }, async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--assign-identity', '--role', 'AcrPull'], /usage error: '--role AcrPull' is not applicable as the '--scope' is not provided/],
    [['--scope', regId], /usage error: --assign-identity \[--scope SCOPE\] \[--role ROLE\]/],
    [['--assign-identity', `${regId.split('/providers/')[0]}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x`, '--scope', regId], /usage error: '--scope'\/'--role' is only applicable when assign system identity/],
  ];
  for (const [flags, why] of cases) {
    const r = await b.cli(['container', 'create', '-g', 'rg', '-n', 'badid', '--image', 'r.io/app:1', ...flags]);
    assert.equal(r.code, 1, flags.join(' '));
    assert.match(r.stderr, why);
  }
  assert.equal((await b.cli(['container', 'show', '-g', 'rg', '-n', 'badid'])).code, 3);
  const unknownRole = await b.cli(['container', 'create', '-g', 'rg', '-n', 'badrole', '--image', 'r.io/app:1', '--assign-identity', '--scope', regId, '--role', 'NoSuchRole']);
  assert.equal(unknownRole.code, 1);
  assert.match(unknownRole.stderr, /Role 'NoSuchRole' doesn't exist/);
  assert.equal((await b.cli(['container', 'show', '-g', 'rg', '-n', 'badrole'])).code, 3, 'a bad role leaves no group behind');
});

/** What makes two groups "the same" to a user: the spec, without ids, names, state and identity ids. */
function specOf(g: Record<string, any>) {
  return {
    location: g.location, osType: g.osType, restartPolicy: g.restartPolicy, tags: g.tags, identityType: g.identity?.type ?? null,
    ipAddress: { type: g.ipAddress?.type, ports: g.ipAddress?.ports, dnsNameLabel: g.ipAddress?.dnsNameLabel },
    imageRegistryCredentials: (g.imageRegistryCredentials ?? []).map((r: any) => ({ server: r.server, username: r.username })),
    containers: g.containers.map((c: any) => ({ name: c.name, image: c.image, command: c.command, ports: c.ports, resources: c.resources, environmentVariables: c.environmentVariables })),
  };
}

test('container export -f writes az\'s YAML (no instanceView/provisioningState/id, identity by type, apiVersion); create --file of it makes the same group', { timeout: 60_000 }, async () => {
  const { parse } = await import('yaml');
  const { readFile } = await import('node:fs/promises');
  const plain = await cliJson(b, ['container', 'create', '-g', 'rg', '-n', 'plain', '--image', 'r.io/app:1', '--ports', '80', '8080', '--ip-address', 'Public',
    '-e', 'A=1', 'B=two words', '--command-line', "/bin/sh -c 'echo hi'", '--restart-policy', 'OnFailure', '--cpu', '0.5', '--memory', '1', '--tags', 'team=x']);
  const file = join(runDir, 'plain.yaml');
  const r = await b.cli(['container', 'export', '-g', 'rg', '-n', 'plain', '-f', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '', 'nothing omitted: no warning');
  const text = await readFile(file, 'utf8');
  const doc = parse(text);
  assert.deepEqual(Object.keys(doc), ['apiVersion', 'location', 'name', 'properties', 'tags', 'type'], 'sorted keys, as yaml.safe_dump');
  assert.equal(doc.apiVersion, '2021-09-01');
  assert.equal(doc.type, 'Microsoft.ContainerInstance/containerGroups');
  assert.equal(doc.properties.instanceView, undefined);
  assert.equal(doc.properties.provisioningState, undefined);
  assert.equal(doc.properties.containers[0].properties.instanceView, undefined);
  assert.doesNotMatch(text, /instanceView|provisioningState|\/subscriptions\//);
  // round trip: delete, create from the file as it is
  await b.cli(['container', 'delete', '-g', 'rg', '-n', 'plain', '--yes']);
  const again = await cliJson(b, ['container', 'create', '-g', 'rg', '--file', file]);
  assert.deepEqual(specOf(again), specOf(plain));
});

test('container export leaves out secure values and registry passwords (as a GET does) and says so; with them added back the group is the same', { timeout: 60_000 }, async () => {
  const { parse, stringify } = await import('yaml');
  const { readFile, writeFile } = await import('node:fs/promises');
  const g = await cliJson(b, ['container', 'create', '-g', 'rg', '-n', 'secretive', '--image', 'r.io/app:2', '--assign-identity', '--secure-environment-variables', 'TOKEN=s3cr3t-value',
    '--registry-login-server', 'r.io', '--registry-username', 'puller', '--registry-password', 'pw-never-exported']);
  const file = join(runDir, 'secretive.yaml');
  const r = await b.cli(['container', 'export', '-g', 'rg', '-n', 'secretive', '-f', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^WARNING: .*secretive\.yaml has no value for the secure environment variable\(s\) TOKEN \(container secretive\) and no password for the registry server\(s\) r\.io: no GET returns them/);
  const text = await readFile(file, 'utf8');
  assert.doesNotMatch(text, /s3cr3t-value|pw-never-exported|principalId|tenantId/);
  const doc = parse(text);
  assert.deepEqual(doc.identity, { type: 'SystemAssigned' });
  assert.deepEqual(doc.properties.imageRegistryCredentials.map((c: any) => [c.server, c.username, c.password]), [['r.io', 'puller', undefined]]);
  // the user adds the secrets back, as the warning says, and creates a copy
  doc.name = 'secretive-copy';
  doc.properties.containers[0].properties.environmentVariables[0].secureValue = 's3cr3t-value';
  doc.properties.imageRegistryCredentials[0].password = 'pw-never-exported';
  await writeFile(file, stringify(doc));
  const copy = await cliJson(b, ['container', 'create', '-g', 'rg', '--file', file]);
  assert.deepEqual(specOf(copy), specOf(g));
  assert.notEqual(copy.identity.principalId, g.identity.principalId, 'a new system identity of its own');
});

test('container show|list -o table print the host port a user connects to (127.0.0.1:40080, not the group\'s 80)', { timeout: 60_000 }, async () => {
  const g = await cliJson(b, ['container', 'create', '-g', 'rg', '-n', 'ported', '--image', 'r.io/app:1', '--ports', '80', '443', '--ip-address', 'Public']);
  assert.deepEqual(g.ipAddress.ports.map((p: { port: number; hostPort?: number }) => [p.port, p.hostPort]), [[80, 40080], [443, 40443]]);
  const show = await b.cli(['container', 'show', '-g', 'rg', '-n', 'ported', '-o', 'table']);
  const row = show.stdout.split('\n')[2]!.trim().split(/\s{2,}/);
  assert.equal(row[4], '127.0.0.1:40080,40443');
  const list = await b.cli(['container', 'list', '-g', 'rg', '-o', 'table']);
  assert.match(list.stdout, /ported .*127\.0\.0\.1:40080,40443/);
});

test('acr token list -o table: az\'s columns, each password\'s expiry (Never without one, empty when it does not exist), status title-cased', { timeout: 60_000 }, async () => {
  await cliJson(b, ['acr', 'token', 'create', '-r', 'parityreg01', '-n', 'tok-never', '--repository', 'app', 'content/read']);
  const exp = await cliJson(b, ['acr', 'token', 'create', '-r', 'parityreg01', '-n', 'tok-exp', '--repository', 'app', 'content/read', '--expiration', '2031-02-03T04:05:06Z']);
  assert.equal(exp.credentials.passwords.length, 2);
  await cliJson(b, ['acr', 'token', 'create', '-r', 'parityreg01', '-n', 'tok-none', '--repository', 'app', 'content/read', '--no-passwords', '--status', 'disabled']);
  const t = await b.cli(['acr', 'token', 'list', '-r', 'parityreg01', '-o', 'table']);
  assert.equal(t.code, 0, t.stderr);
  const [head, , ...rows] = t.stdout.trimEnd().split('\n');
  assert.deepEqual(head!.split(/\s{2,}/), ['NAME', 'SCOPE MAP', 'PASSWORD1 EXPIRY', 'PASSWORD2 EXPIRY', 'STATUS', 'PROVISIONING STATE', 'CREATION DATE']);
  const byName = Object.fromEntries(rows.map((r) => { const c = r.split(/\s{2,}/); return [c[0], c]; }));
  assert.deepEqual(byName['tok-never']!.slice(1, 6), ['tok-never-scope-map', 'Never', 'Never', 'Enabled', 'Succeeded']);
  assert.deepEqual(byName['tok-exp']!.slice(2, 4), ['2031-02-03T04:05:06Z', '2031-02-03T04:05:06Z']);
  assert.match(byName['tok-exp']![6]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'creation date to the second, as az');
  assert.match(rows.find((r) => r.startsWith('tok-none'))!, /^tok-none\s+tok-none-scope-map\s+Disabled\s+Succeeded/, 'no passwords: both expiry columns empty');
});

test('create --file reads what az 2.45\'s container export writes: Python-named extras (additional_properties, changed_time, ...) and identity.user_assigned_identities', { timeout: 60_000 }, async () => {
  const { writeFile } = await import('node:fs/promises');
  const mi = await cliJson(b, ['identity', 'create', '-g', 'rg', '-n', 'export-mi']);
  const file = join(runDir, 'az-export.yaml');
  await writeFile(file, `additional_properties: {}
apiVersion: 2022-10-01-preview
changed_time: null
created_time: null
extended_location: null
identity:
  type: UserAssigned
  user_assigned_identities:
    ${mi.id}: {}
location: westus
name: from-az-export
properties:
  containers:
  - name: web
    properties:
      environmentVariables: []
      image: r.io/app:1
      ports: []
      resources:
        requests:
          cpu: 1.0
          memoryInGB: 1.0
  osType: Linux
  restartPolicy: Never
provisioning_state: null
tags: null
type: Microsoft.ContainerInstance/containerGroups
`);
  const g = await cliJson(b, ['container', 'create', '-g', 'rg', '--file', file]);
  assert.equal(g.identity.type, 'UserAssigned');
  assert.deepEqual(Object.keys(g.identity.userAssignedIdentities).map((k) => k.toLowerCase()), [mi.id.toLowerCase()]);
});
