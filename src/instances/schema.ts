// A small schema walker with ARM's input leniency (AZURE-FACTS §1.9): property names match
// case-insensitively and come out in canonical casing, numbers may be strings, enum values match
// case-insensitively, null means absent. Unknown fields are errors that name their path and suggest the
// nearest known field. Pure: no I/O.

export type Node =
  | { t: 'string' }
  | { t: 'number'; min?: number }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'bool' }
  | { t: 'enum'; values: string[]; normalize?: (s: string) => string }
  | { t: 'object'; fields: Record<string, Node>; required?: string[]; readOnly?: string[] }
  | { t: 'array'; of: Node }
  | { t: 'map'; of: Node }
  | { t: 'any' }
  /** A string, or (when the value is an object) the object schema: e.g. a literal or a reference. */
  | { t: 'stringOr'; obj: Node };

export const str: Node = { t: 'string' };
export const num = (min?: number): Node => ({ t: 'number', ...(min !== undefined ? { min } : {}) });
export const int = (min?: number, max?: number): Node => ({ t: 'int', ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
export const bool: Node = { t: 'bool' };
export const any: Node = { t: 'any' };
export const stringOr = (o: Node): Node => ({ t: 'stringOr', obj: o });
export const oneOf = (...values: string[]): Node => ({ t: 'enum', values });
export const arr = (of: Node): Node => ({ t: 'array', of });
export const map = (of: Node): Node => ({ t: 'map', of });
export const obj = (fields: Record<string, Node>, required: string[] = [], readOnly: string[] = []): Node => ({ t: 'object', fields, required, readOnly });

/** Levenshtein distance, case-insensitive. */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length]!;
}

/** The known name nearest to `word`, when it is close enough to be a likely misspelling. */
export function suggest(word: string, known: string[]): string | undefined {
  const w = word.toLowerCase();
  const prefix = w.length >= 3 ? known.filter((k) => k.toLowerCase().startsWith(w) || w.startsWith(k.toLowerCase())) : [];
  if (prefix.length === 1) return prefix[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(word, k);
    if (d < bestD) { best = k; bestD = d; }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

const childPath = (path: string, key: string) => (path ? `${path}.${key}` : key);

/**
 * Walks `value` against `node`; returns the canonical value and pushes one message per problem into
 * `errors`. Read-only fields (what a GET returned, e.g. instanceView) are accepted and dropped.
 */
export function walk(node: Node, value: unknown, path: string, errors: string[]): unknown {
  if (value === null || value === undefined) return undefined;
  const kind = Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `the ${typeof value} ${JSON.stringify(value)}`;
  switch (node.t) {
    case 'any':
      return value;
    case 'stringOr':
      return walk(typeof value === 'object' && !Array.isArray(value) ? node.obj : str, value, path, errors);
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      errors.push(`${path} must be a string, not ${kind}`);
      return undefined;
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      errors.push(`${path} must be true or false, not ${kind}`);
      return undefined;
    case 'number':
    case 'int': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isFinite(n) || (node.t === 'int' && !Number.isInteger(n))) {
        errors.push(`${path} must be ${node.t === 'int' ? 'an integer' : 'a number'}, not ${kind}`);
        return undefined;
      }
      if (node.min !== undefined && n < node.min) errors.push(`${path} must be at least ${node.min}, not ${n}`);
      if (node.t === 'int' && node.max !== undefined && n > node.max) errors.push(`${path} must be at most ${node.max}, not ${n}`);
      return n;
    }
    case 'enum': {
      if (typeof value !== 'string') {
        errors.push(`${path} must be one of ${node.values.join(', ')}, not ${kind}`);
        return undefined;
      }
      const norm = node.normalize ?? ((s: string) => s.toLowerCase());
      const hit = node.values.find((v) => norm(v) === norm(value));
      if (hit === undefined) errors.push(`${path}: '${value}' is not one of ${node.values.join(', ')}`);
      return hit;
    }
    case 'array': {
      if (!Array.isArray(value)) {
        errors.push(`${path} must be a list, not ${kind}`);
        return undefined;
      }
      return value.map((v, i) => walk(node.of, v, `${path}[${i}]`, errors));
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        errors.push(`${path} must be an object, not ${kind}`);
        return undefined;
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = walk(node.of, v, `${path}['${k}']`, errors);
      return out;
    }
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        errors.push(`${path || 'the document'} must be an object, not ${kind}`);
        return undefined;
      }
      const known = Object.keys(node.fields);
      const byLower = new Map(known.map((k) => [k.toLowerCase(), k]));
      const readOnly = new Set((node.readOnly ?? []).map((k) => k.toLowerCase()));
      const out: Record<string, unknown> = {};
      const suggested = new Set<string>();
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (readOnly.has(k.toLowerCase())) continue;
        const canon = byLower.get(k.toLowerCase());
        if (!canon) {
          const s = suggest(k, known);
          if (s) suggested.add(s);
          errors.push(`${childPath(path, k)} is not a known field${s ? `; did you mean ${s}?` : `; known fields here: ${known.join(', ')}`}`);
          continue;
        }
        if (canon in out) {
          errors.push(`${childPath(path, k)} is given twice (field names are case-insensitive)`);
          continue;
        }
        const w = walk(node.fields[canon]!, v, childPath(path, canon), errors);
        if (w !== undefined) out[canon] = w;
      }
      for (const r of node.required ?? []) {
        // A missing required field that a misspelling stands for is reported once, as the misspelling.
        if (out[r] === undefined && !suggested.has(r) && !errors.some((e) => e.startsWith(childPath(path, r)))) errors.push(`${childPath(path, r)} is required`);
      }
      return out;
    }
  }
}
