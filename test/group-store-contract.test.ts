// The container-group store (src/instances/store.ts) against both metadata engines, with the same
// assertions: embedded SQLite and a throwaway PostgreSQL. What the service and the reconciler rely on
// is said here: secrets sealed at rest, a group's state writes landing in call order, a state change
// that is one read-modify-write (also between two stores, as two replicas would be), operations that
// end once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { GroupStore } from '../src/instances/store.js';
import { parseGroupSpec, type GroupSpec } from '../src/instances/spec.js';
import { initialState, recordEvent, type GroupState } from '../src/instances/state.js';
import { Sealer } from '../src/storage/sealer.js';
import type { Sql } from '../src/storage/sql/sql.js';
import { sqlEngines } from './helpers/sql-engines.js';

const engines = sqlEngines('the group store contract');

const SECURE = `secure-${randomBytes(8).toString('hex')}`;
const PASSWORD = `password-${randomBytes(8).toString('hex')}`;

function spec(tags: Record<string, string> = {}): GroupSpec {
  return parseGroupSpec({ location: 'westus', tags, properties: { osType: 'Linux', restartPolicy: 'Always',
    imageRegistryCredentials: [{ server: 'r.io', username: 'puller', password: PASSWORD }],
    containers: [{ name: 'app', properties: { image: 'r.io/app:1', resources: { requests: { cpu: 1, memoryInGB: 1 } },
      environmentVariables: [{ name: 'PLAIN', value: 'visible' }, { name: 'TOKEN', secureValue: SECURE }] } }] } });
}

/** A state whose group-level events name `n` (so that a test can tell snapshots apart). */
function stateNamed(n: number): GroupState {
  const s = initialState(['app']);
  recordEvent(s.events, 'Saved', `snapshot ${n}`, 'Normal');
  return s;
}

const lastEvent = (s: GroupState) => s.events[s.events.length - 1]?.message;

for (const engine of engines) {
  describe(`container group store: ${engine.name}`, { skip: engine.skip, timeout: 120_000 }, () => {
    let sql: Sql;
    let close: () => Promise<void>;
    let store: GroupStore;
    const sealer = Sealer.fromKey(randomBytes(32));
    let n = 0;
    const add = (rg = 'rg', name = `g${++n}`) => store.save({ resourceGroup: rg, name, location: 'westus', spec: spec(), state: initialState(['app']) });

    before(async () => {
      ({ sql, close } = await engine.open());
      store = new GroupStore(sql, 'sub', sealer);
    });
    after(async () => close && close());

    test('a saved group is found by name in any case and by id, its secrets back in place and sealed at rest', async () => {
      const g = await add('Rg-Case', 'Web-1');
      assert.equal((await store.find('rg-case', 'WEB-1'))?.id, g.id);
      const got = (await store.byId(g.id))!;
      assert.equal(got.resourceGroup, 'Rg-Case');
      assert.equal(got.name, 'Web-1');
      assert.equal(got.location, 'westus');
      assert.deepEqual(got.spec.containers[0]!.environmentVariables, [{ name: 'PLAIN', value: 'visible' }, { name: 'TOKEN', secureValue: SECURE }]);
      assert.equal(got.spec.imageRegistryCredentials[0]!.password, PASSWORD);
      assert.deepEqual(got.state, initialState(['app']));
      const raw = await sql.get<Record<string, string>>('SELECT * FROM container_groups WHERE id = ?', [g.id]);
      const text = JSON.stringify(raw);
      assert.ok(!text.includes(SECURE) && !text.includes(PASSWORD), 'no secret in the row as stored');
      assert.equal(await store.find('rg-case', 'nope'), undefined);
      assert.equal(await store.byId('no-such-id'), undefined);
    });

    test('lists: by resource group and name, case-blind; of one resource group; of this subscription only', async () => {
      await add('list-b', 'zeta');
      await add('LIST-A', 'Beta');
      await add('list-a', 'alpha');
      const other = new GroupStore(sql, 'other-sub', sealer);
      await other.save({ resourceGroup: 'list-a', name: 'elsewhere', location: 'westus', spec: spec(), state: initialState(['app']) });
      const mine = (await store.list()).filter((g) => g.resourceGroup.toLowerCase().startsWith('list-'));
      assert.deepEqual(mine.map((g) => `${g.resourceGroup}/${g.name}`), ['list-a/alpha', 'LIST-A/Beta', 'list-b/zeta']);
      assert.deepEqual((await store.list('List-A')).map((g) => g.name), ['alpha', 'Beta']);
      assert.deepEqual((await other.list()).map((g) => g.name), ['elsewhere']);
    });

    test('saving with the id replaces spec and state; a second group of the same name is refused', async () => {
      const g = await add();
      const again = await store.save({ id: g.id, resourceGroup: g.resourceGroup, name: g.name, location: 'eastus', spec: spec({ v: '2' }), state: stateNamed(2) });
      assert.equal(again.id, g.id);
      assert.equal(again.createdAt, g.createdAt);
      assert.equal(again.location, 'eastus');
      assert.deepEqual(again.spec.tags, { v: '2' });
      assert.equal(lastEvent(again.state), 'snapshot 2');
      await assert.rejects(store.save({ resourceGroup: g.resourceGroup.toUpperCase(), name: g.name, location: 'westus', spec: spec(), state: initialState(['app']) }),
        (e: Error) => /unique|duplicate/i.test(e.message));
    });

    test('saveSpec changes the spec (re-sealed) and leaves the state as last saved', async () => {
      const g = await add();
      await store.saveState(g.id, stateNamed(7));
      const tagged = (await store.saveSpec(g.id, spec({ team: 'a' })))!;
      assert.deepEqual(tagged.spec.tags, { team: 'a' });
      assert.equal(tagged.spec.imageRegistryCredentials[0]!.password, PASSWORD);
      assert.equal(lastEvent(tagged.state), 'snapshot 7');
      assert.equal(await store.saveSpec('no-such-id', spec()), undefined);
    });

    test('state saves land in call order: the last one asked for is the one stored', async () => {
      const g = await add();
      const saves: Array<Promise<void>> = [];
      for (let i = 1; i <= 60; i++) saves.push(store.saveState(g.id, stateNamed(i)));
      await Promise.all(saves);
      assert.equal(lastEvent((await store.byId(g.id))!.state), 'snapshot 60');
      // The snapshot is the state as it was at the call, not as the caller changes it afterwards.
      const live = stateNamed(61);
      const saved = store.saveState(g.id, live);
      live.events[0]!.message = 'changed after the save';
      await saved;
      assert.equal(lastEvent((await store.byId(g.id))!.state), 'snapshot 61');
    });

    test('updateState runs after the saves asked for before it, and settled() waits for them', async () => {
      const g = await add();
      for (let i = 1; i <= 10; i++) void store.saveState(g.id, stateNamed(i));
      const updated = await store.updateState(g.id, (s) => { s.stopped = true; });
      assert.equal(lastEvent(updated!.state), 'snapshot 10', 'the change was made to the latest save');
      assert.equal(updated!.state.stopped, true);
      void store.saveState(g.id, stateNamed(11));
      await store.settled(g.id);
      const now = (await store.byId(g.id))!.state;
      assert.equal(lastEvent(now), 'snapshot 11');
      assert.equal(now.stopped, false, 'a whole snapshot replaces the state');
      assert.equal(await store.updateState('no-such-id', () => assert.fail('no group, no change')), undefined);
    });

    test('updateState is one read-modify-write, also between two stores (two replicas)', async () => {
      const g = await add();
      // Another store is another write queue: only the row lock keeps the changes apart (PostgreSQL's
      // pool runs them on several connections at once).
      const replica = new GroupStore(sql, 'sub', sealer);
      const changes = Array.from({ length: 30 }, (_, i) => (i % 2 ? store : replica).updateState(g.id, (s) => {
        s.containers.app!.restartCount += 1;
      }));
      await Promise.all(changes);
      assert.equal((await store.byId(g.id))!.state.containers.app!.restartCount, 30);
    });

    test('operations: started in progress, ended once; the pending ones of a group failed together', async () => {
      const g = await add();
      const op = await store.startOperation(g.id);
      assert.deepEqual(await store.operation(op.id), { id: op.id, groupId: g.id, status: 'InProgress', startTime: op.startTime });
      await store.finishOperation(op.id, 'Failed', { code: 'ContainerGroupDeploymentFailed', message: 'no' });
      await store.finishOperation(op.id, 'Succeeded');
      const ended = (await store.operation(op.id))!;
      assert.equal(ended.status, 'Failed');
      assert.deepEqual(ended.error, { code: 'ContainerGroupDeploymentFailed', message: 'no' });
      assert.ok(ended.endTime && ended.endTime >= ended.startTime);
      const a = await store.startOperation(g.id);
      const b = await store.startOperation(g.id);
      const other = await add();
      const c = await store.startOperation(other.id);
      assert.equal(await store.failPendingOperations(g.id, { code: 'Canceled', message: 'The container group was stopped.' }), 2);
      for (const id of [a.id, b.id]) assert.deepEqual((await store.operation(id))!.error, { code: 'Canceled', message: 'The container group was stopped.' });
      assert.equal((await store.operation(op.id))!.error?.code, 'ContainerGroupDeploymentFailed', 'an ended operation keeps its outcome');
      assert.equal((await store.operation(c.id))!.status, 'InProgress');
      assert.equal(await store.operation('no-such-op'), undefined);
    });

    test('delete removes the group and its operations; saves after it change nothing', async () => {
      const g = await add();
      const op = await store.startOperation(g.id);
      void store.saveState(g.id, stateNamed(1));
      await store.delete(g.id);
      await store.saveState(g.id, stateNamed(2));
      assert.equal(await store.byId(g.id), undefined);
      assert.equal(await store.find(g.resourceGroup, g.name), undefined);
      assert.equal(await store.operation(op.id), undefined);
    });
  });
}
