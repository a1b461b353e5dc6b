// `berth migrate`: copies a data directory's metadata (SQLite) into an empty PostgreSQL database, with
// the server stopped. Blobs stay where they are; the key-encryption key stays the data directory's.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { leaf } from '../command.js';
import { CliError } from '../errors.js';
import { databaseOption } from '../database-url.js';
import { dataPaths, defaultDataDir, runningServerPid } from '../../lib/data-dir.js';

export function registerMigrateCommand(program: Command): void {
  leaf<{ dataDir?: string; database?: string }>(program, 'migrate', 'Copy a data directory\'s metadata into an empty PostgreSQL database (stop berth serve first).',
    (c) => c
      .option('--data-dir <dir>', 'Data directory (default: $BERTH_DATA_DIR or ~/.local/share/berth).')
      .option('--database <url>', 'postgres://user@host:port/db (default: $BERTH_DATABASE_URL); the password from PGPASSWORD or ~/.pgpass.'),
    async (o) => {
      const url = databaseOption(o.database);
      if (!url) throw new CliError('say which database to copy into: --database postgres://user@host:port/db, or BERTH_DATABASE_URL');
      const dir = o.dataDir ?? defaultDataDir();
      const paths = dataPaths(dir);
      if (!existsSync(paths.db)) throw new CliError(`${dir} is not a Berth data directory (no berth.db).`);
      const pid = runningServerPid(paths.serverInfo);
      if (pid) throw new CliError(`berth serve (pid ${pid}) is running on ${dir}. Stop it first, then run berth migrate again.`);
      const [{ openDatabase }, { PostgresSql }, { copySqliteToPostgres, CopyRefused }] = await Promise.all([
        import('../../storage/sqlite.js'), import('../../storage/sql/postgres-sql.js'), import('../../storage/sql/copy.js')]);
      const db = openDatabase(paths.db);
      const pg = PostgresSql.connect(url, { max: 1 });
      try {
        const report = await copySqliteToPostgres(db, pg);
        const target = new URL(url);
        target.password = '';
        return { dataDir: dir, database: target.toString(), tables: report.tables.filter((t) => t.rows > 0), rows: report.tables.reduce((n, t) => n + t.rows, 0) };
      } catch (e) {
        if (e instanceof CopyRefused) throw new CliError(e.message);
        throw new CliError(`copying into PostgreSQL failed, and nothing was written: ${(e as Error).message}`);
      } finally {
        db.close();
        await pg.close();
      }
    });
}
