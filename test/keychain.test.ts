// The keychain's credential sources, each on its own and composed: server-key normalisation, inline
// credentials, vault secrets (an in-memory SecretReader), expiring passwords with a refresher (a real
// command), managed identities against a live Berth registry (identity token → /oauth2/exchange →
// refresh token → manifest GET, with and without AcrPull), MultiKeychain order and keychainFor().
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serverKey } from '../src/keychain/server-key.js';
import { KeychainError, MultiKeychain, describeCredential, type Keychain, type RegistryCredential } from '../src/keychain/keychain.js';
import { InlineKeychain } from '../src/keychain/inline.js';
import { VaultSecretKeychain, secretPair, type SecretReader } from '../src/keychain/vault-secret.js';
import { ExpiringPasswordKeychain, commandRefresher } from '../src/keychain/refreshing.js';
import { ManagedIdentityKeychain, NULL_GUID_USER, endpointTokenProvider, type AccessTokenProvider } from '../src/keychain/managed-identity.js';
import { keychainFor } from '../src/keychain/factory.js';
import { RegistryClient, type RegistryCredential as ClientCredential } from '../src/client/registry-client.js';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { getManifest, pushTinyImage } from './helpers/tiny-image.js';
import { assertNoSecret as assertNoSecretIn, rejectsWithoutSecrets } from './helpers/no-secrets.js';
import { findRole } from '../src/identity/roles.js';
import { armId } from '../src/registry/registries.js';

/** Every secret a test here hands a source: none may appear in an error message or a description. */
const SECRETS = ['MyPassword123!', 'sp-secret-Pa55', 'inline-pw:colon', 'ecr-pw-', 'vault-leak-value'];

const rejectsClean = (p: Promise<unknown>, pattern: RegExp) => rejectsWithoutSecrets(p, pattern, SECRETS);

const assertNoSecret = (text: string) => assertNoSecretIn(text, SECRETS);

/** A real SecretReader over a Map (vault → name → value), as the vault service will answer. */
class MapSecrets implements SecretReader {
  readonly reads: string[] = [];
  constructor(readonly values = new Map<string, string>(), readonly failing = new Set<string>()) {}
  set(vault: string, name: string, value: string): void { this.values.set(`${vault}/${name}`, value); }
  async getSecret(vault: string, name: string): Promise<string | undefined> {
    this.reads.push(`${vault}/${name}`);
    if (this.failing.has(vault)) throw new Error(`Forbidden: the caller has no 'Key Vault Secrets User' role on vault ${vault}`);
    return this.values.get(`${vault}/${name}`);
  }
}

describe('server keys', () => {
  test('one key per server however it is written', () => {
    const same: Array<[string, string]> = [
      ['myreg.azurecr.io', 'myreg.azurecr.io'],
      ['MyReg.AzureCR.io', 'myreg.azurecr.io'],
      ['https://myreg.azurecr.io', 'myreg.azurecr.io'],
      ['https://myreg.azurecr.io/v2/', 'myreg.azurecr.io'],
      ['myreg.azurecr.io:443', 'myreg.azurecr.io'],
      ['https://myreg.azurecr.io:443/', 'myreg.azurecr.io'],
      ['http://reg.example:80', 'reg.example'],
      ['  localhost:5000 ', 'localhost:5000'],
      ['http://127.0.0.1:5000/v2/', '127.0.0.1:5000'],
      ['[::1]:5000', '[::1]:5000'],
      ['docker.io', 'docker.io'],
      ['index.docker.io', 'docker.io'],
      ['registry-1.docker.io', 'docker.io'],
      ['https://index.docker.io/v1/', 'docker.io'],
      ['registry.hub.docker.com', 'docker.io'],
    ];
    for (const [input, key] of same) assert.equal(serverKey(input), key, input);
    assert.notEqual(serverKey('reg.example:5000'), serverKey('reg.example'), 'another port is another server');
    assert.notEqual(serverKey('http://reg.example:443'), serverKey('reg.example'), 'port 443 is only the default for https');
    for (const bad of ['', '   ', 'user@reg.example', 'ftp://reg.example', 'reg example']) {
      assert.throws(() => serverKey(bad), (e: unknown) => e instanceof KeychainError && /is not a registry server/.test(e.message), JSON.stringify(bad));
    }
  });
});

describe('inline credentials', () => {
  test('answer their own server in any spelling, nothing else', async () => {
    const kc = new InlineKeychain({ server: 'https://MyReg.azurecr.io', username: 'tok_pull', password: 'inline-pw:colon' }, 'imageRegistryCredentials[0]');
    for (const registry of ['myreg.azurecr.io', 'myreg.azurecr.io:443']) {
      const c = await kc.resolve({ registry, repository: 'myimage' });
      assert.deepEqual(c, { kind: 'basic', username: 'tok_pull', password: 'inline-pw:colon', source: 'imageRegistryCredentials[0] for myreg.azurecr.io (user tok_pull)' });
    }
    assert.equal(await kc.resolve({ registry: 'other.azurecr.io' }), undefined);
    assertNoSecret(kc.description);
    const hub = new InlineKeychain({ server: 'docker.io', username: 'yourname', password: 'inline-pw:colon' });
    assert.equal((await hub.resolve({ registry: 'index.docker.io' }))?.kind, 'basic');
  });

  test('--creds USER:PASS keeps colons in the password; a missing half is an error', async () => {
    const kc = InlineKeychain.fromUserPass('localhost:5000', 'AWS:inline-pw:colon');
    const c = await kc.resolve({ registry: 'localhost:5000' });
    assert.deepEqual(c?.kind === 'basic' && [c.username, c.password], ['AWS', 'inline-pw:colon']);
    assert.throws(() => InlineKeychain.fromUserPass('r.example', 'nocolon'), /--creds must be USERNAME:PASSWORD/);
    assert.throws(() => InlineKeychain.fromUserPass('r.example', ':inline-pw:colon'), (e: unknown) => e instanceof KeychainError && /the username is empty/.test(e.message) && !e.message.includes('inline-pw'));
    assert.throws(() => new InlineKeychain({ server: 'r.example', username: 'u', password: '' }), /has no password/);
    assert.throws(() => new InlineKeychain({ server: 'r.example', username: '', password: 'inline-pw:colon' }), /has no username/);
  });
});

describe('vault secrets', () => {
  test('seed 000: one secret holding JSON {"username","password"}, read at every resolve (never copied)', async () => {
    const vault = new MapSecrets();
    vault.set('mr724792bd295194e79d5881', 'my_docker_credentials', '{"username": "janedoe1", "password": "MyPassword123!"}');
    const kc = new VaultSecretKeychain({ server: 'docker.io', vault: 'mr724792bd295194e79d5881', secret: 'my_docker_credentials' }, vault);
    const c = await kc.resolve({ registry: 'registry-1.docker.io', repository: 'my_organization/my_private_container' });
    assert.deepEqual(c, { kind: 'basic', username: 'janedoe1', password: 'MyPassword123!', source: 'vault secret mr724792bd295194e79d5881/my_docker_credentials for docker.io' });
    assert.equal(await kc.resolve({ registry: 'ghcr.io' }), undefined);
    // a new secret version is what the next pull uses
    vault.set('mr724792bd295194e79d5881', 'my_docker_credentials', '{"username": "janedoe1", "password": "rotated-Pa55"}');
    const again = await kc.resolve({ registry: 'docker.io' });
    assert.equal(again?.kind === 'basic' && again.password, 'rotated-Pa55');
    assert.equal(vault.reads.length, 2);
  });

  test('seed 003: a pair of secrets $ACR_NAME-pull-usr / $ACR_NAME-pull-pwd', async () => {
    const vault = new MapSecrets();
    vault.set('mykeyvault', 'myregistry-pull-usr', 'b6f0a1c2-0000-4000-8000-000000000001\n');
    vault.set('mykeyvault', 'myregistry-pull-pwd', 'sp-secret-Pa55');
    const kc = new VaultSecretKeychain(secretPair('myregistry.azurecr.io', 'mykeyvault', 'myregistry-pull'), vault);
    assert.equal(kc.description, 'vault secrets mykeyvault/myregistry-pull-usr and mykeyvault/myregistry-pull-pwd for myregistry.azurecr.io');
    const c = await kc.resolve({ registry: 'myregistry.azurecr.io' });
    assert.deepEqual(c?.kind === 'basic' && [c.username, c.password], ['b6f0a1c2-0000-4000-8000-000000000001', 'sp-secret-Pa55']);
    const explicit = new VaultSecretKeychain({ server: 'myregistry.azurecr.io', vault: 'mykeyvault', usernameSecret: 'myregistry-pull-usr', passwordSecret: 'myregistry-pull-pwd' }, vault);
    assert.deepEqual(await explicit.resolve({ registry: 'myregistry.azurecr.io' }), { ...c, source: explicit.description });
  });

  test('a user name given as is, with only the password in a vault secret', async () => {
    const vault = new MapSecrets();
    vault.set('kv', 'acr-password', 'admin-Pa55');
    const kc = new VaultSecretKeychain({ server: 'r.example', vault: 'kv', username: 'myregistry', passwordSecret: 'acr-password' }, vault);
    assert.equal(kc.description, 'user myregistry with the password in vault secret kv/acr-password for r.example');
    const c = await kc.resolve({ registry: 'r.example' });
    assert.deepEqual(c?.kind === 'basic' && [c.username, c.password], ['myregistry', 'admin-Pa55']);
    const missing = new VaultSecretKeychain({ server: 'r.example', vault: 'kv', username: 'myregistry', passwordSecret: 'nope' }, vault);
    await assert.rejects(missing.resolve({ registry: 'r.example' }), /secret nope was not found in vault kv/);
  });

  test('every failure names vault and secret, never the value', async () => {
    const vault = new MapSecrets(new Map(), new Set(['lockedvault']));
    vault.set('kv', 'notjson', 'vault-leak-value');
    vault.set('kv', 'array', '["vault-leak-value"]');
    vault.set('kv', 'nofields', '{"user": "janedoe1", "pass": "vault-leak-value"}');
    vault.set('kv', 'nopassword', '{"username": "janedoe1", "password": ""}');
    vault.set('kv', 'p-usr', '   ');
    vault.set('kv', 'p-pwd', 'vault-leak-value');
    vault.set('kv', 'q-usr', 'someone');
    const one = (secret: string, v = 'kv') => new VaultSecretKeychain({ server: 'r.example', vault: v, secret }, vault).resolve({ registry: 'r.example' });
    await rejectsClean(one('missing'), /secret missing was not found in vault kv .*berth keyvault secret set --vault-name kv --name missing/);
    await rejectsClean(one('notjson'), /secret notjson in vault kv is not JSON; its value must be JSON like \{"username"/);
    await rejectsClean(one('array'), /secret array in vault kv is JSON but not an object/);
    await rejectsClean(one('nofields'), /secret nofields in vault kv has no username and password \(string\) field \(its fields: "user", "pass"\)/);
    await rejectsClean(one('nopassword'), /secret nopassword in vault kv has no password/);
    await rejectsClean(one('anything', 'lockedvault'), /cannot read secret anything from vault lockedvault: Forbidden: the caller has no 'Key Vault Secrets User' role/);
    const pair = (prefix: string) => new VaultSecretKeychain(secretPair('r.example', 'kv', prefix), vault).resolve({ registry: 'r.example' });
    await rejectsClean(pair('p'), /secret p-usr in vault kv is empty/);
    await rejectsClean(pair('q'), /secret q-pwd was not found in vault kv/);
    const e = await rejectsClean(pair('q'), /q-pwd/);
    assert.match(e.source, /vault secrets kv\/q-usr and kv\/q-pwd/);
  });
});

describe('expiring passwords', () => {
  const T0 = Date.parse('2026-01-01T00:00:00Z');
  const HOUR = 3600_000;

  test('the cached password until shortly before expiry, then one refresh however many resolve at once', async () => {
    let now = T0;
    let n = 0;
    const kc = new ExpiringPasswordKeychain({
      server: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', label: 'ECR password', now: () => now,
      current: { username: 'AWS', password: 'ecr-pw-0', expiresAt: new Date(T0 + 12 * HOUR) },
      refresh: async () => ({ username: 'AWS', password: `ecr-pw-${++n}`, expiresAt: new Date(now + 12 * HOUR) }),
    });
    const target = { registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', repository: 'myapp' };
    const pw = async () => { const c = await kc.resolve(target); return c?.kind === 'basic' ? c.password : undefined; };
    assert.equal(await pw(), 'ecr-pw-0');
    now = T0 + 11 * HOUR;
    assert.equal(await pw(), 'ecr-pw-0');
    assert.equal(n, 0);
    now = T0 + 12 * HOUR - 60_000; // inside the 5-minute margin
    const all = await Promise.all([pw(), pw(), pw(), pw()]);
    assert.deepEqual(all, ['ecr-pw-1', 'ecr-pw-1', 'ecr-pw-1', 'ecr-pw-1']);
    assert.equal(n, 1, 'one refresh for concurrent resolves');
    const c = await kc.resolve(target);
    assert.equal(c?.kind === 'basic' && c.expiresAt?.getTime(), now + 12 * HOUR);
    // the registry refused it (rotated early): invalidate() forces a refresh
    kc.invalidate(target, c!);
    assert.equal(await pw(), 'ecr-pw-2');
    assert.equal(await kc.resolve({ registry: 'other.example' }), undefined);
  });

  test('after expiry without a refresher: an error that says it expired and when', async () => {
    let now = T0;
    const kc = new ExpiringPasswordKeychain({ server: 'ecr.example', label: 'ECR password', now: () => now, current: { username: 'AWS', password: 'ecr-pw-static', expiresAt: new Date(T0 + HOUR) } });
    assert.equal((await kc.resolve({ registry: 'ecr.example' }))?.kind, 'basic');
    now = T0 + HOUR - 1000; // within the margin but not expired: still usable
    assert.equal((await kc.resolve({ registry: 'ecr.example' }))?.kind, 'basic');
    now = T0 + 3 * HOUR;
    await rejectsClean(kc.resolve({ registry: 'ecr.example' }), /the password for user AWS on ecr\.example expired at 2026-01-01T01:00:00\.000Z \(2 h ago\).*aws ecr get-login-password/);
  });

  test('a refresher that fails: the old password while it lasts, then the refresher\'s error', async () => {
    let now = T0;
    const kc = new ExpiringPasswordKeychain({ server: 'ecr.example', now: () => now, current: { username: 'AWS', password: 'ecr-pw-old', expiresAt: new Date(T0 + HOUR) },
      refresh: async () => { throw new Error('ExpiredTokenException: the security token included in the request is expired'); } });
    now = T0 + HOUR - 60_000;
    assert.equal((await kc.resolve({ registry: 'ecr.example' }))?.kind, 'basic');
    now = T0 + HOUR + 1;
    await rejectsClean(kc.resolve({ registry: 'ecr.example' }), /could not refresh the password for ecr\.example: ExpiredTokenException/);
    const stale = new ExpiringPasswordKeychain({ server: 'ecr.example', now: () => now, refresh: async () => ({ username: 'AWS', password: 'ecr-pw-x', expiresAt: new Date(now - 1) }) });
    await rejectsClean(stale.resolve({ registry: 'ecr.example' }), /returned a password that already expired at/);
    assert.throws(() => new ExpiringPasswordKeychain({ server: 'ecr.example' }), /needs a current password or a way to refresh it/);
  });

  test('commandRefresher runs a real command (aws ecr get-login-password style) and takes stdout as the password', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-ecr-'));
    try {
      const script = join(dir, 'get-login-password');
      await writeFile(script, `#!/bin/sh\necho x >> "${dir}/calls"\n[ "$1" = --region ] || { echo "aws: error: argument --region is required" >&2; exit 252; }\necho "ecr-pw-from-command-$(wc -l < "${dir}/calls" | tr -d ' ')"\n`);
      await chmod(script, 0o755);
      let now = T0;
      const kc = new ExpiringPasswordKeychain({ server: 'ecr.example', label: 'ECR password (get-login-password)', now: () => now,
        refresh: commandRefresher({ command: script, args: ['--region', 'eu-west-1'], username: 'AWS', lifetimeMs: 12 * HOUR, now: () => now }) });
      const c1 = await kc.resolve({ registry: 'ecr.example' });
      assert.deepEqual(c1?.kind === 'basic' && [c1.username, c1.password, c1.expiresAt?.getTime()], ['AWS', 'ecr-pw-from-command-1', T0 + 12 * HOUR]);
      now = T0 + 6 * HOUR;
      const c15 = await kc.resolve({ registry: 'ecr.example' });
      assert.equal(c15?.kind === 'basic' && c15.password, 'ecr-pw-from-command-1');
      now = T0 + 12 * HOUR;
      const c2 = await kc.resolve({ registry: 'ecr.example' });
      assert.equal(c2?.kind === 'basic' && c2.password, 'ecr-pw-from-command-2');
      assert.equal((await readFile(join(dir, 'calls'), 'utf8')).trim().split('\n').length, 2);
      const failing = new ExpiringPasswordKeychain({ server: 'ecr.example', refresh: commandRefresher({ command: script, username: 'AWS', lifetimeMs: HOUR }) });
      await rejectsClean(failing.resolve({ registry: 'ecr.example' }), /could not refresh the password for ecr\.example: .*get-login-password failed with exit code 252: aws: error: argument --region is required/);
      const missing = new ExpiringPasswordKeychain({ server: 'ecr.example', refresh: commandRefresher({ command: 'berth-no-such-aws', username: 'AWS', lifetimeMs: HOUR }) });
      await rejectsClean(missing.resolve({ registry: 'ecr.example' }), /berth-no-such-aws was not found on PATH/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('managed identity and expiring token passwords against a Berth registry', () => {
  let b: TestBerth;
  let reg: Awaited<ReturnType<typeof adminRegistry>>;
  let digest: string;
  let regScope: string;
  const client = (c: RegistryCredential) => new RegistryClient(reg.loginServer, c as ClientCredential);

  before(async () => {
    b = await startTestBerth();
    reg = await adminRegistry(b, 'kcmireg01');
    regScope = armId(await b.registries.get('rg', 'kcmireg01'));
    digest = (await pushTinyImage(new RegistryClient(reg.loginServer, { kind: 'basic', username: reg.username, password: reg.password }), 'myimage', 'v1')).digest;
  });
  after(async () => b?.cleanup());

  /** A user-assigned identity held by a workload, with its token provider over Berth's /msi/token; counts token requests. */
  const identityFor = async (name: string, role?: string) => {
    const { identity } = await b.managedIdentities.createOrUpdate('rg', name, {});
    if (role) await b.identity.assignRole(identity.principalId, findRole(role)!, regScope);
    const binding = b.workloads.bind(`group-${name}`, [identity.principalId]);
    const calls: string[] = [];
    const inner = endpointTokenProvider({ endpoint: `${b.url}/msi/token`, secret: binding.secret, clientId: identity.clientId });
    const getToken: AccessTokenProvider = (resource) => { calls.push(resource); return inner(resource); };
    return { identity, binding, calls, getToken };
  };

  test('AcrPull: token → /oauth2/exchange → refresh token (null-GUID user) → the manifest', async () => {
    const id = await identityFor('mi-pull', 'AcrPull');
    const kc = new ManagedIdentityKeychain({ server: reg.loginServer, identity: id.identity.id, getToken: id.getToken, tenant: b.identity.ids.tenantId });
    const target = { registry: reg.loginServer, repository: 'myimage' };
    const c = await kc.resolve(target);
    assert.equal(c?.kind, 'refreshToken');
    assert.equal(c?.kind === 'refreshToken' && c.username, NULL_GUID_USER);
    assert.ok(c!.expiresAt && c!.expiresAt.getTime() > Date.now(), 'expiry read from the refresh token');
    assert.match(describeCredential(c!), /a refresh token for 00000000-0000-0000-0000-000000000000 from managed identity .*mi-pull for localhost:\d+/);
    const m = await getManifest(client(c!), 'myimage', 'v1');
    assert.equal(m.status, 200, m.text);
    assert.equal(m.digest, digest);
    assert.deepEqual(id.calls, ['https://management.core.windows.net/']);
    // cached: no new token or exchange until invalidate()
    const again = await Promise.all([kc.resolve(target), kc.resolve(target)]);
    assert.equal(id.calls.length, 1);
    assert.equal(again[0]?.kind === 'refreshToken' && c?.kind === 'refreshToken' && again[0].refreshToken === c.refreshToken, true);
    kc.invalidate(target);
    const fresh = await kc.resolve(target);
    assert.equal(id.calls.length, 2);
    assert.equal((await getManifest(client(fresh!), 'myimage', 'v1')).status, 200);
    assert.equal(await kc.resolve({ registry: 'other.azurecr.io' }), undefined);
  });

  test('concurrent first resolves share one exchange; renewal shortly before the refresh token expires', async () => {
    const id = await identityFor('mi-cache', 'AcrPull');
    let now = Date.now();
    const kc = new ManagedIdentityKeychain({ server: reg.loginServer, identity: 'mi-cache', getToken: id.getToken, now: () => now });
    const target = { registry: reg.loginServer };
    const [a, b2, c] = await Promise.all([kc.resolve(target), kc.resolve(target), kc.resolve(target)]);
    assert.equal(id.calls.length, 1);
    assert.ok(a?.kind === 'refreshToken' && b2?.kind === 'refreshToken' && c?.kind === 'refreshToken' && a.refreshToken === b2.refreshToken && b2.refreshToken === c.refreshToken);
    now = a!.expiresAt!.getTime() - 10 * 60_000;
    await kc.resolve(target);
    assert.equal(id.calls.length, 1, 'ten minutes before expiry the cached token is still used');
    now = a!.expiresAt!.getTime() - 4 * 60_000;
    await kc.resolve(target);
    assert.equal(id.calls.length, 2, 'inside the five-minute margin it is renewed');
  });

  test('system-assigned identity of a container group', async () => {
    const groupId = `/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/kc-group`;
    const sys = await b.managedIdentities.ensureSystemAssigned(groupId, 'kc-group');
    await b.identity.assignRole(sys.id, findRole('AcrPull')!, regScope);
    const binding = b.workloads.bind('kc-group', [sys.id], sys.id);
    const kc = new ManagedIdentityKeychain({ server: reg.loginServer, identity: 'system', getToken: endpointTokenProvider({ endpoint: `${b.url}/msi/token`, secret: binding.secret }) });
    const c = await kc.resolve({ registry: reg.loginServer });
    assert.equal((await getManifest(client(c!), 'myimage', 'v1')).status, 200);
  });

  test('an exchange that never answers names the URL and how long Berth waited, not undici\'s code; the token stays out', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    try {
      const kc = new ManagedIdentityKeychain({ server: `127.0.0.1:${port}`, identity: 'mi-slow', getToken: async () => ({ token: 'aad-token-never-shown' }), timeoutMs: 300 });
      const e = await rejectsWithoutSecrets(kc.resolve({ registry: `127.0.0.1:${port}` }),
        new RegExp(`could not reach http://127\\.0\\.0\\.1:${port}/oauth2/exchange to exchange the identity's token \\(no answer within 300 ms\\)`), ['aad-token-never-shown']);
      assert.doesNotMatch(e.message, /UND_ERR/);
      assert.equal(e.origin, 'identity');
    } finally {
      silent.close();
    }
  });

  test('without AcrPull: the exchange succeeds, the pull is DENIED naming the missing role', async () => {
    const id = await identityFor('mi-norole');
    const kc = new ManagedIdentityKeychain({ server: reg.loginServer, identity: id.identity.id, getToken: id.getToken });
    const c = await kc.resolve({ registry: reg.loginServer });
    const m = await getManifest(client(c!), 'myimage', 'v1');
    assert.equal(m.status, 403);
    assert.match(m.text, /DENIED/);
    assert.match(m.text, /mi-norole .*has no role assignment granting 'Microsoft\.ContainerRegistry\/registries\/pull\/read'.* assign AcrPull/);
  });

  test('S7: a token password with an expiry; after the registry refuses it, invalidate() and a refresh get a working one', async () => {
    const r = await b.registries.get('rg', 'kcmireg01');
    await b.repoTokens.createOrUpdateToken(r, 'tok_pull', { scopeMap: '_repositories_pull' });
    const generate = async () => {
      const expiry = new Date(Date.now() + 3600_000).toISOString();
      const pw = (await b.repoTokens.generateCredentials(r, 'tok_pull', { name: 'password1', expiry })).passwords[0]!;
      return { username: 'tok_pull', password: pw.value, expiresAt: new Date(pw.expiry!) };
    };
    let refreshes = 0;
    const kc = new ExpiringPasswordKeychain({ server: reg.loginServer, label: 'token password', current: await generate(),
      refresh: async () => { refreshes++; return generate(); } });
    const target = { registry: reg.loginServer, repository: 'myimage' };
    const first = await kc.resolve(target);
    assert.equal((await getManifest(client(first!), 'myimage', 'v1')).status, 200);
    // the password is regenerated elsewhere (rotation): the registry refuses the one the keychain holds
    await generate();
    await assert.rejects(getManifest(client(first!), 'myimage', 'v1'), /UNAUTHORIZED|authentication failed/i);
    assert.equal(refreshes, 0);
    kc.invalidate(target, first!);
    const second = await kc.resolve(target);
    assert.equal(refreshes, 1);
    assert.equal((await getManifest(client(second!), 'myimage', 'v1')).status, 200);
  });

  test('failures: no token for the identity, a token the registry refuses, an unreachable registry', async () => {
    const id = await identityFor('mi-unbound', 'AcrPull');
    b.workloads.unbind('group-mi-unbound');
    const unbound = new ManagedIdentityKeychain({ server: reg.loginServer, identity: 'mi-unbound', getToken: id.getToken });
    const e = await rejectsClean(unbound.resolve({ registry: reg.loginServer }), /managed identity mi-unbound for localhost:\d+: could not get an access token for https:\/\/management\.core\.windows\.net\/: .*HTTP 401: This caller holds no managed identity/);
    assert.equal(e.source, unbound.description);
    const forged = new ManagedIdentityKeychain({ server: reg.loginServer, identity: 'forged', getToken: async () => ({ token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' }) });
    const f = await rejectsClean(forged.resolve({ registry: reg.loginServer }), /localhost:\d+ refused the token exchange \(unauthorized: authentication required: the access token is invalid/);
    assert.ok(!f.message.includes('eyJ'), 'the token is not in the message');
    const gone = new ManagedIdentityKeychain({ server: '127.0.0.1:1', identity: 'x', getToken: (await identityFor('mi-gone', 'AcrPull')).getToken });
    await rejectsClean(gone.resolve({ registry: '127.0.0.1:1' }), /could not reach http:\/\/127\.0\.0\.1:1\/oauth2\/exchange .*\(ECONNREFUSED\)/);
  });
});

describe('MultiKeychain and keychainFor', () => {
  /** A source that records whether it was asked. */
  class Probe implements Keychain {
    asked = 0;
    invalidated = 0;
    constructor(readonly description: string, private readonly answer?: RegistryCredential | Error) {}
    async resolve(): Promise<RegistryCredential | undefined> {
      this.asked++;
      if (this.answer instanceof Error) throw this.answer;
      return this.answer;
    }
    invalidate(): void { this.invalidated++; }
  }

  test('the first source with a credential wins; none is anonymous; a failure is not anonymous', async () => {
    const first = new Probe('first');
    const second = new Probe('second', { kind: 'basic', username: 'u2', password: 'p', source: 'second' });
    const third = new Probe('third', { kind: 'basic', username: 'u3', password: 'p', source: 'third' });
    const chain = new MultiKeychain([first, second, third]);
    assert.equal(chain.description, 'first, second, third');
    assert.equal((await chain.resolve({ registry: 'r.example' })).source, 'second');
    assert.deepEqual([first.asked, second.asked, third.asked], [1, 1, 0]);
    assert.deepEqual(await new MultiKeychain([first]).resolve({ registry: 'r.example' }), { kind: 'anonymous', source: 'anonymous' });
    const broken = new MultiKeychain([new Probe('broken', new KeychainError('broken', 'helper crashed')), third]);
    await assert.rejects(broken.resolve({ registry: 'r.example' }), /helper crashed/);
    chain.invalidate({ registry: 'r.example' }, { kind: 'anonymous', source: 'x' });
    assert.deepEqual([first.invalidated, second.invalidated, third.invalidated], [1, 1, 1]);
  });

  test('keychainFor: inline, expiring, vault, identity, docker config, then platform defaults, each for its own server', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-kcfor-'));
    try {
      const cfg = join(dir, 'config.json');
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      await writeFile(cfg, JSON.stringify({ auths: { 'https://both.example': { auth: b64('from-config:x') }, 'config.example': { auth: b64('cfguser:x') } } }));
      const vault = new MapSecrets();
      vault.set('kv', 'creds', '{"username": "vaultuser", "password": "MyPassword123!"}');
      const platform = new InlineKeychain({ server: 'platform.example', username: 'platformuser', password: 'x' }, 'platform default');
      const platformBoth = new InlineKeychain({ server: 'both.example', username: 'platform-both', password: 'x' }, 'platform default');
      let exchanged = 0;
      const kc = keychainFor({
        inline: [{ server: 'both.example', username: 'inline-both', password: 'inline-pw:colon' }, { server: 'inline.example', username: 'inlineuser', password: 'x', label: 'imageRegistryCredentials[1]' }],
        expiring: [{ server: 'ecr.example', current: { username: 'AWS', password: 'ecr-pw-1', expiresAt: new Date(Date.now() + 3600_000) } }],
        vaultSecrets: [{ server: 'vault.example', vault: 'kv', secret: 'creds' }],
        identities: [{ server: '127.0.0.1:1', identity: 'mi', getToken: async () => { exchanged++; throw new Error('no identity endpoint here'); } }],
        dockerConfig: cfg,
      }, { secrets: vault, defaults: [platformBoth, platform] });
      const who = async (registry: string) => {
        const c = await kc.resolve({ registry });
        return c.kind === 'basic' ? `${c.username} <- ${c.source}` : c.kind;
      };
      assert.equal(await who('both.example'), 'inline-both <- inline credentials #1 for both.example (user inline-both)');
      assert.equal(await who('inline.example'), 'inlineuser <- imageRegistryCredentials[1] for inline.example (user inlineuser)');
      assert.equal(await who('ecr.example'), 'AWS <- expiring password for ecr.example (user AWS)');
      assert.equal(await who('vault.example'), 'vaultuser <- vault secret kv/creds for vault.example');
      assert.match(await who('config.example'), /^cfguser <- docker config .*config\.json \(auths\["config\.example"\]\)$/);
      assert.equal(await who('platform.example'), 'platformuser <- platform default for platform.example (user platformuser)');
      assert.equal(await who('nobody.example'), 'anonymous');
      assert.equal(exchanged, 0, 'the identity source was never asked for another server');
      await rejectsClean(kc.resolve({ registry: '127.0.0.1:1' }), /managed identity mi for 127\.0\.0\.1:1: could not get an access token/);
      assertNoSecret(kc.description);
      assert.throws(() => keychainFor({ vaultSecrets: [{ server: 'v.example', vault: 'kv', secret: 's' }] }), /no vault is available/);
      const missingCfg = keychainFor({ dockerConfig: join(dir, 'absent.json') });
      await rejectsClean(missingCfg.resolve({ registry: 'x.example' }), /absent\.json does not exist/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
