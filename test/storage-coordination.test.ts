// What replicas sharing one database coordinate with, on both engines: leases (one holder at a time,
// handed on at expiry or release, renewed while a job runs, a job told when its lease was taken), the
// replicas' heartbeats, and shared keys (created once, sealed, re-sealed by a KEK rotation).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { rotateKek } from '../src/storage/kek.js';
import { Sealer } from '../src/storage/sealer.js';
import { Leases } from '../src/storage/sql/leases.js';
import { Replicas } from '../src/storage/sql/replicas.js';
import { SharedKeys } from '../src/storage/sql/shared-keys.js';
import type { Sql } from '../src/storage/sql/sql.js';
import { sqlEngines } from './helpers/sql-engines.js';

const engines = sqlEngines('lease');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const engine of engines) {
  describe(`leases on ${engine.name}`, { skip: engine.skip, timeout: 120_000 }, () => {
    let sql: Sql;
    let other: () => Sql;
    let close: () => Promise<void>;
    before(async () => { ({ sql, other, close } = await engine.open()); });
    after(async () => close && close());

    test('one holder at a time; the holder may extend; release hands it on', async () => {
      const a = new Leases(sql, 'replica-a');
      const b = new Leases(other(), 'replica-b');
      assert.equal(await a.acquire('gc', 60_000), true);
      assert.equal(await b.acquire('gc', 60_000), false);
      assert.equal(await a.acquire('gc', 60_000), true, 'the holder extends its own lease');
      assert.equal(await b.holderOf('gc'), 'replica-a');
      await b.release('gc');
      assert.equal(await a.holderOf('gc'), 'replica-a', 'only the holder releases');
      await a.release('gc');
      assert.equal(await a.holderOf('gc'), undefined);
      assert.equal(await b.acquire('gc', 60_000), true);
      await b.release('gc');
    });

    test('an expired lease goes to whoever asks next (its holder died without releasing)', async () => {
      const a = new Leases(sql, 'replica-a');
      const b = new Leases(other(), 'replica-b');
      assert.equal(await a.acquire('sweep', 200), true);
      assert.equal(await b.acquire('sweep', 60_000), false);
      await sleep(400);
      assert.equal(await b.holderOf('sweep'), undefined, 'expired');
      assert.equal(await b.acquire('sweep', 60_000), true);
      assert.equal(await a.acquire('sweep', 60_000), false);
      await b.release('sweep');
    });

    test('many contenders at once: exactly one wins', async () => {
      const contenders = Array.from({ length: 8 }, (_, i) => new Leases(i % 2 ? other() : sql, `replica-${i}`));
      const won = await Promise.all(contenders.map((c) => c.acquire('race', 60_000)));
      assert.equal(won.filter(Boolean).length, 1);
      await contenders[won.indexOf(true)]!.release('race');
    });

    test('runExclusive renews past the term while the job runs, skips when held elsewhere, releases after', async () => {
      const a = new Leases(sql, 'replica-a');
      const b = new Leases(other(), 'replica-b');
      let blocked: unknown = 'not tried';
      const ran = await a.runExclusive('job', { ttlMs: 300, renewEveryMs: 50 }, async (signal) => {
        await sleep(700);
        blocked = await b.runExclusive('job', { ttlMs: 300 }, async () => 'b ran');
        return signal.aborted ? 'lost' : 'done';
      });
      assert.deepEqual(ran, { result: 'done' });
      assert.equal(blocked, undefined, 'b found the lease held, past its first term');
      assert.equal(await b.holderOf('job'), undefined, 'released after the job');
    });

    test('a job whose lease is taken while it stalls is told so', async () => {
      const a = new Leases(sql, 'replica-a');
      const b = new Leases(other(), 'replica-b');
      const outcome = await a.runExclusive('stall', { ttlMs: 200, renewEveryMs: 1_000 }, async (signal) => {
        await sleep(300);
        assert.equal(await b.acquire('stall', 60_000), true, 'b takes the expired lease');
        const deadline = Date.now() + 10_000;
        while (!signal.aborted && Date.now() < deadline) await sleep(50);
        return signal.aborted;
      });
      assert.deepEqual(outcome, { result: true });
      assert.equal(await b.holderOf('stall'), 'replica-b', 'the loser does not release what it no longer holds');
      await b.release('stall');
    });

    test('replicas: registered, beating, gone after the grace, removed at a clean stop', async () => {
      const here = new Replicas(sql);
      const there = new Replicas(other());
      await here.register({ id: 'r1', host: 'host-a', url: 'https://a:8443' });
      await there.register({ id: 'r2', host: 'host-b', url: 'https://b:8443' });
      assert.deepEqual((await here.list(60_000)).map((r) => [r.id, r.host, r.alive]), [['r1', 'host-a', true], ['r2', 'host-b', true]]);
      await sleep(300);
      assert.equal(await here.beat('r1'), true);
      assert.equal(await here.alive('r1', 200), true);
      assert.equal(await here.alive('r2', 200), false, 'r2 did not beat within the grace');
      assert.equal(await here.alive('nobody', 60_000), false);
      await there.register({ id: 'r2', host: 'host-b', url: 'https://b:8443' });
      assert.equal(await here.alive('r2', 200), true, 'a restart is a beat');
      await there.remove('r2');
      assert.equal(await there.beat('r2'), false, 'a removed replica is told so');
      assert.deepEqual((await here.list(60_000)).map((r) => r.id), ['r1']);
      await here.remove('r1');
    });

    test('shared keys: created once whoever asks first, sealed at rest, re-sealed by a KEK rotation', async () => {
      const key = randomBytes(32);
      const sealer = Sealer.fromKey(key);
      const a = new SharedKeys(sql, sealer);
      const b = new SharedKeys(other(), Sealer.fromKey(key));
      let made = 0;
      const make = async () => `signing-key-${++made}-${randomBytes(8).toString('hex')}`;
      const got = await Promise.all([a.getOrCreate('token-signing', make), b.getOrCreate('token-signing', make), a.getOrCreate('token-signing', make)]);
      assert.equal(new Set(got).size, 1, 'every caller has the key stored first');
      assert.equal(await b.getOrCreate('token-signing', make), got[0]);
      const raw = await sql.get<{ sealed: string }>('SELECT sealed FROM shared_keys WHERE name = ?', ['token-signing']);
      assert.ok(raw && !raw.sealed.includes(got[0]!), 'not stored in the clear');
      await assert.rejects(new SharedKeys(sql, Sealer.fromKey(randomBytes(32))).getOrCreate('token-signing', make), 'another KEK opens nothing');
      const { resealed } = await rotateKek(sql, '/nonexistent/kek', sealer, { BERTH_KEK: key.toString('base64'), BERTH_KEK_NEW: randomBytes(32).toString('base64') });
      assert.ok(resealed >= 1);
      assert.equal(await new SharedKeys(sql, sealer).getOrCreate('token-signing', make), got[0], 'the rotated sealer opens the re-sealed key');
    });
  });
}
