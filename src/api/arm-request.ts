// What every ARM request must carry before a route looks at it, as ARM checks it: an api-version in
// the query, and for a PUT or PATCH a JSON object whose common top-level fields have their types.
// A route then reads `location`, `tags`, `sku` and `properties` without a type error turning into a 500.
import { invalid } from '../lib/errors.js';

const API_VERSION = /^\d{4}-\d{2}-\d{2}(-(preview|privatepreview|alpha|beta)(\.\d+)?)?$/i;

/** ARM's MissingApiVersionParameter / InvalidApiVersionParameter. */
export function checkArmApiVersion(value: unknown): void {
  if (value === undefined || value === '') {
    throw invalid('MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
  }
  if (typeof value !== 'string' || !API_VERSION.test(value)) {
    throw invalid('InvalidApiVersionParameter', `The api-version '${String(value)}' is invalid. The supported versions are dates such as '2023-05-01' or '2024-05-01-preview'.`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The body of a PUT or PATCH: a JSON object, with location, tags, sku, identity and properties of the right kinds. */
export function checkArmBody(body: unknown, method: string): void {
  if (method !== 'PUT' && method !== 'PATCH') return;
  // No body at all is the route's to judge (it answers with what it requires).
  if (body === undefined) return;
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
  if (!isObject(body)) {
    throw invalid('InvalidRequestContent', `The request content was invalid and could not be deserialized: the body must be a JSON object, not ${kind(body)}.`);
  }
  const fail = (path: string, want: string, v: unknown) => {
    throw invalid('InvalidRequestContent', `The request content was invalid and could not be deserialized: '${path}' must be ${want}, not ${kind(v)}.`);
  };
  if (body.location !== undefined && typeof body.location !== 'string') fail('location', 'a string', body.location);
  if (body.tags !== undefined && body.tags !== null) {
    if (!isObject(body.tags)) fail('tags', 'an object of strings', body.tags);
    for (const [k, v] of Object.entries(body.tags as Record<string, unknown>)) if (typeof v !== 'string') fail(`tags.${k}`, 'a string', v);
  }
  if (body.sku !== undefined && body.sku !== null) {
    if (!isObject(body.sku)) fail('sku', 'an object such as {"name": "Basic"}', body.sku);
    const sku = body.sku as Record<string, unknown>;
    if (sku.name !== undefined && typeof sku.name !== 'string') fail('sku.name', 'a string', sku.name);
  }
  for (const k of ['identity', 'properties'] as const) {
    if (body[k] !== undefined && body[k] !== null && !isObject(body[k])) fail(k, 'an object', body[k]);
  }
}
