// The vault: Key Vault secrets REST protocol against a live Berth (each operation and error code, the
// challenge, paging), RBAC on data actions, encryption at rest, KEK rotation, and the Azure SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestBerth, type TestBerth } from './helpers/berth.js';
import { principalWithRole, testVault, tokenFor, type TestPrincipal } from './helpers/vault.js';
import { checkVaultName } from '../src/vault/names.js';
import { startBerth } from '../src/platform/berth.js';

let b: TestBerth;
let uri: string;
let scope: string;
let officer: TestPrincipal;
let officerToken: string;

before(async () => {
  b = await startTestBerth();
  ({ uri, scope } = await testVault(b, 'proto-vault'));
  officer = await principalWithRole(b, 'Key Vault Secrets Officer', scope);
  officerToken = (await tokenFor(b, officer)).token;
});
after(async () => b?.cleanup());

/** The vault's URL on its own port (kept besides the by-name one). */
async function portUri(b: TestBerth, name: string): Promise<string> {
  return `${b.tls ? 'https' : 'http'}://localhost:${(await b.vaults.byName(name))!.port}/`;
}

async function kv(method: string, path: string, opts: { body?: unknown; token?: string | null; raw?: string } = {}) {
  const token = opts.token === undefined ? officerToken : opts.token;
  const sep = path.includes('?') ? '&' : '?';
  const url = /^https?:/.test(path) ? path : `${uri.replace(/\/$/, '')}${path}${path.includes('api-version') ? '' : `${sep}api-version=7.4`}`;
  const res = await b.fetch(url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(opts.body !== undefined || opts.raw !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : opts.raw !== undefined ? { body: opts.raw } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

test('vault names follow Azure\'s rules, each violation with its own message; names are globally unique', async () => {
  for (const ok of ['abc', 'a-b-c', 'mykeyvault', 'A1234567890123456789012z', 'x9']) {
    if (ok.length >= 3) assert.doesNotThrow(() => checkVaultName(ok));
  }
  const cases: Array<[string, RegExp]> = [
    ['ab', /is 2 characters long/], ['a'.repeat(25), /is 25 characters long/], ['my_vault', /contains '_'/],
    ['1vault', /does not begin with a letter/], ['-vault', /does not begin with a letter/], ['vault-', /does not end with a letter or digit/],
    ['my--vault', /contains consecutive hyphens/],
  ];
  for (const [name, why] of cases) assert.throws(() => checkVaultName(name), (e: Error) => why.test(e.message) && /3-24 characters/.test(e.message), name);
  // over the management API: 400 with the code, and 409 for a name taken in another group
  const owner = JSON.parse(readFileSync(join(b.dataDir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string; subscriptionId: string };
  const arm = (await tokenFor(b, { appId: owner.clientId, secret: owner.clientSecret }, 'https://management.core.windows.net//.default')).token;
  const put = (rg: string, name: string) => b.fetch(`${b.url}/subscriptions/${owner.subscriptionId}/resourcegroups/${rg}/providers/Microsoft.KeyVault/vaults/${name}?api-version=2023-07-01`, {
    method: 'PUT', headers: { authorization: `Bearer ${arm}`, 'content-type': 'application/json' }, body: JSON.stringify({ location: 'westus', properties: { sku: { family: 'A', name: 'standard' } } }) });
  const bad = await put('rg', 'my--vault');
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'VaultNameNotValid');
  await b.groups.createOrUpdate('other', 'westus');
  const taken = await put('other', 'PROTO-vault');
  assert.equal(taken.status, 409);
  assert.match(((await taken.json()) as { error: { message: string } }).error.message, /already in use/);
});

test('challenge: an unauthenticated request, even a PUT with no body, gets 401 and the Bearer challenge', async () => {
  for (const [method, path] of [['PUT', '/secrets/x'], ['GET', '/secrets'], ['DELETE', '/deletedsecrets/x']] as const) {
    const r = await kv(method, path, { token: null });
    assert.equal(r.status, 401, `${method} ${path}`);
    // by name (<vault>.vault.localhost) the resource is the parent domain, which SDKs accept as it is
    const resource = /\.vault\.localhost:/.test(uri) ? `https://vault.localhost:${b.port}` : 'https://vault.azure.net';
    assert.equal(r.headers.get('www-authenticate'), `Bearer authorization="${b.httpsUrl ?? b.url}/${b.identity.ids.tenantId}", resource="${resource}"`);
    assert.deepEqual(r.body, { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } });
  }
  // on the vault's own port the resource is Azure's
  const own = await b.fetch(`${await portUri(b, 'proto-vault')}secrets?api-version=7.4`);
  assert.equal(own.status, 401);
  assert.match(own.headers.get('www-authenticate') ?? '', /resource="https:\/\/vault\.azure\.net"$/);
  // a token for another audience (the management API) is refused the same way
  const arm = await tokenFor(b, officer, 'https://management.core.windows.net//.default');
  const r = await kv('GET', '/secrets', { token: arm.token });
  assert.equal(r.status, 401);
  assert.equal(r.body.error.code, 'Unauthorized');
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer authorization=/);
});

test('set, get (latest, by version, trailing slash), versions, update attributes, disabled secret', async () => {
  const v1 = await kv('PUT', '/secrets/db-password', { body: { value: 'first-value', contentType: 'text/plain', tags: { env: 'test' } } });
  assert.equal(v1.status, 200);
  assert.equal(v1.body.value, 'first-value');
  assert.match(v1.body.id, new RegExp(`^${uri}secrets/db-password/[0-9a-f]{32}$`));
  assert.equal(v1.body.contentType, 'text/plain');
  assert.deepEqual(v1.body.tags, { env: 'test' });
  const a = v1.body.attributes;
  assert.equal(a.enabled, true);
  assert.equal(a.recoveryLevel, 'Recoverable+Purgeable');
  assert.equal(a.recoverableDays, 90);
  assert.ok(Number.isInteger(a.created) && a.created === a.updated && Math.abs(a.created - Date.now() / 1000) < 600);
  const v2 = await kv('PUT', '/secrets/db-password', { body: { value: 'second-value' } });
  assert.notEqual(v2.body.id, v1.body.id);
  assert.equal(v2.body.tags, undefined);
  assert.equal((await kv('GET', '/secrets/db-password')).body.value, 'second-value');
  assert.equal((await kv('GET', '/secrets/DB-Password/')).body.value, 'second-value', 'names are case-insensitive; trailing slash = latest');
  const ver1 = v1.body.id.split('/').pop();
  assert.equal((await kv('GET', `/secrets/db-password/${ver1}`)).body.value, 'first-value');
  const versions = await kv('GET', '/secrets/db-password/versions');
  assert.equal(versions.status, 200);
  assert.deepEqual(versions.body.value.map((x: { id: string }) => x.id), [v1.body.id, v2.body.id]);
  assert.ok(versions.body.value.every((x: { value?: string }) => x.value === undefined), 'no values in version lists');
  assert.equal(versions.body.nextLink, null);
  // update attributes of one version: no value in the answer, the value is unchanged
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const upd = await kv('PATCH', `/secrets/db-password/${ver1}`, { body: { contentType: 'application/x-pw', attributes: { exp }, tags: { a: 'b' } } });
  assert.equal(upd.status, 200);
  assert.equal(upd.body.value, undefined);
  assert.equal(upd.body.id, v1.body.id);
  assert.equal(upd.body.attributes.exp, exp);
  assert.equal(upd.body.contentType, 'application/x-pw');
  assert.deepEqual(upd.body.tags, { a: 'b' });
  assert.equal((await kv('GET', `/secrets/db-password/${ver1}`)).body.value, 'first-value');
  // PATCH with an empty version updates the latest; disabling it makes get refuse with 403
  const dis = await kv('PATCH', '/secrets/db-password/', { body: { attributes: { enabled: false } } });
  assert.equal(dis.body.id, v2.body.id);
  assert.equal(dis.body.attributes.enabled, false);
  const refused = await kv('GET', '/secrets/db-password');
  assert.equal(refused.status, 403);
  assert.deepEqual(refused.body, { error: { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.' } });
  assert.equal((await kv('GET', `/secrets/db-password/${ver1}`)).status, 200, 'other versions stay readable');
  assert.equal((await kv('PATCH', '/secrets/db-password/', { body: { attributes: { enabled: true } } })).body.attributes.enabled, true);
  assert.equal((await kv('GET', '/secrets/db-password')).status, 200);
  // nbf/exp are stored and returned; as Key Vault documents, get still works outside the window
  const past = Math.floor(Date.now() / 1000) - 60;
  const expired = await kv('PUT', '/secrets/old-token', { body: { value: 'v', attributes: { exp: past, nbf: past - 60 } } });
  assert.equal(expired.body.attributes.exp, past);
  assert.equal(expired.body.attributes.nbf, past - 60);
  assert.equal((await kv('GET', '/secrets/old-token')).status, 200);
  assert.equal((await kv('PUT', '/secrets/created-disabled', { body: { value: 'v', attributes: { enabled: false } } })).body.attributes.enabled, false);
  assert.equal((await kv('GET', '/secrets/created-disabled')).status, 403);
});

test('errors: SecretNotFound, BadParameter (name, body, nbf>exp, api-version, maxresults, skiptoken)', async () => {
  const nf = await kv('GET', '/secrets/does-not-exist');
  assert.equal(nf.status, 404);
  assert.equal(nf.body.error.code, 'SecretNotFound');
  assert.match(nf.body.error.message, /^A secret with \(name\/id\) does-not-exist was not found in this key vault\./);
  assert.equal((await kv('GET', `/secrets/db-password/${'0'.repeat(32)}`)).body.error.code, 'SecretNotFound');
  assert.equal((await kv('GET', '/secrets/db-password/not-a-version')).status, 404);
  const badName = await kv('PUT', '/secrets/my_docker_credentials', { body: { value: 'x' } });
  assert.equal(badName.status, 400);
  assert.equal(badName.body.error.code, 'BadParameter');
  assert.match(badName.body.error.message, /invalid name: my_docker_credentials/);
  for (const [raw, why] of [['', /empty/], ['{not json', /not valid JSON/], ['{"contentType":"x"}', /'value'/], ['{"value":1}', /'value'/], ['[1]', /JSON object/]] as const) {
    const r = await kv('PUT', '/secrets/s1', { raw });
    assert.equal(r.status, 400, raw);
    assert.equal(r.body.error.code, 'BadParameter');
    assert.match(r.body.error.message, why);
  }
  const big = await kv('PUT', '/secrets/big', { body: { value: 'x'.repeat(25 * 1024 + 1) } });
  assert.equal(big.status, 400);
  assert.match(big.body.error.message, /too large/);
  const window = await kv('PUT', '/secrets/w', { body: { value: 'x', attributes: { nbf: 200, exp: 100 } } });
  assert.equal(window.status, 400);
  assert.match(window.body.error.message, /'nbf'/);
  const noVersion = await b.fetch(`${uri}secrets`, { headers: { authorization: `Bearer ${officerToken}` } });
  assert.equal(noVersion.status, 400);
  assert.match(((await noVersion.json()) as { error: { message: string } }).error.message, /api-version/);
  // 7.x (az 2.45 sends 7.3) and the date forms of current SDKs (4.11 sends 2025-07-01)
  for (const v of ['7.0', '7.3', '7.6', '7.6-preview.2', '2025-07-01', '2026-03-01-preview']) assert.equal((await kv('GET', `/secrets?api-version=${v}`)).status, 200, v);
  for (const v of ['6.0', '2016-10-01', '2025-13-01', 'latest']) {
    const old = await kv('GET', `/secrets?api-version=${v}`);
    assert.equal(old.status, 400, v);
    assert.match(old.body.error.message, /not recognized.*7\.4, 7\.6 or 2025-07-01/);
  }
  for (const m of ['0', '26', 'x']) {
    const r = await kv('GET', `/secrets?maxresults=${m}`);
    assert.equal(r.status, 400, m);
    assert.match(r.body.error.message, /between 1 and 25/);
  }
  assert.equal((await kv('GET', '/secrets?$skiptoken=garbage')).body.error.code, 'BadParameter');
  assert.equal((await kv('GET', '/keys')).status, 404);
});

test('paging: maxresults and an absolute nextLink with $skiptoken, over secrets and versions', async () => {
  const { uri: u2 } = await testVault(b, 'paging-vault');
  await b.identity.assignRole(officer.objectId, (await import('../src/identity/roles.js')).findRole('Key Vault Secrets Officer')!, `/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/paging-vault`);
  const call = async (method: string, url: string, body?: unknown) => {
    const res = await b.fetch(url, { method, headers: { authorization: `Bearer ${officerToken}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return (await res.json()) as { value: Array<{ id: string }>; nextLink: string | null };
  };
  for (let i = 0; i < 7; i++) await call('PUT', `${u2}secrets/s${i}?api-version=7.4`, { value: `v${i}` });
  for (let i = 0; i < 4; i++) await call('PUT', `${u2}secrets/s0?api-version=7.4`, { value: `again${i}` });
  const walk = async (first: string) => {
    const ids: string[] = [];
    let page = await call('GET', first);
    let pages = 1;
    ids.push(...page.value.map((x) => x.id));
    while (page.nextLink) {
      assert.ok(page.nextLink.startsWith(u2), 'nextLink is absolute');
      assert.match(page.nextLink, /[?&]\$skiptoken=[^&]+/);
      assert.match(page.nextLink, /maxresults=3/);
      page = await call('GET', page.nextLink);
      pages++;
      ids.push(...page.value.map((x) => x.id));
    }
    return { ids, pages };
  };
  const all = await walk(`${u2}secrets?api-version=7.4&maxresults=3`);
  assert.equal(all.pages, 3);
  assert.deepEqual(all.ids, [0, 1, 2, 3, 4, 5, 6].map((i) => `${u2}secrets/s${i}`));
  const versions = await walk(`${u2}secrets/s0/versions?api-version=7.4&maxresults=3`);
  assert.equal(versions.ids.length, 5);
  assert.equal(new Set(versions.ids).size, 5);
  assert.equal(versions.pages, 2);
});

test('soft delete, list deleted, Conflict on a deleted name, recover, purge', async () => {
  await kv('PUT', '/secrets/to-delete', { body: { value: 'keep-me', tags: { t: '1' } } });
  const del = await kv('DELETE', '/secrets/to-delete');
  assert.equal(del.status, 200);
  assert.equal(del.body.value, undefined, 'no value in the delete answer');
  assert.equal(del.body.recoveryId, `${uri}deletedsecrets/to-delete`);
  assert.equal(del.body.scheduledPurgeDate - del.body.deletedDate, 90 * 86400);
  assert.match(del.body.id, /\/secrets\/to-delete\/[0-9a-f]{32}$/);
  assert.equal((await kv('GET', '/secrets/to-delete')).status, 404);
  assert.ok(!(await kv('GET', '/secrets')).body.value.some((x: { id: string }) => x.id.endsWith('/to-delete')), 'deleted secrets are not listed');
  assert.equal((await kv('DELETE', '/secrets/to-delete')).status, 404);
  const conflict = await kv('PUT', '/secrets/to-delete', { body: { value: 'new' } });
  assert.equal(conflict.status, 409);
  assert.equal(conflict.body.error.code, 'Conflict');
  assert.match(conflict.body.error.message, /deleted but recoverable state/);
  const listed = await kv('GET', '/deletedsecrets');
  const item = listed.body.value.find((x: { recoveryId: string }) => x.recoveryId.endsWith('/to-delete'));
  assert.equal(item.id, `${uri}secrets/to-delete`);
  assert.equal(item.deletedDate, del.body.deletedDate);
  const shown = await kv('GET', '/deletedsecrets/to-delete');
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body.tags, { t: '1' });
  const rec = await kv('POST', '/deletedsecrets/to-delete/recover');
  assert.equal(rec.status, 200);
  assert.equal(rec.body.value, undefined);
  assert.equal(rec.body.id, del.body.id);
  assert.equal((await kv('GET', '/secrets/to-delete')).body.value, 'keep-me');
  assert.equal((await kv('GET', '/deletedsecrets/to-delete')).status, 404);
  // purge: only a deleted secret can be purged; afterwards the name is free
  assert.equal((await kv('DELETE', '/deletedsecrets/to-delete')).status, 404);
  await kv('DELETE', '/secrets/to-delete');
  const purge = await kv('DELETE', '/deletedsecrets/to-delete');
  assert.equal(purge.status, 204);
  assert.equal((await kv('GET', '/deletedsecrets/to-delete')).status, 404);
  assert.equal((await kv('POST', '/deletedsecrets/to-delete/recover')).status, 404);
  const again = await kv('PUT', '/secrets/to-delete', { body: { value: 'fresh' } });
  assert.equal(again.status, 200);
  assert.equal((await kv('GET', '/secrets/to-delete/versions')).body.value.length, 1, 'purge removed every old version');
});

test('authorization: no role, Reader, Contributor, Owner cannot read values; Secrets User reads; Officer writes', async () => {
  await kv('PUT', '/secrets/rbac', { body: { value: 'rbac-value' } });
  const sub = `/subscriptions/${b.identity.ids.subscriptionId}`;
  const { scope: otherScope } = await testVault(b, 'other-vault');
  const roles: Array<[string, string | undefined, string | undefined, { read: boolean; list: boolean; write: boolean; del: boolean }]> = [
    ['no role', undefined, undefined, { read: false, list: false, write: false, del: false }],
    ['Reader on the subscription', 'Reader', sub, { read: false, list: false, write: false, del: false }],
    ['Contributor on the subscription', 'Contributor', sub, { read: false, list: false, write: false, del: false }],
    ['Owner on the resource group', 'Owner', `${sub}/resourceGroups/rg`, { read: false, list: false, write: false, del: false }],
    ['Secrets User on another vault', 'Key Vault Secrets User', otherScope, { read: false, list: false, write: false, del: false }],
    ['Secrets User on the vault', 'Key Vault Secrets User', scope, { read: true, list: true, write: false, del: false }],
    ['Secrets User on the subscription', 'Key Vault Secrets User', sub, { read: true, list: true, write: false, del: false }],
    ['Secrets Officer on the resource group', 'Key Vault Secrets Officer', `${sub}/resourceGroups/rg`, { read: true, list: true, write: true, del: true }],
    ['Key Vault Administrator on the vault', 'Key Vault Administrator', scope, { read: true, list: true, write: true, del: true }],
  ];
  let n = 0;
  for (const [label, role, at, want] of roles) {
    const p = await principalWithRole(b, role, at);
    const { token } = await tokenFor(b, p);
    const read = await kv('GET', '/secrets/rbac', { token });
    const list = await kv('GET', '/secrets', { token });
    const write = await kv('PUT', `/secrets/w-${n}`, { token, body: { value: 'w' } });
    const del = await kv('DELETE', `/secrets/${want.write ? `w-${n}` : 'rbac'}`, { token });
    n++;
    const got = { read: read.status === 200, list: list.status === 200, write: write.status === 200, del: del.status === 200 };
    assert.deepEqual(got, want, label);
    if (!want.read) {
      assert.equal(read.status, 403, label);
      assert.equal(read.body.error.code, 'Forbidden');
      assert.deepEqual(read.body.error.innererror, { code: 'ForbiddenByRbac' });
      assert.match(read.body.error.message, /^Caller is not authorized to perform action on resource\.\r\n/);
      assert.ok(read.body.error.message.includes("Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"), label);
      assert.ok(read.body.error.message.includes(`Caller: appid=${p.appId};oid=${p.objectId};`), label);
      assert.ok(read.body.error.message.includes(`Resource: '${scope.toLowerCase()}/secrets/rbac'`), label);
    } else {
      assert.equal(read.body.value, 'rbac-value');
    }
    if (!want.write) assert.ok(write.body.error.message.includes("Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'"), label);
    if (!want.del && want.read) assert.ok(del.body.error.message.includes("Action: 'Microsoft.KeyVault/vaults/secrets/delete'"), label);
  }
  assert.equal((await kv('GET', '/secrets/rbac')).body.value, 'rbac-value', 'nobody without the right deleted it');
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('encryption at rest: neither the database, its WAL, nor any file but the key reveals a value; logs neither', async () => {
  const values = [`plain-${randomBytes(12).toString('hex')}`, JSON.stringify({ username: 'janedoe1', password: `MyPassword-${randomBytes(6).toString('hex')}!` })];
  for (const [i, value] of values.entries()) {
    const r = await kv('PUT', `/secrets/at-rest-${i}`, { body: { value } });
    assert.equal(r.status, 200);
    assert.equal((await kv('GET', `/secrets/at-rest-${i}`)).body.value, value);
  }
  const db = join(b.dataDir, 'berth.db');
  assert.ok(existsSync(`${db}-wal`), 'the WAL is there to be searched too');
  const files = filesUnder(b.dataDir).filter((f) => !f.endsWith(join('keys', 'kek')));
  assert.ok(files.includes(db));
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const v of values) {
      for (const needle of [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64url'), 'MyPassword', 'janedoe1']) {
        assert.equal(bytes.includes(Buffer.from(needle)), false, `${f} holds a secret value`);
      }
    }
  }
  assert.equal(statSync(join(b.dataDir, 'keys', 'kek')).mode & 0o777, 0o600);
  const logs = b.logs.join('\n');
  assert.ok(!values.some((v) => logs.includes(v)) && !logs.includes('MyPassword'), 'no value in the logs');
});

test('KEK rotation re-wraps every vault key and registry password without loss; a wrong key is refused at start', async () => {
  const dir = (await import('node:fs/promises')).mkdtemp;
  const d = await dir(join((await import('node:os')).tmpdir(), 'berth-kek-'));
  let x = await startBerth({ dataDir: d, port: 0, logSink: () => undefined });
  try {
    await x.groups.createOrUpdate('rg', 'westus');
    const { vault } = await x.vaults.createOrUpdate('rg', 'kek-vault', {});
    const { vault: v2 } = await x.vaults.createOrUpdate('rg', 'kek-vault2', {});
    const s1 = await x.secrets.set(vault, 'one', { value: 'value-one' });
    await x.secrets.set(vault, 'one', { value: 'value-one-b' });
    await x.secrets.set(v2, 'two', { value: 'value-two' });
    await x.registries.createOrUpdate('rg', 'kekregistry', { sku: 'Basic', adminUserEnabled: true });
    const pw = (await x.registries.credentials('rg', 'kekregistry')).passwords.map((p) => p.value);
    const kekBefore = readFileSync(join(d, 'keys', 'kek'), 'utf8');
    const wrappedBefore = await x.sql.all('SELECT wrapped_key FROM vaults ORDER BY name');
    const r = await x.rotateKek();
    assert.equal(r.resealed, 4, '2 vault keys + 2 registry passwords');
    assert.notEqual(readFileSync(join(d, 'keys', 'kek'), 'utf8'), kekBefore);
    assert.equal(statSync(join(d, 'keys', 'kek')).mode & 0o777, 0o600);
    assert.equal(existsSync(join(d, 'keys', 'kek.new')), false);
    assert.notDeepEqual(await x.sql.all('SELECT wrapped_key FROM vaults ORDER BY name'), wrappedBefore);
    // the running server reads everything at once, and so does a restarted one
    assert.equal((await x.secrets.get(vault, 'one', s1.version)).value, 'value-one');
    assert.deepEqual((await x.registries.credentials('rg', 'kekregistry')).passwords.map((p) => p.value), pw);
    await x.stop();
    x = await startBerth({ dataDir: d, port: 0, logSink: () => undefined });
    const v = (await x.vaults.byName('kek-vault'))!;
    assert.equal((await x.secrets.get(v, 'one')).value, 'value-one-b');
    assert.equal((await x.secrets.get(v, 'one', s1.version)).value, 'value-one');
    assert.equal((await x.secrets.get((await x.vaults.byName('kek-vault2'))!, 'two')).value, 'value-two');
    assert.deepEqual((await x.registries.credentials('rg', 'kekregistry')).passwords.map((p) => p.value), pw);
    await x.stop();
    // an interrupted rotation (new key written, database not switched) is discarded at start
    writeFileSync(join(d, 'keys', 'kek.new'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    x = await startBerth({ dataDir: d, port: 0, logSink: () => undefined });
    assert.equal(existsSync(join(d, 'keys', 'kek.new')), false);
    assert.equal((await x.secrets.get((await x.vaults.byName('kek-vault'))!, 'one')).value, 'value-one-b');
    await x.stop();
    // the wrong key: a clear refusal, not garbage
    const saved = process.env.BERTH_KEK;
    process.env.BERTH_KEK = randomBytes(32).toString('base64');
    try {
      await assert.rejects(startBerth({ dataDir: d, port: 0, logSink: () => undefined }), /is not the key this data directory's values are sealed with/);
    } finally {
      if (saved === undefined) delete process.env.BERTH_KEK; else process.env.BERTH_KEK = saved;
    }
    x = await startBerth({ dataDir: d, port: 0, logSink: () => undefined });
  } finally {
    await x.stop().catch(() => undefined);
    await (await import('node:fs/promises')).rm(d, { recursive: true, force: true });
  }
});

test('ARM: vault resource shape, list by group and subscription, delete closes the data plane', async () => {
  const owner = JSON.parse(readFileSync(join(b.dataDir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string; subscriptionId: string; tenantId: string };
  const arm = (await tokenFor(b, { appId: owner.clientId, secret: owner.clientSecret }, 'https://management.core.windows.net//.default')).token;
  const base = `${b.url}/subscriptions/${owner.subscriptionId}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await b.fetch(`${base}${path}?api-version=2023-07-01`, { method, headers: { authorization: `Bearer ${arm}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const created = await call('PUT', '/resourcegroups/rg/providers/Microsoft.KeyVault/vaults/arm-vault', { location: 'West US', properties: { tenantId: owner.tenantId, sku: { family: 'A', name: 'standard' } } });
  assert.equal(created.status, 201);
  const p = created.body.properties;
  assert.equal(created.body.type, 'Microsoft.KeyVault/vaults');
  assert.equal(created.body.location, 'westus');
  assert.match(p.vaultUri, /^https:\/\/arm-vault\.vault\.localhost:\d+\/$|^https?:\/\/localhost:\d+\/$/);
  assert.equal(p.tenantId, owner.tenantId);
  assert.equal(p.enableRbacAuthorization, true);
  assert.equal(p.enableSoftDelete, true);
  assert.equal(p.softDeleteRetentionInDays, 90);
  assert.deepEqual(p.sku, { family: 'A', name: 'standard' });
  assert.equal((await call('PUT', '/resourcegroups/rg/providers/Microsoft.KeyVault/vaults/arm-vault', { location: 'westus', properties: { sku: { name: 'premium' } } })).status, 200);
  assert.equal((await call('GET', '/resourcegroups/rg/providers/Microsoft.KeyVault/vaults/arm-vault')).body.properties.sku.name, 'premium');
  assert.ok((await call('GET', '/resourcegroups/rg/providers/Microsoft.KeyVault/vaults')).body.value.some((v: { name: string }) => v.name === 'arm-vault'));
  assert.ok((await call('GET', '/providers/Microsoft.KeyVault/vaults')).body.value.length >= 3);
  // the creator gets Key Vault Administrator on the vault, so it can use secrets at once
  const ownerVault = await tokenFor(b, { appId: owner.clientId, secret: owner.clientSecret });
  const put = await b.fetch(`${p.vaultUri}secrets/by-creator?api-version=7.4`, { method: 'PUT', headers: { authorization: `Bearer ${ownerVault.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ value: 'x' }) });
  assert.equal(put.status, 200);
  const ownPort = await portUri(b, 'arm-vault');
  assert.equal((await call('DELETE', '/resourcegroups/rg/providers/Microsoft.KeyVault/vaults/arm-vault')).status, 200);
  assert.equal((await call('GET', '/resourcegroups/rg/providers/Microsoft.KeyVault/vaults/arm-vault')).status, 404);
  assert.equal((await call('DELETE', '/resourcegroups/rg/providers/Microsoft.KeyVault/vaults/arm-vault')).status, 204);
  await assert.rejects(b.fetch(`${ownPort}secrets?api-version=7.4`), 'the data plane port is closed');
  if (/\.vault\.localhost:/.test(p.vaultUri)) {
    const gone = await b.fetch(`${p.vaultUri}secrets?api-version=7.4`);
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'VaultNotFound');
  }
  assert.equal((await b.sql.get<{ n: number }>('SELECT count(*) AS n FROM vault_secret_versions WHERE vault_id NOT IN (SELECT id FROM vaults)'))!.n, 0);
});

test('vaults and their secrets survive a restart on the same port', async () => {
  await kv('PUT', '/secrets/persist', { body: { value: 'still-here' } });
  b = await b.restart(true);
  officerToken = (await tokenFor(b, officer)).token;
  assert.equal(b.vaults.vaultUri((await b.vaults.byName('proto-vault'))!), uri);
  assert.equal((await kv('GET', '/secrets/persist')).body.value, 'still-here');
});

test('a managed identity\'s token (workload endpoint, resource https://vault.azure.net) reads with Key Vault Secrets User', async () => {
  await kv('PUT', '/secrets/for-mi', { body: { value: 'mi-value' } });
  const { identity } = await b.managedIdentities.createOrUpdate('rg', 'vault-reader-mi', {});
  const binding = b.workloads.bind('vault-test-group', [identity.principalId]);
  const get = async () => {
    const tok = await b.fetch(`${b.url}/msi/token?api-version=2019-08-01&resource=${encodeURIComponent('https://vault.azure.net')}`, { headers: { 'X-IDENTITY-HEADER': binding.secret } });
    assert.equal(tok.status, 200);
    return kv('GET', '/secrets/for-mi', { token: ((await tok.json()) as { access_token: string }).access_token });
  };
  assert.equal((await get()).status, 403);
  await b.identity.assignRole(identity.principalId, (await import('../src/identity/roles.js')).findRole('Key Vault Secrets User')!, scope);
  assert.equal((await get()).body.value, 'mi-value');
});

test('KEK rotation with BERTH_KEK takes the new key from BERTH_KEK_NEW; deleting a resource group deletes its vaults', async () => {
  const { rotateKek } = await import('../src/storage/kek.js');
  const { Sealer } = await import('../src/storage/sealer.js');
  const { openDatabase } = await import('../src/storage/sqlite.js');
  const d = await (await import('node:fs/promises')).mkdtemp(join((await import('node:os')).tmpdir(), 'berth-kek-env-'));
  const db = openDatabase(join(d, 'berth.db'));
  try {
    const oldKey = randomBytes(32);
    const sealer = Sealer.fromKey(oldKey);
    db.prepare(`INSERT INTO vaults (id, subscription, resource_group, name, name_lower, location, sku, port, tags, wrapped_key, created_at)
      VALUES ('v1', 's', 'rg', 'n', 'n', 'westus', 'standard', 1, '{}', ?, 'now')`).run(sealer.seal('data-key', 'vault-key:v1'));
    const env = { BERTH_KEK: oldKey.toString('base64') };
    const { SqliteSql } = await import('../src/storage/sql/sqlite-sql.js');
    const sql = new SqliteSql(db);
    await assert.rejects(rotateKek(sql, join(d, 'kek'), sealer, env), /BERTH_KEK_NEW/);
    const newKey = randomBytes(32);
    const r = await rotateKek(sql, join(d, 'kek'), sealer, { ...env, BERTH_KEK_NEW: newKey.toString('base64') });
    assert.equal(r.resealed, 1);
    assert.equal(existsSync(join(d, 'kek')), false, 'no key file is written when the key lives in the environment');
    const wrapped = (db.prepare("SELECT wrapped_key FROM vaults WHERE id = 'v1'").get() as { wrapped_key: string }).wrapped_key;
    assert.equal(Sealer.fromKey(newKey).open(wrapped, 'vault-key:v1'), 'data-key');
    assert.throws(() => Sealer.fromKey(oldKey).open(wrapped, 'vault-key:v1'));
  } finally {
    db.close();
    await (await import('node:fs/promises')).rm(d, { recursive: true, force: true });
  }
  // resource group delete takes its vaults (and their listeners) with it
  const owner = JSON.parse(readFileSync(join(b.dataDir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string; subscriptionId: string };
  const arm = (await tokenFor(b, { appId: owner.clientId, secret: owner.clientSecret }, 'https://management.core.windows.net//.default')).token;
  const { uri: doomed } = await testVault(b, 'doomed-vault', 'doomed');
  const del = await b.fetch(`${b.url}/subscriptions/${owner.subscriptionId}/resourcegroups/doomed?api-version=2023-07-01`, { method: 'DELETE', headers: { authorization: `Bearer ${arm}` } });
  assert.equal(del.status, 200);
  assert.equal(await b.vaults.byName('doomed-vault'), undefined);
  const after = await b.fetch(`${doomed}secrets?api-version=7.4`).then((r) => r.status, () => 'closed');
  assert.ok(after === 'closed' || after === 404, String(after));
});

test('VaultSecretReader (for the keychain): the value, undefined for missing/deleted/disabled, an error for an unknown vault or a bad name', async () => {
  const { VaultSecretReader } = await import('../src/vault/reader.js');
  const r = new VaultSecretReader(b.vaults, b.secrets);
  await kv('PUT', '/secrets/reader-usr', { body: { value: 'janedoe1' } });
  assert.equal(await r.getSecret('PROTO-VAULT', 'reader-usr'), 'janedoe1');
  assert.equal(await r.getSecret('proto-vault', 'reader-missing'), undefined);
  assert.equal(await r.getSecret('proto-vault', 'created-disabled'), undefined);
  await assert.rejects(r.getSecret('proto-vault', 'bad_name'), /invalid name: bad_name/);
  await kv('DELETE', '/secrets/reader-usr');
  assert.equal(await r.getSecret('proto-vault', 'reader-usr'), undefined);
  await assert.rejects(r.getSecret('no-such-vault', 'x'), /vault no-such-vault does not exist/);
});

test('access policies: a vault created with them (az keyvault create\'s default) authorizes by policy, not by role; add/replace/remove', async () => {
  const owner = JSON.parse(readFileSync(join(b.dataDir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string; subscriptionId: string; tenantId: string };
  const arm = (await tokenFor(b, { appId: owner.clientId, secret: owner.clientSecret }, 'https://management.core.windows.net//.default')).token;
  const base = `${b.url}/subscriptions/${owner.subscriptionId}/resourcegroups/rg/providers/Microsoft.KeyVault/vaults/policy-vault`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await b.fetch(`${base}${path}?api-version=2022-07-01`, { method, headers: { authorization: `Bearer ${arm}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any };
  };
  const reader = await principalWithRole(b, undefined);
  const officerOnRbac = await principalWithRole(b, 'Key Vault Secrets Officer', `/subscriptions/${owner.subscriptionId}`);
  const ownerObject = (await b.applications.find(owner.clientId))!.id;
  const created = await call('PUT', '', { location: 'westus', properties: { tenantId: owner.tenantId, sku: { family: 'A', name: 'standard' }, accessPolicies: [
    { tenantId: owner.tenantId, objectId: ownerObject, permissions: { secrets: ['Get', 'List', 'Set', 'Delete', 'Recover', 'Backup', 'Restore'], keys: ['all'] } },
    { tenantId: owner.tenantId, objectId: reader.objectId, permissions: { secrets: ['get'] } },
  ] } });
  assert.equal(created.status, 201);
  assert.equal(created.body.properties.enableRbacAuthorization, false);
  assert.deepEqual(created.body.properties.accessPolicies[1], { tenantId: owner.tenantId, objectId: reader.objectId, permissions: { keys: [], secrets: ['get'], certificates: [], storage: [] } });
  const uri = created.body.properties.vaultUri as string;
  const data = async (p: { appId: string; secret: string }, method: string, path: string, body?: unknown) => {
    const t = (await tokenFor(b, p)).token;
    const res = await b.fetch(`${uri}${path}?api-version=7.4`, { method, headers: { authorization: `Bearer ${t}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
  };
  const ownerP = { appId: owner.clientId, secret: owner.clientSecret };
  assert.equal((await data(ownerP, 'PUT', 'secrets/p1', { value: 'policy-value' })).status, 200);
  assert.equal((await data(reader, 'GET', 'secrets/p1')).body.value, 'policy-value');
  const denied = await data(reader, 'PUT', 'secrets/p1', { value: 'nope' });
  assert.equal(denied.status, 403);
  assert.equal(denied.body.error.innererror.code, 'AccessDenied');
  assert.match(denied.body.error.message, /does not have secrets set permission on key vault 'policy-vault/);
  assert.equal((await data(reader, 'GET', 'secrets')).status, 403, 'list needs the list permission');
  // a role assignment does not open an access-policy vault, as on Azure
  assert.equal((await data(officerOnRbac, 'GET', 'secrets/p1')).status, 403);
  // accessPolicies/add merges permissions, remove takes them away, a bad name is refused
  const add = await call('PUT', '/accessPolicies/add', { properties: { accessPolicies: [{ tenantId: owner.tenantId, objectId: reader.objectId, permissions: { secrets: ['list', 'set'] } }] } });
  assert.equal(add.status, 200);
  assert.deepEqual(add.body.properties.accessPolicies[1].permissions.secrets, ['get', 'list', 'set']);
  assert.equal((await data(reader, 'PUT', 'secrets/p1', { value: 'now-allowed' })).status, 200);
  assert.equal((await call('PUT', '/accessPolicies/remove', { properties: { accessPolicies: [{ tenantId: owner.tenantId, objectId: reader.objectId, permissions: { secrets: ['set'] } }] } })).status, 200);
  assert.equal((await data(reader, 'PUT', 'secrets/p1', { value: 'again' })).status, 403);
  assert.equal((await data(reader, 'GET', 'secrets/p1')).body.value, 'now-allowed');
  const bad = await call('PUT', '/accessPolicies/add', { properties: { accessPolicies: [{ objectId: reader.objectId, permissions: { secrets: ['read'] } }] } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /'read', which is not a secret permission/);
  // a full PUT (az keyvault set-policy) replaces the list; enableRbacAuthorization true switches to roles
  const back = await call('PUT', '', { location: 'westus', properties: { enableRbacAuthorization: true } });
  assert.equal(back.body.properties.enableRbacAuthorization, true);
  assert.equal((await data(officerOnRbac, 'GET', 'secrets/p1')).body.value, 'now-allowed');
  assert.equal((await data(reader, 'GET', 'secrets/p1')).status, 403);
  assert.equal((await call('DELETE', '')).status, 200);
});
