// `berth vault rotate-kek`: re-seals every sealed value of a data directory under a new key-encryption key.
// Runs against the data directory (and the PostgreSQL database with --database) directly, with the server stopped.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { leaf } from '../command.js';
import { CliError } from '../errors.js';
import { databaseOption } from '../database-url.js';
import { dataPaths, defaultDataDir, runningServerPid } from '../../lib/data-dir.js';

export function registerVaultAdminCommands(program: Command): void {
  const vault = program.command('vault').description('Administer the vault\'s encryption at rest.');
  leaf<{ dataDir?: string; database?: string }>(vault, 'rotate-kek', 'Re-seal every vault data key and registry password under a new key-encryption key (stop berth serve first; with --database, every replica).',
    (c) => c.option('--data-dir <dir>', 'Data directory (default: $BERTH_DATA_DIR or ~/.local/share/berth).')
      .option('--database <url>', 'The PostgreSQL database berth serve --database keeps the metadata in (default: $BERTH_DATABASE_URL, else the data directory\'s SQLite file).'),
    async (o) => {
      const dir = o.dataDir ?? defaultDataDir();
      const paths = dataPaths(dir);
      const database = databaseOption(o.database);
      if (!database && !existsSync(paths.db)) throw new CliError(`${dir} is not a Berth data directory (no berth.db).`);
      const pid = runningServerPid(paths.serverInfo);
      if (pid) throw new CliError(`berth serve (pid ${pid}) is running on ${dir}. Stop it first, then run berth vault rotate-kek again.`);
      const [{ openMetadata }, { loadKek, rotateKek }] = await Promise.all([import('../../storage/sql/open.js'), import('../../storage/kek.js')]);
      let db;
      try {
        db = (await openMetadata({ dbPath: paths.db, ...(database ? { database } : {}) })).sql;
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      try {
        const sealer = await loadKek(db, paths.kek);
        const r = await rotateKek(db, paths.kek, sealer);
        return { dataDir: dir, keyId: r.keyId, resealed: r.resealed, ...(process.env.BERTH_KEK ? { next: 'Set BERTH_KEK to the value of BERTH_KEK_NEW before starting berth serve.' } : {}) };
      } catch (e) {
        throw new CliError((e as Error).message);
      } finally {
        await db.close();
      }
    });
}
