// The management stores of resource groups, registries, scope maps and tokens on the Sql surface,
// held against both engines with the same assertions: the embedded SQLite and a throwaway PostgreSQL.
// What is checked is what the ARM routes and registry auth rely on, in terms of the stores' methods.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BerthError } from '../src/lib/errors.js';
import { ResourceGroups } from '../src/resources/groups.js';
import { Registries, type RegistryRecord } from '../src/registry/registries.js';
import { ScopeMapsAndTokens, SYSTEM_SCOPE_MAPS } from '../src/registry/scope-maps.js';
import { Sealer } from '../src/storage/sealer.js';
import type { Sql } from '../src/storage/sql/sql.js';
import { sqlEngines } from './helpers/sql-engines.js';

const engines = sqlEngines('registry store');

const SUB = '00000000-0000-0000-0000-0000000000aa';

/** Rejects with a BerthError of this code. */
async function refused(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof BerthError && e.code === code, `expected ${code}`);
}

for (const engine of engines) {
  describe(`registry stores on ${engine.name}`, { skip: engine.skip, timeout: 120_000 }, () => {
    let sql: Sql;
    let replica: Sql;
    let close: () => Promise<void>;
    let groups: ResourceGroups;
    let registries: Registries;
    let tokens: ScopeMapsAndTokens;
    let nextPort = 41000;
    const events: string[] = [];
    const count = async (table: string, where: string, params: string[]) =>
      (await sql.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params))!.n;

    before(async () => {
      const opened = await engine.open();
      ({ sql, close } = opened);
      replica = opened.other();
      groups = new ResourceGroups(sql, SUB);
      registries = new Registries(sql, SUB, groups, Sealer.fromKey(randomBytes(32)), async () => nextPort++, 'localhost');
      registries.onChange({ opened: async (r) => { events.push(`opened ${r.name}`); }, closed: async (r) => { events.push(`closed ${r.name}`); } });
      tokens = new ScopeMapsAndTokens(sql);
    });
    after(async () => close && close());

    test('resource groups: create, update tags, get in any case, list by name, refusals, delete', async () => {
      const made = await groups.createOrUpdate('Zeta-RG', 'West US', { team: 'a' });
      assert.equal(made.created, true);
      assert.deepEqual(made.group, {
        id: `/subscriptions/${SUB}/resourceGroups/Zeta-RG`, name: 'Zeta-RG', location: 'westus', tags: { team: 'a' },
        properties: { provisioningState: 'Succeeded' }, type: 'Microsoft.Resources/resourceGroups', managedBy: null,
      });
      const again = await groups.createOrUpdate('zeta-rg', 'westus', { team: 'b' });
      assert.equal(again.created, false);
      assert.equal(again.group.name, 'Zeta-RG', 'the name keeps the case it was created with');
      assert.deepEqual(again.group.tags, { team: 'b' });
      await refused(groups.createOrUpdate('zeta-rg', 'eastus'), 'InvalidResourceGroupLocation');
      await refused(groups.createOrUpdate('bad/name', 'westus'), 'InvalidResourceGroup');
      await refused(groups.createOrUpdate('ends.', 'westus'), 'InvalidResourceGroup');
      await refused(groups.createOrUpdate('noloc', ''), 'LocationRequired');
      await groups.createOrUpdate('alpha', 'eastus');
      assert.deepEqual((await groups.list()).map((g) => g.name), ['alpha', 'Zeta-RG']);
      assert.equal((await groups.get('ZETA-rg')).location, 'westus');
      assert.equal(await groups.get('missing', false), undefined);
      await refused(groups.get('missing'), 'ResourceGroupNotFound');
      assert.equal(await groups.delete('ALPHA'), true);
      assert.equal(await groups.delete('alpha'), false);
      assert.deepEqual((await groups.list()).map((g) => g.name), ['Zeta-RG']);
    });

    test('resource groups: two creates of one group at once make it once', async () => {
      const both = await Promise.all([groups.createOrUpdate('twice', 'westus', { n: '1' }), groups.createOrUpdate('TWICE', 'westus', { n: '2' })]);
      assert.deepEqual(both.map((x) => x.created).sort(), [false, true]);
      assert.equal((await groups.list()).filter((g) => g.name.toLowerCase() === 'twice').length, 1);
    });

    test('registries: create, look-ups by port, name and id, list, name availability', async () => {
      await groups.createOrUpdate('reg-rg', 'westus');
      await groups.createOrUpdate('other-rg', 'eastus');
      events.length = 0;
      const { registry: r, created } = await registries.createOrUpdate('REG-rg', 'ContractReg1', { sku: 'Standard', adminUserEnabled: true, tags: { a: '1' } });
      assert.equal(created, true);
      assert.deepEqual(events, ['opened ContractReg1']);
      assert.equal(r.resourceGroup, 'reg-rg');
      assert.equal(r.location, 'westus', 'the group\'s location when none is given');
      assert.equal(r.subscription, SUB);
      assert.equal(registries.loginServer(r), `localhost:${r.port}`);
      const { registry: r2 } = await registries.createOrUpdate('other-rg', 'contractreg2', { sku: 'Basic', location: 'North Europe' });
      assert.equal(r2.location, 'northeurope');
      assert.equal(r2.adminUserEnabled, false);
      assert.notEqual(r2.port, r.port);

      assert.deepEqual(await registries.byPort(r.port), r);
      assert.equal(await registries.byPort(1), undefined);
      assert.deepEqual(await registries.byName('CONTRACTREG1'), r);
      assert.deepEqual(await registries.byId(r.id), r);
      assert.equal(await registries.byId('nope'), undefined);
      assert.deepEqual(await registries.get('Reg-RG', 'contractREG1'), r);
      await refused(registries.get('other-rg', 'contractreg1'), 'ResourceNotFound');
      await refused(registries.get('no-such-rg', 'contractreg1'), 'ResourceGroupNotFound');
      assert.deepEqual((await registries.list()).map((x) => x.name), ['ContractReg1', 'contractreg2']);
      assert.deepEqual((await registries.list('OTHER-RG')).map((x) => x.name), ['contractreg2']);

      assert.deepEqual(await registries.nameAvailable('contractreg1'), { nameAvailable: false, reason: 'AlreadyExists', message: 'The registry contractreg1 is already in use.' });
      assert.equal((await registries.nameAvailable('no-hyphens')).reason, 'Invalid');
      assert.deepEqual(await registries.nameAvailable('freshname1'), { nameAvailable: true });
      await refused(registries.createOrUpdate('reg-rg', 'bad-name', { sku: 'Basic' }), 'InvalidRegistryName');
      await refused(registries.createOrUpdate('reg-rg', 'contractreg2', { sku: 'Basic' }), 'AlreadyInUse');
    });

    test('registries: update, a second PUT, the admin user, its passwords and their regeneration', async () => {
      const r = (await registries.byName('contractreg1'))!;
      const creds = await registries.credentials('reg-rg', 'contractreg1');
      assert.equal(creds.username, 'ContractReg1');
      assert.deepEqual(creds.passwords.map((p) => p.name), ['password', 'password2']);
      for (const p of creds.passwords) assert.match(p.value, /^[A-Za-z0-9+/]{52}$/);
      assert.notEqual(creds.passwords[0]!.value, creds.passwords[1]!.value);
      const [pw1, pw2] = creds.passwords.map((p) => p.value) as [string, string];

      assert.equal(await registries.checkAdmin(r, 'contractREG1', pw1), 'ok');
      assert.equal(await registries.checkAdmin(r, 'ContractReg1', pw2), 'ok');
      assert.equal(await registries.checkAdmin(r, 'ContractReg1', 'wrong'), 'bad');
      assert.equal(await registries.checkAdmin(r, 'someone', pw1), 'bad');

      const after = await registries.regenerate('reg-rg', 'contractreg1', 'password2');
      assert.equal(after.passwords[0]!.value, pw1, 'the other password stays');
      assert.notEqual(after.passwords[1]!.value, pw2);
      assert.equal(await registries.checkAdmin(r, 'ContractReg1', pw2), 'bad', 'the old password no longer works');
      assert.equal(await registries.checkAdmin(r, 'ContractReg1', after.passwords[1]!.value), 'ok');
      await refused(registries.regenerate('reg-rg', 'contractreg1', 'password3'), 'InvalidPasswordName');

      const updated = await registries.update('reg-rg', 'contractreg1', { sku: 'Premium', adminUserEnabled: false });
      assert.equal(updated.sku, 'Premium');
      assert.equal(updated.adminUserEnabled, false);
      assert.deepEqual(updated.tags, { a: '1' }, 'what the patch leaves out stays');
      assert.deepEqual(await registries.byPort(r.port), updated, 'the per-request look-up sees the change at once');
      await refused(registries.credentials('reg-rg', 'contractreg1'), 'AdminUserDisabled');
      await refused(registries.regenerate('reg-rg', 'contractreg1', 'password'), 'AdminUserDisabled');
      assert.equal(await registries.checkAdmin(updated, 'ContractReg1', pw1), 'disabled');

      events.length = 0;
      const put = await registries.createOrUpdate('reg-rg', 'CONTRACTREG1', { sku: 'Basic', adminUserEnabled: true, tags: { b: '2' } });
      assert.equal(put.created, false);
      assert.deepEqual(events, [], 'an update opens no listener');
      assert.deepEqual({ ...put.registry }, { ...r, sku: 'Basic', adminUserEnabled: true, tags: { b: '2' } });
      assert.equal((await registries.credentials('reg-rg', 'contractreg1')).passwords[0]!.value, pw1, 'an update keeps the passwords');
    });

    test('a registry another replica changes is what the next look-up by port answers (no copy kept)', async () => {
      const r = (await registries.byName('contractreg1'))!;
      const elsewhere = new Registries(replica, SUB, new ResourceGroups(replica, SUB), Sealer.fromKey(randomBytes(32)), async () => nextPort++, 'localhost');
      assert.equal((await elsewhere.byPort(r.port))?.adminUserEnabled, true);
      await elsewhere.update('reg-rg', 'contractreg1', { adminUserEnabled: false });
      assert.equal((await registries.byPort(r.port))?.adminUserEnabled, false);
      assert.equal((await registries.byId(r.id))?.adminUserEnabled, false);
      await registries.update('reg-rg', 'contractreg1', { adminUserEnabled: true });
      assert.equal((await elsewhere.byPort(r.port))?.adminUserEnabled, true);
    });

    test('registries: two creates of one name at once make one registry', async () => {
      const both = await Promise.all([
        registries.createOrUpdate('reg-rg', 'racedreg01', { sku: 'Basic', adminUserEnabled: true }),
        registries.createOrUpdate('reg-rg', 'RACEDREG01', { sku: 'Basic', adminUserEnabled: true }),
      ]);
      assert.deepEqual(both.map((x) => x.created).sort(), [false, true]);
      const one = (await registries.byName('racedreg01'))!;
      assert.equal((await registries.list('reg-rg')).filter((x) => x.id === one.id).length, 1);
      assert.equal(await count('registry_passwords', 'registry_id = ?', [one.id]), 2);
    });

    test('scope maps: the system ones, create, normalise, update, get in any case, refusals, delete', async () => {
      const r = (await registries.byName('contractreg1'))!;
      assert.deepEqual((await tokens.listScopeMaps(r)).map((m) => m.name), SYSTEM_SCOPE_MAPS.map((m) => m.name));
      const made = await tokens.createOrUpdateScopeMap(r, 'Readers', ['repositories/app/content/read', 'REPOSITORIES/app/Content/Read', 'repositories/lib/*/metadata/read'], 'read only');
      assert.equal(made.created, true);
      assert.deepEqual(made.map.actions, ['repositories/app/content/read', 'repositories/lib/*/metadata/read']);
      assert.equal(made.map.type, 'UserDefined');
      assert.equal(made.map.description, 'read only');
      const updated = await tokens.createOrUpdateScopeMap(r, 'readers', ['repositories/app/content/write']);
      assert.equal(updated.created, false);
      assert.equal(updated.map.name, 'Readers');
      assert.equal(updated.map.description, 'read only', 'no description given: it stays');
      assert.deepEqual(updated.map.actions, ['repositories/app/content/write']);
      assert.equal(updated.map.createdAt, made.map.createdAt);
      assert.equal((await tokens.createOrUpdateScopeMap(r, 'readers', ['repositories/app/content/read'], '')).map.description, '');
      await tokens.createOrUpdateScopeMap(r, 'another', ['repositories/x/content/read']);
      assert.deepEqual((await tokens.listScopeMaps(r)).filter((m) => m.type === 'UserDefined').map((m) => m.name), ['another', 'Readers']);
      assert.equal((await tokens.getScopeMap(r, '_REPOSITORIES_PULL')).type, 'SystemDefined');
      assert.deepEqual((await tokens.getScopeMap(r, 'READERS')).actions, ['repositories/app/content/read']);
      await refused(tokens.getScopeMap(r, 'nothere'), 'ResourceNotFound');
      await refused(tokens.createOrUpdateScopeMap(r, '_repositories_pull', ['repositories/x/content/read']), 'CannotModifySystemScopeMap');
      await refused(tokens.createOrUpdateScopeMap(r, 'emptymap', []), 'InvalidScopeMapAction');
      await refused(tokens.createOrUpdateScopeMap(r, 'badaction', ['repositories/x/content/fly']), 'InvalidScopeMapAction');
      await refused(tokens.createOrUpdateScopeMap(r, 'x', ['repositories/x/content/read']), 'InvalidScopeMapName');
      await refused(tokens.deleteScopeMap(r, '_repositories_admin'), 'CannotModifySystemScopeMap');
      const other = (await registries.byName('contractreg2'))!;
      await refused(tokens.getScopeMap(other, 'readers'), 'ResourceNotFound');
      await tokens.deleteScopeMap(r, 'ANOTHER');
      await refused(tokens.deleteScopeMap(r, 'another'), 'ResourceNotFound');
    });

    test('tokens: create, update, list, look-up by id, passwords, checks, actions, delete', async () => {
      const r = (await registries.byName('contractreg1'))!;
      await refused(tokens.createOrUpdateToken(r, 'puller1', {}), 'ScopeMapRequired');
      await refused(tokens.createOrUpdateToken(r, 'puller1', { scopeMap: 'nothere' }), 'ResourceNotFound');
      await refused(tokens.createOrUpdateToken(r, 'pt', { scopeMap: 'readers' }), 'InvalidTokenName');
      await refused(tokens.createOrUpdateToken(r, 'puller1', { scopeMap: 'readers', status: 'off' as never }), 'InvalidTokenStatus');
      const made = await tokens.createOrUpdateToken(r, 'Puller1', { scopeMap: 'READERS' });
      assert.equal(made.created, true);
      assert.deepEqual({ ...made.token, id: '', createdAt: '' }, { id: '', registryId: r.id, name: 'Puller1', scopeMap: 'Readers', status: 'enabled', createdAt: '', passwords: [] });
      const disabled = await tokens.createOrUpdateToken(r, 'puller1', { status: 'disabled' });
      assert.equal(disabled.created, false);
      assert.equal(disabled.token.scopeMap, 'Readers', 'no scope map given: it stays');
      assert.equal(disabled.token.status, 'disabled');
      assert.equal(disabled.token.id, made.token.id);
      await tokens.createOrUpdateToken(r, 'admin-tok', { scopeMap: '_repositories_admin' });
      assert.deepEqual((await tokens.listTokens(r)).map((t) => t.name), ['admin-tok', 'Puller1']);
      assert.deepEqual(await tokens.tokenById(made.token.id), disabled.token);
      assert.equal(await tokens.tokenById('nope'), undefined);
      const { passwords: _none, ...summary } = disabled.token;
      assert.deepEqual(await tokens.tokenSummary(made.token.id), summary);
      assert.equal(await tokens.tokenSummary('nope'), undefined);
      await refused(tokens.getToken(r, 'nothere'), 'ResourceNotFound');

      // Passwords: shown once, stored hashed, checked; expiry and status decide.
      const expiry = new Date(Date.now() + 3_600_000).toISOString();
      const both = await tokens.generateCredentials(r, 'puller1', {});
      assert.equal(both.username, 'Puller1');
      assert.deepEqual(both.passwords.map((p) => [p.name, p.expiry]), [['password1', null], ['password2', null]]);
      const two = await tokens.generateCredentials(r, 'puller1', { name: 'password2', expiry });
      assert.deepEqual(two.passwords.map((p) => [p.name, p.expiry]), [['password2', expiry]]);
      await refused(tokens.generateCredentials(r, 'puller1', { name: 'password3' }), 'InvalidPasswordName');
      await refused(tokens.generateCredentials(r, 'puller1', { expiry: '2000-01-01T00:00:00Z' }), 'InvalidExpiry');
      const listed = await tokens.getToken(r, 'PULLER1');
      assert.deepEqual(listed.passwords.map((p) => [p.name, p.expiry]), [['password1', null], ['password2', expiry]]);
      assert.equal(JSON.stringify(listed).includes(both.passwords[0]!.value), false, 'no password in what a token shows');
      const stored = await sql.all<{ hash: string }>('SELECT hash FROM token_passwords WHERE token_id = ?', [made.token.id]);
      assert.equal(stored.length, 2);
      for (const p of [...both.passwords, ...two.passwords]) assert.equal(stored.some((s) => s.hash.includes(p.value)), false, 'stored hashed');

      const pw1 = both.passwords[0]!.value;
      const pw2 = two.passwords[0]!.value;
      assert.match((await tokens.checkPassword(r, 'puller1', pw1) as { reason: string }).reason, /token Puller1 is disabled/);
      await tokens.createOrUpdateToken(r, 'puller1', { status: 'enabled' });
      const ok = await tokens.checkPassword(r, 'PULLER1', pw2);
      assert.equal(ok?.ok, true);
      assert.equal(ok?.ok && ok.token.id, made.token.id);
      assert.equal((await tokens.checkPassword(r, 'puller1', both.passwords[1]!.value))?.ok, false, 'the replaced password2 no longer works');
      assert.match((await tokens.checkPassword(r, 'puller1', 'wrong') as { reason: string }).reason, /incorrect password for token Puller1/);
      assert.equal(await tokens.checkPassword(r, 'nobody', pw1), undefined);
      assert.equal(await tokens.checkPassword((await registries.byName('contractreg2'))!, 'puller1', pw1), undefined, 'a token belongs to its registry');
      await sql.run('UPDATE token_passwords SET expiry = ? WHERE token_id = ? AND name = ?', ['2001-01-01T00:00:00.000Z', made.token.id, 'password2']);
      assert.match((await tokens.checkPassword(r, 'puller1', pw2) as { reason: string }).reason, /password2 of token Puller1 expired/);
      await tokens.deletePassword(r, 'puller1', 'password1');
      assert.deepEqual((await tokens.getToken(r, 'puller1')).passwords.map((p) => p.name), ['password2']);
      assert.equal((await tokens.checkPassword(r, 'puller1', pw1))?.ok, false);
      await tokens.deletePassword(r, 'puller1', 'password2');
      assert.match((await tokens.checkPassword(r, 'puller1', pw2) as { reason: string }).reason, /has no passwords/);

      // The actions are the scope map's as it is now.
      const t = (await tokens.tokenById(made.token.id))!;
      assert.deepEqual(await tokens.tokenActions(r, t), ['repositories/app/content/read']);
      await tokens.createOrUpdateScopeMap(r, 'readers', ['repositories/app/content/read', 'repositories/app/content/delete']);
      assert.deepEqual(await tokens.tokenActions(r, t), ['repositories/app/content/read', 'repositories/app/content/delete']);
      assert.deepEqual(await tokens.tokenActions(r, (await tokens.getToken(r, 'admin-tok'))), SYSTEM_SCOPE_MAPS.find((m) => m.name === '_repositories_admin')!.actions);
      await tokens.deleteScopeMap(r, 'readers');
      assert.deepEqual(await tokens.tokenActions(r, t), [], 'a deleted map grants nothing');

      await tokens.deleteToken(r, 'ADMIN-TOK');
      await refused(tokens.deleteToken(r, 'admin-tok'), 'ResourceNotFound');
      assert.deepEqual((await tokens.listTokens(r)).map((x) => x.name), ['Puller1']);
    });

    test('deleting a registry takes its passwords, scope maps and tokens with it', async () => {
      const r: RegistryRecord = (await registries.byName('contractreg1'))!;
      await tokens.createOrUpdateScopeMap(r, 'leftover', ['repositories/x/content/read']);
      await tokens.generateCredentials(r, 'puller1', { name: 'password1' });
      events.length = 0;
      assert.deepEqual(await registries.delete('reg-rg', 'ContractReg1'), { ...r });
      assert.deepEqual(events, ['closed ContractReg1']);
      assert.equal(await registries.byPort(r.port), undefined);
      assert.equal(await registries.byName('contractreg1'), undefined);
      await refused(registries.delete('reg-rg', 'contractreg1'), 'ResourceNotFound');
      for (const [table, column] of [['registry_passwords', 'registry_id'], ['scope_maps', 'registry_id'], ['registry_tokens', 'registry_id']] as const) {
        assert.equal(await count(table, `${column} = ?`, [r.id]), 0, table);
      }
      assert.equal(await count('token_passwords', 'token_id NOT IN (SELECT id FROM registry_tokens)', []), 0);
      // Which of the two racing creates wins (and so the name's case) is the engine's to decide.
      assert.deepEqual((await registries.list()).map((x) => x.name.toLowerCase()), ['contractreg2', 'racedreg01']);
    });
  });
}
