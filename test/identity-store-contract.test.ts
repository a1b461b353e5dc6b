// The identity stores (applications and their secrets, managed identities, role assignments, the
// platform ids) on the Sql surface, held to the same assertions on both engines: embedded SQLite and a
// throwaway PostgreSQL. What is checked is what the stores promise, not their SQL.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Applications } from '../src/identity/applications.js';
import { ManagedIdentities } from '../src/identity/managed-identities.js';
import { findRole } from '../src/identity/roles.js';
import { IdentityService, type PlatformIds } from '../src/identity/service.js';
import { TokenService } from '../src/identity/token-service.js';
import { BerthError, notFound } from '../src/lib/errors.js';
import type { ResourceGroups } from '../src/resources/groups.js';
import type { Sql } from '../src/storage/sql/sql.js';
import { sqlEngines, type OpenSql } from './helpers/sql-engines.js';

const engines = sqlEngines('the identity store contract');

/** Resource groups are another store's (being moved onto Sql beside this one): two known groups stand in for it. */
const GROUPS = ['rg', 'other-rg'];
const groups = {
  get(name: string) {
    const g = GROUPS.find((x) => x.toLowerCase() === name.toLowerCase());
    if (!g) throw notFound('ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return { name: g, location: 'westeurope' };
  },
} as unknown as ResourceGroups;

const coded = (code: string) => (e: unknown) => e instanceof BerthError && e.code === code;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

for (const engine of engines) {
  describe(`identity stores on ${engine.name}`, { skip: engine.skip, timeout: 120_000 }, () => {
    let dir: string;
    let e: OpenSql;
    /** The connection the stores use (a second one from the platform ids test on). */
    let sql: Sql;
    let ids: PlatformIds;
    let identity: IdentityService;
    let apps: Applications;
    let mis: ManagedIdentities;
    let sub: string;
    const secretRows = async (principalId: string) =>
      (await sql.all<{ id: string }>('SELECT id FROM principal_secrets WHERE principal_id = ?', [principalId])).length;
    const assignmentsOf = async (principalId: string) => (await identity.listAssignments()).filter((a) => a.principalId === principalId);

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'berth-identity-contract-'));
      e = await engine.open();
      sql = e.sql;
      // Two starts at the same moment (two replicas) agree on one tenant and one subscription.
      const [a, b] = await Promise.all([IdentityService.platformIds(sql), IdentityService.platformIds(e.other())]);
      assert.deepEqual(a, b);
      ids = a;
      sub = `/subscriptions/${ids.subscriptionId}`;
      const tokens = await TokenService.load(join(dir, 'signing-key.json'));
      identity = new IdentityService(sql, tokens, ids, () => 'http://127.0.0.1:1');
      apps = new Applications(sql, ids.tenantId);
      mis = new ManagedIdentities(sql, ids.subscriptionId, ids.tenantId, groups);
    });
    after(async () => {
      await e?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('platform ids are GUIDs, made once, and the same through a connection opened later', async () => {
      assert.match(ids.tenantId, GUID);
      assert.match(ids.subscriptionId, GUID);
      assert.notEqual(ids.tenantId, ids.subscriptionId);
      assert.deepEqual(await IdentityService.platformIds(sql), ids);
      // The remaining tests run on the new connection: what the first one wrote is there.
      sql = e.other();
      assert.deepEqual(await IdentityService.platformIds(sql), ids);
      identity = new IdentityService(sql, await TokenService.load(join(dir, 'signing-key.json')), ids, () => 'http://127.0.0.1:1');
      apps = new Applications(sql, ids.tenantId);
      mis = new ManagedIdentities(sql, ids.subscriptionId, ids.tenantId, groups);
    });

    test('an application signs in only once it has its service principal; found by any of its ids or its name', async () => {
      const app = await apps.createApplication('contract-app');
      assert.equal(app.hasServicePrincipal, false);
      assert.deepEqual(app.passwordCredentials, []);
      assert.equal(await identity.principalByAppId(app.appId), undefined);
      await assert.rejects(apps.createServicePrincipal('00000000-0000-0000-0000-00000000abcd'), coded('Request_BadRequest'));
      const sp = await apps.createServicePrincipal(app.appId.toUpperCase());
      assert.equal(sp.hasServicePrincipal, true);
      assert.equal(sp.appObjectId, app.appObjectId, 'the rest of the application is kept');
      assert.deepEqual(await identity.principalByAppId(app.appId.toUpperCase()), { kind: 'servicePrincipal', id: app.id, displayName: 'contract-app', appId: app.appId });
      assert.deepEqual(await identity.principalById(app.id), { kind: 'servicePrincipal', id: app.id, displayName: 'contract-app', appId: app.appId });
      for (const key of [app.id, app.appId, app.appObjectId, app.appId.toUpperCase(), 'contract-app']) assert.equal((await apps.find(key))?.id, app.id, key);
      assert.equal(await apps.find('no-such-app'), undefined);
      await assert.rejects(apps.get('no-such-app'), coded('Request_ResourceNotFound'));
      assert.deepEqual((await apps.list({ appId: app.appId.toUpperCase() })).map((a) => a.id), [app.id]);
      assert.deepEqual((await apps.list({ displayName: 'contract-app' })).map((a) => a.id), [app.id]);
      assert.equal((await apps.rename(app.id, 'renamed-app')).displayName, 'renamed-app');
      assert.equal((await identity.principalById(app.id))?.displayName, 'renamed-app');
    });

    test('passwords: shown once, listed by hint, checked for sign-in, expired ones refused, removed one by one or all', async () => {
      const app = await apps.createApplication('password-app');
      await apps.createServicePrincipal(app.appId);
      const first = await apps.addPassword(app.id, { displayName: 'first' });
      const expired = await apps.addPassword(app.id, { endDateTime: '2001-01-01T00:00:00Z' });
      await assert.rejects(apps.addPassword(app.id, { endDateTime: 'not a date' }), coded('Request_BadRequest'));
      assert.equal(first.hint, first.secretText.slice(0, 3));
      const listed = (await apps.get(app.id)).passwordCredentials;
      assert.deepEqual(listed.map((c) => c.keyId).sort(), [first.keyId, expired.keyId].sort());
      assert.equal(JSON.stringify(listed).includes(first.secretText), false, 'no listing holds a secret');
      assert.equal(listed.find((c) => c.keyId === expired.keyId)?.endDateTime, '2001-01-01T00:00:00.000Z');
      assert.deepEqual(await identity.authenticateClient(app.appId, first.secretText), { principal: await identity.principalById(app.id) });
      assert.match((await identity.authenticateClient(app.appId, expired.secretText) as { error: string }).error, /expired/);
      assert.match((await identity.authenticateClient(app.appId, 'wrong') as { error: string }).error, /invalid client secret/);
      await apps.removePassword(app.id, first.keyId);
      await assert.rejects(apps.removePassword(app.id, first.keyId), coded('Request_ResourceNotFound'));
      assert.match((await identity.authenticateClient(app.appId, first.secretText) as { error: string }).error, /invalid client secret/);
      await identity.addSecret(app.id, 'added-by-the-service');
      assert.equal(await secretRows(app.id), 2);
      await apps.removeAllPasswords(app.id);
      assert.equal(await secretRows(app.id), 0);
    });

    test('deleting an application takes its secrets and role assignments; other principals keep theirs', async () => {
      const doomed = await apps.createApplication('doomed-app');
      const kept = await apps.createApplication('kept-app');
      await apps.addPassword(doomed.id, {});
      await identity.assignRole(doomed.id, findRole('Reader')!, sub);
      await identity.assignRole(kept.id, findRole('Reader')!, sub);
      await apps.delete(doomed.id.toUpperCase());
      assert.equal(await apps.find(doomed.id), undefined);
      assert.equal(await identity.principalById(doomed.id), undefined);
      assert.equal(await secretRows(doomed.id), 0);
      assert.deepEqual(await assignmentsOf(doomed.id), []);
      assert.equal((await assignmentsOf(kept.id)).length, 1);
      await assert.rejects(apps.delete(doomed.id), coded('Request_ResourceNotFound'));
    });

    test('the local owner: made once with Owner on the subscription, a new secret only when asked, never changed through the directory', async () => {
      const cred = (await identity.ensureOwner(false))!;
      assert.equal(cred.tenantId, ids.tenantId);
      assert.equal(cred.subscriptionId, ids.subscriptionId);
      const owner = (await identity.principalByAppId(cred.clientId))!;
      assert.ok('principal' in await identity.authenticateClient(cred.clientId, cred.clientSecret));
      assert.ok(await identity.can(owner, 'Microsoft.Authorization/roleAssignments/write', `${sub}/resourceGroups/rg`));
      assert.deepEqual((await identity.assignmentsCovering(owner.id, sub)).map(({ role }) => role.roleName), ['Owner']);
      assert.equal(await identity.ensureOwner(true), undefined, 'the credential file is there: nothing changes');
      const again = (await identity.ensureOwner(false))!;
      assert.equal(again.clientId, cred.clientId, 'the same principal');
      assert.equal((await assignmentsOf(owner.id)).length, 1, 'and still one Owner assignment');
      assert.ok('error' in await identity.authenticateClient(cred.clientId, cred.clientSecret), 'the old secret is gone');
      assert.ok('principal' in await identity.authenticateClient(cred.clientId, again.clientSecret));
      assert.equal(await secretRows(owner.id), 1);
      await assert.rejects(apps.addPassword(owner.id, {}), coded('Request_BadRequest'));
      await assert.rejects(apps.delete(cred.clientId), coded('Request_BadRequest'));
    });

    test('user-assigned identities: created, updated, listed per group in any casing, resolved by ARM id, client id or principal id, deleted with their roles', async () => {
      const made = await mis.createOrUpdate('RG', 'contract-mi', { tags: { a: '1' } });
      assert.equal(made.created, true);
      const i = made.identity;
      assert.equal(i.resourceGroup, 'rg', 'the group as it is named');
      assert.equal(i.location, 'westeurope', "the group's location by default");
      assert.equal(i.id, `/subscriptions/${ids.subscriptionId}/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/contract-mi`);
      assert.match(i.principalId, GUID);
      assert.match(i.clientId, GUID);
      await assert.rejects(mis.createOrUpdate('rg', 'x', {}), coded('InvalidResourceName'));
      const updated = await mis.createOrUpdate('rg', 'CONTRACT-MI', { tags: { b: '2' } });
      assert.equal(updated.created, false);
      assert.deepEqual({ ...updated.identity, tags: undefined }, { ...i, tags: undefined }, 'the same identity');
      assert.deepEqual(updated.identity.tags, { b: '2' });
      await mis.createOrUpdate('other-rg', 'elsewhere-mi', { location: 'northeurope' });
      assert.deepEqual((await mis.list('rG')).map((x) => x.name), ['contract-mi']);
      assert.deepEqual((await mis.list()).map((x) => x.name).sort(), ['contract-mi', 'elsewhere-mi']);
      assert.equal((await mis.get('rg', 'Contract-MI')).principalId, i.principalId);
      await assert.rejects(mis.get('rg', 'elsewhere-mi'), coded('ResourceNotFound'));
      await assert.rejects(mis.get('no-such-rg', 'contract-mi'), coded('ResourceGroupNotFound'));
      for (const ref of [i.id.toUpperCase(), i.clientId, i.principalId]) assert.equal((await mis.resolve(ref))?.principalId, i.principalId, ref);
      assert.equal(await mis.resolve('/subscriptions/x/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/none'), undefined);
      assert.equal((await identity.principalById(i.principalId))?.kind, 'managedIdentity');
      await identity.assignRole(i.principalId, findRole('AcrPull')!, sub);
      assert.equal(await mis.delete('rg', 'contract-mi'), true);
      assert.equal(await mis.delete('rg', 'contract-mi'), false);
      assert.equal(await identity.principalById(i.principalId), undefined);
      assert.deepEqual(await assignmentsOf(i.principalId), []);
      // Two creates of one name at the same moment make one identity.
      const racing = await Promise.all([mis.createOrUpdate('rg', 'race-mi', {}), mis.createOrUpdate('RG', 'Race-MI', {})]);
      assert.deepEqual(racing.map((r) => r.created).sort(), [false, true]);
      assert.equal(racing[0].identity.principalId, racing[1].identity.principalId);
      assert.equal((await mis.list('rg')).filter((x) => x.name === 'race-mi').length, 1);
    });

    test('system-assigned identities: one per resource in any casing, found by principal or client id, not listed as user-assigned, deleted with their roles', async () => {
      const resource = `/subscriptions/${ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/web`;
      const [a, b] = await Promise.all([mis.ensureSystemAssigned(resource, 'web'), mis.ensureSystemAssigned(resource, 'web')]);
      assert.equal(a.id, b.id, 'two requests at once make one identity');
      assert.equal((await mis.ensureSystemAssigned(resource.toUpperCase(), 'web')).id, a.id, 'in any casing');
      assert.equal(a.kind, 'managedIdentity');
      const other = await mis.ensureSystemAssigned(`${resource}2`, 'web2');
      assert.notEqual(other.id, a.id);
      for (const ref of [a.id, a.appId, a.appId.toUpperCase()]) {
        assert.deepEqual(await mis.findSystemAssigned(ref), { principalId: a.id, clientId: a.appId, displayName: 'web', resourceId: resource }, ref);
      }
      const ua = (await mis.createOrUpdate('rg', 'user-mi', {})).identity;
      assert.equal(await mis.findSystemAssigned(ua.principalId), undefined, 'a user-assigned identity is not a system-assigned one');
      assert.deepEqual((await mis.list()).map((x) => x.name).includes('web'), false);
      await identity.assignRole(a.id, findRole('AcrPull')!, sub);
      await mis.deleteSystemAssigned(resource.toLowerCase());
      assert.equal(await mis.findSystemAssigned(a.id), undefined);
      assert.deepEqual(await assignmentsOf(a.id), []);
      assert.equal((await mis.findSystemAssigned(other.id))?.principalId, other.id, "another resource's identity stays");
      await mis.deleteSystemAssigned(resource); // none left: nothing happens
    });

    test('role assignments: created once per principal, role and scope; checked down the scope hierarchy; listed, found, deleted', async () => {
      const app = await apps.createApplication('role-app');
      await apps.createServicePrincipal(app.appId);
      const p = (await identity.principalById(app.id))!;
      const rg = `${sub}/resourceGroups/rg`;
      const registry = `${rg}/providers/Microsoft.ContainerRegistry/registries/contractreg`;
      const vault = `${rg}/providers/Microsoft.KeyVault/vaults/contract-vault`;
      assert.equal(await identity.hasAnyAssignment(p.id), false);
      await assert.rejects(identity.assignRole('00000000-0000-0000-0000-00000000abcd', findRole('Reader')!, rg), coded('PrincipalNotFound'));
      await assert.rejects(identity.assignRole(p.id, findRole('Reader')!, rg, undefined, 'User'), coded('UnmatchedPrincipalType'));
      const name = '0b7a1c58-0000-4000-8000-00000000c0de';
      const ra = await identity.assignRole(p.id.toUpperCase(), findRole('AcrPull')!, `${rg}/`, name, 'ServicePrincipal');
      assert.deepEqual({ ...ra, createdAt: undefined }, { id: name, principalId: p.id, roleDefinitionId: findRole('AcrPull')!.id, scope: rg, principalType: 'ServicePrincipal', createdAt: undefined });
      await assert.rejects(identity.assignRole(p.id, findRole('AcrPull')!, rg.toUpperCase()), coded('RoleAssignmentExists'));
      // Two requests for the same assignment at the same moment: one is made, the other is a conflict.
      const both = await Promise.allSettled([identity.assignRole(p.id, findRole('Key Vault Secrets User')!, vault), identity.assignRole(p.id, findRole('Key Vault Secrets User')!, vault)]);
      assert.deepEqual(both.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      assert.ok(coded('RoleAssignmentExists')((both.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason));
      assert.equal(await identity.hasAnyAssignment(p.id), true);
      assert.deepEqual(await identity.getAssignment(name.toUpperCase()), ra);
      assert.equal(await identity.getAssignment('0b7a1c58-0000-4000-8000-000000000000'), undefined);

      assert.equal(await identity.can(p, 'Microsoft.ContainerRegistry/registries/pull/read', registry), true, 'a group role covers a resource in it');
      assert.equal(await identity.can(p, 'Microsoft.ContainerRegistry/registries/pull/read', registry.toUpperCase()), true, 'in any casing');
      assert.equal(await identity.can(p, 'Microsoft.ContainerRegistry/registries/pull/read', sub), false, 'not the subscription above it');
      assert.equal(await identity.can(p, 'Microsoft.ContainerRegistry/registries/pull/read', `${sub}/resourceGroups/other-rg/providers/Microsoft.ContainerRegistry/registries/contractreg`), false);
      assert.equal(await identity.can(p, 'Microsoft.ContainerRegistry/registries/push/write', registry), false, 'AcrPull does not push');
      const getSecret = 'Microsoft.KeyVault/vaults/secrets/getSecret/action';
      assert.equal(await identity.can(p, getSecret, `${vault}/secrets/s`, true), true, 'a data action through Key Vault Secrets User');
      assert.equal(await identity.can(p, getSecret, `${vault}/secrets/s`), false, 'which is no management action');
      const may = await identity.permissions(p);
      assert.deepEqual([registry, `${rg}x/providers/Microsoft.ContainerRegistry/registries/r`].map((s) => may('Microsoft.ContainerRegistry/registries/pull/read', s)), [true, false]);
      assert.deepEqual((await identity.assignmentsOf(p.id)).map(({ role }) => role.roleName).sort(), ['AcrPull', 'Key Vault Secrets User']);
      assert.deepEqual((await identity.assignmentsCovering(p.id, registry)).map(({ role }) => role.roleName), ['AcrPull']);

      assert.deepEqual(await identity.deleteAssignment(name), ra);
      assert.equal(await identity.deleteAssignment(name), undefined);
      assert.equal(await identity.can(p, 'Microsoft.ContainerRegistry/registries/pull/read', registry), false);
    });

    test('removing the assignments under a scope takes those at it and below it, not a sibling whose name starts the same', async () => {
      const app = await apps.createApplication('scope-app');
      const rg = `${sub}/resourceGroups/Doomed`;
      await identity.assignRole(app.id, findRole('Reader')!, rg);
      await identity.assignRole(app.id, findRole('AcrPush')!, `${rg}/providers/Microsoft.ContainerRegistry/registries/r1`);
      await identity.assignRole(app.id, findRole('Reader')!, `${sub}/resourceGroups/DoomedToo`);
      await identity.assignRole(app.id, findRole('Reader')!, sub);
      assert.equal(await identity.deleteAssignmentsUnder(`${sub}/resourceGroups/doomed/`), 2);
      assert.deepEqual((await assignmentsOf(app.id)).map((a) => a.scope).sort(), [sub, `${sub}/resourceGroups/DoomedToo`].sort());
      assert.equal(await identity.deleteAssignmentsUnder(rg), 0);
    });
  });
}
