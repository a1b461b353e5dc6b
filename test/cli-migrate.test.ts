// `berth migrate`: a data directory used through the CLI (a registry with an image, a vault secret, a
// service principal with a role) is copied into an empty PostgreSQL database: every table's rows, the
// sealed values as they were, the registry's metadata readable there; a second copy, a password on the
// command line and a running server are refused with nothing written.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { SqlRegistryMetadata } from '../src/storage/sql-registry-metadata.js';
import { PostgresSql } from '../src/storage/sql/postgres-sql.js';
import { openDatabase } from '../src/storage/sqlite.js';
import { cliAdminRegistry, cliJson, runCli, startTestBerth, type TestBerth } from './helpers/berth.js';
import { postgresUnavailable, startTestPostgres, type TestPostgres } from './helpers/postgres.js';

const skip = postgresUnavailable();
if (skip) console.log(`# skipping berth migrate tests: ${skip}`);

let b: TestBerth;
let server: TestPostgres;
let dataDir: string;
let digest: string;

async function push(loginServer: string, auth: string): Promise<string> {
  const base = `http://${loginServer}/v2/app`;
  const put = async (body: Buffer, mediaType?: string) => {
    const d = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    if (mediaType) {
      const r = await fetch(`${base}/manifests/v1`, { method: 'PUT', body: new Uint8Array(body), headers: { Authorization: auth, 'Content-Type': mediaType } });
      assert.equal(r.status, 201, await r.text());
    } else {
      const r = await fetch(`${base}/blobs/uploads/?digest=${d}`, { method: 'POST', body: new Uint8Array(body), headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' } });
      assert.equal(r.status, 201, await r.text());
    }
    return d;
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = Buffer.from('not really a layer');
  const configDigest = await put(config);
  const layerDigest = await put(layer);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  }));
  return put(manifest, 'application/vnd.oci.image.manifest.v1+json');
}

function tableRows(): Record<string, number> {
  const db = openDatabase(`${dataDir}/berth.db`);
  try {
    const out: Record<string, number> = {};
    for (const { name } of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'leases'`).all() as Array<{ name: string }>) {
      out[name] = (db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).get() as { n: number }).n;
    }
    return out;
  } finally {
    db.close();
  }
}

before(async () => {
  if (skip) return;
  server = await startTestPostgres();
  b = await startTestBerth();
  dataDir = b.env.BERTH_DATA_DIR!;
  const reg = await cliAdminRegistry(b.env, 'migratereg');
  digest = await push(reg.loginServer, reg.auth);
  await cliJson(b, ['keyvault', 'create', '-g', 'rg', '-n', 'migratevault']);
  await cliJson(b, ['keyvault', 'secret', 'set', '--vault-name', 'migratevault', '-n', 'db-password', '--value', 'S3cret-migrate-9f2']);
  await cliJson(b, ['ad', 'sp', 'create-for-rbac', '-n', 'migrate-sp', '--role', 'AcrPull', '--scopes', (await cliJson(b, ['acr', 'show', '-n', 'migratereg'])).id]);
}, { timeout: 300_000 });

after(async () => {
  await b?.cleanup();
  await server?.stop();
});

test('a running server is refused; so is a password on the command line', { skip, timeout: 120_000 }, async () => {
  const url = server.database('refused');
  const running = await runCli(['migrate', '--data-dir', dataDir, '--database', url], b.env);
  assert.equal(running.code, 1);
  assert.match(running.stderr, /berth serve \(pid \d+\) is running on .*Stop it first/);
  const withPassword = await runCli(['migrate', '--data-dir', dataDir, '--database', url.replace('berth@', 'berth:hunter2@')], b.env);
  assert.equal(withPassword.code, 1);
  assert.match(withPassword.stderr, /holds a password\. Put it in PGPASSWORD or ~\/\.pgpass/);
  assert.doesNotMatch(withPassword.stderr, /hunter2/);
});

test('the data directory is copied whole into PostgreSQL, and a second copy is refused', { skip, timeout: 300_000 }, async () => {
  await b.stop();
  const url = server.database('berth');
  const before = tableRows();
  const r = await runCli(['migrate', '--data-dir', dataDir, '--database', url], { ...b.env, BERTH_DATABASE_URL: '' });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rows: number; tables: Array<{ table: string; rows: number }> };
  assert.equal(out.rows, Object.values(before).reduce((a, n) => a + n, 0));
  assert.doesNotMatch(r.stdout + r.stderr, /S3cret-migrate-9f2/);

  const pg = PostgresSql.connect(url);
  try {
    for (const [table, n] of Object.entries(before)) {
      assert.equal((await pg.get<{ n: number }>(`SELECT COUNT(*) AS n FROM "${table}"`))?.n, n, `rows of ${table}`);
    }
    assert.ok(before.vault_secret_versions! >= 1 && before.principal_secrets! >= 1 && before.manifests! >= 1 && before.role_assignments! >= 1);
    const db = openDatabase(`${dataDir}/berth.db`);
    const sealed = (db.prepare('SELECT sealed FROM vault_secret_versions').all() as Array<{ sealed: string }>).map((x) => x.sealed).sort();
    const registryId = (db.prepare(`SELECT id FROM registries WHERE name = 'migratereg'`).get() as { id: string }).id;
    db.close();
    assert.deepEqual((await pg.all<{ sealed: string }>('SELECT sealed FROM vault_secret_versions')).map((x) => x.sealed).sort(), sealed, 'sealed values copied as they were');
    assert.equal((await pg.all<{ sealed: string }>(`SELECT sealed FROM vault_secret_versions WHERE sealed LIKE '%S3cret%'`)).length, 0);
    const meta = new SqlRegistryMetadata(pg);
    assert.equal((await meta.resolveTag(registryId, 'app', 'v1'))?.digest, digest);
    assert.equal((await meta.getRepository(registryId, 'app'))?.manifestCount, 1);

    const again = await runCli(['migrate', '--data-dir', dataDir, '--database', url], b.env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds Berth data: .*registries \(1\).*Migrate into an empty database/);
    assert.equal((await pg.get<{ n: number }>('SELECT COUNT(*) AS n FROM manifests'))?.n, before.manifests, 'nothing more was written');
  } finally {
    await pg.close();
  }
});
