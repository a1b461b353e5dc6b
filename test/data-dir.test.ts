// The data directory is private to its owner: 0700 however it was made (the quick start's mkdir -p
// makes it 0755), and the database with its WAL files 0600, so that no other local user reads specs,
// environment values, password hashes or pulled private layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth } from '../src/platform/berth.js';
import { makePrivate } from '../src/lib/private-files.js';

const mode = async (p: string) => (await stat(p)).mode & 0o777;

test('berth serve makes a 0755 data directory 0700 and its database files 0600, and says so in the log', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-private-'));
  await chmod(dir, 0o755);
  const logs: string[] = [];
  const b = await startBerth({ dataDir: dir, port: 0, logSink: (l) => logs.push(l) });
  try {
    assert.equal(await mode(dir), 0o700);
    for (const f of ['berth.db', 'berth.db-wal', 'berth.db-shm']) assert.equal(await mode(join(dir, f)), 0o600, f);
    assert.ok(logs.some((l) => l.includes('made private') && l.includes('"from":"0755"')), 'the change is logged');
  } finally {
    await b.stop();
  }
  // a second start finds nothing to change
  const again: string[] = [];
  const b2 = await startBerth({ dataDir: dir, port: 0, logSink: (l) => again.push(l) });
  await b2.stop();
  assert.ok(!again.some((l) => l.includes('made private')));
  await rm(dir, { recursive: true, force: true });
});

test('makePrivate narrows only what grants more, and leaves a missing path alone', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-private-'));
  const f = join(dir, 'f');
  await writeFile(f, 'x', { mode: 0o400 });
  await makePrivate(f, 0o600);
  assert.equal(await mode(f), 0o400, 'already narrower: untouched');
  await chmod(f, 0o664);
  await makePrivate(f, 0o600);
  assert.equal(await mode(f), 0o600);
  await makePrivate(join(dir, 'missing'), 0o600);
  await rm(dir, { recursive: true, force: true });
});
