// The Azure SDK's own client (@azure/arm-containerinstance 9.1, api-version 2023-05-01) against Berth:
// its long-running-operation poller must follow Azure-AsyncOperation to the end and read the group.
// The SDK refuses bearer tokens over plain HTTP; until Berth serves HTTPS here, the test swaps the
// SDK's bearer policy for one that sets the same header (everything else in its pipeline is unchanged).
// containers.executeCommand runs over HTTPS too, with the SDK's own bearer policy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { startBerth, type RunningBerth } from '../src/platform/berth.js';
import { FakePuller, FakeRuntime, inlineKeychainFactory } from './helpers/fake-runtime.js';
import { PullError } from '../src/pull/types.js';
import { Agent as HttpsAgent } from 'node:https';
import { execSocket } from './helpers/exec-socket.js';

const require = createRequire(import.meta.url);
const { ContainerInstanceManagementClient } = require('@azure/arm-containerinstance') as typeof import('@azure/arm-containerinstance');

let b: RunningBerth;
let dir: string;
let token: string;
const puller = new FakePuller();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime: new FakeRuntime(dir), puller, keychainFactory: inlineKeychainFactory, reconciler: { sleep: async () => undefined } });
  await b.groups.createOrUpdate('rg', 'westus');
  const cred = JSON.parse(readFileSync(join(dir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string; tenantId: string };
  const res = await fetch(`${b.url}/${cred.tenantId}/oauth2/v2.0/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret, scope: 'https://management.azure.com/.default' }).toString() });
  token = ((await res.json()) as { access_token: string }).access_token;
});
after(async () => {
  await b?.stop();
  await rm(dir, { recursive: true, force: true });
});

function client() {
  const c = new ContainerInstanceManagementClient({ getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) }, b.identity.ids.subscriptionId,
    { endpoint: b.url, allowInsecureConnection: true });
  c.pipeline.removePolicy({ name: 'bearerTokenAuthenticationPolicy' });
  c.pipeline.addPolicy({ name: 'plainHttpBearer', sendRequest: (req, next) => { req.headers.set('authorization', `Bearer ${token}`); return next(req); } });
  return c;
}

test('SDK beginCreateOrUpdateAndWait, get, listByResourceGroup, listLogs, stop, delete', async () => {
  const c = client();
  const g = await c.containerGroups.beginCreateOrUpdateAndWait('rg', 'sdk1', {
    location: 'westus', osType: 'Linux', restartPolicy: 'OnFailure',
    containers: [{ name: 'app', image: 'r.io/app:1', resources: { requests: { cpu: 1, memoryInGB: 1.5 } }, environmentVariables: [{ name: 'S', secureValue: 'sdk-secret-1' }] }],
    imageRegistryCredentials: [{ server: 'r.io', username: 'u', password: 'sdk-secret-2' }],
  }, { updateIntervalInMs: 20 });
  assert.equal(g.provisioningState, 'Succeeded');
  assert.equal(g.containers[0]!.instanceView?.currentState?.state, 'Running');
  assert.equal(g.containers[0]!.environmentVariables![0]!.secureValue, undefined);
  assert.equal(g.imageRegistryCredentials![0]!.password, undefined);
  const got = await c.containerGroups.get('rg', 'sdk1');
  assert.equal(got.instanceView?.state, 'Running');
  assert.deepEqual(got.containers[0]!.instanceView!.events!.map((e) => e.name), ['Pulling', 'Pulled', 'Created', 'Started']);
  assert.ok(got.containers[0]!.instanceView!.events![0]!.firstTimestamp instanceof Date);
  const names: string[] = [];
  for await (const x of c.containerGroups.listByResourceGroup('rg')) names.push(x.name!);
  assert.deepEqual(names, ['sdk1']);
  const logs = await c.containers.listLogs('rg', 'sdk1', 'app', { tail: 10 });
  assert.equal(logs.content, '');
  await c.containerGroups.beginRestartAndWait('rg', 'sdk1', { updateIntervalInMs: 20 });
  assert.equal((await c.containerGroups.get('rg', 'sdk1')).containers[0]!.instanceView?.events?.find((e) => e.name === 'Killing')?.count, 1);
  await c.containerGroups.stop('rg', 'sdk1');
  assert.equal((await c.containerGroups.get('rg', 'sdk1')).instanceView?.state, 'Stopped');
  await c.containerGroups.beginStartAndWait('rg', 'sdk1', { updateIntervalInMs: 20 });
  assert.equal((await c.containerGroups.get('rg', 'sdk1')).instanceView?.state, 'Running');
  await c.containerGroups.stop('rg', 'sdk1');
  await c.containerGroups.beginDeleteAndWait('rg', 'sdk1', { updateIntervalInMs: 20 });
  await assert.rejects(c.containerGroups.get('rg', 'sdk1'), (e: { statusCode?: number; code?: string }) => e.statusCode === 404 && e.code === 'ResourceNotFound');
});

test('SDK sees InaccessibleImage as a RestError with ACI\'s code', async () => {
  puller.refuse.set('r.io/gone:1', new PullError('NAME_UNKNOWN', 'name unknown: repository name not known to registry', 'The repository gone does not exist in r.io'));
  const c = client();
  await assert.rejects(c.containerGroups.beginCreateOrUpdateAndWait('rg', 'sdk2', {
    location: 'westus', osType: 'Linux', containers: [{ name: 'app', image: 'r.io/gone:1', resources: { requests: { cpu: 1, memoryInGB: 1 } } }],
  }, { updateIntervalInMs: 20 }), (e: { statusCode?: number; code?: string; message: string }) => {
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'InaccessibleImage');
    assert.match(e.message, /The image 'r\.io\/gone:1' in container group 'sdk2' is not accessible\. Please check the image and registry credential\. The registry answered: name unknown/);
    return true;
  });
});

test('SDK containers.executeCommand: a wss:// websocket over HTTPS (with the SDK\'s own bearer policy), ws:// over HTTP; az\'s protocol runs the command', async () => {
  const c = client();
  await c.containerGroups.beginCreateOrUpdateAndWait('rg', 'sdkexec', {
    location: 'westus', osType: 'Linux', containers: [{ name: 'app', image: 'r.io/app:1', resources: { requests: { cpu: 1, memoryInGB: 1 } } }],
  }, { updateIntervalInMs: 20 });
  const request = { command: '/bin/sh', terminalSize: { rows: 24, cols: 80 } };
  const plain = await c.containers.executeCommand('rg', 'sdkexec', 'app', request);
  assert.match(plain.webSocketUri!, /^ws:\/\/127\.0\.0\.1:\d+\//);
  const r = await execSocket(plain.webSocketUri!, plain.password!);
  assert.deepEqual([r.output, r.code, r.reason], ['ran /bin/sh in app\r\nto stderr\r\n', 1000, 'exit code 0']);
  // Over HTTPS the SDK keeps its bearer policy; Berth's CA reaches it through the request's agent.
  const agent = new HttpsAgent({ ca: b.tls!.ca });
  const secure = new ContainerInstanceManagementClient({ getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) }, b.identity.ids.subscriptionId, {
    endpoint: b.httpsUrl!,
    additionalPolicies: [{ position: 'perCall', policy: { name: 'berthCa', sendRequest: (req, next) => { req.agent = agent; return next(req); } } }],
  });
  const s = await secure.containers.executeCommand('rg', 'sdkexec', 'app', request);
  assert.match(s.webSocketUri!, /^wss:\/\/localhost:\d+\//);
  const rs = await execSocket(s.webSocketUri!, s.password!, { ca: b.tls!.ca });
  assert.deepEqual([rs.code, rs.reason], [1000, 'exit code 0']);
  agent.destroy();
  await c.containerGroups.beginDeleteAndWait('rg', 'sdkexec', { updateIntervalInMs: 20 });
});
