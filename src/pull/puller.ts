// The pull client: resolves a reference to a platform's image manifest (OCI or Docker schema 2, through
// an index or manifest list), then brings its config and layers into the shared content store, each
// verified against its digest while it streams to disk, in parallel (bounded), resuming a dropped
// download with Range. Classifies every failure into a PullError (SPEC §5).
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { digestAlgorithm, type Digest } from '../oci/digest.js';
import { parseManifest, MAX_MANIFEST_BYTES, type Descriptor } from '../oci/manifest.js';
import { MANIFEST_MEDIA_TYPES, isIndexMediaType } from '../oci/media-types.js';
import { formatReference, parseReference, referenceTarget, InvalidReferenceError, type ImageReference } from '../oci/reference.js';
import { ContentStore } from './content-store.js';
import { DEFAULT_PLATFORM, formatPlatform, parsePlatform, platformMatches, selectPlatform, type PlatformSpec } from './platform.js';
import { Transport, type TransportOptions } from '../client/transport.js';
import type { RegistrySession } from '../client/session.js';
import { GRANT_PULL, readRegistryError, type RegistryResponse } from '../client/registry-error.js';
import { sleep } from '../client/retry.js';
import { isTransientNetworkError, networkPullError } from '../client/net-errors.js';
import { PullError, type ImagePuller, type ImageRunConfig, type PulledImage, type PullOptions, type SpaceBudget } from './types.js';
import { formatBytes } from '../lib/bytes.js';
import { backoffDelay } from '../lib/backoff.js';
import { BufferRelease, CLIENT_RELEASE_BYTES } from '../lib/minor-gc.js';

/** One counter for every download of the process: the collections are of one shared young generation. */
const release = new BufferRelease(CLIENT_RELEASE_BYTES);

export interface PullerOptions extends TransportOptions {
  /** Root of the content store shared by all pulls, e.g. <dataDir>/content. */
  contentDir: string;
  /** Layers downloaded at once per pull (default 3). */
  concurrency?: number;
  /** The content store over contentDir, when the caller shares it (the server's garbage collection). */
  store?: ContentStore;
  /** Free space of contentDir's disk: downloads stop short of its reserve (the server's; none for berth pull). */
  space?: SpaceBudget;
}

/** What `resolve` finds: the image without its layers downloaded. */
export interface ResolvedImage extends PulledImage {
  manifest: { mediaType: string; digest: Digest; size: number };
  /** The layer descriptors as the manifest lists them. */
  layerDescriptors: Descriptor[];
  configDescriptor: Descriptor;
}

const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

function invalidReference(e: unknown): never {
  if (e instanceof InvalidReferenceError) throw new PullError('INVALID_REFERENCE', e.message, 'Write the image as [registry[:port]/]repository[:tag][@sha256:digest].');
  throw e;
}

function descriptorsFromConfig(raw: unknown): { config: ImageRunConfig; platform: PlatformSpec } {
  const doc = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const c = (doc.config && typeof doc.config === 'object' ? doc.config : {}) as Record<string, unknown>;
  const strs = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined);
  const config: ImageRunConfig = {};
  const set = <K extends keyof ImageRunConfig>(k: K, v: ImageRunConfig[K] | undefined) => { if (v !== undefined) config[k] = v; };
  set('entrypoint', strs(c.Entrypoint));
  set('cmd', strs(c.Cmd));
  set('env', strs(c.Env));
  set('workingDir', typeof c.WorkingDir === 'string' && c.WorkingDir ? c.WorkingDir : undefined);
  set('user', typeof c.User === 'string' && c.User ? c.User : undefined);
  set('exposedPorts', c.ExposedPorts && typeof c.ExposedPorts === 'object' ? Object.keys(c.ExposedPorts) : undefined);
  set('labels', c.Labels && typeof c.Labels === 'object' ? (c.Labels as Record<string, string>) : undefined);
  set('stopSignal', typeof c.StopSignal === 'string' ? c.StopSignal : undefined);
  const platform: PlatformSpec = { os: String(doc.os ?? ''), architecture: String(doc.architecture ?? '') };
  if (typeof doc.variant === 'string' && doc.variant) platform.variant = doc.variant;
  return { config, platform };
}

export class RegistryPuller implements ImagePuller {
  readonly transport: Transport;
  readonly store: ContentStore;

  constructor(private readonly opts: PullerOptions) {
    this.transport = new Transport(opts);
    this.store = opts.store ?? new ContentStore(opts.contentDir);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  async pull(reference: string, opts: PullOptions): Promise<PulledImage> {
    const resolved = await this.resolve(reference, opts);
    // The image's blobs are held against the store's garbage collection while its layers download.
    const release = this.store.pin([resolved.digest, resolved.indexDigest ?? resolved.digest, resolved.configDigest, ...resolved.layers.map((l) => l.digest)]);
    try {
      const r = await this.download(resolved, opts);
      const { manifest: _m, layerDescriptors: _l, configDescriptor: _c, ...image } = r;
      return image;
    } finally {
      release();
    }
  }

  /**
   * Proves that the image can be pulled with `opts`' credentials without downloading its layers: the
   * manifest and config are fetched (and stored, as resolve does), and every layer the content store
   * lacks answers a HEAD. A container group's create checks this much; its reconciler then pulls.
   */
  async check(reference: string, opts: PullOptions): Promise<void> {
    const r = await this.resolve(reference, opts);
    const session = this.sessionFor(r.reference, opts);
    const scopes = [`repository:${session.repository}:pull`];
    await Promise.all(r.layerDescriptors.map(async (d) => {
      if (await this.store.has(d.digest, d.size)) return;
      const res = await session.send('HEAD', `/v2/${session.repository}/blobs/${d.digest}`, scopes);
      if (res.status !== 200) throw await this.classify(session, res, { blob: d.digest });
      await res.body.dump().catch(() => undefined);
    }));
  }

  /** Brings the layers of a resolved image into the content store (bounded parallelism). */
  async download(r: ResolvedImage, opts: PullOptions): Promise<ResolvedImage> {
    const session = this.sessionFor(r.reference, opts);
    const blobs = r.layerDescriptors;
    let next = 0;
    let failed: { e: unknown } | undefined;
    const worker = async () => {
      while (next < blobs.length && !failed) {
        const d = blobs[next++]!;
        try {
          await this.fetchBlob(session, d, opts);
        } catch (e) {
          failed ??= { e };
        }
      }
    };
    // Every worker finishes before the pull returns or fails: no download runs on behind a failed pull.
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency ?? 3, blobs.length) }, worker));
    if (failed) throw failed.e;
    return r;
  }

  private readonly sessions = new WeakMap<PullOptions, Map<string, RegistrySession>>();
  private sessionFor(normalised: string, opts: PullOptions): RegistrySession {
    const ref = parseReference(normalised);
    let m = this.sessions.get(opts);
    if (!m) this.sessions.set(opts, (m = new Map()));
    const key = `${ref.registry}/${ref.repository}`;
    let s = m.get(key);
    if (!s) m.set(key, (s = this.transport.session(ref.registry, ref.repository, opts.keychain, opts.signal)));
    return s;
  }

  /** Resolves `reference` to the platform's manifest and config (stored); layers are not downloaded. */
  async resolve(reference: string, opts: PullOptions): Promise<ResolvedImage> {
    let ref: ImageReference;
    try {
      ref = parseReference(reference, { defaultTag: 'latest' });
    } catch (e) {
      invalidReference(e);
    }
    const want = parsePlatform(opts.platform ?? DEFAULT_PLATFORM);
    const normalised = formatReference(ref);
    const session = this.sessionFor(normalised, opts);
    const where = `${ref.registry}/${ref.repository}:${ref.tag ?? ''}${ref.digest ? `@${ref.digest}` : ''}`.replace(/:$/, '');
    const top = await this.fetchManifest(session, referenceTarget(ref), ref.digest);
    let indexDigest: Digest | undefined;
    let manifest = top;
    if (isIndexMediaType(top.parsed.mediaType)) {
      indexDigest = top.digest;
      const entry = selectPlatform(top.parsed.manifests, want, where);
      manifest = await this.fetchManifest(session, entry.digest, entry.digest);
      if (isIndexMediaType(manifest.parsed.mediaType)) throw new PullError('UNSUPPORTED', `${where}: nested index ${entry.digest}`, 'An index inside an index is not supported.');
    }
    const configDesc = manifest.parsed.config!;
    const { progress: _p, ...quiet } = opts;
    await this.fetchBlob(session, configDesc, quiet, MAX_CONFIG_BYTES);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(this.store.path(configDesc.digest), 'utf8'));
    } catch (e) {
      throw new PullError('UNSUPPORTED', `${where}: config ${configDesc.digest} is not JSON: ${(e as Error).message}`, 'This is not a container image (an artifact?).');
    }
    const { config, platform } = descriptorsFromConfig(raw);
    if (!indexDigest && platform.os && !platformMatches(want, platform)) {
      throw new PullError('PLATFORM_NOT_FOUND', `image ${where} is ${formatPlatform(platform)}, not ${formatPlatform(want)}`,
        `The image is published for ${formatPlatform(platform)} only`, { remedy: { kind: 'platform', wanted: formatPlatform(want), available: [formatPlatform(platform)] } });
    }
    // parseManifest lists the config first, then the layers (foreign layers left out).
    const layerDescriptors = manifest.parsed.blobs.slice(1);
    return {
      reference: normalised,
      digest: manifest.digest,
      ...(indexDigest ? { indexDigest } : {}),
      platform: platform.os ? platform : want,
      config,
      configDigest: configDesc.digest,
      layers: layerDescriptors.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, path: this.store.path(l.digest) })),
      credentialSource: session.used?.source ?? 'anonymous',
      manifest: { mediaType: manifest.parsed.mediaType, digest: manifest.digest, size: manifest.bytes.length },
      layerDescriptors,
      configDescriptor: configDesc,
    };
  }

  private async fetchManifest(session: RegistrySession, target: string, expected: Digest | undefined) {
    const scopes = [`repository:${session.repository}:pull`];
    const res = await session.send('GET', `/v2/${session.repository}/manifests/${target}`, scopes, { accept: MANIFEST_MEDIA_TYPES.join(', ') });
    if (res.status !== 200) throw await this.classify(session, res, { manifest: target });
    const len = Number(res.headers['content-length'] ?? 0);
    if (len > MAX_MANIFEST_BYTES) {
      await res.body.dump().catch(() => undefined);
      throw new PullError('UNSUPPORTED', `manifest ${target} is ${len} bytes`, `Berth refuses manifests larger than ${MAX_MANIFEST_BYTES} bytes.`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const c of res.body) {
        size += (c as Buffer).length;
        if (size > MAX_MANIFEST_BYTES) {
          res.body.destroy();
          throw new PullError('UNSUPPORTED', `manifest ${target} is larger than ${MAX_MANIFEST_BYTES} bytes`, 'Berth refuses oversized manifests.');
        }
        chunks.push(c as Buffer);
      }
    } catch (e) {
      throw networkPullError(e, session.base.host, this.transport.netContext()) ?? e;
    }
    const bytes = Buffer.concat(chunks);
    const served = res.headers['docker-content-digest'];
    const alg = expected ? digestAlgorithm(expected) : typeof served === 'string' && served.startsWith('sha512:') ? 'sha512' : 'sha256';
    const digest = `${alg}:${createHash(alg).update(bytes).digest('hex')}` as Digest;
    const claimed = expected ?? (typeof served === 'string' && served.startsWith(`${alg}:`) ? served : undefined);
    if (claimed && claimed !== digest) {
      throw new PullError('DIGEST_MISMATCH', `manifest ${target}: content is ${digest}, expected ${claimed}`,
        `The manifest ${session.registry}/${session.repository}@${claimed} did not match its digest; nothing was stored. A proxy or the registry corrupted it.`);
    }
    let parsed;
    try {
      parsed = parseManifest(bytes, String(res.headers['content-type'] ?? ''));
    } catch (e) {
      throw new PullError('UNSUPPORTED', `${session.registry}/${session.repository}:${target}: ${(e as Error).message}`,
        'Berth pulls OCI image manifests and indexes and Docker schema 2 manifests and manifest lists.');
    }
    await this.store.putBytes(bytes, digest);
    return { bytes, digest, parsed };
  }

  /** Downloads one blob into the store (once, however many pulls ask), verified, resuming with Range. */
  private async fetchBlob(session: RegistrySession, d: Descriptor, opts: PullOptions, maxBytes = Infinity): Promise<void> {
    if (d.size > maxBytes) throw new PullError('UNSUPPORTED', `blob ${d.digest} is ${d.size} bytes`, `The limit for this blob is ${maxBytes} bytes.`);
    const layer = { digest: d.digest, size: d.size };
    opts.progress?.layerStart?.(layer);
    const how = await this.store.ensure(d.digest, d.size, () => this.downloadBlob(session, d, opts));
    opts.progress?.layerDone?.(layer, how);
  }

  private async downloadBlob(session: RegistrySession, d: Descriptor, opts: PullOptions): Promise<void> {
    const scopes = [`repository:${session.repository}:pull`];
    const tmp = await this.store.tempPath(d.digest);
    const alg = digestAlgorithm(d.digest);
    // Write-behind: the network keeps reading while earlier chunks go to disk; every byte handed to the
    // file is hashed first, so after a dropped connection the download resumes at `written` with the
    // hash state it has.
    let file = new BlobFile(tmp);
    let hash: Hash = createHash(alg);
    let written = 0;
    let committed = false;
    const layer = { digest: d.digest, size: d.size };
    const maxAttempts = this.opts.maxAttempts ?? 5;
    const meter = this.opts.space?.meter();
    try {
      for (let attempt = 1; ; attempt++) {
        const headers: Record<string, string> = written > 0 ? { range: `bytes=${written}-` } : {};
        const res = await session.send('GET', `/v2/${session.repository}/blobs/${d.digest}`, scopes, headers);
        if (res.status !== 200 && res.status !== 206) throw await this.classify(session, res, { blob: d.digest });
        if (written > 0 && res.status === 200) {
          // The server ignored Range: start over.
          await file.close();
          file = new BlobFile(tmp);
          hash = createHash(alg);
          written = 0;
        }
        try {
          for await (const chunk of res.body) {
            const c = chunk as Buffer;
            if (written + c.length > d.size) {
              res.body.destroy();
              throw new PullError('DIGEST_MISMATCH', `blob ${d.digest}: the registry sent more than the ${d.size} bytes the manifest lists`,
                `The download of ${d.digest} was discarded; nothing was stored.`);
            }
            await meter?.take(c.length).catch((e: Error) => { throw new NoRoom(e.message); });
            hash.update(c);
            await file.write(c);
            written += c.length;
            release.count(c.length);
            opts.progress?.layerProgress?.(layer, c.length);
          }
        } catch (e) {
          if (e instanceof PullError || file.failed) throw file.failed ?? e;
          if (isTransientNetworkError(e) && attempt < maxAttempts) {
            await sleep(backoffDelay(attempt, 200, 4000), opts.signal);
            continue;
          }
          throw networkPullError(e, session.base.host, this.transport.netContext()) ?? e;
        }
        if (written < d.size && attempt < maxAttempts) continue; // the body ended early: resume
        break;
      }
      await file.close();
      const got = `${alg}:${hash.digest('hex')}`;
      if (written !== d.size || got !== d.digest) {
        throw new PullError('DIGEST_MISMATCH', `blob ${d.digest}: downloaded ${written} bytes with digest ${got}, expected ${d.size} bytes with digest ${d.digest}`,
          `The download of ${d.digest} from ${session.registry}/${session.repository} was discarded; nothing was stored. A proxy or the registry's storage corrupted it.`);
      }
      await this.store.commit(tmp, d.digest);
      committed = true;
    } catch (e) {
      if (e instanceof NoRoom || DISK_FULL.has(String((e as NodeJS.ErrnoException)?.code))) throw diskFull(d, e);
      throw e;
    } finally {
      if (!committed) {
        await file.close().catch(() => undefined);
        await this.store.discard(tmp);
      }
    }
  }

  /** A PullError for a registry answer that is not what was asked for. */
  private async classify(session: RegistrySession, res: RegistryResponse, what: { manifest?: string; blob?: string }): Promise<PullError> {
    const w = await readRegistryError(res);
    const words = `${(w.code ?? '').toLowerCase().replace(/_/g, ' ') || `http ${res.status}`}: ${w.message}`;
    const name = `${session.registry}/${session.repository}`;
    const credentialSource = session.resolved?.source ?? 'anonymous';
    if (res.status === 401) return session.unauthorized(undefined, w);
    if (w.code === 'DENIED' || res.status === 403) {
      return new PullError('DENIED', words, `${credentialSource === 'anonymous' ? 'Anonymous access' : `The credential from ${credentialSource}`} authenticated but may not pull ${name}${w.fix ? '' : `. ${GRANT_PULL}`}`,
        { credentialSource, ...(w.fix ? { fix: w.fix } : {}) });
    }
    if (w.code === 'TOOMANYREQUESTS') return session.rateLimited(w.message, undefined, 1);
    if (w.code === 'NAME_UNKNOWN') {
      return new PullError('NAME_UNKNOWN', words, `The repository ${session.repository} does not exist in ${session.registry}; check the repository name.`, { credentialSource });
    }
    if (what.manifest !== undefined && res.status === 404) {
      const tags = await this.listTags(session);
      if (tags === 'name unknown') return new PullError('NAME_UNKNOWN', `name unknown: repository name not known to registry`, `The repository ${session.repository} does not exist in ${session.registry}; check the repository name.`, { credentialSource });
      const shown = tags ? tags.slice(0, 20) : undefined;
      return new PullError('MANIFEST_UNKNOWN', words.startsWith('manifest unknown') ? words : `manifest unknown: ${w.message}`,
        `${name} has no ${what.manifest.includes(':') ? 'manifest' : 'tag'} "${what.manifest}".${shown ? shown.length ? ` Tags that exist: ${shown.join(', ')}${tags!.length > shown.length ? `, … (${tags!.length} in all)` : ''}.` : ' The repository has no tags.' : ' (The credential may not list the tags.)'}`,
        { credentialSource, ...(tags ? { existingTags: tags } : {}) });
    }
    if (what.blob && res.status === 404) {
      return new PullError('UNKNOWN', words, `${name} lists blob ${what.blob} in its manifest but does not have it; the image in the registry is broken. Push it again.`);
    }
    return new PullError('UNKNOWN', `${words} (HTTP ${res.status})`, `Unexpected answer from ${session.registry} for ${what.manifest ? `manifest ${what.manifest}` : `blob ${what.blob}`}.`);
  }

  /** The repository's tags, 'name unknown', or undefined when the credential may not list them. */
  private async listTags(session: RegistrySession): Promise<string[] | 'name unknown' | undefined> {
    try {
      const res = await session.send('GET', `/v2/${session.repository}/tags/list?n=1000`, [`repository:${session.repository}:pull`], { accept: 'application/json' });
      if (res.status === 404) {
        const w = await readRegistryError(res);
        return w.code === 'NAME_UNKNOWN' ? 'name unknown' : undefined;
      }
      if (res.status !== 200) {
        await res.body.dump().catch(() => undefined);
        return undefined;
      }
      const j = (await res.body.json()) as { tags?: unknown };
      return Array.isArray(j.tags) ? j.tags.filter((t): t is string => typeof t === 'string') : [];
    } catch {
      return undefined;
    }
  }
}

/** A temp file written behind the network: write() waits only when a few MB are queued. */
/** The space budget refused more bytes. */
class NoRoom extends Error {}
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/** A download the disk has no room for (its reserve, or the filesystem itself): nothing of it is kept. */
function diskFull(d: Descriptor, e: unknown): PullError {
  const why = e instanceof NoRoom ? e.message : 'the filesystem is full';
  return new PullError('STORAGE_FULL', `blob ${d.digest} (${formatBytes(d.size)}) could not be stored: ${why}`,
    'The partial download was removed.', { remedy: { kind: 'disk' } });
}

class BlobFile {
  private readonly ws: WriteStream;
  failed: Error | undefined;
  private closed: Promise<void> | undefined;

  constructor(path: string) {
    this.ws = createWriteStream(path, { flags: 'w', mode: 0o644, highWaterMark: 256 << 10 });
    this.ws.on('error', (e) => { this.failed ??= e; });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.ws.write(chunk)) {
      await new Promise<void>((res) => {
        const done = () => { this.ws.off('drain', done); this.ws.off('close', done); res(); };
        this.ws.on('drain', done);
        this.ws.on('close', done);
      });
    }
    if (this.failed) throw this.failed;
  }

  /** Flushes and closes; throws the first write error. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((res, rej) => {
      if (this.ws.closed) return this.failed ? rej(this.failed) : res();
      this.ws.end(() => undefined);
      this.ws.once('close', () => (this.failed ? rej(this.failed) : res()));
    });
    return this.closed;
  }
}
