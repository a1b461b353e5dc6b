// The registry's metadata contract (src/registry/metadata.ts), written once and held against every
// implementation: the embedded SQLite store today, a PostgreSQL one when it exists (issue 18). What
// the registry protocol relies on is said here in terms of the interface, not of SQL.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Digest } from '../src/oci/digest.js';
import type { NewManifest, RegistryMetadataStore } from '../src/registry/metadata.js';
import { SqlRegistryMetadata } from '../src/storage/sql-registry-metadata.js';
import { migratePostgres } from '../src/storage/sql/postgres-schema.js';
import { PostgresSql } from '../src/storage/sql/postgres-sql.js';
import { SqliteSql } from '../src/storage/sql/sqlite-sql.js';
import { openDatabase } from '../src/storage/sqlite.js';
import { postgresUnavailable, startTestPostgres } from './helpers/postgres.js';

interface Subject {
  store: RegistryMetadataStore;
  /** Creates the registry row the store's records belong to (registries are another service's). */
  addRegistry(id: string): Promise<void>;
  close(): Promise<void>;
}

const pgSkip = postgresUnavailable();
if (pgSkip) console.log(`# skipping the PostgreSQL half of the metadata contract: ${pgSkip}`);

const implementations: Array<{ name: string; skip?: string; open(): Promise<Subject> }> = [
  {
    name: 'sqlite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'berth-meta-contract-'));
      const db = openDatabase(join(dir, 'berth.db'));
      let port = 40000;
      return {
        store: new SqlRegistryMetadata(new SqliteSql(db)),
        async addRegistry(id) {
          db.prepare(`INSERT INTO registries (id, subscription, resource_group, name, name_lower, location, sku, port, created_at)
            VALUES (?, 'sub', 'rg', ?, ?, 'local', 'Basic', ?, ?)`).run(id, id, id.toLowerCase(), port++, new Date().toISOString());
        },
        async close() {
          db.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    ...(pgSkip ? { skip: pgSkip } : {}),
    async open() {
      const server = await startTestPostgres();
      const sql = PostgresSql.connect(server.database('contract'));
      await migratePostgres(sql);
      await migratePostgres(sql); // a second start finds the schema current
      let port = 40000;
      return {
        store: new SqlRegistryMetadata(sql),
        async addRegistry(id) {
          await sql.run(`INSERT INTO registries (id, subscription, resource_group, name, name_lower, location, sku, port, created_at)
            VALUES (?, 'sub', 'rg', ?, ?, 'local', 'Basic', ?, ?)`, [id, id, id.toLowerCase(), port++, new Date().toISOString()]);
        },
        async close() {
          await sql.close();
          await server.stop();
        },
      };
    },
  },
];

const d = (c: string): Digest => `sha256:${c.repeat(64).slice(0, 64)}` as Digest;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
function manifest(digest: Digest, children: Digest[], extra: Partial<NewManifest> = {}): NewManifest {
  return { digest, mediaType: OCI_MANIFEST, size: 100, imageSize: 1000, children, ...extra };
}

for (const impl of implementations) {
  describe(`registry metadata contract: ${impl.name}`, { skip: impl.skip, timeout: 120_000 }, () => {
    let s: Subject;
    let m: RegistryMetadataStore;
    let n = 0;
    /** A registry of its own for each test, so that tests do not see each other's records. */
    async function registry(): Promise<string> {
      const id = `reg${++n}`;
      await s.addRegistry(id);
      return id;
    }
    before(async () => {
      s = await impl.open();
      m = s.store;
    });
    after(async () => s && s.close());

    test('a manifest put with tags: found by digest and by tag, counted in its repository', async () => {
      const r = await registry();
      await m.putManifest(r, 'app', manifest(d('a'), [d('b'), d('c')], { configDigest: d('b'), platform: { os: 'linux', architecture: 'amd64' }, annotations: { k: 'v' } }), ['v1', 'latest']);
      const got = await m.getManifest(r, 'app', d('a'));
      assert.equal(got?.digest, d('a'));
      assert.equal(got?.mediaType, OCI_MANIFEST);
      assert.equal(got?.size, 100);
      assert.equal(got?.imageSize, 1000);
      assert.equal(got?.configDigest, d('b'));
      assert.deepEqual(got?.platform, { os: 'linux', architecture: 'amd64' });
      assert.deepEqual(got?.annotations, { k: 'v' });
      assert.deepEqual(got?.attributes, { deleteEnabled: true, writeEnabled: true, readEnabled: true, listEnabled: true });
      assert.equal((await m.resolveTag(r, 'app', 'v1'))?.digest, d('a'));
      assert.equal((await m.resolveTag(r, 'app', 'latest'))?.digest, d('a'));
      assert.equal(await m.resolveTag(r, 'app', 'v2'), undefined);
      assert.equal(await m.getManifest(r, 'other', d('a')), undefined, 'a manifest belongs to its repository');
      const repo = await m.getRepository(r, 'app');
      assert.equal(repo?.manifestCount, 1);
      assert.equal(repo?.tagCount, 2);
      assert.deepEqual((await m.listManifests(r, 'app')).map((x) => [x.digest, x.tags]), [[d('a'), ['latest', 'v1']]]);
    });

    test('a tag moves to the manifest put last; putting the same manifest again is harmless', async () => {
      const r = await registry();
      await m.putManifest(r, 'app', manifest(d('a'), []), 'v1');
      await m.putManifest(r, 'app', manifest(d('b'), []), 'v1');
      await m.putManifest(r, 'app', manifest(d('b'), []), 'v1');
      assert.equal((await m.resolveTag(r, 'app', 'v1'))?.digest, d('b'));
      assert.equal((await m.getRepository(r, 'app'))?.manifestCount, 2);
    });

    test('blob links: per repository, sized, unlinked once; the registry\'s usage counts a blob once', async () => {
      const r = await registry();
      await m.linkBlob(r, 'one', d('1'), 10);
      await m.linkBlob(r, 'two', d('1'), 10);
      await m.linkBlob(r, 'two', d('2'), 5);
      assert.equal(await m.linkedBlobSize(r, 'one', d('1')), 10);
      assert.equal(await m.linkedBlobSize(r, 'one', d('2')), undefined);
      assert.deepEqual(await m.reposWithBlob(r, d('1')), ['one', 'two']);
      assert.equal(await m.registryUsage(r), 15);
      assert.equal(await m.inRegistry(r, d('2')), true);
      assert.equal(await m.inRegistry(r, d('3')), false);
      assert.equal(await m.unlinkBlob(r, 'one', d('1')), true);
      assert.equal(await m.unlinkBlob(r, 'one', d('1')), false);
      assert.deepEqual(await m.reposWithBlob(r, d('1')), ['two']);
      await m.linkBlob(r, 'big', d('4'), 5 * 2 ** 30);
      assert.equal(await m.linkedBlobSize(r, 'big', d('4')), 5 * 2 ** 30, 'sizes past 32 bits');
      assert.equal(await m.registryUsage(r), 15 + 5 * 2 ** 30);
      const other = await registry();
      assert.equal(await m.registryUsage(other), 0, 'usage is per registry');
      assert.equal(await m.inRegistry(other, d('2')), false);
    });

    test('a repository holding only blobs is not listed; listing pages in byte order with n and last', async () => {
      const r = await registry();
      await m.linkBlob(r, 'blobs-only', d('1'), 1);
      for (const name of ['b', 'a', 'C', 'c/d']) await m.putManifest(r, name, manifest(d('e'), []));
      assert.deepEqual(await m.listRepositories(r, undefined, undefined), { items: ['C', 'a', 'b', 'c/d'], more: false });
      assert.deepEqual(await m.listRepositories(r, 2, undefined), { items: ['C', 'a'], more: true });
      assert.deepEqual(await m.listRepositories(r, 2, 'a'), { items: ['b', 'c/d'], more: false });
    });

    test('tags page in byte order with n and last', async () => {
      const r = await registry();
      await m.putManifest(r, 'app', manifest(d('a'), []), ['v2', 'V1', 'v10', 'latest']);
      assert.deepEqual((await m.listTags(r, 'app', undefined, undefined)).items.map((t) => t.name), ['V1', 'latest', 'v10', 'v2']);
      const first = await m.listTags(r, 'app', 3, undefined);
      assert.deepEqual([first.items.map((t) => t.name), first.more], [['V1', 'latest', 'v10'], true]);
      const rest = await m.listTags(r, 'app', 3, 'v10');
      assert.deepEqual([rest.items.map((t) => t.name), rest.more], [['v2'], false]);
      assert.deepEqual((await m.listTags(r, 'app', 0, undefined)).items, []);
    });

    test('concurrent pushes of one tag: each manifest stored, the tag at one of them', async () => {
      const r = await registry();
      const digests = [d('1'), d('2'), d('3'), d('4'), d('5'), d('6')];
      await Promise.all(digests.map((x) => m.putManifest(r, 'race', manifest(x, [d('a')]), 'latest')));
      assert.equal((await m.getRepository(r, 'race'))?.manifestCount, digests.length);
      assert.ok(digests.includes((await m.resolveTag(r, 'race', 'latest'))!.digest));
      assert.equal((await m.listTags(r, 'race', undefined, undefined)).items.length, 1);
    });

    test('deleting a manifest takes its tags; deleting a tag keeps the manifest', async () => {
      const r = await registry();
      await m.putManifest(r, 'app', manifest(d('a'), []), ['v1', 'v2']);
      assert.equal(await m.deleteTag(r, 'app', 'v1'), true);
      assert.equal(await m.deleteTag(r, 'app', 'v1'), false);
      assert.ok(await m.getManifest(r, 'app', d('a')));
      assert.equal(await m.deleteManifest(r, 'app', d('a')), true);
      assert.equal(await m.resolveTag(r, 'app', 'v2'), undefined);
      assert.equal(await m.deleteManifest(r, 'app', d('a')), false);
    });

    test('an index is a parent of its children; a manifest with a subject is a referrer', async () => {
      const r = await registry();
      await m.putManifest(r, 'app', manifest(d('a'), []));
      await m.putManifest(r, 'app', manifest(d('b'), []));
      await m.putManifest(r, 'app', manifest(d('f'), [d('a'), d('b')], { mediaType: OCI_INDEX }));
      await m.putManifest(r, 'app', manifest(d('9'), [d('a')]));
      assert.deepEqual(await m.manifestParents(r, 'app', d('a')), [d('f')], 'only an index is a parent');
      await m.putManifest(r, 'app', manifest(d('5'), [], { subject: d('a'), artifactType: 'application/example' }));
      const refs = await m.referrers(r, 'app', d('a'));
      assert.deepEqual(refs.map((x) => [x.digest, x.artifactType, x.subject]), [[d('5'), 'application/example', d('a')]]);
    });

    test('changeable attributes of a repository, a manifest and a tag; false for what does not exist', async () => {
      const r = await registry();
      await m.putManifest(r, 'app', manifest(d('a'), []), 'v1');
      const off = { deleteEnabled: false, writeEnabled: false, readEnabled: true, listEnabled: false };
      assert.equal(await m.setAttributes(r, 'app', { kind: 'repository' }, off), true);
      assert.deepEqual((await m.getRepository(r, 'app'))?.attributes, off);
      assert.deepEqual(await m.listRepositories(r, undefined, undefined), { items: [], more: false }, 'listEnabled false hides it');
      assert.equal(await m.setAttributes(r, 'app', { kind: 'manifest', digest: d('a') }, off), true);
      assert.deepEqual((await m.getManifest(r, 'app', d('a')))?.attributes, off);
      assert.equal(await m.setAttributes(r, 'app', { kind: 'tag', tag: 'v1' }, off), true);
      assert.deepEqual((await m.resolveTag(r, 'app', 'v1'))?.attributes, off);
      assert.equal(await m.setAttributes(r, 'app', { kind: 'tag', tag: 'nope' }, off), false);
      assert.equal(await m.setAttributes(r, 'nope', { kind: 'repository' }, off), false);
      assert.equal(await m.setAttributes(r, 'app', { kind: 'manifest', digest: d('b') }, off), false);
    });

    test('deleting a repository answers what it held and leaves nothing of it', async () => {
      const r = await registry();
      await m.putManifest(r, 'app', manifest(d('b'), [d('1')]), 'v2');
      await m.putManifest(r, 'app', manifest(d('a'), [d('1')]), 'v1');
      await m.linkBlob(r, 'app', d('1'), 7);
      assert.deepEqual(await m.deleteRepository(r, 'app'), { manifests: [d('a'), d('b')], tags: ['v1', 'v2'] });
      assert.equal(await m.getRepository(r, 'app'), undefined);
      assert.equal(await m.getManifest(r, 'app', d('a')), undefined);
      assert.equal(await m.resolveTag(r, 'app', 'v1'), undefined);
      assert.equal(await m.linkedBlobSize(r, 'app', d('1')), undefined);
      assert.equal(await m.registryUsage(r), 0);
      assert.equal(await m.deleteRepository(r, 'app'), undefined);
    });

    test('upload sessions: created, found, stale before a time, deleted', async () => {
      const r = await registry();
      const id = `up-${r}`;
      await m.createUpload(id, r, 'app');
      const u = await m.getUpload(id);
      assert.equal(u?.registryId, r);
      assert.equal(u?.repo, 'app');
      assert.ok(!Number.isNaN(Date.parse(u!.createdAt)));
      assert.ok((await m.staleUploads(new Date(Date.now() + 60_000).toISOString())).includes(id));
      assert.ok(!(await m.staleUploads(new Date(Date.now() - 60_000).toISOString())).includes(id));
      await m.deleteUpload(id);
      assert.equal(await m.getUpload(id), undefined);
      await m.deleteUpload(id);
    });

    test('garbage-collection marks: what manifests and links reference, one digest at a time too; old unreferenced links are pruned', async () => {
      const r = await registry();
      await m.putManifest(r, 'gc', manifest(d('7'), [d('8')]));
      await m.linkBlob(r, 'gc', d('8'), 1);
      await m.linkBlob(r, 'gc', d('6'), 1);
      const marked = await m.referencedDigests();
      for (const x of [d('7'), d('8'), d('6')]) {
        assert.ok(marked.has(x), `${x} is marked`);
        assert.equal(await m.isReferenced(x), true);
      }
      assert.equal(await m.isReferenced(d('0')), false);
      assert.equal(await m.pruneUnreferencedLinks(new Date(Date.now() - 60_000).toISOString()), 0, 'links younger than the cut stay');
      const pruned = await m.pruneUnreferencedLinks(new Date(Date.now() + 60_000).toISOString());
      assert.ok(pruned >= 1);
      assert.equal(await m.linkedBlobSize(r, 'gc', d('6')), undefined, 'a link no manifest references goes');
      assert.equal(await m.linkedBlobSize(r, 'gc', d('8')), 1, 'a link a manifest references stays');
    });
  });
}
