// The portal: its built assets (dist/portal, made by `npm run build`) under /portal/, and its
// sign-in. Everything else the portal does goes through the public APIs with the signed-in principal's
// token: there is no portal-only way to read or change a resource.
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyRequest } from 'fastify';
import { ARM_AUDIENCE, type IdentityService } from '../identity/service.js';
import type { SignInCodes } from '../identity/sign-in-codes.js';
import { VAULT_RESOURCE } from '../vault/http.js';
import { invalid } from '../lib/errors.js';
import { route, SCOPE, type RouteContext, type RouteDef } from './route-table.js';
import { AUTHENTICATED, PUBLIC } from '../identity/actions.js';

const DEFAULT_DIR = fileURLToPath(new URL('../../portal/', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.json': 'application/json',
};
const TOKEN_TTL_S = 3600;

export interface PortalDeps {
  identity: IdentityService;
  signInCodes: SignInCodes;
  /** Where the built portal is (default: dist/portal beside the compiled server). */
  portalDir?: string;
}

/** The built files by URL path below /portal/, with their sizes (read once: the set is fixed for a build). */
function assets(dir: string): Map<string, { path: string; size: number }> {
  const out = new Map<string, { path: string; size: number }>();
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(relative(dir, p).split(sep).join('/'), { path: p, size: statSync(p).size });
    }
  };
  walk(dir);
  return out;
}

// The portal talks to this origin, to registries and vaults on other loopback ports and names, and to
// websockets here. Scripts come only from the build; styles may also be inline, because the terminal
// (xterm.js) writes <style> elements for its renderer.
const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
  "connect-src 'self' http://localhost:* https://localhost:* http://*.localhost:* https://*.localhost:* http://127.0.0.1:* https://127.0.0.1:* ws://localhost:* wss://localhost:* ws://127.0.0.1:* wss://127.0.0.1:*",
].join('; ');

/** Unauthenticated: the assets and the code-for-tokens exchange. */
export function portalRoutes(d: PortalDeps, base: (req: FastifyRequest) => string): RouteDef[] {
  const files = assets(d.portalDir ?? DEFAULT_DIR);
  const session = signIn(d, base);
  // '/portal/' is '/portal' to the router (it ignores a trailing slash); the assets' paths are absolute.
  const serve = async ({ reply, params }: RouteContext<{ '*'?: string }>) => {
    const rel = params['*'] || 'index.html';
    // A missing asset is a 404; any other path is a page of the single-page app: its index.
    if (rel.startsWith('assets/') && !files.has(rel)) return reply.status(404).type('text/plain; charset=utf-8').send('No such portal asset (the portal was rebuilt? reload the page).');
    const file = files.get(rel) ?? files.get('index.html');
    if (!file) {
      return reply.status(503).type('text/plain; charset=utf-8')
        .send('The portal is not built. Run `npm run build` in the Berth checkout (scripts/install.sh does), then reload.');
    }
    const hashed = rel.startsWith('assets/') && files.has(rel);
    return reply
      .header('Content-Type', TYPES[extname(file.path)] ?? 'application/octet-stream')
      .header('Content-Length', file.size)
      .header('Cache-Control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('Content-Security-Policy', CSP)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
      .send(createReadStream(file.path));
  };
  return [
    route({ method: 'GET', path: '/portal', action: PUBLIC, scope: SCOPE.none, handler: serve }),
    route({ method: 'GET', path: '/portal/*', action: PUBLIC, scope: SCOPE.none, handler: serve }),
    route({ method: 'POST', path: '/portal/session', action: PUBLIC, scope: SCOPE.none, handler: ({ req, reply }) => session(req, reply) }),
  ];
}

function signIn(d: PortalDeps, base: (req: FastifyRequest) => string) {
  return async (req: FastifyRequest, reply: RouteContext<unknown>['reply']) => {
    const code = (req.body as { code?: unknown } | undefined)?.code;
    if (typeof code !== 'string' || !code) throw invalid('InvalidRequest', 'Send {"code": "..."}: the sign-in code `berth portal` printed.');
    const principalId = d.signInCodes.redeem(code);
    const principal = principalId ? await d.identity.principalById(principalId) : undefined;
    if (!principal) {
      return reply.status(400).send({ error: { code: 'InvalidSignInCode', message: 'This sign-in code is unknown, was used already, or has expired (codes last 5 minutes and work once). Run `berth portal` again for a new one.' } });
    }
    const issuer = base(req);
    const [management, vault] = await Promise.all([
      d.identity.issueAccessToken(principal, ARM_AUDIENCE, TOKEN_TTL_S, issuer),
      d.identity.issueAccessToken(principal, VAULT_RESOURCE, TOKEN_TTL_S, issuer),
    ]);
    return reply.header('Cache-Control', 'no-store').send({
      principal: { id: principal.id, displayName: principal.displayName, ...(principal.appId ? { appId: principal.appId } : {}) },
      management, vault, expiresOn: Date.now() + TOKEN_TTL_S * 1000, tenantId: d.identity.ids.tenantId,
    });
  };
}

/** Authenticated: a signed-in principal asks for a code that signs the portal in as itself. */
export function portalCodeRoutes(d: PortalDeps): RouteDef[] {
  return [route({ method: 'POST', path: '/portal/sign-in-codes', action: AUTHENTICATED, scope: SCOPE.none,
    handler: ({ reply, principal }) => reply.status(201).header('Cache-Control', 'no-store').send(d.signInCodes.create(principal.id)) })];
}
