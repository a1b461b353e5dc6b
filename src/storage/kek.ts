// The key-encryption key's life cycle: loading it with a check that it is the key the database was
// sealed with, and rotation that re-seals every sealed value under a new key without loss.
//
// Rotation is crash-safe: the new key is first written to keys/kek.new, then every sealed value is
// re-sealed and the new key's id recorded in one SQLite transaction, then kek.new is renamed over kek.
// At start, a leftover kek.new is promoted if the database already records its id, else discarded.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Db } from './sqlite.js';
import { Sealer } from './sealer.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';

/** Every column that holds a value sealed directly under the KEK, with the context it was sealed with. */
const SEALED: Array<{ table: string; column: string; key: string[]; context: (row: Record<string, string>) => string }> = [
  { table: 'registry_passwords', column: 'sealed', key: ['registry_id', 'name'], context: (r) => `registry:${r.registry_id}:${r.name}` },
  { table: 'vaults', column: 'wrapped_key', key: ['id'], context: (r) => `vault-key:${r.id}` },
  { table: 'container_groups', column: 'secrets', key: ['id'], context: (r) => `container-group:${r.id}` },
];

const getSetting = (db: Db, k: string) => (db.prepare('SELECT value FROM settings WHERE key = ?').get(k) as { value: string } | undefined)?.value;
const setSetting = (db: Db, k: string, v: string) =>
  db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(k, v);

/** Loads the KEK (BERTH_KEK or the key file), finishing an interrupted rotation, and checks it against the database. */
export async function loadKek(db: Db, keyFile: string, env: NodeJS.ProcessEnv = process.env): Promise<Sealer> {
  const pending = `${keyFile}.new`;
  if (!env.BERTH_KEK && existsSync(pending)) {
    const next = Sealer.fromKey(Buffer.from(readFileSync(pending, 'utf8').trim(), 'base64'));
    if (getSetting(db, 'kekId') === next.keyId) await rename(pending, keyFile);
    else await rm(pending, { force: true });
  }
  const sealer = await Sealer.load(keyFile, env);
  const recorded = getSetting(db, 'kekId');
  if (!recorded) {
    setSetting(db, 'kekId', sealer.keyId);
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
export async function rotateKek(db: Db, keyFile: string, current: Sealer, env: NodeJS.ProcessEnv = process.env): Promise<{ keyId: string; resealed: number }> {
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
  db.transaction(() => {
    for (const t of SEALED) {
      const rows = db.prepare(`SELECT ${[...t.key, t.column].join(', ')} FROM ${t.table}`).all() as Array<Record<string, string>>;
      const upd = db.prepare(`UPDATE ${t.table} SET ${t.column} = ? WHERE ${t.key.map((k) => `${k} = ?`).join(' AND ')}`);
      for (const r of rows) {
        const ctx = t.context(r);
        upd.run(next.seal(current.open(r[t.column]!, ctx), ctx), ...t.key.map((k) => r[k]));
        resealed++;
      }
    }
    setSetting(db, 'kekId', next.keyId);
  })();
  if (fileBased) await rename(`${keyFile}.new`, keyFile);
  current.rekey(next);
  return { keyId: next.keyId, resealed };
}
