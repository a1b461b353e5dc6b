// The metadata database's URL as `berth serve` and `berth migrate` take it (--database, or
// BERTH_DATABASE_URL), checked before anything connects.
import { CliError } from './errors.js';

/** A postgres:// URL, refused when it carries a password (a command line is readable by every user). */
export function databaseUrl(given: string, from: 'flag' | 'env'): string {
  let u: URL;
  try {
    u = new URL(given);
  } catch {
    throw new CliError('the database must be a URL such as postgres://berth@db.example:5432/berth');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new CliError(`the database URL must start with postgres://, not ${u.protocol}//`);
  if (u.password && from === 'flag') {
    throw new CliError('the database URL on the command line holds a password. Put it in PGPASSWORD or ~/.pgpass, or pass the whole URL in BERTH_DATABASE_URL');
  }
  return given;
}

/** --database when given, else $BERTH_DATABASE_URL, else undefined (the embedded SQLite database). */
export function databaseOption(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) return databaseUrl(flag, 'flag');
  return env.BERTH_DATABASE_URL ? databaseUrl(env.BERTH_DATABASE_URL, 'env') : undefined;
}
