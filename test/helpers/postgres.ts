// A throwaway PostgreSQL server for tests (Debian's postgresql package, installed by scripts/install.sh):
// initdb into a temp directory, started on a free loopback port with fsync off, removed at stop(). It
// takes under a second here, so each test file that needs one starts its own.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../src/net/listeners.js';

export interface TestPostgres {
  /** `postgres://berth@127.0.0.1:PORT/postgres`: trust authentication on loopback. */
  url: string;
  /** A URL for a new, empty database of that name. */
  database(name: string): string;
  stop(): Promise<void>;
  /** The same, synchronously (for a process 'exit' handler). */
  stopNow(): void;
}

function binDir(): string | undefined {
  if (process.env.BERTH_PG_BINDIR) return process.env.BERTH_PG_BINDIR;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(base, versions[0], 'bin');
}

/** Why no test server can start here, or undefined. */
export function postgresUnavailable(): string | undefined {
  if (!binDir()) return 'PostgreSQL is not installed (bash scripts/install.sh installs Debian\'s postgresql)';
  if (userInfo().uid === 0) {
    try {
      execFileSync('id', ['postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root and there is no postgres user to run the server as';
    }
  }
  return undefined;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const bin = binDir()!;
  const dir = await mkdtemp(join(tmpdir(), 'berth-pg-'));
  // The server refuses to run as root: as root, it runs as Debian's postgres user.
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]) => execFileSync(asRoot ? 'runuser' : join(bin, cmd), asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args, { stdio: 'pipe', timeout: 60_000 });
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'berth', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freeLoopbackPort();
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start']);
  const base = `postgres://berth@127.0.0.1:${port}`;
  let stopped = false;
  return {
    url: `${base}/postgres`,
    database(name) {
      execFileSync(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'berth', name], { stdio: 'pipe', timeout: 30_000 });
      return `${base}/${name}`;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    stopNow() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
