// Manifest content negotiation: may a stored manifest be served to a client that sent these Accept headers?
// Pure: no I/O.
//
// The rule, chosen to match what real clients need:
// - no Accept, wildcards (`*/*`, `application/*`), or an Accept naming no manifest media type at all
//   (curl, `application/json`): the client takes what is stored;
// - otherwise the client listed the manifest types it understands, and the stored type must be one of
//   them (skopeo, podman, docker, containerd and oras all list every type they can parse).
import { MANIFEST_MEDIA_TYPES } from './media-types.js';

/** Docker schema 1 types: Berth never stores them, but a client that lists them is negotiating manifests. */
const SCHEMA1_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
];

interface AcceptEntry {
  type: string;
  q: number;
}

/** The media ranges of one or more Accept header values, lower-cased, with their q-values (default 1). */
export function parseAccept(accept: string | string[] | undefined): AcceptEntry[] {
  const values = accept === undefined ? [] : Array.isArray(accept) ? accept : [accept];
  const out: AcceptEntry[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      const [type, ...params] = part.split(';').map((s) => s.trim());
      if (!type) continue;
      let q = 1;
      for (const p of params) {
        const m = /^q\s*=\s*([0-9.]+)$/i.exec(p);
        if (m) q = Number(m[1]);
      }
      out.push({ type: type.toLowerCase(), q: Number.isFinite(q) ? q : 1 });
    }
  }
  return out;
}

/** Whether a manifest stored as `mediaType` may be served to a request with these Accept header values. */
export function acceptsManifest(accept: string | string[] | undefined, mediaType: string): boolean {
  const entries = parseAccept(accept);
  const wanted = entries.filter((e) => e.q > 0).map((e) => e.type);
  if (wanted.includes('*/*') || wanted.includes('application/*')) return true;
  const namesManifests = entries.some((e) => MANIFEST_MEDIA_TYPES.includes(e.type) || SCHEMA1_MEDIA_TYPES.includes(e.type));
  if (!namesManifests) return true;
  return wanted.includes(mediaType.toLowerCase());
}
