// The Azure SDK's SecretClient (@azure/keyvault-secrets, unmodified) against a Berth vault: challenge
// auth, set/get/list/versions/update/delete/recover/purge and error codes.
//
// The SDK refuses plain http unless `allowInsecureConnection: true` ("Cannot connect to http://... while
// allowInsecureConnection is false."), and @azure/identity's ClientSecretCredential refuses an http
// authority ("The authorityHost address must use the 'https' protocol."). Until the vault listeners
// speak HTTPS the flow runs over http with allowInsecureConnection and a TokenCredential that fetches
// tokens from Berth's identity endpoint; once vaultUri is https it runs without that option, trusting
// Berth's CA through an https.Agent (the SDKs' `agent` option) built from the first ca.crt/ca.pem found
// in the data directory (or NODE_EXTRA_CA_CERTS), and the ClientSecretCredential test runs too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SecretClient } from '@azure/keyvault-secrets';
import { ClientSecretCredential } from '@azure/identity';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { Agent } from 'node:https';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestBerth, type TestBerth } from './helpers/berth.js';
import { principalWithRole, testVault, tokenFor, type TestPrincipal } from './helpers/vault.js';

let b: TestBerth;
let uri: string;
let officer: TestPrincipal;
const calls: Array<{ scopes: string[]; tenantId?: string }> = [];

before(async () => {
  b = await startTestBerth();
  const v = await testVault(b, 'sdk-vault');
  uri = v.uri;
  officer = await principalWithRole(b, 'Key Vault Secrets Officer', v.scope);
});
after(async () => b?.cleanup());

const https = () => uri.startsWith('https://');
const notHttps = () => (https() ? false : 'the vault listener is plain http (TLS not merged yet): ClientSecretCredential refuses an http authorityHost');

/** A TokenCredential that asks Berth's token endpoint (client credentials) for each scope the SDK wants. */
function berthCredential(p: TestPrincipal): TokenCredential {
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
      const list = Array.isArray(scopes) ? scopes : [scopes];
      calls.push({ scopes: list, ...(options?.tenantId ? { tenantId: options.tenantId } : {}) });
      return tokenFor(b, p, list[0]);
    },
  };
}

/** Over HTTPS: an agent trusting Berth's CA (the first ca.crt/ca.pem in the data directory), else NODE_EXTRA_CA_CERTS. */
function transport(): { agent: Agent } | { allowInsecureConnection: true } | Record<string, never> {
  if (!https()) return { allowInsecureConnection: true };
  const find = (dir: string): string | undefined => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) { const r = find(p); if (r) return r; } else if (/^ca\.(crt|pem)$/.test(f)) return p;
    }
    return undefined;
  };
  const ca = find(b.dataDir);
  return ca ? { agent: new Agent({ ca: readFileSync(ca) }) } : {};
}

/** A vaultUri by name (<vault>.vault.localhost) passes the SDK's challenge check; one on a port of its own needs it off. */
const byName = () => /\.vault\.localhost:\d+\/$/.test(uri);
const challengeScope = () => (byName() ? `https://vault.localhost:${b.port}/.default` : 'https://vault.azure.net/.default');

function client(credential: TokenCredential, serviceVersion?: '7.4' | '7.5' | '7.6'): SecretClient {
  return new SecretClient(uri, credential, { ...(byName() ? {} : { disableChallengeResourceVerification: true }), ...transport(), ...(serviceVersion ? { serviceVersion } : {}) });
}

test('without allowInsecureConnection the SDK refuses the plain-http URL of a vault port (documents the refusal)', async () => {
  // Every vault port also speaks plain HTTP; the SDK will not send a token there.
  const c = new SecretClient(uri.replace(/^https:/, 'http:'), berthCredential(officer), { disableChallengeResourceVerification: true });
  await assert.rejects(c.getSecret('x'), (e: Error) => {
    assert.match(e.message, /^Cannot connect to http:\/\/(sdk-vault\.vault\.)?localhost:\d+\/secrets\/x.* while allowInsecureConnection is false\.$/);
    return true;
  });
});

test('SecretClient: challenge, set, get, list (paged), versions, update, disabled, delete, recover, purge', async () => {
  const c = client(berthCredential(officer));
  const s1 = await c.setSecret('sdk-secret', 'value-1', { contentType: 'text/plain', tags: { env: 'sdk' } });
  assert.equal(s1.value, 'value-1');
  assert.match(s1.properties.version ?? '', /^[0-9a-f]{32}$/);
  assert.equal(s1.properties.recoveryLevel, 'Recoverable+Purgeable');
  assert.deepEqual(calls[0], { scopes: [challengeScope()], tenantId: b.identity.ids.tenantId }, 'the challenge drove the token request');
  const s2 = await c.setSecret('sdk-secret', 'value-2');
  assert.equal((await c.getSecret('sdk-secret')).value, 'value-2');
  assert.equal((await c.getSecret('sdk-secret', { version: s1.properties.version! })).value, 'value-1');
  for (let i = 0; i < 26; i++) await c.setSecret(`many-${i}`, `v${i}`);
  const names: string[] = [];
  for await (const p of c.listPropertiesOfSecrets()) names.push(p.name);
  assert.equal(names.length, 27, 'all pages were followed (25 per page)');
  assert.ok(names.includes('sdk-secret'));
  const versions: string[] = [];
  for await (const p of c.listPropertiesOfSecretVersions('sdk-secret')) versions.push(p.version!);
  assert.deepEqual(versions.sort(), [s1.properties.version!, s2.properties.version!].sort());
  const upd = await c.updateSecretProperties('sdk-secret', s2.properties.version!, { enabled: false, tags: { state: 'off' } });
  assert.equal(upd.enabled, false);
  await assert.rejects(c.getSecret('sdk-secret'), (e: { statusCode?: number; code?: string; message: string }) =>
    e.statusCode === 403 && e.code === 'Forbidden' && /disabled secret/.test(e.message));
  await c.updateSecretProperties('sdk-secret', s2.properties.version!, { enabled: true });
  await assert.rejects(c.getSecret('missing'), (e: { statusCode?: number; code?: string }) => e.statusCode === 404 && e.code === 'SecretNotFound');

  const del = await (await c.beginDeleteSecret('sdk-secret', { intervalInMs: 50 })).pollUntilDone();
  assert.equal(del.name, 'sdk-secret');
  assert.ok(del.deletedOn instanceof Date && del.scheduledPurgeDate instanceof Date);
  assert.equal((await c.getDeletedSecret('sdk-secret')).name, 'sdk-secret');
  const deleted: string[] = [];
  for await (const d of c.listDeletedSecrets()) deleted.push(d.name);
  assert.deepEqual(deleted, ['sdk-secret']);
  await (await c.beginRecoverDeletedSecret('sdk-secret', { intervalInMs: 50 })).pollUntilDone();
  assert.equal((await c.getSecret('sdk-secret')).value, 'value-2');
  await (await c.beginDeleteSecret('sdk-secret', { intervalInMs: 50 })).pollUntilDone();
  await c.purgeDeletedSecret('sdk-secret');
  await assert.rejects(c.getDeletedSecret('sdk-secret'), (e: { statusCode?: number }) => e.statusCode === 404);
  await c.setSecret('sdk-secret', 'reborn');
  // the oldest service version Berth accepts works as well
  assert.equal((await client(berthCredential(officer), '7.4').getSecret('sdk-secret')).value, 'reborn');
});

test('SecretClient: a principal with only Reader is refused with 403 Forbidden', async () => {
  const reader = await principalWithRole(b, 'Reader', `/subscriptions/${b.identity.ids.subscriptionId}`);
  const c = client(berthCredential(reader));
  await assert.rejects(c.getSecret('many-1'), (e: { statusCode?: number; code?: string; message: string }) =>
    e.statusCode === 403 && e.code === 'Forbidden' && e.message.includes('Microsoft.KeyVault/vaults/secrets/getSecret/action'));
});

test('ClientSecretCredential pointed at Berth\'s identity endpoint (authorityHost) with SecretClient', async (t) => {
  const why = notHttps();
  if (why) return t.skip(why);
  const cred = new ClientSecretCredential(b.identity.ids.tenantId, officer.appId, officer.secret, { authorityHost: b.httpsUrl ?? b.url, disableInstanceDiscovery: true, ...transport() });
  const c = client(cred);
  await c.setSecret('via-identity', 'v');
  assert.equal((await c.getSecret('via-identity')).value, 'v');
});
