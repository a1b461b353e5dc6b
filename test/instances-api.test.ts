// Container groups through the real HTTP server and the real `berth` CLI: the ARM long-running
// operation, InaccessibleImage with no group left, secrets never returned, RBAC, identities, logs,
// exec, stop/start/restart/delete. The Runtime, ImagePuller and keychain sources are the test doubles
// of test/helpers/fake-runtime.ts (runc and the real pull client are tested end to end at merge).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth } from '../src/platform/berth.js';
import { runCli, type TestBerth, REPO_ROOT } from './helpers/berth.js';
import { FakePuller, FakeRuntime } from './helpers/fake-runtime.js';
import { PullError } from '../src/pull/types.js';
import type { KeychainFactory } from '../src/instances/keychains.js';
import { findRole } from '../src/identity/roles.js';
import type { SandboxSpec } from '../src/runtime/runtime.js';
import { WebSocket } from 'ws';
import { execSocket, postExec } from './helpers/exec-socket.js';
import { TerminalInput, terminalOutput } from '../src/instances/exec-terminal.js';

let b: TestBerth;
let runtime: FakeRuntime;
let puller: FakePuller;
let logDir: string;
let ownerToken: string;
const identityEndpoints = new Map<string, NonNullable<SandboxSpec['identityEndpoint']>>();

/** Test double of the keychain classes: says which source answered, with the username, never more. */
const keychainFactory: KeychainFactory = {
  inline: (server, username, password) => ({ description: `inline credential for ${server}`, resolve: async () => ({ kind: 'basic', username, password, source: `inline (${username})` }) }),
  managedIdentity: (server, id) => ({ description: `managed identity ${id.clientId} for ${server}`, resolve: async () => ({ kind: 'refreshToken', refreshToken: 'rt', source: `managed identity ${id.clientId}` }) }),
  vaultSecret: (server, ref) => ({ description: `vault secret for ${server}`, resolve: async () => ({ kind: 'basic', username: 'from-vault', password: 'x',
    source: `vault secret ${typeof ref.password === 'string' ? '?' : ref.password.reference.secretName}` }) }),
};

async function tokenFor(clientId: string, secret: string): Promise<string> {
  const res = await fetch(`${b.url}/${b.identity.ids.tenantId}/oauth2/v2.0/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: 'https://management.core.windows.net//.default' }).toString() });
  const body = (await res.json()) as { access_token: string };
  assert.ok(body.access_token);
  return body.access_token;
}

const groupUrl = (rg: string, name: string) => `${b.url}/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.ContainerInstance/containerGroups/${name}?api-version=2021-09-01`;
async function arm(method: string, url: string, body?: unknown, token = ownerToken) {
  const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

async function pollOperation(url: string): Promise<any> {
  for (;;) {
    const r = await arm('GET', url);
    assert.equal(r.status, 200, r.text);
    if (r.json.status !== 'InProgress') return r.json;
    await new Promise((res) => setTimeout(res, 50));
  }
}

const groupBody = (image: string, extra: Record<string, unknown> = {}, container: Record<string, unknown> = {}) => ({
  location: 'westus',
  properties: { osType: 'Linux', restartPolicy: 'Always', ...extra,
    containers: [{ name: 'app', properties: { image, ports: [{ port: 80 }], resources: { requests: { cpu: 1, memoryInGB: 1.5 } }, ...container } }] },
});

before(async () => {
  logDir = await mkdtemp(join(tmpdir(), 'berth-fake-logs-'));
  runtime = new FakeRuntime(logDir);
  const createSandbox = runtime.createSandbox.bind(runtime);
  runtime.createSandbox = async (spec) => {
    if (spec.identityEndpoint) identityEndpoints.set(spec.groupId, spec.identityEndpoint);
    return createSandbox(spec);
  };
  puller = new FakePuller();
  const dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  const logs: string[] = [];
  const berth = await startBerth({ dataDir: dir, port: 0, logSink: (l) => logs.push(l), runtime, puller, keychainFactory, reconciler: { sleep: async () => undefined } });
  // Reuse the test helper's CLI plumbing around this server.
  b = Object.assign(berth, { logs, env: { ...process.env, BERTH_SERVER: berth.url, BERTH_DATA_DIR: dir } }) as unknown as TestBerth;
  b.cli = (args, opts = {}) => runCli(args, { ...b.env, ...opts.env }, opts.input);
  b.cleanup = async () => { await berth.stop().catch(() => undefined); await rm(dir, { recursive: true, force: true }); };
  const cred = JSON.parse(readFileSync(join(dir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string };
  ownerToken = await tokenFor(cred.clientId, cred.clientSecret);
  await b.groups.createOrUpdate('rg', 'westus');
});
after(async () => {
  await b?.cleanup();
  await rm(logDir, { recursive: true, force: true });
});

test('PUT is a long-running operation: 201 + Azure-AsyncOperation on Berth, poll to Succeeded, then GET', async () => {
  const put = await arm('PUT', groupUrl('rg', 'lro1'), groupBody('r.io/app:1', { ipAddress: { type: 'Public', ports: [{ port: 80, protocol: 'tcp' }] } }));
  assert.equal(put.status, 201, put.text);
  assert.ok(['Pending', 'Creating'].includes(put.json.properties.provisioningState));
  const op = put.headers.get('azure-asyncoperation')!;
  assert.ok(op.startsWith(`${b.url}/subscriptions/${b.identity.ids.subscriptionId}/providers/Microsoft.ContainerInstance/locations/westus/operations/`), op);
  const done = await pollOperation(op);
  assert.equal(done.status, 'Succeeded');
  assert.match(done.id, /\/containerGroups\/lro1$/);
  const got = await arm('GET', groupUrl('rg', 'lro1'));
  assert.equal(got.status, 200);
  const g = got.json;
  assert.equal(g.type, 'Microsoft.ContainerInstance/containerGroups');
  assert.equal(g.properties.provisioningState, 'Succeeded');
  assert.equal(g.properties.instanceView.state, 'Running');
  assert.deepEqual(g.properties.ipAddress, { ports: [{ protocol: 'TCP', port: 80 }], ip: '127.0.0.1', type: 'Public' });
  const iv = g.properties.containers[0].properties.instanceView;
  assert.equal(iv.currentState.state, 'Running');
  assert.deepEqual(iv.events.map((e: { name: string }) => e.name), ['Pulling', 'Pulled', 'Created', 'Started']);
  assert.equal(iv.events[0].message, 'pulling image "r.io/app:1"');
  // The same PUT again changes nothing and answers 200.
  const again = await arm('PUT', groupUrl('rg', 'lro1'), groupBody('r.io/app:1', { ipAddress: { type: 'Public', ports: [{ port: 80, protocol: 'tcp' }] } }));
  assert.equal(again.status, 200);
  assert.equal((await pollOperation(again.headers.get('azure-asyncoperation')!)).status, 'Succeeded');
  // az's generic-resource path (empty parent path, lower-case resourcegroups) reaches the same group.
  const generic = await arm('GET', groupUrl('rg', 'lro1').replace('/resourceGroups/', '/resourcegroups/').replace('Microsoft.ContainerInstance/', 'Microsoft.ContainerInstance//'));
  assert.equal(generic.status, 200, generic.text);
  assert.equal(generic.json.name, 'lro1');
  // Lists carry no instanceView, as ACI's.
  const list = await arm('GET', `${b.url}/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups?api-version=2021-09-01`);
  assert.equal(list.json.value.length, 1);
  assert.equal(list.json.value[0].properties.instanceView, undefined);
});

test('an inaccessible image fails the create with 400 InaccessibleImage, ACI\'s sentence and the diagnosis; nothing is left', async () => {
  const sandboxesBefore = runtime.calls.filter((c) => c.startsWith('sandbox')).length;
  puller.refuse.set('r.io/app:v9', new PullError('MANIFEST_UNKNOWN', 'manifest unknown: manifest unknown', 'The tag v9 does not exist in r.io/app', { credentialSource: 'inline (bob)', existingTags: ['v1', 'v2'] }));
  const put = await arm('PUT', groupUrl('rg', 'bad1'), groupBody('r.io/app:v9', { imageRegistryCredentials: [{ server: 'r.io', username: 'bob', password: 'pw-not-shown-1' }] }));
  assert.equal(put.status, 400, put.text);
  assert.equal(put.json.error.code, 'InaccessibleImage');
  assert.ok(put.json.error.message.startsWith("The image 'r.io/app:v9' in container group 'bad1' is not accessible. Please check the image and registry credential. "), put.json.error.message);
  assert.match(put.json.error.message, /The registry answered: manifest unknown: manifest unknown \(MANIFEST_UNKNOWN\)\. Credential used: inline \(bob\)\. The tag v9 does not exist in r\.io\/app\. Tags that exist: v1, v2\./);
  assert.ok(!put.text.includes('pw-not-shown-1'));
  assert.equal((await arm('GET', groupUrl('rg', 'bad1'))).status, 404);
  assert.equal(runtime.calls.filter((c) => c.startsWith('sandbox')).length, sandboxesBefore);
  // Via the CLI: az's error text and exit code 1.
  const r = await b.cli(['container', 'create', '-g', 'rg', '-n', 'bad2', '--image', 'r.io/app:v9', '--registry-username', 'bob', '--registry-password', 'pw-not-shown-1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^ERROR: \(InaccessibleImage\) The image 'r\.io\/app:v9' in container group 'bad2' is not accessible\. Please check the image and registry credential\./);
  assert.equal((await b.cli(['container', 'show', '-g', 'rg', '-n', 'bad2'])).code, 3);
});

test('secure environment values and registry passwords are never returned, logged or stored in clear', async () => {
  const secretEnv = 'sEcReT-env-value-93715';
  const secretPw = 'sEcReT-registry-pw-48211';
  const put = await arm('PUT', groupUrl('rg', 'sec1'), groupBody('r.io/app:1', { imageRegistryCredentials: [{ server: 'r.io', username: 'puller', password: secretPw }] },
    { environmentVariables: [{ name: 'PLAIN', value: 'visible' }, { name: 'TOKEN', secureValue: secretEnv }] }));
  assert.equal(put.status, 201, put.text);
  await pollOperation(put.headers.get('azure-asyncoperation')!);
  const shown = await arm('GET', groupUrl('rg', 'sec1'));
  const list = await arm('GET', `${b.url}/subscriptions/${b.identity.ids.subscriptionId}/providers/Microsoft.ContainerInstance/containerGroups?api-version=2021-09-01`);
  const cli = await b.cli(['container', 'show', '-g', 'rg', '-n', 'sec1']);
  for (const text of [put.text, shown.text, list.text, cli.stdout, cli.stderr, b.logs.join('\n')]) {
    assert.ok(!text.includes(secretEnv) && !text.includes(secretPw), 'a secret leaked');
  }
  assert.deepEqual(shown.json.properties.containers[0].properties.environmentVariables, [{ name: 'PLAIN', value: 'visible' }, { name: 'TOKEN' }]);
  assert.deepEqual(shown.json.properties.imageRegistryCredentials, [{ server: 'r.io', username: 'puller' }]);
  assert.deepEqual(JSON.parse(cli.stdout).containers[0].environmentVariables[1], { name: 'TOKEN', secureValue: null, value: null });
  // The container does get it; the pull used the inline credential.
  const sec1 = (await b.containerGroups.store.find('rg', 'sec1'))!.id;
  const created = [...runtime.tasks.values()].find((t) => t.task.groupId === sec1)!;
  assert.ok(created.spec.env.includes(`TOKEN=${secretEnv}`));
  assert.deepEqual(puller.credentials.at(-1), { reference: 'r.io/app:1', kind: 'basic', username: 'puller', source: 'inline (puller)' });
  // KEK rotation re-seals the group's secrets: they still open afterwards.
  const { resealed } = await b.rotateKek();
  assert.ok(resealed >= 1);
  const reread = (await b.containerGroups.store.find('rg', 'sec1'))!;
  assert.equal(reread.spec.containers[0]!.environmentVariables.find((e) => e.name === 'TOKEN')!.secureValue, secretEnv);
  assert.equal(reread.spec.imageRegistryCredentials[0]!.password, secretPw);
  // Not in clear in the database files.
  for (const f of readdirSync(b.dataDir).filter((x) => x.startsWith('berth.db'))) {
    const bytes = readFileSync(join(b.dataDir, f)).toString('latin1');
    assert.ok(!bytes.includes(secretEnv) && !bytes.includes(secretPw), `${f} holds a secret in clear`);
  }
});

test('RBAC: a Reader can show and list but cannot create, stop or delete', async () => {
  const app = await b.applications.createApplication('reader-app');
  await b.applications.createServicePrincipal(app.appId);
  const pw = await b.applications.addPassword(app.id, {});
  await b.identity.assignRole(app.id, findRole('Reader')!, `/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg`);
  const token = await tokenFor(app.appId, pw.secretText);
  const put = await arm('PUT', groupUrl('rg', 'byreader'), groupBody('r.io/app:1'), token);
  assert.equal(put.status, 403);
  assert.equal(put.json.error.code, 'AuthorizationFailed');
  assert.match(put.json.error.message, /Microsoft\.ContainerInstance\/containerGroups\/write/);
  assert.equal((await arm('GET', groupUrl('rg', 'lro1'), undefined, token)).status, 200);
  assert.equal((await arm('POST', groupUrl('rg', 'lro1').replace('?', '/stop?'), undefined, token)).status, 403);
  assert.equal((await arm('DELETE', groupUrl('rg', 'lro1'), undefined, token)).status, 403);
  assert.equal((await arm('POST', groupUrl('rg', 'lro1').replace('?', '/containers/app/exec?'), { command: 'sh' }, token)).status, 403);
  const none = await tokenFor(app.appId, pw.secretText);
  await b.identity.deleteAssignment((await b.identity.listAssignments()).find((a) => a.principalId === app.id)!.id);
  assert.equal((await arm('GET', groupUrl('rg', 'lro1'), undefined, none)).status, 403);
});

test('managed identities: user-assigned pulls with its identity, the group gets the IMDS endpoint; system-assigned lives and dies with the group', async () => {
  const { identity: mi } = await b.managedIdentities.createOrUpdate('rg', 'aci-acr-identity', {});
  const body = { ...groupBody('myacr.io/app:1', { imageRegistryCredentials: [{ server: 'myacr.io', identity: mi.id }] }), identity: { type: 'UserAssigned', userAssignedIdentities: { [mi.id]: {} } } };
  const put = await arm('PUT', groupUrl('rg', 'mi1'), body);
  assert.equal(put.status, 201, put.text);
  await pollOperation(put.headers.get('azure-asyncoperation')!);
  assert.deepEqual(puller.credentials.at(-1), { reference: 'myacr.io/app:1', kind: 'refreshToken', source: `managed identity ${mi.clientId}` });
  const g = (await arm('GET', groupUrl('rg', 'mi1'))).json;
  assert.deepEqual(g.identity, { tenantId: b.identity.ids.tenantId, type: 'UserAssigned', userAssignedIdentities: { [mi.id]: { principalId: mi.principalId, clientId: mi.clientId } } });
  const endpoint = identityEndpoints.get((await b.containerGroups.store.find('rg', 'mi1'))!.id)!;
  assert.ok(endpoint, 'the sandbox got an identity endpoint');
  const noHeader = await endpoint({ method: 'GET', path: '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net', headers: {} });
  assert.equal(noHeader.status, 400);
  const tok = await endpoint({ method: 'GET', path: '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net', headers: { metadata: 'true' } });
  assert.equal(tok.status, 200, tok.body);
  assert.equal(JSON.parse(tok.body).client_id, mi.clientId);
  // A missing identity is refused before anything runs.
  const missing = await arm('PUT', groupUrl('rg', 'mi2'), { ...body, identity: { type: 'UserAssigned', userAssignedIdentities: { [mi.id + 'x']: {} } },
    properties: { ...body.properties, imageRegistryCredentials: [{ server: 'myacr.io', identity: mi.id + 'x' }] } });
  assert.equal(missing.status, 400);
  assert.match(missing.json.error.message, /user-assigned identity '.*x' does not exist/);
  // System-assigned.
  const sys = await arm('PUT', groupUrl('rg', 'sys1'), { ...groupBody('r.io/app:1'), identity: { type: 'SystemAssigned' } });
  assert.equal(sys.status, 201, sys.text);
  const principalId = sys.json.identity.principalId as string;
  assert.ok(await b.identity.principalById(principalId));
  assert.equal(sys.json.identity.type, 'SystemAssigned');
  await pollOperation(sys.headers.get('azure-asyncoperation')!);
  assert.equal((await arm('DELETE', groupUrl('rg', 'sys1'))).status, 200);
  assert.equal(await b.identity.principalById(principalId), undefined);
  assert.equal((await arm('DELETE', groupUrl('rg', 'sys1'))).status, 204);
});

test('CLI: create from flags waits for the LRO; show, events table, list table, logs, exec', async () => {
  const r = await b.cli(['container', 'create', '-g', 'rg', '-n', 'my-app', '--image', 'myregistry.io/my-app:v1.0', '--cpu', '1', '--memory', '1.5',
    '--registry-login-server', 'myregistry.io', '--registry-username', 'myregistry', '--registry-password', 'pw-cli-1', '--ports', '80', '--ip-address', 'Public',
    '--command-line', '/bin/sh -c "echo hello; sleep 1000"', '--secure-environment-variables', 'SECRET=pw-cli-2', '-e', 'MODE=prod']);
  assert.equal(r.code, 0, r.stderr);
  const g = JSON.parse(r.stdout);
  assert.equal(g.provisioningState, 'Succeeded');
  assert.equal(g.resourceGroup, 'rg');
  assert.deepEqual(g.containers[0].command, ['/bin/sh', '-c', 'echo hello; sleep 1000']);
  assert.equal(g.containers[0].instanceView.currentState.state, 'Running');
  assert.ok(!r.stdout.includes('pw-cli-1') && !r.stdout.includes('pw-cli-2'));
  // Seed 002's troubleshooting command.
  const ev = await b.cli(['container', 'show', '--resource-group', 'rg', '--name', 'my-app', '--query', 'containers[0].instanceView.events', '--output', 'table']);
  assert.equal(ev.code, 0, ev.stderr);
  const lines = ev.stdout.trimEnd().split('\n');
  // knack's auto-table: the query's key order, numbers left-aligned as text, and no `type` column (az skips id/type/etag).
  assert.match(lines[0]!, /^Count {4}FirstTimestamp {8}LastTimestamp {9}Name {5}Message$/);
  assert.match(lines[2]!, /^1 {8}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}Pulling {2}pulling image "myregistry\.io\/my-app:v1\.0"$/);
  assert.deepEqual(lines.slice(2).map((l) => l.trim().split(/\s+/)[3]), ['Pulling', 'Pulled', 'Created', 'Started']);
  const show = await b.cli(['container', 'show', '-g', 'rg', '-n', 'my-app', '-o', 'table']);
  const [head, , row] = show.stdout.split('\n');
  assert.deepEqual(head!.trim().split(/\s{2,}/), ['Name', 'ResourceGroup', 'Status', 'Image', 'IP:ports', 'Network', 'CPU/Memory', 'OsType', 'Location']);
  assert.deepEqual(row!.trim().split(/\s{2,}/), ['my-app', 'rg', 'Running', 'myregistry.io/my-app:v1.0', '127.0.0.1:80', 'Public', '1.0 core/1.5 gb', 'Linux', 'westus']);
  const list = await b.cli(['container', 'list', '-g', 'rg', '-o', 'table']);
  assert.match(list.stdout, /^Name\s+ResourceGroup\s+Status\s+Image/);
  assert.match(list.stdout, /my-app\s+rg\s+Succeeded\s+myregistry\.io\/my-app:v1\.0/);
  assert.equal((await b.cli(['container', 'show', '-g', 'rg', '-n', 'my-app', '--query', 'ipAddress.ip', '-o', 'tsv'])).stdout, '127.0.0.1\n');
  // Logs: whatever the runtime's log file holds, and --tail.
  const myApp = (await b.containerGroups.store.find('rg', 'my-app'))!.id;
  const task = [...runtime.tasks.values()].find((t) => t.task.groupId === myApp)!;
  appendFileSync(task.task.logPath, 'hello\nline 2\nline 3\n');
  assert.equal((await b.cli(['container', 'logs', '-g', 'rg', '-n', 'my-app'])).stdout, 'hello\nline 2\nline 3\n');
  assert.equal((await b.cli(['container', 'logs', '-g', 'rg', '-n', 'my-app', '--tail', '1'])).stdout, 'line 3\n');
  const badC = await b.cli(['container', 'logs', '-g', 'rg', '-n', 'my-app', '--container-name', 'nope']);
  assert.equal(badC.code, 3);
  // Exec with arguments (ACI cannot); the exit code carries over.
  const ex = await b.cli(['container', 'exec', '-g', 'rg', '-n', 'my-app', '--exec-command', "sh -c 'echo FOO && echo BAR'"]);
  assert.equal(ex.code, 0, ex.stderr);
  // One stream, as on ACI's terminal: the command's stderr comes with its stdout.
  assert.equal(ex.stdout, 'ran sh -c echo FOO && echo BAR in my-app\nto stderr\n');
  assert.equal(ex.stderr, '');
  assert.ok(runtime.calls.includes(`exec my-app ${JSON.stringify(['sh', '-c', 'echo FOO && echo BAR'])}`));
  const exFail = await b.cli(['container', 'exec', '-g', 'rg', '-n', 'my-app', '--exec-command', 'false']);
  assert.equal(exFail.code, 1);
  assert.match(exFail.stderr, /The command exited with code 1/);
});

test('exec answers a websocket URI of the scheme the request came in on; its password never reaches the log; Authorization header works too; a stopped container refuses', async () => {
  const put = await arm('PUT', groupUrl('rg', 'ws1'), groupBody('r.io/app:1'));
  assert.equal((await pollOperation(put.headers.get('azure-asyncoperation')!)).status, 'Succeeded');
  const http = await postExec(b, b.url, ownerToken, 'rg', 'ws1', 'app', 'sh');
  assert.equal(http.status, 200, JSON.stringify(http.body));
  assert.deepEqual(Object.keys(http.body).sort(), ['password', 'webSocketUri']);
  assert.ok(http.body.webSocketUri.startsWith(`${b.url.replace(/^http:/, 'ws:')}/berth/exec-sockets/`));
  const https = await postExec(b, b.httpsUrl!, ownerToken, 'rg', 'ws1', 'app', 'sh -c "echo hi"');
  assert.ok(https.body.webSocketUri.startsWith(`${b.httpsUrl!.replace(/^https:/, 'wss:')}/berth/exec-sockets/`), https.body.webSocketUri);
  // The swagger's reading: the password as the Authorization header of the upgrade; then no password message.
  const viaHeader = await new Promise<{ out: string; code: number; reason: string }>((resolve, reject) => {
    const ws = new WebSocket(https.body.webSocketUri, { ca: b.tls!.ca, headers: { authorization: https.body.password } });
    let out = '';
    ws.on('message', (d: Buffer) => (out += d.toString()));
    ws.on('error', reject);
    ws.on('close', (code, reason) => resolve({ out, code, reason: reason.toString() }));
  });
  assert.deepEqual(viaHeader, { out: 'ran sh -c echo hi in app\r\nto stderr\r\n', code: 1000, reason: 'exit code 0' });
  const first = await execSocket(http.body.webSocketUri, http.body.password);
  assert.equal(first.reason, 'exit code 0');
  for (const p of [http.body.password, https.body.password]) assert.ok(!b.logs.some((l) => l.includes(p)), 'the password is not logged');
  // Not a session path: refused.
  await assert.rejects(execSocket(http.body.webSocketUri.replace('/exec-sockets/', '/nope/'), 'x'), /Unexpected server response: 404/);
  // A container that does not run cannot exec: the POST says so.
  assert.equal((await arm('POST', groupUrl('rg', 'ws1').replace('?', '/stop?'))).status, 204);
  const stopped = await postExec(b, b.url, ownerToken, 'rg', 'ws1', 'app', 'sh');
  assert.equal(stopped.status, 409);
  assert.equal(stopped.body.error.code, 'ContainerNotRunning');
  assert.equal((await arm('DELETE', groupUrl('rg', 'ws1'))).status, 200);
});

test('the emulated terminal: echo, Enter, Backspace, ^U, ^D, ^C; output newlines become CR LF', () => {
  const t = new TerminalInput();
  assert.deepEqual(t.input('ls -l\x7fa\r'), { data: 'ls -a\n', echo: 'ls -l\b \ba\r\n', eof: false, interrupt: false });
  assert.deepEqual(t.input('oops\x15echo\x04'), { data: 'echo', echo: 'oops' + '\b \b'.repeat(4) + 'echo', eof: false, interrupt: false });
  assert.deepEqual(t.input('\x04ignored'), { data: '', echo: '', eof: true, interrupt: false });
  assert.deepEqual(new TerminalInput().input('sleep\x03'), { data: '', echo: 'sleep^C\r\n', eof: false, interrupt: true });
  assert.deepEqual(new TerminalInput().input('\x7fé\x7f\n'), { data: '\n', echo: 'é\b \b\r\n', eof: false, interrupt: false });
  assert.equal(terminalOutput('a\nb\n'), 'a\r\nb\r\n');
});

test('CLI: --file - (stdin) with the seed\'s YAML, name checks, parse errors; stop, start, restart, delete', async () => {
  const yaml = readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'aci', 'seed002-multi-registry.yaml'), 'utf8');
  const r = await b.cli(['container', 'create', '-g', 'rg', '--file', '-'], { input: yaml });
  assert.equal(r.code, 0, r.stderr);
  const g = JSON.parse(r.stdout);
  assert.equal(g.name, 'multi-registry-app');
  assert.equal(g.location, 'eastus');
  assert.deepEqual(g.containers.map((c: { name: string }) => c.name), ['app', 'sidecar']);
  const pulls = puller.credentials.filter((c) => c.reference === 'ghcr.io/myorg/log-forwarder:latest');
  assert.deepEqual(pulls.at(-1), { reference: 'ghcr.io/myorg/log-forwarder:latest', kind: 'basic', username: 'myghuser', source: 'inline (myghuser)' });
  assert.deepEqual(puller.credentials.filter((c) => c.reference === 'myregistry.azurecr.io/web-app:latest').at(-1)?.username, 'myregistry');
  const mismatch = await b.cli(['container', 'create', '-g', 'rg', '-n', 'other', '--file', '-'], { input: yaml });
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /The name parameter and name from yaml definition must match\./);
  const typo = await b.cli(['container', 'create', '-g', 'rg', '--file', '-'], { input: yaml.replace('osType', 'ostipe') });
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /ERROR: properties\.ostipe is not a known field; did you mean osType\?/);
  const nofile = await b.cli(['container', 'create', '-g', 'rg', '--file', '/nonexistent.yaml']);
  assert.match(nofile.stderr, /No such file or directory: \/nonexistent\.yaml/);

  // stop → Stopped, sandbox gone; start → Running again; restart; delete.
  const id = (await b.containerGroups.store.find('rg', 'multi-registry-app'))!.id;
  assert.equal((await b.cli(['container', 'stop', '-g', 'rg', '-n', 'multi-registry-app'])).code, 0);
  let shown = JSON.parse((await b.cli(['container', 'show', '-g', 'rg', '-n', 'multi-registry-app'])).stdout);
  assert.equal(shown.instanceView.state, 'Stopped');
  assert.ok(shown.containers[0].instanceView.events.some((e: { name: string }) => e.name === 'Killing'));
  assert.equal(runtime.sandboxes.has(id), false);
  assert.equal((await b.cli(['container', 'start', '-g', 'rg', '-n', 'multi-registry-app'])).code, 0);
  shown = JSON.parse((await b.cli(['container', 'show', '-g', 'rg', '-n', 'multi-registry-app'])).stdout);
  assert.equal(shown.instanceView.state, 'Running');
  assert.equal(shown.containers[0].instanceView.previousState.state, 'Terminated');
  assert.equal((await b.cli(['container', 'restart', '-g', 'rg', '-n', 'multi-registry-app'])).code, 0);
  await runtime.running('sidecar', 3);
  const del = await b.cli(['container', 'delete', '-g', 'rg', '-n', 'multi-registry-app', '--yes']);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(JSON.parse(del.stdout).name, 'multi-registry-app');
  assert.equal(runtime.sandboxes.has(id), false);
  assert.equal((await b.cli(['container', 'show', '-g', 'rg', '-n', 'multi-registry-app'])).code, 3);
});

test('CLI: logs --follow and attach on a run-to-completion group end when the group does', async () => {
  const put = await arm('PUT', groupUrl('rg', 'job1'), groupBody('r.io/job:1', { restartPolicy: 'Never' }));
  await pollOperation(put.headers.get('azure-asyncoperation')!);
  const g = (await b.containerGroups.store.find('rg', 'job1'))!;
  const t = [...runtime.tasks.values()].find((x) => x.task.groupId === g.id)!;
  appendFileSync(t.task.logPath, 'working\n');
  const follow = b.cli(['container', 'logs', '-g', 'rg', '-n', 'job1', '--follow']);
  const attach = b.cli(['container', 'attach', '-g', 'rg', '-n', 'job1']);
  await new Promise((r) => setTimeout(r, 300));
  appendFileSync(t.task.logPath, 'done\n');
  runtime.exit('app', 0, 'Completed', g.id);
  const [f, a] = await Promise.all([follow, attach]);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.stdout, 'working\ndone\n');
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /^Container 'app' is in state '(Running|Terminated)'\.\.\.\n\(count: 1\) \(last timestamp: [^)]+\) pulling image "r\.io\/job:1"\n/);
  assert.match(a.stdout, /\(count: 1\) \(last timestamp: [^)]+\) Started container\n\nStart streaming logs:\nworking\n/);
  const shown = JSON.parse((await b.cli(['container', 'show', '-g', 'rg', '-n', 'job1'])).stdout);
  assert.equal(shown.instanceView.state, 'Succeeded');
  assert.deepEqual({ ...shown.containers[0].instanceView.currentState, startTime: undefined, finishTime: undefined },
    { state: 'Terminated', exitCode: 0, detailStatus: 'Completed', startTime: undefined, finishTime: undefined });
  // Logs stay readable after the exit.
  assert.equal((await b.cli(['container', 'logs', '-g', 'rg', '-n', 'job1'])).stdout, 'working\ndone\n');
});

test('PUT with a changed spec updates in place (new containers, same id); deleting the resource group deletes its groups', async () => {
  const first = await arm('PUT', groupUrl('rg', 'upd1'), groupBody('r.io/app:1'));
  await pollOperation(first.headers.get('azure-asyncoperation')!);
  const id = (await b.containerGroups.store.find('rg', 'upd1'))!.id;
  const second = await arm('PUT', groupUrl('rg', 'upd1'), groupBody('r.io/app:2'));
  assert.equal(second.status, 200, second.text);
  assert.equal((await pollOperation(second.headers.get('azure-asyncoperation')!)).status, 'Succeeded');
  const g = (await arm('GET', groupUrl('rg', 'upd1'))).json;
  assert.equal(g.properties.containers[0].properties.image, 'r.io/app:2');
  assert.equal((await b.containerGroups.store.find('rg', 'upd1'))!.id, id);
  const running = [...runtime.tasks.values()].filter((t) => t.task.groupId === id && t.status === 'running');
  assert.deepEqual(running.map((t) => t.spec.image.reference), ['r.io/app:2']);

  await b.groups.createOrUpdate('rg2', 'westus');
  const other = await arm('PUT', groupUrl('rg2', 'inrg2'), groupBody('r.io/app:1'));
  await pollOperation(other.headers.get('azure-asyncoperation')!);
  const otherId = (await b.containerGroups.store.find('rg2', 'inrg2'))!.id;
  const del = await b.cli(['group', 'delete', '-n', 'rg2', '--yes']);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(runtime.sandboxes.has(otherId), false);
  assert.equal(await b.containerGroups.store.byId(otherId), undefined);
});

test('a puller that can check access without downloading keeps the PUT light; the reconciler pulls', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  const checks: string[] = [];
  const p = Object.assign(new FakePuller(), { check: async (ref: string) => { checks.push(ref); if (ref.endsWith(':missing')) throw new PullError('MANIFEST_UNKNOWN', 'manifest unknown', 'tag missing not found'); } });
  const s = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime: new FakeRuntime(dir), puller: p, keychainFactory, reconciler: { sleep: async () => undefined } });
  try {
    await s.groups.createOrUpdate('rg', 'westus');
    await assert.rejects(s.containerGroups.createOrUpdate('rg', 'c1', groupBody('r.io/app:missing')), /InaccessibleImage|is not accessible/);
    assert.deepEqual(p.pulls, []);
    const { operation } = await s.containerGroups.createOrUpdate('rg', 'c2', groupBody('r.io/app:1'));
    while ((await s.containerGroups.operation(operation.id))!.status === 'InProgress') await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(checks, ['r.io/app:missing', 'r.io/app:1']);
    assert.deepEqual(p.pulls, ['r.io/app:1']);
    assert.deepEqual((await s.containerGroups.get('rg', 'c2')).state.containers.app!.events.map((e) => e.name), ['Pulling', 'Pulled', 'Created', 'Started']);
  } finally {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a container that cannot start fails the operation (status Failed with the error); --no-wait returns at once', async () => {
  runtime.startErrors.push('exec: "/app/run": no such file or directory');
  const put = await arm('PUT', groupUrl('rg', 'nostart'), groupBody('r.io/app:1', { restartPolicy: 'Never' }));
  assert.equal(put.status, 201);
  const op = await pollOperation(put.headers.get('azure-asyncoperation')!);
  assert.equal(op.status, 'Failed');
  assert.equal(op.error.code, 'ContainerGroupDeploymentFailed');
  assert.match(op.error.message, /Container 'app' failed to start: exec: "\/app\/run": no such file or directory/);
  const g = (await arm('GET', groupUrl('rg', 'nostart'))).json;
  assert.equal(g.properties.provisioningState, 'Failed');
  assert.equal(g.properties.containers[0].properties.instanceView.currentState.detailStatus, 'StartError: exec: "/app/run": no such file or directory');
  runtime.startErrors.push('exec: "/app/run": no such file or directory');
  const cli = await b.cli(['container', 'create', '-g', 'rg', '-n', 'nostart2', '--image', 'r.io/app:1', '--restart-policy', 'Never']);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /^ERROR: \(ContainerGroupDeploymentFailed\) Container 'nostart2' failed to start/);
  const nowait = await b.cli(['container', 'create', '-g', 'rg', '-n', 'nowait1', '--image', 'r.io/app:1', '--no-wait']);
  assert.equal(nowait.code, 0, nowait.stderr);
  assert.equal(nowait.stdout, '');
  assert.ok(await b.containerGroups.store.find('rg', 'nowait1'));
});

test('S9: a Key Vault secret referenced by name is resolved at pull time, never copied; the caller must be able to read it', async () => {
  const vaultId = `/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1`;
  const ref = { reference: { keyVault: { id: vaultId }, secretName: 'my_docker_credentials' } };
  const body = groupBody('r.io/app:1', { imageRegistryCredentials: [{ server: 'r.io', password: ref }] });
  // A vault that does not exist is said to be missing, not a missing permission.
  const noVault = await arm('PUT', groupUrl('rg', 'vault1'), body);
  assert.equal(noVault.status, 400, noVault.text);
  assert.equal(noVault.json.error.code, 'KeyVaultNotFound');
  assert.match(noVault.json.error.message, /The Key Vault 'kv1' that imageRegistryCredentials for r\.io reference .* does not exist\. Create it with `berth keyvault create -g rg -n kv1`/);
  assert.doesNotMatch(noVault.json.error.message, /getSecret|Secrets User|cannot read/);
  assert.equal(await b.containerGroups.store.find('rg', 'vault1'), undefined);
  await b.vaults.createOrUpdate('rg', 'kv1', {});
  const denied = await arm('PUT', groupUrl('rg', 'vault1'), body);
  assert.equal(denied.status, 403, denied.text);
  assert.match(denied.json.error.message, /cannot read the Key Vault secret 'my_docker_credentials'.*getSecret\/action.*\/vaults\/kv1\/secrets\/my_docker_credentials/);
  const owner = (await b.identity.principalByAppId(JSON.parse(readFileSync(join(b.dataDir, 'owner-credential.json'), 'utf8')).clientId))!;
  await b.identity.assignRole(owner.id, findRole('Key Vault Secrets User')!, vaultId);
  const put = await arm('PUT', groupUrl('rg', 'vault1'), body);
  assert.equal(put.status, 201, put.text);
  await pollOperation(put.headers.get('azure-asyncoperation')!);
  assert.deepEqual(puller.credentials.at(-1), { reference: 'r.io/app:1', kind: 'basic', username: 'from-vault', source: 'vault secret my_docker_credentials' });
  const g = (await arm('GET', groupUrl('rg', 'vault1'))).json;
  assert.deepEqual(g.properties.imageRegistryCredentials, [{ server: 'r.io' }]);
  assert.deepEqual((await b.containerGroups.store.find('rg', 'vault1'))!.spec.imageRegistryCredentials[0]!.password, ref, 'only the reference is stored');
});

test('a server without a runtime answers creates with a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  const other = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined });
  try {
    await other.groups.createOrUpdate('rg', 'westus');
    const r = await runCli(['container', 'create', '-g', 'rg', '-n', 'x', '--image', 'busybox'], { ...process.env, BERTH_SERVER: other.url, BERTH_DATA_DIR: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\(ContainerRuntimeNotConfigured\) No container runtime configured/);
    const l = await runCli(['container', 'list'], { ...process.env, BERTH_SERVER: other.url, BERTH_DATA_DIR: dir });
    assert.equal(l.stdout, '[]\n');
  } finally {
    await other.stop();
    await rm(dir, { recursive: true, force: true });
  }
});


test('groups survive a server restart: running containers are adopted, orphans removed, exited ones restarted per policy', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  const rt = new FakeRuntime(dir);
  const opts = { dataDir: dir, port: 0, logSink: () => undefined, runtime: rt, puller: new FakePuller(), keychainFactory, reconciler: { sleep: async () => undefined } };
  let s = await startBerth(opts);
  try {
    await s.groups.createOrUpdate('rg', 'westus');
    const body = (image: string, restartPolicy: string) => ({ location: 'westus', properties: { osType: 'Linux', restartPolicy,
      containers: [{ name: 'app', properties: { image, resources: { requests: { cpu: 1, memoryInGB: 1 } } } }] } });
    for (const [name, policy] of [['keeps', 'Always'], ['crashes', 'OnFailure']] as const) {
      const { operation } = await s.containerGroups.createOrUpdate('rg', name, body('r.io/app:1', policy));
      while ((await s.containerGroups.operation(operation.id))!.status === 'InProgress') await new Promise((r) => setTimeout(r, 10));
    }
    const keeps = (await s.containerGroups.get('rg', 'keeps')).id;
    const crashes = (await s.containerGroups.get('rg', 'crashes')).id;
    await s.stop(); // the containers keep running while the server is down
    rt.exit('app', 1, 'Error', crashes); // one exits meanwhile
    await rt.createSandbox({ groupId: 'orphan-from-a-deleted-group', ports: [] });
    rt.calls = [];
    s = await startBerth({ ...opts, port: 0 });
    assert.ok(rt.calls.includes('deleteSandbox orphan-from-a-deleted-group'));
    await rt.running('app', 1);
    const waitFor = async (pred: () => boolean) => { while (!pred()) await new Promise((r) => setTimeout(r, 10)); };
    await waitFor(() => rt.calls.includes('create app'));
    // The running one was adopted (no new container), the exited one was run again.
    assert.equal(rt.calls.filter((c) => c === 'create app').length, 1);
    assert.ok([...rt.tasks.values()].some((t) => t.task.groupId === keeps && t.status === 'running'));
    await waitFor(() => [...rt.tasks.values()].some((t) => t.task.groupId === crashes && t.status === 'running'));
    assert.equal((await s.containerGroups.get('rg', 'keeps')).state.state, 'Running');
    // The adopted container is still watched: a kill through stop works.
    await s.containerGroups.stop('rg', 'keeps');
    assert.equal(rt.sandboxes.has(keeps), false);
  } finally {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
