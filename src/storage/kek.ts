// The key-encryption key's life cycle: loading it with a check that it is the key the database was
// sealed with, and rotation that re-seals every sealed value under a new key without loss.
//
// Rotation is crash-safe: the new key is first written to keys/kek.new, then every sealed value is
// re-sealed and the new key's id recorded in one database transaction, then kek.new is renamed over kek.
// At start, a leftover kek.new is promoted if the database already records its id, else discarded.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Sealer } from './sealer.js';
import { sharedKeyContext } from './sql/shared-keys.js';
import type { Sql, SqlQueries } from './sql/sql.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';

/** Every column that holds a value sealed directly under the KEK, with the context it was sealed with. */
const SEALED: Array<{ table: string; column: string; key: string[]; context: (row: Record<string, string>) => string }> = [
  { table: 'registry_passwords', column: 'sealed', key: ['registry_id', 'name'], context: (r) => `registry:${r.registry_id}:${r.name}` },
  { table: 'vaults', column: 'wrapped_key', key: ['id'], context: (r) => `vault-key:${r.id}` },
  { table: 'container_groups', column: 'secrets', key: ['id'], context: (r) => `container-group:${r.id}` },
  { table: 'shared_keys', column: 'sealed', key: ['name'], context: (r) => sharedKeyContext(r.name!) },
];

const getSetting = async (db: SqlQueries, k: string) => (await db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [k]))?.value;
const setSetting = (db: SqlQueries, k: string, v: string) =>
  db.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [k, v]);

/** Loads the KEK (BERTH_KEK or the key file), finishing an interrupted rotation, and checks it against the database. */
export async function loadKek(db: Sql, keyFile: string, env: NodeJS.ProcessEnv = process.env): Promise<Sealer> {
  const pending = `${keyFile}.new`;
  if (!env.BERTH_KEK && existsSync(pending)) {
    const next = Sealer.fromKey(Buffer.from(readFileSync(pending, 'utf8').trim(), 'base64'));
    if ((await getSetting(db, 'kekId')) === next.keyId) await rename(pending, keyFile);
    else await rm(pending, { force: true });
  }
  const sealer = await Sealer.load(keyFile, env);
  const recorded = await getSetting(db, 'kekId');
  if (!recorded) {
    await setSetting(db, 'kekId', sealer.keyId);
  } else if (recorded !== sealer.keyId) {
    throw new Error(`The key-encryption key (${env.BERTH_KEK ? 'BERTH_KEK' : keyFile}, id ${sealer.keyId}) is not the key this data directory's values are sealed with (id ${recorded}). ` +
      'Restore the right key file or BERTH_KEK; without it the sealed values cannot be read.');
  }
  return sealer;
}

/**
 * Re-seals every sealed value under a new KEK and switches `current` (shared by the running services) to it.
 * With BERTH_KEK in the environment the new key must come from BERTH_KEK_NEW (and the operator then
 * sets BERTH_KEK to it); otherwise a new random key replaces the key file. Returns the new key's id and
 * how many values were re-sealed.
 */
export async function rotateKek(db: Sql, keyFile: string, current: Sealer, env: NodeJS.ProcessEnv = process.env): Promise<{ keyId: string; resealed: number }> {
  let next: Sealer;
  const fileBased = !env.BERTH_KEK;
  if (fileBased) {
    const raw = randomBytes(32);
    next = Sealer.fromKey(raw);
    await writeFileAtomic(`${keyFile}.new`, raw.toString('base64') + '\n', 0o600);
  } else {
    const raw = Buffer.from(env.BERTH_KEK_NEW ?? '', 'base64');
    if (raw.length !== 32) throw new Error('BERTH_KEK is set, so the new key must be given in BERTH_KEK_NEW (32 bytes, base64-encoded, e.g. `openssl rand -base64 32`).');
    next = Sealer.fromKey(raw);
  }
  if (next.keyId === current.keyId) throw new Error('The new key-encryption key is the same as the current one.');
  let resealed = 0;
  await db.transaction(async (tx) => {
    for (const t of SEALED) {
      const rows = await tx.all<Record<string, string>>(`SELECT ${[...t.key, t.column].join(', ')} FROM ${t.table}`);
      const update = `UPDATE ${t.table} SET ${t.column} = ? WHERE ${t.key.map((k) => `${k} = ?`).join(' AND ')}`;
      for (const r of rows) {
        const ctx = t.context(r);
        await tx.run(update, [next.seal(current.open(r[t.column]!, ctx), ctx), ...t.key.map((k) => r[k]!)]);
        resealed++;
      }
    }
    await setSetting(tx, 'kekId', next.keyId);
  });
  if (fileBased) await rename(`${keyFile}.new`, keyFile);
  current.rekey(next);
  return { keyId: next.keyId, resealed };
}
