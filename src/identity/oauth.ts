// The OAuth 2.0 / OpenID Connect side of the identity service, without HTTP: which tenants a request
// may name, the discovery document, and the client-credentials grant (a form body and an optional
// Basic header in, a token response or an OAuth error out).
import { ARM_AUDIENCE, type IdentityService } from './service.js';

/** An OAuth error response (RFC 6749 5.2) with its HTTP status. */
export interface OAuthFailure {
  status: 400 | 401;
  error: 'invalid_request' | 'invalid_tenant' | 'unsupported_grant_type' | 'invalid_client';
  description: string;
}

export interface TokenResponse {
  token_type: 'Bearer';
  expires_in: number;
  ext_expires_in: number;
  access_token: string;
}

// 'adfs': az 2.45's MSAL skips instance discovery (a call to login.microsoftonline.com) only for an
// authority whose path is /adfs, so `berth cloud register` names that one.
export function tenantMatches(identity: IdentityService, tenant: string): boolean {
  return tenant.toLowerCase() === identity.ids.tenantId || ['organizations', 'common', 'adfs'].includes(tenant.toLowerCase());
}

/** The OpenID configuration at `base` (the scheme and host the client came in on), by tenant or /adfs. */
export function openIdConfiguration(identity: IdentityService, base: string, adfs = false) {
  const root = adfs ? `${base}/adfs` : `${base}/${identity.ids.tenantId}`;
  const v2 = adfs ? '' : '/v2.0';
  return {
    issuer: identity.issuer(base),
    token_endpoint: `${root}/oauth2${v2}/token`,
    authorization_endpoint: `${root}/oauth2${v2}/authorize`,
    device_authorization_endpoint: `${root}/oauth2${v2}/devicecode`,
    jwks_uri: `${root}/discovery${v2}/keys`,
    response_types_supported: ['code', 'id_token', 'token'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['ES256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    grant_types_supported: ['client_credentials'],
    tenant_region_scope: 'NA',
    cloud_instance_name: 'berth.local',
  };
}

export interface TokenRequest {
  tenant: string;
  /** The form fields (grant_type, client_id, client_secret, scope, resource). */
  form: Record<string, string | undefined>;
  /** The Authorization header, for client_secret_basic. */
  authorization?: string;
  /** The base URL the client came in on: the token's issuer. */
  base: string;
}

/** The client-credentials grant: a token for the requested resource (scope or v1 `resource`), or why not. */
export async function clientCredentialsGrant(identity: IdentityService, r: TokenRequest): Promise<TokenResponse | OAuthFailure> {
  const fail = (status: 400 | 401, error: OAuthFailure['error'], description: string): OAuthFailure => ({ status, error, description });
  if (!tenantMatches(identity, r.tenant)) return fail(400, 'invalid_request', `Tenant '${r.tenant}' not found. Use tenant ${identity.ids.tenantId}.`);
  const body = r.form;
  if (body.grant_type !== 'client_credentials') return fail(400, 'unsupported_grant_type', `grant_type '${body.grant_type ?? ''}' is not supported; use client_credentials.`);
  let clientId = body.client_id;
  let secret = body.client_secret;
  const basic = r.authorization;
  if ((!clientId || !secret) && basic?.toLowerCase().startsWith('basic ')) {
    const dec = Buffer.from(basic.slice(6), 'base64').toString('utf8');
    const i = dec.indexOf(':');
    clientId = decodeURIComponent(dec.slice(0, i));
    secret = decodeURIComponent(dec.slice(i + 1));
  }
  if (!clientId || !secret) return fail(400, 'invalid_request', 'client_id and client_secret are required.');
  const res = await identity.authenticateClient(clientId, secret);
  if (!('principal' in res)) return fail(401, 'invalid_client', res.error);
  const scope = body.scope ?? (body.resource ? `${body.resource}/.default` : `${ARM_AUDIENCE}/.default`);
  const resource = scope.split(' ')[0]!.replace(/\/\.default$/, '') || ARM_AUDIENCE;
  const token = await identity.issueAccessToken(res.principal, resource.endsWith('core.windows.net') ? ARM_AUDIENCE : resource, undefined, r.base);
  return { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token };
}
