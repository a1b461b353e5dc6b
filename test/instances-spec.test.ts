// The container-group spec parser and the `container create` flag mapping: every seed's YAML parses,
// misspelt or unknown fields fail with their path, ARM's leniency is honoured, flags map like az's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseGroupFile, parseGroupSpec, specToBody } from '../src/instances/spec.js';
import { shlexSplit, specFromFlags } from '../src/instances/flags.js';
import { BerthError } from '../src/lib/errors.js';
import { REPO_ROOT } from './helpers/berth.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'aci');
const fixture = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

function specError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof BerthError, `expected a BerthError, got ${String(e)}`);
    assert.equal(e.kind, 'invalid');
    return e.message;
  }
  assert.fail('expected the spec to be refused');
}

const minimal = () => ({
  apiVersion: '2021-09-01', location: 'eastus', name: 'g1',
  properties: { osType: 'Linux', containers: [{ name: 'app', properties: { image: 'busybox', resources: { requests: { cpu: 1, memoryInGB: 1.5 } } } }] },
});

test('every seed YAML and the ARM template parse', () => {
  const files = readdirSync(FIXTURES);
  assert.ok(files.length >= 7, 'fixtures present');
  for (const f of files) {
    const s = parseGroupFile(fixture(f));
    assert.ok(s.containers.length >= 1, f);
    assert.equal(s.osType, 'Linux', f);
  }
});

test('seed 002 private-registry.yaml: canonical casing, credentials, ports', () => {
  const s = parseGroupFile(fixture('seed002-private-registry.yaml'));
  assert.equal(s.name, 'my-private-app');
  assert.equal(s.apiVersion, '2021-09-01');
  assert.deepEqual(s.containers[0]!.resources.requests, { cpu: 1, memoryInGB: 2 });
  assert.deepEqual(s.imageRegistryCredentials, [{ server: 'myregistry.azurecr.io', username: 'myregistry', password: 'your-acr-password-here' }]);
  assert.deepEqual(s.ipAddress, { type: 'Public', ports: [{ port: 80, protocol: 'TCP' }] });
  assert.equal(s.restartPolicy, 'Always');
});

test('seed 002 managed identity and multi-registry; seed 004 unquoted apiVersion, flow style, top-level sku', () => {
  const mi = parseGroupFile(fixture('seed002-managed-identity-acr.yaml'));
  assert.equal(mi.identity?.type, 'UserAssigned');
  assert.equal(mi.identity?.userAssignedIdentities.length, 1);
  assert.match(mi.imageRegistryCredentials[0]!.identity!, /userAssignedIdentities\/aci-acr-identity$/);
  const multi = parseGroupFile(fixture('seed002-multi-registry.yaml'));
  assert.deepEqual(multi.containers.map((c) => c.image), ['myregistry.azurecr.io/web-app:latest', 'ghcr.io/myorg/log-forwarder:latest']);
  assert.equal(multi.imageRegistryCredentials.length, 2);
  const app = parseGroupFile(fixture('seed004-app-mi.yaml'));
  assert.equal(app.apiVersion, '2021-10-01');
  assert.equal(app.sku, 'Standard');
  assert.equal(app.ipAddress?.dnsNameLabel, 'app-mi-12345');
  assert.deepEqual(app.containers[0]!.ports, [{ port: 8080 }]);
});

test('leniency (AZURE-FACTS 1.9): memoryInGb, port as string, lower-case enums, tags: null, 2018 apiVersion', () => {
  const s = parseGroupFile(fixture('docs-deploy-aci.yaml'));
  assert.equal(s.containers[1]!.resources.requests.memoryInGB, 1.5);
  assert.deepEqual(s.ipAddress?.ports, [{ protocol: 'TCP', port: 80 }]);
  assert.deepEqual(s.tags, {});
  const arm = parseGroupFile(fixture('seed003-arm-template.json'));
  assert.equal(arm.ipAddress?.type, 'Public');
  // Property names in any casing; numbers and booleans as strings; identity type spelt loosely.
  const doc = minimal() as any;
  doc.Properties = doc.properties;
  delete doc.properties;
  doc.Properties.RestartPolicy = 'onfailure';
  doc.Properties.containers[0].properties.Resources = doc.Properties.containers[0].properties.resources;
  delete doc.Properties.containers[0].properties.resources;
  doc.Properties.containers[0].properties.Resources.requests.cpu = '0.5';
  doc.Properties.containers[0].properties.environmentVariables = [{ name: 'PORT', value: 8080 }];
  doc.identity = { type: 'systemassigned,userassigned', userAssignedIdentities: { '/x/y': {} } };
  const l = parseGroupSpec(doc);
  assert.equal(l.restartPolicy, 'OnFailure');
  assert.equal(l.containers[0]!.resources.requests.cpu, 0.5);
  assert.deepEqual(l.containers[0]!.environmentVariables, [{ name: 'PORT', value: '8080' }]);
  assert.equal(l.identity?.type, 'SystemAssigned, UserAssigned');
});

test('Key Vault secret references in place of username/password (ARM parameter-file form)', () => {
  const vault = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1';
  const d = minimal() as any;
  d.properties.imageRegistryCredentials = [
    { server: 'a.io', username: { reference: { keyVault: { id: vault }, secretName: 'acr-pull-usr' } }, password: { Reference: { KeyVault: { Id: vault }, SecretName: 'acr-pull-pwd' } } },
    { server: 'b.io', password: { reference: { keyVault: { id: vault }, secretName: 'my_docker_credentials' } } },
  ];
  const s = parseGroupSpec(d);
  assert.deepEqual(s.imageRegistryCredentials[0]!.password, { reference: { keyVault: { id: vault }, secretName: 'acr-pull-pwd' } });
  assert.equal(s.imageRegistryCredentials[1]!.username, undefined);
  d.properties.imageRegistryCredentials = [{ server: 'a.io', password: { reference: { keyVault: { id: 'kv1' }, secretName: 'x' } } }];
  assert.match(specError(() => parseGroupSpec(d)), /imageRegistryCredentials\[0\]\.password\.reference\.keyVault\.id 'kv1' is not a vault id/);
  d.properties.imageRegistryCredentials = [{ server: 'a.io', password: { reference: { keyVault: { id: vault }, secretNme: 'x' } } }];
  assert.match(specError(() => parseGroupSpec(d)), /password\.reference\.secretNme is not a known field; did you mean secretName\?/);
});

test('read-only fields from a GET are ignored, so a shown group can be sent back', () => {
  const doc = minimal() as any;
  doc.id = '/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/g1';
  doc.properties.provisioningState = 'Succeeded';
  doc.properties.instanceView = { state: 'Running', events: [] };
  doc.properties.containers[0].properties.instanceView = { restartCount: 0 };
  doc.properties.ipAddress = undefined;
  assert.equal(parseGroupSpec(doc).containers.length, 1);
});

test('misspelt and unknown fields fail with the path and a suggestion', () => {
  const doc = minimal() as any;
  doc.properties.containers[0].properties.enviromentVariables = [{ name: 'A', value: 'b' }];
  assert.equal(specError(() => parseGroupSpec(doc)), 'properties.containers[0].properties.enviromentVariables is not a known field; did you mean environmentVariables?');
  const y = fixture('seed002-private-registry.yaml').replace('imageRegistryCredentials', 'imageRegistryCredential').replace('osType', 'osTyp');
  const msg = specError(() => parseGroupFile(y));
  assert.match(msg, /properties\.imageRegistryCredential is not a known field; did you mean imageRegistryCredentials\?/);
  assert.match(msg, /properties\.osTyp is not a known field; did you mean osType\?/);
  assert.match(msg, /2 problems/);
  const z = minimal() as any;
  z.properties.containers[0].properties.resources.requests.memory = 2;
  assert.match(specError(() => parseGroupSpec(z)), /properties\.containers\[0\]\.properties\.resources\.requests\.memory is not a known field; did you mean memoryInGB\?/);
  const w = minimal() as any;
  w.properties.containers[0].properties.resources.requests.flavour = 'x';
  assert.match(specError(() => parseGroupSpec(w)), /requests\.flavour is not a known field; known fields here: memoryInGB, cpu, gpu/);
});

test('values that are wrong fail with the path', () => {
  const cases: Array<[(d: any) => void, RegExp]> = [
    [(d) => { d.properties.restartPolicy = 'Sometimes'; }, /properties\.restartPolicy: 'Sometimes' is not one of Always, OnFailure, Never/],
    [(d) => { d.properties.containers[0].properties.resources.requests.cpu = 'lots'; }, /requests\.cpu must be a number, not the string "lots"/],
    [(d) => { d.properties.containers[0].properties.ports = [{ port: 70000 }]; }, /ports\[0\]\.port must be at most 65535/],
    [(d) => { delete d.properties.containers[0].properties.image; }, /properties\.containers\[0\]\.properties\.image is required/],
    [(d) => { delete d.properties.osType; }, /properties\.osType is required/],
    [(d) => { d.properties.osType = 'windows'; }, /Berth runs Linux containers only/],
    [(d) => { d.properties.containers[0].name = 'App_1'; }, /properties\.containers\[0\]\.name 'App_1' is invalid/],
    [(d) => { d.properties.containers.push(structuredClone(d.properties.containers[0])); }, /used by two containers/],
    [(d) => { d.properties.ipAddress = { type: 'Public', ports: [{ port: 443 }] }; }, /ipAddress\.ports\[0\]\.port 443 is not among any container's ports/],
    [(d) => { d.properties.imageRegistryCredentials = [{ server: 'https://r.io', username: 'u' }]; }, /without a scheme[\s\S]*needs username and password, or identity/],
    [(d) => { d.properties.imageRegistryCredentials = [{ server: 'r.io', identity: '/sub/x/mi' }]; }, /is not one of the group's identity\.userAssignedIdentities/],
    [(d) => { d.properties.volumes = [{ name: 'v', emptyDir: {} }]; }, /properties\.volumes: Berth does not support volumes/],
    [(d) => { d.apiVersion = '2017-01-01'; }, /apiVersion '2017-01-01' is not supported/],
    [(d) => { d.type = 'Microsoft.Web/sites'; }, /type must be Microsoft\.ContainerInstance\/containerGroups/],
    [(d) => { d.properties.containers[0].properties.environmentVariables = [{ name: 'A', value: '1', secureValue: '2' }]; }, /has both value and secureValue/],
  ];
  for (const [mutate, re] of cases) {
    const d = minimal();
    mutate(d);
    assert.match(specError(() => parseGroupSpec(d)), re);
  }
  assert.match(specError(() => parseGroupFile('properties: [unclosed')), /^Error while parsing yaml file: .* at line \d+, column \d+ \(the line is not shown/);
  // the offending line may hold a secret: the error says where, never what it says
  for (const bad of ['properties:\n  containers:\n  - name: a\n    secureValue: "hunter2-canary\n', 'x:\n  - a\n - password: hunter2-canary\n', '{"password": "hunter2-canary", ']) {
    const msg = specError(() => parseGroupFile(bad));
    assert.match(msg, /Error while parsing yaml file: .*line \d+/, msg);
    assert.doesNotMatch(msg, /hunter2-canary/, msg);
  }
  assert.match(specError(() => parseGroupFile('name: a\nname: b\n')), /Error while parsing yaml file/);
});

test('shlex splitting as az does for --command-line', () => {
  assert.deepEqual(shlexSplit(`/bin/sh -c "while true; do echo hello; sleep 20; done"`), ['/bin/sh', '-c', 'while true; do echo hello; sleep 20; done']);
  assert.deepEqual(shlexSplit(`echo 'a b' c\\ d "e\\"f" ''`), ['echo', 'a b', 'c d', 'e"f', '']);
  assert.throws(() => shlexSplit('echo "open'), /No closing quotation/);
});

test('flags map to the spec az would send (S1 admin user, defaults, identities)', () => {
  const s = specFromFlags({
    name: 'my-app', image: 'myregistry.azurecr.io/my-app:v1.0', cpu: '1', memory: '1.5', registryLoginServer: 'myregistry.azurecr.io',
    registryUsername: 'myregistry', registryPassword: 'pw', ports: ['80'], ipAddress: 'Public',
    environmentVariables: ['KEY1=VALUE1', 'KEY2=FOO=BAR='], secureEnvironmentVariables: ['SECRET=s3'], commandLine: '/bin/sh -c "echo hi"', restartPolicy: 'never',
  });
  assert.deepEqual(specToBody(s), {
    tags: {},
    properties: {
      containers: [{ name: 'my-app', properties: { image: 'myregistry.azurecr.io/my-app:v1.0', command: ['/bin/sh', '-c', 'echo hi'], ports: [{ protocol: 'TCP', port: 80 }],
        environmentVariables: [{ name: 'KEY1', value: 'VALUE1' }, { name: 'KEY2', value: 'FOO=BAR=' }, { name: 'SECRET', secureValue: 's3' }],
        resources: { requests: { cpu: 1, memoryInGB: 1.5 } } } }],
      imageRegistryCredentials: [{ server: 'myregistry.azurecr.io', username: 'myregistry', password: 'pw' }],
      restartPolicy: 'Never',
      ipAddress: { type: 'Public', ports: [{ port: 80, protocol: 'TCP' }] },
      osType: 'Linux',
    },
  });
  // Defaults: no IP address → no container ports; cpu 1, memory 1.5, Always, Linux.
  const d = specFromFlags({ name: 'plain', image: 'busybox' });
  assert.deepEqual(d.containers[0]!.ports, []);
  assert.equal(d.ipAddress, undefined);
  assert.deepEqual(d.containers[0]!.resources.requests, { cpu: 1, memoryInGB: 1.5 });
  assert.equal(d.restartPolicy, 'Always');
  // The server defaults to the image's registry host.
  assert.equal(specFromFlags({ name: 'x', image: 'localhost:5000/a:1', registryUsername: 'u', registryPassword: 'p' }).imageRegistryCredentials[0]!.server, 'localhost:5000');
  // Identities: --assign-identity ID --acr-identity ID (seed 002), [system], and --acr-identity alone.
  const id = '/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aci-acr-identity';
  const mi = specFromFlags({ name: 'my-app', image: 'r.io/a:1', assignIdentity: [id], acrIdentity: id, ports: ['80'], ipAddress: 'Public' });
  assert.deepEqual(mi.identity, { type: 'UserAssigned', userAssignedIdentities: [id] });
  assert.deepEqual(mi.imageRegistryCredentials, [{ server: 'r.io', identity: id }]);
  assert.equal(specFromFlags({ name: 'a', image: 'b', assignIdentity: [] }).identity?.type, 'SystemAssigned');
  assert.equal(specFromFlags({ name: 'a', image: 'b', assignIdentity: ['[system]', id] }).identity?.type, 'SystemAssigned, UserAssigned');
  assert.deepEqual(specFromFlags({ name: 'a', image: 'r.io/b', acrIdentity: id }).identity, { type: 'UserAssigned', userAssignedIdentities: [id] });
  const sys = specFromFlags({ name: 'a', image: 'r.io/b', assignIdentity: [], acrIdentity: '[system]' });
  assert.deepEqual(sys.imageRegistryCredentials, [{ server: 'r.io', identity: '[system]' }]);
});

test('flag errors say what to fix', () => {
  assert.match(specError(() => specFromFlags({ name: 'a', image: 'r.io/b', registryLoginServer: 'r.io' })), /Please specify --registry-username in order to use custom image registry\./);
  assert.match(specError(() => specFromFlags({ name: 'a', image: 'r.io/b', registryUsername: 'u' })), /Please specify --registry-password/);
  assert.match(specError(() => specFromFlags({ name: 'a', image: 'b', environmentVariables: ['NOVALUE'] })), /--environment-variables: 'NOVALUE' is not KEY=VALUE/);
  assert.match(specError(() => specFromFlags({ name: 'a', image: 'b', ports: ['http'], ipAddress: 'Public' })), /--ports: 'http' is not a port number/);
  assert.match(specError(() => specFromFlags({ name: 'a', image: 'b', cpu: 'two' })), /requests\.cpu must be a number/);
  assert.match(specError(() => specFromFlags({ name: 'a', image: 'b', restartPolicy: 'Sometimes' })), /restartPolicy: 'Sometimes' is not one of/);
  assert.match(specError(() => specFromFlags({ name: 'a', image: 'b', osType: 'Windows' })), /Linux containers only/);
});
