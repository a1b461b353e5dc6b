// ACR's metadata API (/acr/v1/...): repositories, tags and manifests with their changeable attributes,
// ordered and paged as az and the Azure SDKs (ContainerRegistryClient) read them (data-plane 2021-07-01).
import { RegistryError } from '../../oci/errors.js';
import { isDigest, type Digest } from '../../oci/digest.js';
import type { ChangeableAttributes, ManifestRecord } from '../metadata.js';
import type { RegistryService } from '../service.js';
import type { Route } from './routes.js';
import type { Response } from './response.js';

const MAX_PATCH_BYTES = 16 * 1024;
const ATTRIBUTE_NAMES = ['deleteEnabled', 'writeEnabled', 'readEnabled', 'listEnabled'] as const;

export interface AcrRequest {
  registryId: string;
  loginServer: string;
  url: URL;
  method: string;
  /** Reads the (small, JSON) request body. */
  body(limit: number): Promise<Buffer>;
}

type AcrRoute = Extract<Route, { kind: 'acrCatalog' | 'acrRepository' | 'acrTags' | 'acrTag' | 'acrManifests' | 'acrManifest' }>;

export function isAcrRoute(r: Route): r is AcrRoute {
  return r.kind.startsWith('acr');
}

export async function handleAcr(s: RegistryService, q: AcrRequest, route: AcrRoute): Promise<Response> {
  const rid = q.registryId;
  switch (route.kind) {
    case 'acrCatalog': {
      const { n, last } = pageParams(q.url);
      const p = await s.catalog(rid, n, last);
      const headers: Record<string, string> = {};
      if (p.more && p.items.length) headers.Link = nextLink('/acr/v1/_catalog', n!, p.items[p.items.length - 1]!);
      return { status: 200, headers, body: { repositories: p.items } };
    }
    case 'acrRepository': {
      if (q.method === 'DELETE') {
        const r = await s.deleteRepository(rid, route.name);
        return { status: 202, body: { manifestsDeleted: r.manifests, tagsDeleted: r.tags } };
      }
      if (q.method === 'PATCH') await s.updateAttributes(rid, route.name, { kind: 'repository' }, await readAttributes(q));
      const r = await s.repository(rid, route.name);
      return {
        status: 200,
        body: {
          registry: q.loginServer, imageName: r.name, createdTime: r.createdAt, lastUpdateTime: r.updatedAt,
          manifestCount: r.manifestCount, tagCount: r.tagCount, changeableAttributes: r.attributes,
        },
      };
    }
    case 'acrTags': {
      const { n, last } = pageParams(q.url);
      const order = orderParam(q.url);
      const digest = q.url.searchParams.get('digest');
      let items = (await s.listTags(rid, route.name, undefined, undefined)).items.filter((t) => t.attributes.listEnabled);
      if (digest) items = items.filter((t) => t.digest === digest);
      const p = pageOf(sortByTime(items, order), (t) => t.name, n, last);
      const headers: Record<string, string> = {};
      if (p.more) headers.Link = nextLink(`/acr/v1/${route.name}/_tags`, n!, p.items[p.items.length - 1]!.name, order, digest);
      return { status: 200, headers, body: { registry: q.loginServer, imageName: route.name, tags: p.items.map((t) => tagJson(t)) } };
    }
    case 'acrTag': {
      if (q.method === 'DELETE') {
        await s.deleteManifest(rid, route.name, route.tag);
        return { status: 202 };
      }
      if (q.method === 'PATCH') await s.updateAttributes(rid, route.name, { kind: 'tag', tag: route.tag }, await readAttributes(q));
      const t = (await s.listTags(rid, route.name, undefined, undefined)).items.find((x) => x.name === route.tag);
      if (!t) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${route.tag} is not in repository ${route.name}`, { name: route.name, tag: route.tag });
      return { status: 200, body: { registry: q.loginServer, imageName: route.name, tag: tagJson(t) } };
    }
    case 'acrManifests': {
      const { n, last } = pageParams(q.url);
      const order = orderParam(q.url);
      const list = (await s.listManifests(rid, route.name)).filter((m) => m.attributes.listEnabled);
      const p = pageOf(sortByTime(list, order), (m) => m.digest, n, last);
      const headers: Record<string, string> = {};
      if (p.more) headers.Link = nextLink(`/acr/v1/${route.name}/_manifests`, n!, p.items[p.items.length - 1]!.digest, order);
      const manifests = await Promise.all(p.items.map(async (m) => manifestJson(m, await s.indexReferences(m))));
      return { status: 200, headers, body: { registry: q.loginServer, imageName: route.name, manifests } };
    }
    case 'acrManifest': {
      if (!isDigest(route.digest)) throw new RegistryError('DIGEST_INVALID', `"${route.digest.slice(0, 200)}" is not a digest; the manifest API takes digests (use _tags for tags)`);
      if (q.method === 'DELETE') {
        await s.deleteManifest(rid, route.name, route.digest);
        return { status: 202 };
      }
      if (q.method === 'PATCH') await s.updateAttributes(rid, route.name, { kind: 'manifest', digest: route.digest as Digest }, await readAttributes(q));
      const m = (await s.listManifests(rid, route.name)).find((x) => x.digest === route.digest);
      if (!m) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${route.digest.slice(0, 200)} is not in repository ${route.name}`, { name: route.name, digest: route.digest });
      return { status: 200, body: { registry: q.loginServer, imageName: route.name, manifest: manifestJson(m, await s.indexReferences(m)) } };
    }
  }
}

function tagJson(t: { name: string; digest: string; createdAt: string; updatedAt: string; attributes: ChangeableAttributes }) {
  return { name: t.name, digest: t.digest, createdTime: t.createdAt, lastUpdateTime: t.updatedAt, signed: false, changeableAttributes: t.attributes };
}

function manifestJson(m: ManifestRecord & { tags: string[] }, references: object[]) {
  return {
    digest: m.digest, imageSize: m.imageSize, createdTime: m.createdAt, lastUpdateTime: m.updatedAt,
    ...(m.platform ? { architecture: m.platform.architecture, os: m.platform.os } : {}),
    ...(references.length ? { references } : {}),
    mediaType: m.mediaType, tags: m.tags, changeableAttributes: m.attributes,
  };
}

/** The body of a PATCH: any of the four attributes, each a boolean. */
async function readAttributes(q: AcrRequest): Promise<Partial<ChangeableAttributes>> {
  const raw = (await q.body(MAX_PATCH_BYTES)).toString('utf8');
  let doc: unknown;
  try {
    doc = raw.trim() === '' ? {} : JSON.parse(raw);
  } catch {
    throw new RegistryError('UNSUPPORTED', 'the request body is not JSON; send {"deleteEnabled","writeEnabled","readEnabled","listEnabled"} booleans', undefined, 400);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new RegistryError('UNSUPPORTED', 'the request body must be a JSON object of changeable attributes', undefined, 400);
  }
  const out: Partial<ChangeableAttributes> = {};
  for (const k of ATTRIBUTE_NAMES) {
    const v = (doc as Record<string, unknown>)[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw new RegistryError('UNSUPPORTED', `${k} must be true or false, not ${JSON.stringify(v).slice(0, 50)}`, undefined, 400);
    out[k] = v;
  }
  return out;
}

type Order = 'timeasc' | 'timedesc' | undefined;

function orderParam(url: URL): Order {
  const o = url.searchParams.get('orderby');
  if (o === null || o === '') return undefined;
  if (o === 'timeasc' || o === 'timedesc') return o;
  throw new RegistryError('UNSUPPORTED', `orderby must be timeasc or timedesc, not "${o.slice(0, 30)}"`, undefined, 400);
}

/** Sorted by last update (ties by creation), or left in the store's order. */
function sortByTime<T extends { updatedAt: string; createdAt: string }>(items: T[], order: Order): T[] {
  if (!order) return items;
  const dir = order === 'timeasc' ? 1 : -1;
  return [...items].sort((a, b) => dir * (a.updatedAt.localeCompare(b.updatedAt) || a.createdAt.localeCompare(b.createdAt)));
}

/** The page after the item keyed `last` (all of it when `last` is not there), at most `n` long. */
function pageOf<T>(items: T[], key: (t: T) => string, n: number | undefined, last: string | undefined): { items: T[]; more: boolean } {
  let rest = items;
  if (last !== undefined) {
    const i = items.findIndex((t) => key(t) === last);
    // `last` gone since the previous page: in name order the next page still starts after it.
    rest = i >= 0 ? items.slice(i + 1) : items.filter((t) => key(t) > last);
  }
  if (n === undefined || rest.length <= n) return { items: rest, more: false };
  return { items: rest.slice(0, n), more: true };
}

function nextLink(path: string, n: number, last: string, order?: Order, digest?: string | null): string {
  const q = new URLSearchParams({ last, n: String(n) });
  if (order) q.set('orderby', order);
  if (digest) q.set('digest', digest);
  return `<${path}?${q.toString()}>; rel="next"`;
}

export function pageParams(url: URL): { n: number | undefined; last: string | undefined } {
  const nStr = url.searchParams.get('n');
  let n: number | undefined;
  if (nStr !== null) {
    n = Number(nStr);
    if (!Number.isInteger(n) || n < 0) throw new RegistryError('UNSUPPORTED', `n must be a non-negative integer, not "${nStr.slice(0, 20)}"`, undefined, 400);
  }
  return { n, last: url.searchParams.get('last') ?? undefined };
}
