// What one container group may ask for: ACI's limits for a standard Linux group (60 containers, 4 CPUs
// and 16 GB over its containers), and no more than this node has. Each refusal is a 400 that says the
// numbers, before anything is stored or pulled.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, type RunningBerth } from '../src/platform/berth.js';
import { FakePuller, FakeRuntime, inlineKeychainFactory } from './helpers/fake-runtime.js';
import { ACI_LIMITS, parseGroupSpec } from '../src/instances/spec.js';

let b: RunningBerth;
let dir: string;
let token: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-limits-'));
  b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime: new FakeRuntime(dir), puller: new FakePuller(), keychainFactory: inlineKeychainFactory,
    reconciler: { sleep: async () => undefined }, groupCapacity: { cpu: 2, memoryInGB: 4 } });
  await b.groups.createOrUpdate('rg', 'westus');
  const cred = JSON.parse(readFileSync(join(dir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string; tenantId: string };
  const res = await fetch(`${b.url}/${cred.tenantId}/oauth2/v2.0/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret, scope: 'https://management.azure.com/.default' }) });
  token = ((await res.json()) as { access_token: string }).access_token;
});
after(async () => {
  await b?.stop();
  await rm(dir, { recursive: true, force: true });
});

const container = (name: string, cpu: unknown, memoryInGB: unknown = 1) => ({ name, properties: { image: 'r.io/app:1', resources: { requests: { cpu, memoryInGB } } } });
const body = (containers: unknown[]) => ({ location: 'westus', properties: { osType: 'Linux', containers } });

async function put(name: string, b0: unknown) {
  const r = await fetch(`${b.url}/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/${name}?api-version=2021-09-01`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(b0) });
  return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
}

test('ACI\'s limits: a container or a group over 4 CPUs or 16 GB, or over 60 containers, is refused with the numbers', () => {
  const err = (containers: unknown[]) => { try { parseGroupSpec(body(containers)); return ''; } catch (e) { return (e as Error).message; } };
  assert.match(err([container('a', 1e308)]), /requests\.cpu is 1e\+308; a container group has at most 4/);
  assert.match(err([container('a', 1, 1000)]), /requests\.memoryInGB is 1000; a container group has at most 16/);
  assert.match(err([container('a', 3), container('b', 3)]), /ask for 6 CPUs together; a container group has at most 4/);
  assert.match(err([container('a', 1, 10), container('b', 1, 10)]), /ask for 20 GB of memory together/);
  const many = Array.from({ length: ACI_LIMITS.containers + 1 }, (_, i) => container(`c${i}`, 0.01, 0.1));
  assert.match(err(many), /lists 61 containers; a container group has at most 60/);
  assert.equal(err(Array.from({ length: 60 }, (_, i) => container(`c${i}`, 0.05, 0.1))), '', '60 containers of 3 CPUs together are fine');
});

test('no group asks for more than the node has: ACI\'s "not available" sentence with this node\'s CPUs and memory; nothing is stored', async () => {
  const cpu = await put('too-much-cpu', body([container('a', 3)]));
  assert.equal(cpu.status, 400);
  assert.equal(cpu.body.error!.code, 'ResourceRequestsNotAvailable');
  assert.match(cpu.body.error!.message, /^The requested resource with '3' CPU and '1' GB memory is not available in the location 'westus' at this moment\. Please retry with a different resource request or in another location\. \(This Berth node has 2 CPUs and 4 GB of memory/);
  const mem = await put('too-much-memory', body([container('a', 1, 3), container('b', 0.5, 2)]));
  assert.match(mem.body.error!.message, /'1\.5' CPU and '5' GB memory is not available/);
  assert.equal((await b.containerGroups.list('rg')).length, 0);
  const fits = await put('fits', body([container('a', 1, 2), container('b', 1, 2)]));
  assert.equal(fits.status, 201, JSON.stringify(fits.body));
});
