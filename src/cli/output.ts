// Turns a command's result into text the way az does (knack's output formats).
// JMESPath and yaml are loaded on first use (most commands need neither; yaml alone costs ~35 ms of start-up).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const search = (v: never, q: string): unknown => (require('@jmespath-community/jmespath') as typeof import('@jmespath-community/jmespath')).search(v, q);
const stringify = (v: unknown, o: { sortMapEntries: boolean }): string => (require('yaml') as typeof import('yaml')).stringify(v, o);

export type OutputFormat = 'json' | 'jsonc' | 'tsv' | 'table' | 'yaml' | 'yamlc' | 'none';
const FORMATS: OutputFormat[] = ['json', 'jsonc', 'none', 'table', 'tsv', 'yaml', 'yamlc'];

export class UsageError extends Error {}
export class QueryError extends Error {}

export function parseOutputFormat(s: string): OutputFormat {
  const f = s.toLowerCase() as OutputFormat;
  if (!FORMATS.includes(f)) {
    throw new UsageError(`argument --output/-o: invalid choice: '${s}' (choose from ${FORMATS.map((x) => `'${x}'`).join(', ')})`);
  }
  return f;
}

export function applyQuery(value: unknown, query: string): unknown {
  try {
    return search(value as never, query);
  } catch (e) {
    throw new QueryError(`Invalid jmespath query supplied for \`--query\`: ${(e as Error).message}\nTo learn more about --query, please visit: 'https://docs.microsoft.com/cli/azure/query-azure-cli'`);
  }
}

export function sortKeysDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeysDeep((v as Record<string, unknown>)[k])]));
  }
  return v;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function tsvValue(v: unknown): string {
  // knack writes str(value): Python's None for a null inside a row.
  if (v === null || v === undefined) return 'None';
  if (Array.isArray(v)) return String(v.length);
  if (isObj(v)) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

function tsv(value: unknown, queryActive: boolean): string {
  const rows = Array.isArray(value) ? value : [value];
  return rows.map((row) => {
    if (isObj(row)) {
      const keys = queryActive ? Object.keys(row) : Object.keys(row).sort();
      return keys.map((k) => tsvValue(row[k])).join('\t');
    }
    if (Array.isArray(row)) return row.map(tsvValue).join('\t');
    return tsvValue(row);
  }).map((l) => l + '\n').join('');
}

function table(value: unknown, queryActive: boolean): string {
  const items = Array.isArray(value) ? value : [value];
  let rows: Array<Record<string, unknown>>;
  if (items.every((i) => !isObj(i) && !Array.isArray(i))) {
    rows = items.map((i) => ({ Result: i }));
  } else if (items.every(isObj)) {
    rows = (items as Array<Record<string, unknown>>).map((r) => {
      const out: Record<string, unknown> = {};
      // knack sorts the keys unless a query or a table transformer chose the columns; id, type and
      // etag never make a column.
      const keys = queryActive ? Object.keys(r) : Object.keys(r).sort();
      for (const k of keys) {
        const v = r[k];
        if (['id', 'type', 'etag'].includes(k)) continue;
        if (v === null || v === undefined || Array.isArray(v) || isObj(v)) continue;
        out[k.charAt(0).toUpperCase() + k.slice(1)] = v;
      }
      return out;
    });
  } else {
    throw new Error('Table output unavailable. Use the --query option to specify an appropriate query. Use --debug for more info.');
  }
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  if (cols.length === 0) return '';
  const cell = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));
  // tabulate pads headers by two (MIN_PADDING) when it sizes columns; knack calls it with
  // disable_numparse=True, so numbers are left-aligned like any text.
  const widths = cols.map((c) => Math.max(c.length + 2, ...rows.map((r) => cell(r[c]).length)));
  const fmt = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').replace(/\s+$/, '');
  const lines = [fmt(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => fmt(cols.map((c) => cell(r[c]))))];
  return lines.join('\n') + '\n';
}

/** A date in a table column as az's table transformers print it (acr _format._format_datetime): seconds, Z. */
export function tableDate(d: unknown): string {
  const t = typeof d === 'string' ? Date.parse(d) : NaN;
  return Number.isNaN(t) ? (typeof d === 'string' && d ? d : ' ') : new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatOutput(value: unknown, format: OutputFormat, opts: { queryActive?: boolean; tableTransformer?: (v: unknown) => unknown } = {}): string {
  if (value === null || value === undefined || format === 'none') return '';
  switch (format) {
    case 'json':
    case 'jsonc':
      return JSON.stringify(sortKeysDeep(value), null, 2) + '\n';
    case 'yaml':
    case 'yamlc':
      return stringify(sortKeysDeep(value), { sortMapEntries: true });
    case 'tsv':
      return tsv(value, Boolean(opts.queryActive));
    case 'table': {
      const v = opts.tableTransformer && !opts.queryActive ? opts.tableTransformer(value) : value;
      return table(v, Boolean(opts.queryActive) || Boolean(opts.tableTransformer));
    }
  }
}
