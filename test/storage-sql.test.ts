// The Sql surface (src/storage/sql/) on both engines: placeholders, 64-bit numbers, transactions that
// roll back whole, and statements from outside a transaction that are not swept into it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { numberPlaceholders, type Sql } from '../src/storage/sql/sql.js';
import { sqlEngines } from './helpers/sql-engines.js';

test('placeholders are numbered outside quoted text only', () => {
  assert.equal(numberPlaceholders(`SELECT ? , '?', "a?" FROM t WHERE x = ? AND y = '$.a?'`), `SELECT $1 , '?', "a?" FROM t WHERE x = $2 AND y = '$.a?'`);
});

const engines = sqlEngines('the Sql tests');

for (const engine of engines) {
  describe(`Sql on ${engine.name}`, { skip: engine.skip, timeout: 120_000 }, () => {
    let sql: Sql;
    let close: () => Promise<void>;
    before(async () => {
      ({ sql, close } = await engine.open());
      await sql.run('CREATE TABLE kv (k TEXT PRIMARY KEY, n BIGINT NOT NULL, flag INTEGER)');
    });
    after(async () => close && close());

    test('values round-trip: text, 64-bit integers as numbers, booleans as 1/0', async () => {
      await sql.run('INSERT INTO kv (k, n, flag) VALUES (?, ?, ?)', ['big', 6 * 2 ** 40, true]);
      assert.deepEqual(await sql.get('SELECT k, n, flag FROM kv WHERE k = ?', ['big']), { k: 'big', n: 6 * 2 ** 40, flag: 1 });
      assert.deepEqual(await sql.get('SELECT COUNT(*) AS c, SUM(n) AS s FROM kv'), { c: 1, s: 6 * 2 ** 40 });
      assert.equal(await sql.get('SELECT k FROM kv WHERE k = ?', ['none']), undefined);
      assert.equal((await sql.run('UPDATE kv SET n = n + 1 WHERE k = ?', ['none'])).changes, 0);
    });

    test('a transaction that throws leaves nothing behind', async () => {
      await assert.rejects(sql.transaction(async (tx) => {
        await tx.run('INSERT INTO kv (k, n) VALUES (?, ?)', ['half', 1]);
        await tx.run('INSERT INTO kv (k, n) VALUES (?, ?)', ['half', 2]);
      }), (e: Error) => /unique|duplicate/i.test(e.message));
      assert.equal(await sql.get('SELECT k FROM kv WHERE k = ?', ['half']), undefined);
      assert.equal(await sql.transaction(async (tx) => (await tx.run('INSERT INTO kv (k, n) VALUES (?, ?)', ['whole', 1])).changes), 1);
      assert.ok(await sql.get('SELECT k FROM kv WHERE k = ?', ['whole']));
    });

    test('concurrent transactions each commit; a statement from outside is not rolled back with one', async () => {
      await sql.run('INSERT INTO kv (k, n) VALUES (?, ?)', ['counter', 0]);
      await Promise.all(Array.from({ length: 40 }, () => sql.transaction(async (tx) => {
        await tx.run('UPDATE kv SET n = n + 1 WHERE k = ?', ['counter']);
        await tx.run('UPDATE kv SET n = n + 1 WHERE k = ?', ['counter']);
      })));
      assert.equal((await sql.get<{ n: number }>('SELECT n FROM kv WHERE k = ?', ['counter']))?.n, 80);
      const failing = sql.transaction(async (tx) => {
        await tx.run('INSERT INTO kv (k, n) VALUES (?, ?)', ['inside', 1]);
        await new Promise((r) => setImmediate(r));
        throw new Error('rolled back on purpose');
      });
      const outside = sql.run('INSERT INTO kv (k, n) VALUES (?, ?)', ['outside', 1]);
      await assert.rejects(failing, /on purpose/);
      await outside;
      assert.equal(await sql.get('SELECT k FROM kv WHERE k = ?', ['inside']), undefined);
      assert.ok(await sql.get('SELECT k FROM kv WHERE k = ?', ['outside']), 'the outside write stands');
    });
  });
}
