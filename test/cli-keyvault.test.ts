// `berth keyvault ...` end to end (real CLI process, real server): vault commands, every secret command
// in az's output shapes, seed 003's flow (SP credentials stored in a vault and read back with
// --query value -o tsv), seed 000's JSON username/password secret, and `berth vault rotate-kek`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBerth, cliJson, runCli, type TestBerth } from './helpers/berth.js';

let b: TestBerth;
let tmp: string;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/;

before(async () => {
  b = await startTestBerth();
  tmp = await mkdtemp(join(tmpdir(), 'berth-kv-cli-'));
  await cliJson(b, ['group', 'create', '-n', 'myResourceGroup', '-l', 'eastus']);
});
after(async () => {
  await b?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

async function berth(...args: string[]): Promise<string> {
  const r = await b.cli(args);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.replace(/\n$/, '');
}

test('keyvault create/show/list/delete; name rules as errors', async () => {
  const v = await cliJson(b, ['keyvault', 'create', '-g', 'myResourceGroup', '-n', 'mykeyvault']);
  assert.equal(v.name, 'mykeyvault');
  assert.equal(v.resourceGroup, 'myResourceGroup');
  assert.equal(v.location, 'eastus');
  assert.equal(v.type, 'Microsoft.KeyVault/vaults');
  assert.match(v.properties.vaultUri, /^https:\/\/mykeyvault\.vault\.localhost:\d+\/$|^https?:\/\/localhost:\d+\/$/);
  assert.equal(v.properties.enableRbacAuthorization, true);
  assert.equal(v.properties.tenantId, b.identity.ids.tenantId);
  assert.equal(await berth('keyvault', 'show', '-n', 'mykeyvault', '--query', 'properties.vaultUri', '-o', 'tsv'), v.properties.vaultUri);
  assert.equal((await cliJson(b, ['keyvault', 'show', '-n', 'mykeyvault', '-g', 'myResourceGroup'])).id, v.id);
  await cliJson(b, ['keyvault', 'create', '-g', 'myResourceGroup', '-n', 'tempvault', '-l', 'westus']);
  assert.deepEqual((await cliJson(b, ['keyvault', 'list', '-g', 'myResourceGroup'])).map((x: { name: string }) => x.name), ['mykeyvault', 'tempvault']);
  assert.match(await berth('keyvault', 'list', '-o', 'table'), /^Location\s+Name\s+ResourceGroup/);
  assert.equal(await berth('keyvault', 'delete', '-n', 'tempvault'), '');
  const gone = await b.cli(['keyvault', 'show', '-n', 'tempvault']);
  assert.equal(gone.code, 3);
  assert.match(gone.stderr, /^ERROR: The Vault 'tempvault' not found within subscription\./);
  for (const [name, why] of [['my--vault', /consecutive hyphens/], ['1vault', /begin with a letter/], ['vault-', /end with a letter or digit/], ['ab', /2 characters long/], ['my_vault', /contains '_'/]]) {
    const r = await b.cli(['keyvault', 'create', '-g', 'myResourceGroup', '-n', name as string]);
    assert.equal(r.code, 1, name as string);
    assert.match(r.stderr, /^ERROR: \(VaultNameNotValid\) The vault name/);
    assert.match(r.stderr, why as RegExp);
  }
});

test('seed 003: store an SP\'s appId and password as <acr>-pull-usr/-pull-pwd, read back with --query value -o tsv', async () => {
  const ACR_NAME = 'mycontainerregistry';
  const AKV_NAME = 'mykeyvault';
  await berth('acr', 'create', '--resource-group', 'myResourceGroup', '--name', ACR_NAME, '--sku', 'Basic');
  const r = await b.cli(['ad', 'sp', 'create-for-rbac', '--name', `http://${ACR_NAME}-pull`, '--scopes', await berth('acr', 'show', '--name', ACR_NAME, '--query', 'id', '--output', 'tsv'), '--role', 'acrpull']);
  assert.equal(r.code, 0, r.stderr);
  const sp = JSON.parse(r.stdout) as { appId: string; password: string };
  const SP_ID = sp.appId;
  // (az ad sp show never returns a password; the password is the one create-for-rbac printed)
  const pwd = await cliJson(b, ['keyvault', 'secret', 'set', '--vault-name', AKV_NAME, '--name', `${ACR_NAME}-pull-pwd`, '--value', sp.password]);
  assert.equal(pwd.value, sp.password);
  await berth('keyvault', 'secret', 'set', '--vault-name', AKV_NAME, '--name', `${ACR_NAME}-pull-usr`, '--value', await berth('ad', 'sp', 'show', '--id', SP_ID, '--query', 'appId', '--output', 'tsv'));
  const usr = await b.cli(['keyvault', 'secret', 'show', '--vault-name', AKV_NAME, '-n', `${ACR_NAME}-pull-usr`, '--query', 'value', '-o', 'tsv']);
  assert.equal(usr.stdout, `${SP_ID}\n`, 'the bare value, one line');
  const pw = await b.cli(['keyvault', 'secret', 'show', '--vault-name', AKV_NAME, '-n', `${ACR_NAME}-pull-pwd`, '--query', 'value', '-o', 'tsv']);
  assert.equal(pw.stdout, `${sp.password}\n`);
  // and they work as the registry credential the seed passes to container create
  const login = await berth('acr', 'show', '--name', ACR_NAME, '--resource-group', 'myResourceGroup', '--query', 'loginServer', '--output', 'tsv');
  const basic = 'Basic ' + Buffer.from(`${usr.stdout.trim()}:${pw.stdout.trim()}`).toString('base64');
  const tok = await fetch(`http://${login}/oauth2/token?service=${login}&scope=repository:hello:pull`, { headers: { authorization: basic } });
  assert.equal(tok.status, 200);
  assert.ok(!b.logs.join('\n').includes(sp.password), 'the password is in no log line');
});

test('seed 000: a JSON {"username","password"} secret', async () => {
  const json = '{"username": "janedoe1", "password": "MyPassword123!"}';
  const bad = await b.cli(['keyvault', 'secret', 'set', '--vault-name', 'mykeyvault', '--name', 'my_docker_credentials', '--value', json]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^ERROR: \(BadParameter\) The request URI contains an invalid name: my_docker_credentials/);
  await berth('keyvault', 'secret', 'set', '--vault-name', 'mykeyvault', '--name', 'my-docker-credentials', '--value', json);
  const v = await berth('keyvault', 'secret', 'show', '--vault-name', 'mykeyvault', '--name', 'my-docker-credentials', '--query', 'value', '-o', 'tsv');
  assert.deepEqual(JSON.parse(v), { username: 'janedoe1', password: 'MyPassword123!' });
});

test('secret set/show/list/list-versions/set-attributes/delete/list-deleted/show-deleted/recover/purge in az\'s shapes', async () => {
  const V = ['--vault-name', 'mykeyvault'];
  const s1 = await cliJson(b, ['keyvault', 'secret', 'set', ...V, '-n', 'app-secret', '--value', 'one']);
  assert.deepEqual(Object.keys(s1).sort(), ['attributes', 'contentType', 'id', 'kid', 'managed', 'name', 'tags', 'value']);
  assert.deepEqual(Object.keys(s1.attributes).sort(), ['created', 'enabled', 'expires', 'notBefore', 'recoverableDays', 'recoveryLevel', 'updated']);
  assert.match(s1.attributes.created, ISO);
  assert.equal(s1.attributes.expires, null);
  assert.equal(s1.attributes.recoveryLevel, 'Recoverable+Purgeable');
  assert.equal(s1.attributes.recoverableDays, 90);
  assert.equal(s1.name, 'app-secret');
  assert.deepEqual(s1.tags, { 'file-encoding': 'utf-8' });
  assert.equal(s1.contentType, null);
  assert.equal(s1.kid, null);
  const v1 = s1.id.split('/').pop();
  assert.match(v1, /^[0-9a-f]{32}$/);
  // --file with --encoding base64, --tags, --content-type, --expires/--not-before
  const file = join(tmp, 'cert.bin');
  await writeFile(file, Buffer.from([0, 1, 2, 250, 255]));
  const s2 = await cliJson(b, ['keyvault', 'secret', 'set', ...V, '-n', 'app-secret', '--file', file, '--encoding', 'base64', '--tags', 'team=core',
    '--content-type', 'application/octet-stream', '--expires', '2030-01-31T00:00:00Z', '--not-before', '2020-01-01T10:00:00Z']);
  assert.equal(s2.value, Buffer.from([0, 1, 2, 250, 255]).toString('base64'));
  assert.deepEqual(s2.tags, { team: 'core', 'file-encoding': 'base64' });
  assert.equal(s2.contentType, 'application/octet-stream');
  assert.equal(s2.attributes.expires, '2030-01-31T00:00:00+00:00');
  assert.equal(s2.attributes.notBefore, '2020-01-01T10:00:00+00:00');
  const text = join(tmp, 'pw.txt');
  await writeFile(text, 'from-a-file\n');
  assert.equal((await cliJson(b, ['keyvault', 'secret', 'set', ...V, '-n', 'from-file', '-f', text])).value, 'from-a-file\n');
  assert.equal((await b.cli(['keyvault', 'secret', 'set', ...V, '-n', 'x'])).code, 2, '--value or --file is required');
  assert.equal((await b.cli(['keyvault', 'secret', 'set', ...V, '-n', 'x', '--value', 'v', '--expires', 'soon'])).code, 2);
  // show latest and by version
  assert.equal(await berth('keyvault', 'secret', 'show', ...V, '-n', 'app-secret', '--version', v1, '--query', 'value', '-o', 'tsv'), 'one');
  assert.equal((await cliJson(b, ['keyvault', 'secret', 'show', ...V, '-n', 'app-secret'])).id, s2.id);
  // list: ids without version, no values; list-versions: both
  const list = await cliJson(b, ['keyvault', 'secret', 'list', ...V]);
  const item = list.find((x: { name: string }) => x.name === 'app-secret');
  assert.deepEqual(Object.keys(item).sort(), ['attributes', 'contentType', 'id', 'managed', 'name', 'tags']);
  assert.ok(item.id.endsWith('/secrets/app-secret'));
  assert.deepEqual((await cliJson(b, ['keyvault', 'secret', 'list-versions', ...V, '-n', 'app-secret'])).map((x: { id: string }) => x.id).sort(), [s1.id, s2.id].sort());
  // set-attributes on the latest, then disabled: show refuses as Key Vault does
  const upd = await cliJson(b, ['keyvault', 'secret', 'set-attributes', ...V, '-n', 'app-secret', '--enabled', 'false', '--content-type', 'text/plain', '--tags', 'a=b', '--expires', '2031-01-01T00:00:00Z']);
  assert.equal(upd.attributes.enabled, false);
  assert.equal(upd.value, null);
  assert.equal(upd.contentType, 'text/plain');
  assert.deepEqual(upd.tags, { a: 'b' });
  assert.equal(upd.attributes.expires, '2031-01-01T00:00:00+00:00');
  const refused = await b.cli(['keyvault', 'secret', 'show', ...V, '-n', 'app-secret']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^ERROR: \(Forbidden\) Operation get is not allowed on a disabled secret\./);
  await cliJson(b, ['keyvault', 'secret', 'set-attributes', ...V, '-n', 'app-secret', '--enabled', 'true']);
  await cliJson(b, ['keyvault', 'secret', 'set-attributes', ...V, '-n', 'app-secret', '--version', v1, '--not-before', '2021-06-01T00:00:00Z']);
  assert.equal((await cliJson(b, ['keyvault', 'secret', 'show', ...V, '-n', 'app-secret', '--version', v1])).attributes.notBefore, '2021-06-01T00:00:00+00:00');
  // delete (soft), list-deleted, show-deleted, recover, purge
  const del = await cliJson(b, ['keyvault', 'secret', 'delete', ...V, '-n', 'app-secret']);
  assert.equal(del.name, 'app-secret');
  assert.match(del.deletedDate, ISO);
  assert.match(del.scheduledPurgeDate, ISO);
  assert.ok(del.recoveryId.endsWith('/deletedsecrets/app-secret'));
  assert.equal(del.value, null);
  const missing = await b.cli(['keyvault', 'secret', 'show', ...V, '-n', 'app-secret']);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /^ERROR: \(SecretNotFound\) A secret with \(name\/id\) app-secret was not found in this key vault/);
  assert.match(missing.stderr, /\nCode: SecretNotFound\n/);
  const conflict = await b.cli(['keyvault', 'secret', 'set', ...V, '-n', 'app-secret', '--value', 'x']);
  assert.equal(conflict.code, 1);
  assert.match(conflict.stderr, /\(Conflict\) Secret app-secret is currently in a deleted but recoverable state/);
  assert.deepEqual((await cliJson(b, ['keyvault', 'secret', 'list-deleted', ...V])).map((x: { name: string }) => x.name), ['app-secret']);
  assert.equal((await cliJson(b, ['keyvault', 'secret', 'show-deleted', ...V, '-n', 'app-secret'])).name, 'app-secret');
  const rec = await cliJson(b, ['keyvault', 'secret', 'recover', ...V, '-n', 'app-secret']);
  assert.equal(rec.id, s2.id);
  assert.equal(await berth('keyvault', 'secret', 'show', ...V, '-n', 'app-secret', '--query', 'value', '-o', 'tsv'), s2.value);
  await berth('keyvault', 'secret', 'delete', ...V, '-n', 'app-secret');
  assert.equal(await berth('keyvault', 'secret', 'purge', ...V, '-n', 'app-secret'), '');
  assert.deepEqual(await cliJson(b, ['keyvault', 'secret', 'list-deleted', ...V]), []);
  assert.equal((await b.cli(['keyvault', 'secret', 'recover', ...V, '-n', 'app-secret'])).code, 3);
});

test('secret list follows nextLink past 25 secrets', async () => {
  await berth('keyvault', 'create', '-g', 'myResourceGroup', '-n', 'manyvault');
  const { vault } = { vault: (await b.vaults.byName('manyvault'))! };
  for (let i = 0; i < 27; i++) await b.secrets.set(vault, `s${String(i).padStart(2, '0')}`, { value: `v${i}` });
  const names = (await cliJson(b, ['keyvault', 'secret', 'list', '--vault-name', 'manyvault'])).map((x: { name: string }) => x.name);
  assert.equal(names.length, 27);
  assert.equal(names[26], 's26');
});

test('berth vault rotate-kek: refused while the server runs; offline it re-wraps and every value survives', async () => {
  const running = await b.cli(['vault', 'rotate-kek', '--data-dir', b.dataDir]);
  assert.equal(running.code, 1);
  assert.match(running.stderr, /berth serve \(pid \d+\) is running on .*Stop it first/);
  const before = await berth('keyvault', 'secret', 'show', '--vault-name', 'mykeyvault', '-n', 'my-docker-credentials', '--query', 'value', '-o', 'tsv');
  const dir = b.dataDir;
  const logs = b.logs;
  await b.stop();
  const r = await runCli(['vault', 'rotate-kek', '--data-dir', dir], { PATH: process.env.PATH, HOME: tmp });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { keyId: string; resealed: number };
  assert.match(out.keyId, /^[0-9a-f]{16}$/);
  assert.ok(out.resealed >= 4, 'vault keys and registry passwords');
  b = await startTestBerth(dir, logs);
  assert.equal(await berth('keyvault', 'secret', 'show', '--vault-name', 'mykeyvault', '-n', 'my-docker-credentials', '--query', 'value', '-o', 'tsv'), before);
});
