// `berth serve --database postgres://…`: every service's metadata in PostgreSQL (issue 18). The real
// server and CLI over a throwaway PostgreSQL: a registry, a push and pull with skopeo, a vault secret
// and a role assignment made through one server are there after a restart (and after an offline KEK
// rotation over the same database), and the data directory's
// SQLite file holds none of it. A URL with a password on the command line, and a database that cannot
// be reached, are refused with what to do.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { cliAdminRegistry, runCli, which } from './helpers/berth.js';
import { busyboxLayout, haveImageTools } from './helpers/images.js';
import { postgresUnavailable, startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { startServeChild, stopServeChild, type ServeChild } from './helpers/serve-child.js';
import { freeLoopbackPort } from '../src/net/listeners.js';

const run = promisify(execFile);
const pgSkip = postgresUnavailable();
const skopeoSkip = pgSkip ?? (which('skopeo') ? haveImageTools() : 'skopeo is not installed');
if (pgSkip) console.log(`# skipping berth serve --database: ${pgSkip}`);

let server: TestPostgres | undefined;
let url = '';
const dirs: string[] = [];
let served: ServeChild | undefined;
let env: NodeJS.ProcessEnv = process.env;

before(async () => {
  if (pgSkip) return;
  server = await startTestPostgres();
  url = server.database('served');
});
after(async () => {
  await stopServeChild(served?.child, env);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await server?.stop();
});

async function serve(dir: string): Promise<void> {
  env = { ...process.env, BERTH_DATA_DIR: dir };
  served = await startServeChild(['--data-dir', dir, '--port', '0', '--no-tls', '--database', url], env);
  env = { ...env, BERTH_SERVER: served.url };
}

async function stop(): Promise<void> {
  await stopServeChild(served?.child, env);
  served = undefined;
}

const cli = async (...args: string[]) => {
  const r = await runCli(args, env);
  assert.equal(r.code, 0, `berth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

test('metadata lives in PostgreSQL: registry, image, vault secret and role assignment survive a restart; berth.db holds none of it', { skip: skopeoSkip, timeout: 240_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pgserve-'));
  dirs.push(dir);
  await serve(dir);
  const { loginServer, creds } = await cliAdminRegistry(env, 'pgreg01');
  const layout = await busyboxLayout('v1');
  await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:v1`, `docker://${loginServer}/tools/busybox:v1`], { timeout: 120_000 });
  await cli('keyvault', 'create', '-g', 'rg', '-n', 'pgvault01');
  await cli('keyvault', 'secret', 'set', '--vault-name', 'pgvault01', '-n', 'token', '--value', 'in-postgres');
  const sp = JSON.parse(await cli('ad', 'sp', 'create-for-rbac', '-n', 'pg-puller', '-o', 'json')) as { appId: string };
  const scope = await cli('acr', 'show', '-n', 'pgreg01', '--query', 'id', '-o', 'tsv');
  await cli('role', 'assignment', 'create', '--assignee', sp.appId, '--role', 'AcrPull', '--scope', scope);

  // The rows are PostgreSQL's: seen through a connection of our own, and not in the data directory's file.
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const n = async (sqlText: string) => Number((await c.query(sqlText)).rows[0].n);
    assert.equal(await n("SELECT count(*) AS n FROM registries WHERE name = 'pgreg01'"), 1);
    assert.equal(await n("SELECT count(*) AS n FROM tags WHERE tag = 'v1'"), 1);
    assert.equal(await n("SELECT count(*) AS n FROM vaults WHERE name = 'pgvault01'"), 1);
    const held = await c.query('SELECT count(*) AS n FROM role_assignments ra JOIN principals p ON p.id = ra.principal_id WHERE p.app_id = $1', [sp.appId]);
    assert.equal(Number(held.rows[0].n), 1, 'the new service principal\'s AcrPull');
    // the secret is sealed there, not in clear
    assert.equal(await n("SELECT count(*) AS n FROM vault_secret_versions WHERE sealed LIKE '%in-postgres%'"), 0);
  } finally {
    await c.end();
  }
  const file = join(dir, 'berth.db');
  if (existsSync(file)) {
    const db = new Database(file, { readonly: true });
    try {
      const has = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'registries'").get() as { n: number };
      if (has.n) assert.equal((db.prepare('SELECT count(*) AS n FROM registries').get() as { n: number }).n, 0);
    } finally {
      db.close();
    }
  }

  // A restart finds it all again, and the image pulls.
  await stop();
  await serve(dir);
  assert.equal(await cli('acr', 'show', '-n', 'pgreg01', '--query', 'loginServer', '-o', 'tsv'), loginServer);
  assert.equal(await cli('keyvault', 'secret', 'show', '--vault-name', 'pgvault01', '-n', 'token', '--query', 'value', '-o', 'tsv'), 'in-postgres');
  const roles = JSON.parse(await cli('role', 'assignment', 'list', '--assignee', sp.appId, '--scope', scope, '-o', 'json')) as Array<{ roleDefinitionName: string }>;
  assert.deepEqual(roles.map((r) => r.roleDefinitionName), ['AcrPull']);
  const pulled = await mkdtemp(join(tmpdir(), 'berth-pgpull-'));
  dirs.push(pulled);
  await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${loginServer}/tools/busybox:v1`, `dir:${join(pulled, 'img')}`], { timeout: 120_000 });
  assert.ok(existsSync(join(pulled, 'img', 'manifest.json')));
  await stop();

  // The KEK rotates offline over the same database: every sealed value re-sealed, all still readable.
  const rotated = await runCli(['vault', 'rotate-kek', '--data-dir', dir, '--database', url, '-o', 'json'], env);
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.ok((JSON.parse(rotated.stdout) as { resealed: number }).resealed >= 3, rotated.stdout);
  await serve(dir);
  assert.equal(await cli('keyvault', 'secret', 'show', '--vault-name', 'pgvault01', '-n', 'token', '--query', 'value', '-o', 'tsv'), 'in-postgres');
  assert.notEqual(await cli('acr', 'credential', 'show', '-n', 'pgreg01', '--query', 'passwords[0].value', '-o', 'tsv'), '');
  await stop();
});

test('a password in --database on the command line is refused; BERTH_DATABASE_URL may carry it', { timeout: 30_000 }, async () => {
  const r = await runCli(['serve', '--data-dir', '/nonexistent/never-created', '--database', 'postgres://berth:hunter2@127.0.0.1:5432/berth'], process.env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /holds a password\. Put it in PGPASSWORD or ~\/\.pgpass, or pass the whole URL in BERTH_DATABASE_URL/);
  assert.doesNotMatch(r.stderr, /hunter2/);
  const bad = await runCli(['serve', '--data-dir', '/nonexistent/never-created', '--database', 'mysql://db/berth'], process.env);
  assert.match(bad.stderr, /the database URL must start with postgres:\/\//);
});

test('a database that cannot be reached stops the server at start with the URL (no password) and the reason', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pgdown-'));
  dirs.push(dir);
  const port = await freeLoopbackPort(); // nothing listens there
  const r = await runCli(['serve', '--data-dir', dir, '--port', '0', '--no-tls'], { ...process.env, BERTH_DATABASE_URL: `postgres://berth:s3cret-pw@127.0.0.1:${port}/berth` });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot open the metadata database postgres://berth@127\\.0\\.0\\.1:${port}/berth: connection refused`));
  assert.doesNotMatch(r.stderr + r.stdout, /s3cret-pw/);
});
