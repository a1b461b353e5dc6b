// Image references as docker reads them: [registry/]repository[:tag][@digest], normalised so that
// `busybox` is `docker.io/library/busybox:latest`. Pure: no I/O.
import { parseDigest, InvalidDigestError, type Digest } from './digest.js';
import { DOCKER_HUB, DOCKER_HUB_ALIASES } from './docker-hub.js';

export { DOCKER_HUB };

export interface ImageReference {
  /** Registry host[:port] as the user wrote it (docker.io for Docker Hub). */
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

export class InvalidReferenceError extends Error {
  constructor(readonly input: string, reason: string) {
    super(`invalid reference "${input}": ${reason}`);
  }
}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** True when the first path component names a registry host rather than a Docker Hub namespace. */
function looksLikeHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || /^\[/.test(first) || first !== first.toLowerCase();
}

/**
 * Parses and normalises a reference. With `defaultTag` (docker uses "latest") a reference with neither
 * tag nor digest gets that tag.
 */
export function parseReference(input: string, opts: { defaultTag?: string } = {}): ImageReference {
  const s = input.trim();
  if (s === '') throw new InvalidReferenceError(input, 'it is empty');
  if (/\s/.test(s)) throw new InvalidReferenceError(input, 'it contains white space');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw new InvalidReferenceError(input, 'leave out the scheme (write "host/repo:tag", not a URL)');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (e) {
      throw new InvalidReferenceError(input, e instanceof InvalidDigestError ? e.message : 'bad digest');
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(input, `tag "${tag}" must be 1-128 letters, digits, "_", "." or "-", not starting with "." or "-"`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && looksLikeHost(parts[0]!)) {
    registry = parts.shift()!;
    if (!HOST.test(registry)) throw new InvalidReferenceError(input, `"${registry}" is not a valid registry host[:port]`);
    const port = registry.match(/:(\d+)$/)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw new InvalidReferenceError(input, `port ${port} is out of range`);
  }
  if (DOCKER_HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((p) => p === '')) throw new InvalidReferenceError(input, 'the repository path has an empty component');
  for (const p of parts) {
    if (p !== p.toLowerCase()) throw new InvalidReferenceError(input, 'repository name must be lowercase');
    if (!COMPONENT.test(p)) throw new InvalidReferenceError(input, `path component "${p}" may only hold lowercase letters, digits and single separators (".", "_", "__", "-")`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255) throw new InvalidReferenceError(input, 'the repository name is longer than 255 characters');
  const ref: ImageReference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (!tag && !digest && opts.defaultTag) ref.tag = opts.defaultTag;
  return ref;
}

/** The reference in its full, normalised form. */
export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** The tag or digest to ask the registry for (digest wins when both are given, as docker does). */
export function referenceTarget(r: ImageReference): string {
  return r.digest ?? r.tag ?? 'latest';
}
