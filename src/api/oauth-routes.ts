// The identity endpoints clients sign in through (no bearer auth): OpenID discovery, the signing keys
// and the token endpoint (v1 and v2 paths). The protocol is identity/oauth.ts; this only speaks HTTP.
import type { FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { clientCredentialsGrant, openIdConfiguration, tenantMatches } from '../identity/oauth.js';
import { route, SCOPE, type RouteDef } from './route-table.js';
import { PUBLIC } from '../identity/actions.js';

export function oauthRoutes(d: ApiDeps, base: (req: FastifyRequest) => string): RouteDef[] {
  const keys = () => ({ keys: [d.tokens.publicJwk] });
  const token = route({ method: 'POST', path: '/:tenant/oauth2/v2.0/token', action: PUBLIC, scope: SCOPE.none, handler: async ({ req, reply, params }) => {
    const r = await clientCredentialsGrant(d.identity, {
      tenant: params.tenant, form: (req.body ?? {}) as Record<string, string>, base: base(req),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    if ('error' in r) return reply.status(r.status).send({ error: r.error, error_description: r.description, error_codes: [], timestamp: new Date().toISOString() });
    return reply.header('Cache-Control', 'no-store').send(r);
  } });
  return [
    route({ method: 'GET', path: '/:tenant/v2.0/.well-known/openid-configuration', action: PUBLIC, scope: SCOPE.none, handler: ({ req, reply, params }) => {
      if (!tenantMatches(d.identity, params.tenant)) return reply.status(400).send({ error: 'invalid_tenant', error_description: `Tenant '${params.tenant}' not found.` });
      return openIdConfiguration(d.identity, base(req));
    } }),
    route({ method: 'GET', path: '/adfs/.well-known/openid-configuration', action: PUBLIC, scope: SCOPE.none, handler: ({ req }) => openIdConfiguration(d.identity, base(req), true) }),
    route({ method: 'GET', path: '/:tenant/discovery/v2.0/keys', action: PUBLIC, scope: SCOPE.none, handler: keys }),
    route({ method: 'GET', path: '/:tenant/discovery/keys', action: PUBLIC, scope: SCOPE.none, handler: keys }),
    token,
    { ...token, path: '/:tenant/oauth2/token' },
  ];
}
