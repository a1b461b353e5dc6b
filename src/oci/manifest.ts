// Parsing and validation of image manifests and indexes (OCI and Docker schema 2). Pure: no I/O.
import { RegistryError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';
import { MediaTypes, isIndexMediaType, isManifestMediaType, isNondistributableMediaType } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  /** For image manifests: config + layers. Blobs that must exist in the repository. */
  blobs: Descriptor[];
  /** For indexes: the manifests it lists. Must exist in the repository. */
  manifests: Descriptor[];
  config?: Descriptor;
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

function invalid(message: string): never {
  throw new RegistryError('MANIFEST_INVALID', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) invalid(`${where} must be a descriptor object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') invalid(`${where}.mediaType must be a non-empty string`);
  if (typeof v.digest !== 'string') invalid(`${where}.digest must be a string`);
  let digest: Digest;
  try {
    digest = parseDigest(v.digest);
  } catch (e) {
    invalid(`${where}.digest: ${(e as Error).message}`);
  }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) invalid(`${where}.size must be a non-negative integer`);
  const d: Descriptor = { mediaType: v.mediaType, digest, size: v.size };
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (isObject(v.annotations)) d.annotations = v.annotations as Record<string, string>;
  if (isObject(v.platform)) d.platform = v.platform as unknown as Platform;
  if (Array.isArray(v.urls)) d.urls = v.urls as string[];
  return d;
}

/**
 * Parses a manifest body. `contentType` is the request's Content-Type (may be empty); when both it and the
 * body's mediaType are present they must agree.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  if (body.length > MAX_MANIFEST_BYTES) {
    throw new RegistryError('SIZE_INVALID', `manifest is ${body.length} bytes; the limit is ${MAX_MANIFEST_BYTES}`, undefined, 413);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    invalid(`manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) invalid('manifest must be a JSON object');
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (declared !== undefined && ct && isManifestMediaType(ct) && declared !== ct) {
    invalid(`manifest mediaType "${declared}" does not match Content-Type "${ct}"`);
  }
  let mediaType = declared ?? (isManifestMediaType(ct) ? ct : undefined);
  if (!mediaType) {
    // Guess as the OCI spec permits when neither says: an index has "manifests", an image has "config".
    if (Array.isArray(doc.manifests)) mediaType = MediaTypes.ociIndex;
    else if (isObject(doc.config)) mediaType = MediaTypes.ociManifest;
    else invalid('manifest has no mediaType and no Content-Type names a manifest type');
  }
  if (!isManifestMediaType(mediaType)) invalid(`unsupported manifest media type "${mediaType}"`);
  if (doc.schemaVersion !== 2) invalid('manifest schemaVersion must be 2');

  const out: ParsedManifest = { mediaType, blobs: [], manifests: [] };
  if (typeof doc.artifactType === 'string' && doc.artifactType !== '') out.artifactType = doc.artifactType;
  if (isObject(doc.annotations)) out.annotations = doc.annotations as Record<string, string>;
  if (doc.subject !== undefined) out.subject = parseDescriptor(doc.subject, 'subject');

  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) invalid('index must have a "manifests" array');
    out.manifests = doc.manifests.map((m, i) => parseDescriptor(m, `manifests[${i}]`));
  } else {
    if (!isObject(doc.config)) invalid('image manifest must have a "config" descriptor');
    out.config = parseDescriptor(doc.config, 'config');
    const layers = doc.layers ?? [];
    if (!Array.isArray(layers)) invalid('"layers" must be an array');
    const ls = layers.map((l, i) => parseDescriptor(l, `layers[${i}]`));
    out.blobs = [out.config, ...ls.filter((l) => !isExternalLayer(l))];
  }
  return out;
}

/**
 * A non-distributable (foreign) layer that names where to download it: clients fetch it from its URLs, so
 * the registry does not require it to have been pushed. Without an http(s) URL it is an ordinary blob.
 */
export function isExternalLayer(l: Descriptor): boolean {
  return isNondistributableMediaType(l.mediaType) && (l.urls ?? []).some((u) => /^https?:\/\/[^/]/i.test(u));
}
