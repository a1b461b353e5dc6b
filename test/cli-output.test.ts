// az's output formats (knack), checked against what az prints for the same values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatOutput, applyQuery, parseOutputFormat } from '../src/cli/output.js';

const reg = { name: 'myreg', loginServer: 'localhost:5001', adminUserEnabled: true, id: '/subscriptions/x/rg/y', type: 'Microsoft.ContainerRegistry/registries', tags: {}, sku: { name: 'Basic' }, zoneRedundancy: null, creationDate: '2026-01-01T00:00:00Z', count: 3 };

test('json: keys sorted at every level, two-space indent, trailing newline', () => {
  assert.equal(formatOutput({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'é' } }, 'json'),
    '{\n  "a": {\n    "c": "é",\n    "d": [\n      1,\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n');
  assert.equal(formatOutput([], 'json'), '[]\n');
  assert.equal(formatOutput('x', 'jsonc'), '"x"\n');
});

test('tsv: one line per item, values in key order, lists as their length, objects empty, null as None', () => {
  assert.equal(formatOutput(reg, 'tsv'), 'true\t3\t2026-01-01T00:00:00Z\t/subscriptions/x/rg/y\tlocalhost:5001\tmyreg\t\t\tMicrosoft.ContainerRegistry/registries\tNone\n');
  assert.equal(formatOutput(['a', 'b'], 'tsv'), 'a\nb\n');
  assert.equal(formatOutput([[1, 2], [3, [4, 5]]], 'tsv'), '1\t2\n3\t2\n');
  assert.equal(formatOutput(true, 'tsv'), 'true\n');
  assert.equal(formatOutput('secret-value', 'tsv'), 'secret-value\n', '--query value -o tsv prints the bare value');
  // a query's multiselect hash keeps the query's order
  const q = applyQuery(reg, '{z: name, a: loginServer}');
  assert.equal(formatOutput(q, 'tsv', { queryActive: true }), 'myreg\tlocalhost:5001\n');
});

test('a null result prints nothing, and none prints nothing', () => {
  assert.equal(formatOutput(null, 'json'), '');
  assert.equal(formatOutput(applyQuery(reg, 'missing'), 'tsv', { queryActive: true }), '');
  assert.equal(formatOutput(reg, 'none'), '');
});

test('table: auto columns sorted and capitalised, id/type/etag and nested values dropped, numbers left-aligned (knack: tabulate with disable_numparse)', () => {
  const out = formatOutput([reg, { ...reg, name: 'other', count: 12 }], 'table');
  assert.equal(out, [
    'AdminUserEnabled    Count    CreationDate          LoginServer     Name',
    '------------------  -------  --------------------  --------------  ------',
    'True                3        2026-01-01T00:00:00Z  localhost:5001  myreg',
    'True                12       2026-01-01T00:00:00Z  localhost:5001  other',
    '',
  ].join('\n'));
});

test('table: scalars go in a Result column; a query picks and orders the columns', () => {
  assert.equal(formatOutput(['hello-world', 'busybox'], 'table'), 'Result\n-----------\nhello-world\nbusybox\n');
  const q = applyQuery([reg], '[].{Name: name, Server: loginServer}');
  assert.equal(formatOutput(q, 'table', { queryActive: true }), 'Name    Server\n------  --------------\nmyreg   localhost:5001\n');
});

test('table: a table transformer is used unless a query is given', () => {
  const transformer = (v: unknown) => (v as Array<typeof reg>).map((r) => ({ NAME: r.name, 'LOGIN SERVER': r.loginServer }));
  assert.equal(formatOutput([reg], 'table', { tableTransformer: transformer }), 'NAME    LOGIN SERVER\n------  --------------\nmyreg   localhost:5001\n');
  // with a query the columns keep the result's own order
  assert.deepEqual(formatOutput([reg], 'table', { tableTransformer: transformer, queryActive: true }).split('\n')[0]!.split(/\s+/), ['Name', 'LoginServer', 'AdminUserEnabled', 'CreationDate', 'Count']);
});

test('table of mixed items is refused with az\'s message', () => {
  assert.throws(() => formatOutput([1, { a: 1 }], 'table'), /Table output unavailable\. Use the --query option/);
});

test('yaml: sorted keys, block style', () => {
  assert.equal(formatOutput({ b: [1, 2], a: { c: 'x' } }, 'yaml'), 'a:\n  c: x\nb:\n  - 1\n  - 2\n');
});

test('-o choices and --query errors read as az\'s', () => {
  assert.equal(parseOutputFormat('TSV'), 'tsv');
  assert.throws(() => parseOutputFormat('xml'), /argument --output\/-o: invalid choice: 'xml' \(choose from 'json', 'jsonc', 'none', 'table', 'tsv', 'yaml', 'yamlc'\)/);
  assert.throws(() => applyQuery({}, '[?'), /Invalid jmespath query supplied for `--query`/);
});
