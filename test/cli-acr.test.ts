// The berth CLI end to end (real process, real server): group and acr commands, az's output shapes,
// --query/-o, errors and exit codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestBerth, cliJson, runCli, type TestBerth } from './helpers/berth.js';

let b: TestBerth;
before(async () => { b = await startTestBerth(); });
after(async () => b.cleanup());

test('owner credential is 0600 and the CLI explains what to set without one', async () => {
  assert.equal(statSync(join(b.dataDir, 'owner-credential.json')).mode & 0o777, 0o600);
  const r = await runCli(['acr', 'list'], { PATH: process.env.PATH, HOME: '/nonexistent', BERTH_DATA_DIR: '/nonexistent/berth' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^ERROR: No credential found .*Set BERTH_DATA_DIR/);
});

test('group create, acr create/show/list/update, credential show/renew, delete', async () => {
  const g = await cliJson(b, ['group', 'create', '-n', 'myResourceGroup', '-l', 'eastus']);
  assert.equal(g.name, 'myResourceGroup');
  assert.equal(g.properties.provisioningState, 'Succeeded');
  const r = await cliJson(b, ['acr', 'create', '-n', 'myContainerRegistry007', '-g', 'myResourceGroup', '--sku', 'Basic']);
  assert.equal(r.name, 'myContainerRegistry007');
  assert.equal(r.adminUserEnabled, false);
  assert.equal(r.resourceGroup, 'myResourceGroup');
  assert.deepEqual(r.sku, { name: 'Basic', tier: 'Basic' });
  assert.match(r.id, /^\/subscriptions\/[0-9a-f-]+\/resourceGroups\/myResourceGroup\/providers\/Microsoft.ContainerRegistry\/registries\/myContainerRegistry007$/);
  assert.match(r.loginServer, /^localhost:\d+$/);
  const tsv = await b.cli(['acr', 'show', '-n', 'myContainerRegistry007', '--query', 'loginServer', '-o', 'tsv']);
  assert.equal(tsv.stdout, `${r.loginServer}\n`);
  // the registry answers on its login server
  const ping = await fetch(`http://${r.loginServer}/v2/`);
  assert.equal(ping.status, 401);
  // admin user disabled: credential show fails
  const denied = await b.cli(['acr', 'credential', 'show', '-n', 'myContainerRegistry007']);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /ERROR: .*Admin user is disabled/);
  await cliJson(b, ['acr', 'update', '-n', 'myContainerRegistry007', '--admin-enabled', 'true']);
  const cred = await cliJson(b, ['acr', 'credential', 'show', '-n', 'myContainerRegistry007']);
  assert.equal(cred.username, 'myContainerRegistry007');
  assert.deepEqual(cred.passwords.map((p: { name: string }) => p.name), ['password', 'password2']);
  const pw = (await b.cli(['acr', 'credential', 'show', '-n', 'myContainerRegistry007', '--query', 'passwords[0].value', '-o', 'tsv'])).stdout.trim();
  assert.equal(pw, cred.passwords[0].value);
  const basic = 'Basic ' + Buffer.from(`myContainerRegistry007:${pw}`).toString('base64');
  assert.equal((await fetch(`http://${r.loginServer}/v2/`, { headers: { Authorization: basic } })).status, 200);
  const renewed = await cliJson(b, ['acr', 'credential', 'renew', '-n', 'myContainerRegistry007', '--password-name', 'password']);
  assert.notEqual(renewed.passwords[0].value, pw);
  assert.equal(renewed.passwords[1].value, cred.passwords[1].value);
  assert.equal((await fetch(`http://${r.loginServer}/v2/`, { headers: { Authorization: basic } })).status, 401, 'the old password stops working at once');
  // disabling the admin user refuses it at once
  await cliJson(b, ['acr', 'update', '-n', 'myContainerRegistry007', '--admin-enabled', 'false']);
  const basic2 = 'Basic ' + Buffer.from(`myContainerRegistry007:${renewed.passwords[1].value}`).toString('base64');
  assert.equal((await fetch(`http://${r.loginServer}/v2/`, { headers: { Authorization: basic2 } })).status, 401);
  const list = await cliJson(b, ['acr', 'list', '-g', 'myResourceGroup']);
  assert.equal(list.length, 1);
  const table = await b.cli(['acr', 'list', '-o', 'table']);
  assert.match(table.stdout, /^NAME\s+RESOURCE GROUP\s+LOCATION\s+SKU\s+LOGIN SERVER/);
  const del = await b.cli(['acr', 'delete', '-n', 'myContainerRegistry007', '--yes']);
  assert.equal(del.code, 0, del.stderr);
  const gone = await b.cli(['acr', 'show', '-n', 'myContainerRegistry007']);
  assert.equal(gone.code, 3);
  await assert.rejects(fetch(`http://${r.loginServer}/v2/`), 'the login server stops listening');
});

test('login server port survives a restart; data persists', async () => {
  await cliJson(b, ['group', 'create', '-n', 'keep', '-l', 'westus']);
  const r = await cliJson(b, ['acr', 'create', '-n', 'keepregistry', '-g', 'keep', '--sku', 'Standard']);
  b = await b.restart();
  const again = await cliJson(b, ['acr', 'show', '-n', 'keepregistry']);
  assert.equal(again.loginServer, r.loginServer);
  assert.equal((await fetch(`http://${r.loginServer}/v2/`)).status, 401);
});

test('usage errors exit 2, bad names exit 1 with the rule, --help works', async () => {
  const missing = await b.cli(['acr', 'create', '-n', 'abcde']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^ERROR: required option/);
  const badName = await b.cli(['acr', 'create', '-n', 'bad-name', '-g', 'keep', '--sku', 'Basic']);
  assert.equal(badName.code, 1);
  assert.match(badName.stderr, /5-50 alphanumeric characters/);
  const badOut = await b.cli(['acr', 'list', '-o', 'xml']);
  assert.equal(badOut.code, 2);
  assert.match(badOut.stderr, /invalid choice: 'xml'/);
  const badQuery = await b.cli(['acr', 'list', '--query', '[?']);
  assert.equal(badQuery.code, 2);
  assert.match(badQuery.stderr, /Invalid jmespath query supplied for `--query`/);
  const help = await b.cli(['acr', 'credential', 'renew', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--password-name/);
  const noGroup = await b.cli(['group', 'show', '-n', 'nope']);
  assert.equal(noGroup.code, 3);
  assert.match(noGroup.stderr, /ResourceGroupNotFound/);
  const none = await b.cli(['acr', 'list', '-o', 'none']);
  assert.equal(none.stdout, '');
});

test('acr repository commands read the registry with the CLI identity (exchange flow)', async () => {
  await cliJson(b, ['group', 'create', '-n', 'repos', '-l', 'westus']);
  const r = await cliJson(b, ['acr', 'create', '-n', 'reporegistry', '-g', 'repos', '--sku', 'Basic', '--admin-enabled', 'true']);
  const cred = await cliJson(b, ['acr', 'credential', 'show', '-n', 'reporegistry']);
  const auth = 'Basic ' + Buffer.from(`reporegistry:${cred.passwords[0].value}`).toString('base64');
  const base = `http://${r.loginServer}`;
  const { createHash } = await import('node:crypto');
  const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
  const cfg = '{"architecture":"amd64","os":"linux"}';
  await fetch(`${base}/v2/hello/blobs/uploads/?digest=${sha(cfg)}`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' }, body: cfg });
  const m = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length }, layers: [] });
  for (const t of ['v1', 'v2']) {
    const put = await fetch(`${base}/v2/hello/manifests/${t}`, { method: 'PUT', headers: { Authorization: auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: m });
    assert.equal(put.status, 201);
  }
  assert.deepEqual(await cliJson(b, ['acr', 'repository', 'list', '-n', 'reporegistry']), ['hello']);
  assert.deepEqual(await cliJson(b, ['acr', 'repository', 'show-tags', '-n', 'reporegistry', '--repository', 'hello']), ['v1', 'v2']);
  const t = await b.cli(['acr', 'repository', 'show-tags', '-n', 'reporegistry', '--repository', 'hello', '-o', 'table']);
  assert.equal(t.stdout, 'Result\n--------\nv1\nv2\n');
  const mans = await cliJson(b, ['acr', 'repository', 'show-manifests', '-n', 'reporegistry', '--repository', 'hello']);
  assert.equal(mans.length, 1);
  assert.deepEqual(mans[0].tags, ['v1', 'v2']);
  assert.equal(mans[0].digest, sha(m));
  // lock the image: a delete is refused until it is unlocked
  const locked = await cliJson(b, ['acr', 'repository', 'update', '-n', 'reporegistry', '--image', 'hello:v1', '--write-enabled', 'false']);
  assert.deepEqual(locked.tag.changeableAttributes, { deleteEnabled: true, writeEnabled: false, readEnabled: true, listEnabled: true });
  assert.equal((await cliJson(b, ['acr', 'repository', 'show', '-n', 'reporegistry', '--image', 'hello:v1'])).changeableAttributes.writeEnabled, false);
  const refused = await b.cli(['acr', 'repository', 'delete', '-n', 'reporegistry', '--image', 'hello:v1', '--yes']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^ERROR: .*disallowed.*tag v1 has writeEnabled set to false/);
  const repoAttrs = await cliJson(b, ['acr', 'repository', 'update', '-n', 'reporegistry', '--repository', 'hello', '--list-enabled', 'true']);
  assert.equal(repoAttrs.imageName, 'hello');
  const usage = await b.cli(['acr', 'repository', 'update', '-n', 'reporegistry', '--repository', 'hello']);
  assert.equal(usage.code, 2);
  await cliJson(b, ['acr', 'repository', 'update', '-n', 'reporegistry', '--image', `hello@${sha(m)}`, '--delete-enabled', 'true']);
  await cliJson(b, ['acr', 'repository', 'update', '-n', 'reporegistry', '--image', 'hello:v1', '--write-enabled', 'true']);
  const del = await b.cli(['acr', 'repository', 'delete', '-n', 'reporegistry', '--image', 'hello:v1', '--yes']);
  assert.equal(del.code, 0, del.stderr);
  assert.equal((await b.cli(['acr', 'repository', 'list', '-n', 'reporegistry', '-o', 'tsv'])).stdout, '');
  const missing = await b.cli(['acr', 'repository', 'show-tags', '-n', 'reporegistry', '--repository', 'nothere']);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /^ERROR: Error: localhost:\d+: name unknown: repository nothere is not known/);
});
