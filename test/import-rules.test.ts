// The layering of src/, as a test (go-containerregistry's depcheck in spirit): a forbidden import edge
// fails here with the file and the import. The rules:
//   lib/       the project's own utilities (errors, logger, atomic files, pin sets, sizes, CORS, the data
//              directory's layout): nothing of the project
//   oci/       the OCI data model (pure): nothing of the project
//   net/       TLS material and listeners: lib/ only
//   keychain/  pull credentials: lib/ and oci/ only
//   storage/   SQLite, blobs, disk space: lib/, oci/ and the store interfaces it implements (registry/metadata.ts), no service
//   client/    the registry client (auth, retries, redirect guard, host rules, errors): lib/, oci/ and keychain/ only
//   pull/      the pull client on top of it: see test/pull-client.test.ts (oci, keychain's contract, client/, lib)
//   runtime/   the container runtime: no client (only pull/types.ts, the image it is handed), no service, no API
//   platform/  wiring only (the composition root, berth.ts, and what it alone uses): imported by no module of
//              src/ but the entry point that starts a server (cli/commands/serve.ts); bin/, bench/ and tests
//              are outside src/ and may
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = join(import.meta.dirname, '..', '..', 'src');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every import of one src/ file by another, as [file, target], both relative to src/ (packages and node: left out). */
async function edges(): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const file of await sources(SRC)) {
    const text = await readFile(file, 'utf8');
    // Static imports and re-exports, side-effect imports, and dynamic import('...') (serve loads the server lazily).
    for (const m of text.matchAll(/^(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|^import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) out.push([relative(SRC, file), relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts')]);
    }
  }
  return out;
}

const RULES: Array<{ from: RegExp; allow: RegExp; why: string }> = [
  { from: /^lib\//, allow: /^lib\//, why: 'lib/ imports nothing of the project' },
  { from: /^oci\//, allow: /^oci\//, why: 'oci/ imports nothing of the project' },
  { from: /^net\//, allow: /^(net|lib)\//, why: 'net/ (TLS material, listeners) uses only lib/' },
  { from: /^keychain\//, allow: /^(keychain|lib|oci)\//, why: 'keychain/ uses only lib/ and oci/' },
  { from: /^client\//, allow: /^(client|keychain|lib|oci)\//, why: 'client/ (the registry client) sits on lib/, oci/ and the keychain: the puller, the pusher and the CLI sit on it' },
  { from: /^storage\//, allow: /^(storage|lib|oci)\/|^registry\/metadata\.ts$/, why: 'storage/ imports no service (only the store interfaces it implements)' },
  { from: /^runtime\//, allow: /^(runtime|lib|oci|storage)\/|^pull\/types\.ts$/, why: 'runtime/ imports no client, service or API (only the pulled image\'s types)' },
];

/** The entry points of src/ that may import platform/ (the composition root): the command that starts a server. */
const ENTRY_POINTS = new Set(['cli/commands/serve.ts']);

/** The forbidden edges among `all`, one line each naming the file, the import and the rule. */
function violations(all: Array<[string, string]>): string[] {
  const bad: string[] = [];
  for (const [from, to] of all) {
    for (const r of RULES) if (r.from.test(from) && !r.allow.test(to)) bad.push(`${from} imports ${to}: ${r.why}`);
    if (/^platform\//.test(to) && !/^platform\//.test(from) && !ENTRY_POINTS.has(from)) {
      bad.push(`${from} imports ${to}: platform/ is wiring, imported only by the entry points (cli/commands/serve.ts, bin/, bench/, tests)`);
    }
  }
  return bad;
}

test('src/ keeps its layers: lib and oci import nothing of the project, storage no service, runtime no client, platform only from entry points', { timeout: 30_000 }, async () => {
  const all = await edges();
  assert.ok(all.length > 300, `read ${all.length} imports`);
  assert.deepEqual(violations(all), []);
});

test('the rule test sees a forbidden edge (it is not vacuous)', { timeout: 30_000 }, async () => {
  const all = await edges();
  // A known allowed edge of each kind is found, so a forbidden one in the same shape would be too.
  assert.ok(all.some(([f, t]) => f.startsWith('storage/') && t === 'registry/metadata.ts'), 'storage/ → registry/metadata.ts is read');
  assert.ok(all.some(([f, t]) => f.startsWith('runtime/') && t === 'pull/types.ts'), 'runtime/ → pull/types.ts is read');
  assert.ok(all.some(([f, t]) => f === 'cli/commands/serve.ts' && t === 'platform/berth.ts'), 'serve\'s dynamic import of platform/berth.ts is read');
  assert.ok(all.some(([f, t]) => f.startsWith('api/') && t.startsWith('net/')), 'api/ → net/ is read');
  // And the checker reports each kind of forbidden edge.
  const forbidden: Array<[string, string]> = [
    ['api/server.ts', 'platform/berth.ts'],
    ['instances/service.ts', 'platform/server-names.ts'],
    ['cli/context.ts', 'platform/berth.ts'],
    ['lib/logger.ts', 'oci/digest.ts'],
    ['oci/reference.ts', 'lib/errors.ts'],
    ['net/tls.ts', 'vault/vaults.ts'],
    ['storage/sqlite.ts', 'registry/service.ts'],
    ['runtime/runc/bundle.ts', 'client/session.ts'],
  ];
  assert.deepEqual(violations(forbidden).map((line) => line.split(' imports ')[0]), forbidden.map(([f]) => f));
  assert.deepEqual(violations([['platform/berth.ts', 'platform/server-names.ts'], ['api/server.ts', 'net/dual-listener.ts'], ['instances/service.ts', 'instances/hosts-file.ts']]), []);
});
