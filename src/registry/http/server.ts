// The registry data plane over node:http: request → registry → route → authenticate → authorize →
// handler → response, with every error mapped in one place.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Writable } from 'node:stream';
import { RegistryError } from '../../oci/errors.js';
import { isRepositoryName, describeBadRepositoryName } from '../../oci/names.js';
import { MAX_MANIFEST_BYTES } from '../../oci/manifest.js';
import { MediaTypes } from '../../oci/media-types.js';
import { acceptsManifest } from '../../oci/accept.js';
import type { Principal } from '../../identity/principals.js';
import type { RegistryRecord, Registries } from '../registries.js';
import { storageFullError, type RegistryService } from '../service.js';
import { isDiskFull } from '../../storage/disk-space.js';
import { formatScope, parseScopes, type AccessRequest } from '../access.js';
import type { RegistryAuth } from '../auth.js';
import { matchRoute, requiredAccess, type Route } from './routes.js';
import { writeResponse, type Response } from './response.js';
import { handleAcr, isAcrRoute, pageParams } from './acr-metadata.js';
import type { Logger } from '../../lib/logger.js';
import { corsHeaders, preflight } from '../../lib/cors.js';
import { chunkRange, contentLength, drained, parseRange, readLimited } from './request.js';

const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const MAX_FORM_BYTES = 64 * 1024;
/** The spec asks for at least 10 `tag` parameters on one manifest push. */
const MAX_TAG_PARAMS = 100;

interface Ctx {
  req: IncomingMessage;
  url: URL;
  registry: RegistryRecord;
  principal: Principal;
  /** What the principal may do on other repositories (cross-repo mount). */
  canPull(repo: string): Promise<boolean>;
}

export interface RegistryHttpDeps {
  registries: Registries;
  service: RegistryService;
  auth: RegistryAuth;
  log: Logger;
  /** Origins whose pages may call this registry from a browser (Berth's portal). */
  browserOrigins?: () => readonly string[];
}

export class RegistryHttp {
  constructor(private readonly d: RegistryHttpDeps) {}

  /**
   * Handles one request for the registry `find` resolves (the caller's look-up by port or Host, made per
   * request: the registry may have changed, on this replica or another, since its listener opened).
   */
  async handle(req: IncomingMessage, res: ServerResponse, find: () => Promise<RegistryRecord | undefined>): Promise<void> {
    const started = Date.now();
    const head = req.method === 'HEAD';
    const origins = this.d.browserOrigins?.() ?? [];
    let registry: RegistryRecord | undefined;
    let response: Response;
    try {
      registry = await find();
      if (!registry) throw new RegistryError('NAME_UNKNOWN', 'no registry is served at this address');
      response = preflight(req, origins) ?? await this.dispatch(req, registry);
    } catch (e) {
      response = this.errorResponse(e);
    }
    response.headers = { ...API_VERSION_HEADER, ...corsHeaders(req, origins), ...response.headers };
    // Drain what the client sent but we did not read, so keep-alive connections stay usable. A refusal
    // waits for the end of the body: Go clients (skopeo, podman, docker) that get an answer while still
    // sending often report "broken pipe" instead of it.
    if (response.status >= 400) await drained(req);
    else if (!req.readableEnded) req.resume();
    try {
      await writeResponse(res, response, head);
    } catch {
      res.destroy();
    }
    const line = { registry: registry?.name, method: req.method, path: (req.url ?? '').split('?')[0], status: response.status, ms: Date.now() - started };
    // A full disk is the operator's to fix: one warning line that says so (no stack).
    if (response.status === 507) this.d.log.warn('registry storage full', { ...line, error: firstMessage(response) });
    else this.d.log.info('registry request', line);
  }

  private errorResponse(e: unknown): Response {
    if (e instanceof RegistryError) {
      const headers: Record<string, string> = {};
      if (e.code === 'RANGE_INVALID') {
        const off = (e.detail as { offset?: number } | undefined)?.offset;
        if (off !== undefined) headers.Range = `0-${Math.max(0, off - 1)}`;
        return { status: 416, headers, body: { errors: [{ code: 'BLOB_UPLOAD_INVALID', message: e.message, detail: e.detail }] } };
      }
      return { status: e.httpStatus, headers, body: e.toBody() };
    }
    const err = e as NodeJS.ErrnoException;
    if (err?.code === 'ECONNRESET' || err?.code === 'ERR_STREAM_PREMATURE_CLOSE' || err?.message === 'aborted') {
      return { status: 400, body: new RegistryError('BLOB_UPLOAD_INVALID', 'the request body ended before it was complete').toBody() };
    }
    if (isDiskFull(err)) return this.errorResponse(storageFullError(err, 'nothing was stored'));
    this.d.log.error('registry internal error', { error: String(err?.stack ?? err) });
    return { status: 500, body: { errors: [{ code: 'UNKNOWN', message: 'internal error; see the server log' }] } };
  }

  private challenge(req: IncomingMessage, r: RegistryRecord, access: AccessRequest | null, error?: string): string {
    const secure = Boolean((req.socket as TLSSocket).encrypted);
    const host = req.headers.host ?? this.d.registries.loginServer(r);
    let h = `Bearer realm="${secure ? 'https' : 'http'}://${host}/oauth2/token",service="${this.d.registries.loginServer(r)}"`;
    if (access) h += `,scope="${formatScope(access)}"`;
    if (error) h += `,error="${error}"`;
    return h;
  }

  private unauthorized(req: IncomingMessage, r: RegistryRecord, access: AccessRequest | null, message: string, error?: string): Response {
    const detail = access ? access.actions.map((a) => ({ Type: access.type, Name: access.name, Action: a })) : undefined;
    return {
      status: 401,
      headers: { 'WWW-Authenticate': this.challenge(req, r, access, error) },
      body: { errors: [{ code: 'UNAUTHORIZED', message, ...(detail ? { detail } : {}) }] },
    };
  }

  private async dispatch(req: IncomingMessage, registry: RegistryRecord): Promise<Response> {
    const url = new URL(req.url ?? '/', 'http://registry.invalid');
    const method = req.method ?? 'GET';
    if (url.pathname === '/oauth2/token') return this.tokenEndpoint(req, url, registry);
    if (url.pathname === '/oauth2/exchange') return this.exchangeEndpoint(req, registry);
    const route = matchRoute(url.pathname);
    if (!route) {
      return { status: 404, body: { errors: [{ code: 'NOT_FOUND', message: `no registry API at ${url.pathname.slice(0, 200)}` }] } };
    }
    if ('name' in route && !isRepositoryName(route.name)) {
      throw new RegistryError('NAME_INVALID', describeBadRepositoryName(route.name), { name: route.name });
    }
    const access = requiredAccess(route, method);
    if (access === undefined) {
      return { status: 405, headers: { Allow: 'GET, HEAD' }, body: new RegistryError('UNSUPPORTED', `${method} is not supported on ${url.pathname.slice(0, 200)}`).toBody() };
    }
    const authn = await this.d.auth.authenticate(registry, req.headers.authorization);
    if (!authn.ok) {
      return this.unauthorized(req, registry, access, authn.anonymous ? 'authentication required' : `authentication failed: ${authn.reason}`);
    }
    const principal = authn.principal;
    if (access) {
      const live = await this.d.auth.authorize(registry, principal, [access]);
      const liveActions = new Set(live.flatMap((a) => a.actions));
      const missingLive = access.actions.find((a) => !liveActions.has(a));
      if (missingLive) {
        const why = await this.d.auth.missing(registry, principal, access, missingLive);
        return { status: 403, body: { errors: [{ code: 'DENIED', message: `requested access to the resource is denied: ${why.reason}`, detail: [{ Type: access.type, Name: access.name, Action: missingLive, ...(why.fix ? { Fix: why.fix } : {}) }] }] } };
      }
      if (authn.granted) {
        const tokenActions = new Set(authn.granted.filter((g) => g.type === access.type && g.name === access.name).flatMap((g) => g.actions));
        if (access.actions.some((a) => !tokenActions.has(a))) {
          return this.unauthorized(req, registry, access, 'authentication required: the access token does not cover this scope', 'insufficient_scope');
        }
      }
    }
    const ctx: Ctx = {
      req, url, registry, principal,
      canPull: async (repo) => (await this.d.auth.authorize(registry, principal, [{ type: 'repository', name: repo, actions: ['pull'] }])).length > 0,
    };
    return this.route(ctx, route, method);
  }

  private async route(c: Ctx, route: Route, method: string): Promise<Response> {
    const s = this.d.service;
    const rid = c.registry.id;
    switch (route.kind) {
      case 'base':
        return { status: 200, body: {} };
      case 'catalog': {
        const { n, last } = pageParams(c.url);
        const p = await s.catalog(rid, n, last);
        const headers: Record<string, string> = {};
        if (p.more && p.items.length) headers.Link = `</v2/_catalog?n=${n}&last=${encodeURIComponent(p.items[p.items.length - 1]!)}>; rel="next"`;
        return { status: 200, headers, body: { repositories: p.items } };
      }
      case 'tags': {
        const { n, last } = pageParams(c.url);
        const p = await s.listTags(rid, route.name, n, last);
        const headers: Record<string, string> = {};
        if (p.more && p.items.length) headers.Link = `</v2/${route.name}/tags/list?n=${n}&last=${encodeURIComponent(p.items[p.items.length - 1]!.name)}>; rel="next"`;
        return { status: 200, headers, body: { name: route.name, tags: p.items.map((t) => t.name) } };
      }
      case 'manifest':
        return this.manifest(c, route.name, route.reference, method);
      case 'blob':
        return this.blob(c, route.name, route.digest, method);
      case 'uploadStart':
        return this.uploadStart(c, route.name);
      case 'upload':
        return this.upload(c, route.name, route.id, method);
      case 'referrers': {
        const artifactType = c.url.searchParams.get('artifactType') ?? undefined;
        const body = await s.referrers(rid, route.name, route.digest, artifactType);
        return {
          status: 200,
          headers: { 'Content-Type': MediaTypes.ociIndex, ...(artifactType ? { 'OCI-Filters-Applied': 'artifactType' } : {}) },
          body: Buffer.from(JSON.stringify(body)),
        };
      }
      default:
        if (!isAcrRoute(route)) throw new RegistryError('UNSUPPORTED', 'unsupported route');
        return handleAcr(s, {
          registryId: rid, loginServer: this.d.registries.loginServer(c.registry), url: c.url, method,
          body: (limit) => readLimited(c.req, limit, () => new RegistryError('SIZE_INVALID', `request body is larger than ${limit} bytes`, undefined, 413)),
        }, route);
    }
  }

  private async manifest(c: Ctx, name: string, reference: string, method: string): Promise<Response> {
    const s = this.d.service;
    if (method === 'GET' || method === 'HEAD') {
      const m = await s.getManifest(c.registry.id, name, reference);
      // By tag the client gets whatever the tag points at, so it must be a type the client said it reads;
      // by digest it asked for exact content it already knows the type of.
      if (!reference.includes(':') && !acceptsManifest(c.req.headers.accept, m.record.mediaType)) {
        throw new RegistryError('MANIFEST_UNKNOWN',
          `manifest ${reference} is ${m.record.mediaType}, which the request's Accept header does not list; add it to Accept or pull by digest`,
          { name, reference, mediaType: m.record.mediaType });
      }
      return {
        status: 200,
        headers: { 'Content-Type': m.record.mediaType, 'Docker-Content-Digest': m.record.digest, 'Content-Length': m.body.length, ETag: `"${m.record.digest}"` },
        body: m.body,
      };
    }
    if (method === 'PUT') {
      const body = await readLimited(c.req, MAX_MANIFEST_BYTES, () =>
        new RegistryError('SIZE_INVALID', `manifest is larger than the ${MAX_MANIFEST_BYTES}-byte limit`, undefined, 413));
      const tags = [...new Set(c.url.searchParams.getAll('tag'))];
      if (tags.length > MAX_TAG_PARAMS) {
        throw new RegistryError('TAG_INVALID', `at most ${MAX_TAG_PARAMS} tag parameters may be pushed at once, not ${tags.length}`, undefined, 414);
      }
      const r = await s.putManifest(c.registry.id, name, reference, body, c.req.headers['content-type'], tags);
      return {
        status: 201,
        headers: {
          Location: `/v2/${name}/manifests/${r.digest}`, 'Docker-Content-Digest': r.digest,
          ...(r.subject ? { 'OCI-Subject': r.subject } : {}),
          ...(tags.length ? { 'OCI-Tag': tags.join(', ') } : {}),
        },
      };
    }
    await s.deleteManifest(c.registry.id, name, reference);
    return { status: 202 };
  }

  private async blob(c: Ctx, name: string, digest: string, method: string): Promise<Response> {
    const s = this.d.service;
    if (method === 'DELETE') {
      await s.deleteBlob(c.registry.id, name, digest);
      return { status: 202 };
    }
    const b = await s.getBlob(c.registry.id, name, digest);
    const base = { 'Docker-Content-Digest': b.digest, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ETag: `"${b.digest}"` };
    const rangeHeader = c.req.headers.range;
    if (rangeHeader && method === 'GET') {
      const range = parseRange(rangeHeader, b.size);
      if (!range) {
        return { status: 416, headers: { 'Content-Range': `bytes */${b.size}` }, body: new RegistryError('RANGE_INVALID', `range ${rangeHeader.slice(0, 100)} is not satisfiable for a blob of ${b.size} bytes`).toBody() };
      }
      return {
        status: 206,
        headers: { ...base, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${b.size}` },
        body: b.sendTo ? (out) => b.sendTo!(out, range) : b.open(range),
      };
    }
    const whole = method === 'HEAD' ? undefined : b.sendTo ? (out: Writable) => b.sendTo!(out) : b.open();
    return { status: 200, headers: { ...base, 'Content-Length': b.size }, body: whole };
  }

  private uploadHeaders(name: string, id: string, size: number): Record<string, string> {
    return {
      Location: `/v2/${name}/blobs/uploads/${id}`,
      Range: `0-${Math.max(0, size - 1)}`,
      'Docker-Upload-UUID': id,
      'OCI-Chunk-Min-Length': '0',
    };
  }

  private async uploadStart(c: Ctx, name: string): Promise<Response> {
    const s = this.d.service;
    const q = c.url.searchParams;
    const mount = q.get('mount');
    if (mount) {
      const from = q.get('from') ?? undefined;
      const mounted = await s.mountBlob(c.registry.id, name, mount, from, c.canPull);
      if (mounted) {
        return { status: 201, headers: { Location: `/v2/${name}/blobs/${mounted.digest}`, 'Docker-Content-Digest': mounted.digest } };
      }
    }
    const id = await s.startUpload(c.registry.id, name);
    const digest = q.get('digest');
    if (digest) {
      // Monolithic upload: the whole blob in the POST body.
      try {
        const done = await s.completeUpload(c.registry.id, name, id, digest, c.req, contentLength(c.req));
        return { status: 201, headers: { Location: `/v2/${name}/blobs/${done.digest}`, 'Docker-Content-Digest': done.digest } };
      } catch (e) {
        await s.cancelUpload(c.registry.id, name, id).catch(() => undefined);
        throw e;
      }
    }
    return { status: 202, headers: this.uploadHeaders(name, id, 0) };
  }

  private async upload(c: Ctx, name: string, id: string, method: string): Promise<Response> {
    const s = this.d.service;
    const rid = c.registry.id;
    if (method === 'GET') {
      const size = await s.uploadStatus(rid, name, id);
      return { status: 204, headers: this.uploadHeaders(name, id, size) };
    }
    if (method === 'DELETE') {
      await s.cancelUpload(rid, name, id);
      return { status: 204 };
    }
    try {
      const range = chunkRange(c.req.headers['content-range']);
      if (method === 'PATCH') {
        const size = await s.appendChunk(rid, name, id, c.req, range, contentLength(c.req));
        return { status: 202, headers: this.uploadHeaders(name, id, size) };
      }
      // PUT: complete, with an optional last chunk.
      const digest = c.url.searchParams.get('digest') ?? undefined;
      const len = contentLength(c.req);
      const done = await s.completeUpload(rid, name, id, digest, len === 0 ? undefined : c.req, len, range);
      return { status: 201, headers: { Location: `/v2/${name}/blobs/${done.digest}`, 'Docker-Content-Digest': done.digest } };
    } catch (e) {
      // A refused chunk leaves the session as it was: say where it stands so the client can resume.
      if (e instanceof RegistryError && e.code === 'RANGE_INVALID') {
        const r = this.errorResponse(e);
        const size = await s.uploadStatus(rid, name, id).catch(() => undefined);
        if (size !== undefined) r.headers = { ...r.headers, ...this.uploadHeaders(name, id, size) };
        return r;
      }
      throw e;
    }
  }

  // ---- token endpoints

  private async tokenEndpoint(req: IncomingMessage, url: URL, r: RegistryRecord): Promise<Response> {
    const oauthError = (status: number, message: string): Response => ({ status, body: { errors: [{ code: 'UNAUTHORIZED', message }] } });
    let principal: Principal | undefined;
    let scopes: string[];
    if (req.method === 'GET') {
      scopes = url.searchParams.getAll('scope');
      const a = await this.d.auth.authenticate(r, req.headers.authorization);
      if (!a.ok) {
        return { ...oauthError(401, a.anonymous ? 'authentication required: send Basic credentials to get a token' : `authentication failed: ${a.reason}`), headers: { 'WWW-Authenticate': `Basic realm="${this.d.registries.loginServer(r)}"` } };
      }
      if (a.granted) return oauthError(400, 'use Basic credentials or a refresh token to get a token, not an access token');
      principal = a.principal;
    } else if (req.method === 'POST') {
      const form = new URLSearchParams((await readLimited(req, MAX_FORM_BYTES, () => new RegistryError('SIZE_INVALID', 'token request body is too large'))).toString('utf8'));
      scopes = form.getAll('scope');
      const grant = form.get('grant_type');
      if (grant === 'refresh_token') {
        principal = await this.d.auth.verifyRefreshToken(r, form.get('refresh_token') ?? '');
        if (!principal) return oauthError(401, 'the refresh token is invalid or expired; get a new one with /oauth2/exchange');
      } else if (grant === 'password') {
        const username = form.get('username') ?? '';
        const password = form.get('password') ?? '';
        // The Azure SDKs' anonymous clients ask for a token with no credentials at all.
        if (!username && !password) {
          return oauthError(401, `authentication required: registry ${r.name} does not allow anonymous access; authenticate with a credential (a service principal, managed identity, token or the admin user)`);
        }
        const a = await this.d.auth.checkPassword(r, username, password);
        if (!a.ok) return oauthError(401, `authentication failed: ${a.reason}`);
        principal = a.principal;
      } else {
        return oauthError(400, `unsupported grant_type '${(grant ?? '').slice(0, 50)}': use password or refresh_token`);
      }
    } else {
      return { status: 405, body: new RegistryError('UNSUPPORTED', 'use GET or POST').toBody() };
    }
    const { token, expiresIn } = await this.d.auth.issueAccessToken(r, principal, parseScopes(scopes));
    const refresh = req.method === 'GET' && url.searchParams.get('offline_token') === 'true' ? await this.d.auth.issueRefreshToken(r, principal) : undefined;
    return {
      status: 200,
      headers: { 'Cache-Control': 'no-store' },
      body: { access_token: token, token, expires_in: expiresIn, issued_at: new Date().toISOString(), ...(refresh ? { refresh_token: refresh } : {}) },
    };
  }

  private async exchangeEndpoint(req: IncomingMessage, r: RegistryRecord): Promise<Response> {
    if (req.method !== 'POST') return { status: 405, body: new RegistryError('UNSUPPORTED', 'use POST').toBody() };
    const form = new URLSearchParams((await readLimited(req, MAX_FORM_BYTES, () => new RegistryError('SIZE_INVALID', 'exchange request body is too large'))).toString('utf8'));
    const grant = form.get('grant_type');
    if (grant !== 'access_token' && grant !== 'access_token_refresh_token') {
      return { status: 400, body: { errors: [{ code: 'UNSUPPORTED', message: `unsupported grant_type '${(grant ?? '').slice(0, 50)}': use access_token` }] } };
    }
    const rt = await this.d.auth.exchange(r, form.get('access_token') ?? '');
    if (!rt) return { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required: the access token is invalid, expired or not for the management audience' }] } };
    return { status: 200, headers: { 'Cache-Control': 'no-store' }, body: { refresh_token: rt } };
  }
}

function firstMessage(r: Response): string | undefined {
  return (r.body as { errors?: Array<{ message?: string }> } | undefined)?.errors?.[0]?.message;
}
