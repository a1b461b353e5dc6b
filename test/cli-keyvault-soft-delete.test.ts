// Key Vault soft delete as Azure has it, through the berth CLI and @azure/arm-keyvault: a deleted vault
// is kept (name held, secrets kept) until its scheduled purge date; recover brings it back with its
// secrets; purge removes it for good, sealed values included; purge protection refuses a purge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { startTestBerth, cliJson, type TestBerth } from './helpers/berth.js';

let b: TestBerth;
const DAY = 86_400_000;

before(async () => {
  b = await startTestBerth();
  await cliJson(b, ['group', 'create', '-n', 'kvrg', '-l', 'eastus']);
});
after(async () => b?.cleanup());

async function berth(...args: string[]): Promise<string> {
  const r = await b.cli(args);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.replace(/\n$/, '');
}

test('keyvault delete is soft: list-deleted/show-deleted show it with scheduledPurgeDate, the name is held, recover brings the secrets back', { timeout: 60_000 }, async () => {
  const v = await cliJson(b, ['keyvault', 'create', '-g', 'kvrg', '-n', 'softvault']);
  assert.equal(v.properties.enableSoftDelete, true);
  assert.equal(v.properties.softDeleteRetentionInDays, 90);
  assert.equal(v.properties.enablePurgeProtection, null);
  await berth('keyvault', 'secret', 'set', '--vault-name', 'softvault', '-n', 'pull-pwd', '--value', 'kept-through-delete');
  assert.equal(await berth('keyvault', 'delete', '-n', 'softvault'), '');
  assert.equal((await b.cli(['keyvault', 'show', '-n', 'softvault'])).code, 3);
  const missing = await b.cli(['keyvault', 'secret', 'show', '--vault-name', 'softvault', '-n', 'pull-pwd']);
  assert.equal(missing.code, 3, 'a deleted vault does not answer');

  const deleted = await cliJson(b, ['keyvault', 'list-deleted']);
  assert.equal(deleted.length, 1);
  const d = deleted[0];
  assert.equal(d.name, 'softvault');
  assert.equal(d.type, 'Microsoft.KeyVault/deletedVaults');
  assert.equal(d.id, `/subscriptions/${b.identity.ids.subscriptionId}/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/softvault`);
  assert.equal(d.properties.vaultId, v.id);
  assert.equal(d.properties.location, 'eastus');
  assert.equal(d.properties.purgeProtectionEnabled, false);
  assert.equal(Date.parse(d.properties.scheduledPurgeDate) - Date.parse(d.properties.deletionDate), 90 * DAY);
  assert.ok(Math.abs(Date.parse(d.properties.deletionDate) - Date.now()) < 60_000);
  assert.deepEqual(await cliJson(b, ['keyvault', 'show-deleted', '-n', 'softvault']), d);
  assert.deepEqual(await cliJson(b, ['keyvault', 'show-deleted', '-n', 'softvault', '-l', 'eastus']), d);
  assert.equal((await b.cli(['keyvault', 'show-deleted', '-n', 'nosuchvault'])).code, 3);

  const again = await b.cli(['keyvault', 'create', '-g', 'kvrg', '-n', 'softvault']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^ERROR: \(ConflictError\) A vault with the same name already exists in deleted state\. You need to either recover or purge existing key vault\./);

  const rec = await cliJson(b, ['keyvault', 'recover', '-n', 'softvault']);
  assert.equal(rec.id, v.id);
  assert.equal(rec.properties.vaultUri, v.properties.vaultUri, 'the same URI comes back');
  assert.equal(await berth('keyvault', 'secret', 'show', '--vault-name', 'softvault', '-n', 'pull-pwd', '--query', 'value', '-o', 'tsv'), 'kept-through-delete');
  assert.deepEqual(await cliJson(b, ['keyvault', 'list-deleted']), []);
  const notDeleted = await b.cli(['keyvault', 'recover', '-n', 'softvault']);
  assert.equal(notDeleted.code, 3);
});

test('keyvault purge removes the vault and its secrets for good (no sealed value left in the database files); the name is free again', { timeout: 60_000 }, async () => {
  await berth('keyvault', 'create', '-g', 'kvrg', '-n', 'purgevault', '--retention-days', '7');
  const secretValue = 'purge-me-' + 'x'.repeat(40);
  const set = JSON.parse(await berth('keyvault', 'secret', 'set', '--vault-name', 'purgevault', '-n', 'gone', '--value', secretValue));
  assert.equal(set.attributes.recoverableDays, 7, "a secret's recoverable days are its vault's");
  assert.equal(set.attributes.recoveryLevel, 'CustomizedRecoverable+Purgeable', 'fewer than 90 days: Customized');
  await berth('keyvault', 'secret', 'set', '--vault-name', 'purgevault', '-n', 'short', '--value', 'x');
  const del = JSON.parse(await berth('keyvault', 'secret', 'delete', '--vault-name', 'purgevault', '-n', 'short'));
  assert.equal(Date.parse(del.scheduledPurgeDate) - Date.parse(del.deletedDate), 7 * DAY);
  const sealed = (await b.sql.all<{ sealed: string }>('SELECT sealed FROM vault_secret_versions v JOIN vaults k ON k.id = v.vault_id WHERE k.name = ?', ['purgevault'])).map((r) => r.sealed);
  assert.equal(sealed.length, 2);
  await berth('keyvault', 'delete', '-n', 'purgevault');
  const d = await cliJson(b, ['keyvault', 'show-deleted', '-n', 'purgevault']);
  assert.equal(Date.parse(d.properties.scheduledPurgeDate) - Date.parse(d.properties.deletionDate), 7 * DAY, '--retention-days');
  assert.equal(await berth('keyvault', 'purge', '-n', 'purgevault'), '');
  assert.equal((await b.cli(['keyvault', 'show-deleted', '-n', 'purgevault'])).code, 3);
  assert.equal((await b.sql.get<{ n: number }>("SELECT count(*) AS n FROM vault_secrets s JOIN vaults k ON k.id = s.vault_id WHERE k.name = 'purgevault'"))!.n, 0);
  const files = ['berth.db', 'berth.db-wal'].map((f) => join(b.dataDir, f));
  for (const f of files) {
    const bytes = await readFile(f).catch(() => Buffer.alloc(0));
    for (const x of sealed) assert.equal(bytes.includes(Buffer.from(x)), false, `${f} still holds a sealed value`);
  }
  // the name is free: a new vault of that name starts empty; a purged secret leaves no sealed value either
  await berth('keyvault', 'create', '-g', 'kvrg', '-n', 'purgevault');
  await berth('keyvault', 'secret', 'set', '--vault-name', 'purgevault', '-n', 'one-off', '--value', 'one-off-value');
  const sealedSecret = (await b.sql.get<{ sealed: string }>("SELECT sealed FROM vault_secret_versions v JOIN vaults k ON k.id = v.vault_id WHERE k.name = 'purgevault'"))!.sealed;
  await berth('keyvault', 'secret', 'delete', '--vault-name', 'purgevault', '-n', 'one-off');
  await berth('keyvault', 'secret', 'purge', '--vault-name', 'purgevault', '-n', 'one-off');
  for (const f of files) assert.equal((await readFile(f).catch(() => Buffer.alloc(0))).includes(Buffer.from(sealedSecret)), false, `${f} still holds the purged secret`);
  await berth('keyvault', 'delete', '-n', 'purgevault');
  await berth('keyvault', 'purge', '-n', 'purgevault');
  await berth('keyvault', 'create', '-g', 'kvrg', '-n', 'purgevault');
  assert.equal(await berth('keyvault', 'secret', 'list', '--vault-name', 'purgevault', '-o', 'tsv'), '');
  const bad = await b.cli(['keyvault', 'create', '-g', 'kvrg', '-n', 'shortvault', '--retention-days', '3']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /softDeleteRetentionInDays must be a whole number of days from 7 to 90/);
});

test('--enable-purge-protection: purge is refused until the scheduled purge date; recover still works; it cannot be turned off', { timeout: 60_000 }, async () => {
  const v = await cliJson(b, ['keyvault', 'create', '-g', 'kvrg', '-n', 'keepvault', '--enable-purge-protection']);
  assert.equal(v.properties.enablePurgeProtection, true);
  // its secrets: recoverable, not purgeable
  const sec = JSON.parse(await berth('keyvault', 'secret', 'set', '--vault-name', 'keepvault', '-n', 'kept', '--value', 'v'));
  assert.equal(sec.attributes.recoveryLevel, 'Recoverable');
  await berth('keyvault', 'secret', 'delete', '--vault-name', 'keepvault', '-n', 'kept');
  const noPurge = await b.cli(['keyvault', 'secret', 'purge', '--vault-name', 'keepvault', '-n', 'kept']);
  assert.equal(noPurge.code, 1);
  assert.match(noPurge.stderr, /\(Forbidden\) Operation "purge" is not allowed because purge protection is enabled for this vault\. Key Vault service will automatically purge it after the retention period has passed\./);
  await berth('keyvault', 'secret', 'recover', '--vault-name', 'keepvault', '-n', 'kept');
  await berth('keyvault', 'delete', '-n', 'keepvault');
  assert.equal((await cliJson(b, ['keyvault', 'show-deleted', '-n', 'keepvault'])).properties.purgeProtectionEnabled, true);
  const refused = await b.cli(['keyvault', 'purge', '-n', 'keepvault']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Operation "purge" is not allowed because purge protection is enabled for this vault\..*until then it can be recovered/);
  await berth('keyvault', 'recover', '-n', 'keepvault', '-g', 'kvrg');
  const off = await b.cli(['keyvault', 'create', '-g', 'kvrg', '-n', 'keepvault', '--enable-purge-protection', 'false']);
  assert.equal(off.code, 1);
  assert.match(off.stderr, /The property "enablePurgeProtection" cannot be set to false\. Enabling the purge protection for a vault is an irreversible action\./);
});

test('@azure/arm-keyvault: delete, listDeleted, getDeleted, recover (createMode recover), beginPurgeDeletedAndWait', { timeout: 60_000 }, async () => {
  const owner = JSON.parse(readFileSync(join(b.dataDir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string; tenantId: string; subscriptionId: string };
  const agent = new Agent({ ca: b.tls!.ca, keepAlive: false });
  const { ClientSecretCredential } = await import('@azure/identity');
  const { KeyVaultManagementClient } = await import('@azure/arm-keyvault');
  const cred = new ClientSecretCredential(owner.tenantId, owner.clientId, owner.clientSecret, { authorityHost: b.httpsUrl!, disableInstanceDiscovery: true, agent } as never);
  const kvm = new KeyVaultManagementClient(cred, owner.subscriptionId, { endpoint: b.httpsUrl!, credentialScopes: ['https://management.azure.com/.default'], agent } as never);
  const params = { location: 'eastus', properties: { tenantId: owner.tenantId, sku: { family: 'A' as const, name: 'standard' as const } } };
  await kvm.vaults.beginCreateOrUpdateAndWait('kvrg', 'sdksoftvault', params, { updateIntervalInMs: 50 });
  await kvm.vaults.delete('kvrg', 'sdksoftvault');
  const listed: string[] = [];
  for await (const d of kvm.vaults.listDeleted()) listed.push(d.name!);
  assert.ok(listed.includes('sdksoftvault'));
  const d = await kvm.vaults.getDeleted('sdksoftvault', 'eastus');
  assert.ok(d.properties!.scheduledPurgeDate instanceof Date);
  assert.match(d.properties!.vaultId!, /\/resourceGroups\/kvrg\/providers\/Microsoft\.KeyVault\/vaults\/sdksoftvault$/);
  const rec = await kvm.vaults.beginCreateOrUpdateAndWait('kvrg', 'sdksoftvault', { ...params, properties: { ...params.properties, createMode: 'recover' } }, { updateIntervalInMs: 50 });
  assert.equal(rec.name, 'sdksoftvault');
  await kvm.vaults.delete('kvrg', 'sdksoftvault');
  await kvm.vaults.beginPurgeDeletedAndWait('sdksoftvault', 'eastus', { updateIntervalInMs: 50 });
  await assert.rejects(kvm.vaults.getDeleted('sdksoftvault', 'eastus'), (e: { statusCode?: number }) => e.statusCode === 404);
});
