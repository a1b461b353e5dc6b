// ARM's cloud metadata (GET /metadata/endpoints): what `az cloud register --endpoint-resource-manager`
// reads (api-version 2015-01-01: one object) and what current tools read (2019-05-01 and later: a list
// of clouds with suffixes). `berth cloud register` builds az's cloud config from the same document.
import type { FastifyRequest } from 'fastify';
import { ARM_AUDIENCE } from '../identity/service.js';
import { route, SCOPE, type RouteDef } from './route-table.js';
import { PUBLIC } from '../identity/actions.js';

export const CLOUD_NAME = 'Berth';

export interface CloudDescriptor {
  name: string;
  resourceManager: string;
  portal: string;
  gallery: string;
  graph: string;
  graphAudience: string;
  microsoftGraphResourceId: string;
  authentication: { loginEndpoint: string; audiences: string[]; tenant: string; identityProvider: string };
  /** keyVaultDns holds the main port (vaults by name are on it); login servers carry their own ports. */
  suffixes: { acrLoginServer: string; keyVaultDns?: string };
}

/**
 * The cloud Berth is, seen from `base` (the scheme, host and port the client came in on). The login
 * endpoint ends in /adfs: az 2.45's MSAL skips instance discovery (a call to login.microsoftonline.com)
 * only for such an authority, and reads Berth's discovery document at <base>/adfs/.well-known/... .
 */
export function cloudDescriptor(base: string, vaultDns: string | undefined): CloudDescriptor {
  const b = base.replace(/\/+$/, '');
  return {
    name: CLOUD_NAME,
    resourceManager: `${b}/`,
    portal: `${b}/`,
    gallery: `${b}/`,
    graph: `${b}/`,
    graphAudience: `${b}/`,
    microsoftGraphResourceId: `${b}/`,
    authentication: { loginEndpoint: `${b}/adfs`, audiences: [ARM_AUDIENCE], tenant: 'adfs', identityProvider: 'ADFS' },
    suffixes: { acrLoginServer: 'localhost', ...(vaultDns ? { keyVaultDns: vaultDns } : {}) },
  };
}

export function cloudMetadataRoutes(base: (req: FastifyRequest) => string, vaultDns: () => string | undefined): RouteDef[] {
  return [route({ method: 'GET', path: '/metadata/endpoints', action: PUBLIC, scope: SCOPE.none, handler: ({ req, query }) => {
    const c = cloudDescriptor(base(req), vaultDns());
    const version = String(query['api-version'] ?? '2015-01-01');
    if (version < '2019-05-01') {
      return { galleryEndpoint: c.gallery, graphEndpoint: c.graph, portalEndpoint: c.portal, authentication: { loginEndpoint: c.authentication.loginEndpoint, audiences: c.authentication.audiences } };
    }
    return [c];
  } })];
}
