// ACR's token exchange, the one client for it: an Entra access token POSTed to the registry's
// `/oauth2/exchange` (grant_type=access_token) for a registry refresh token. The managed-identity
// keychain, the CLI's own identity (`berth acr login`, the repository commands, `berth pull` and
// `berth image push`) and `berth acr check-health` all exchange through it and word failures their way.
import type { Dispatcher } from 'undici';
import { isLoopbackHost } from '../lib/loopback.js';

export interface ExchangeRequest {
  /** The exchange endpoint, e.g. exchangeUrl(loginServer). */
  url: string;
  /** The registry the refresh token is for (the challenge's `service`). */
  service: string;
  accessToken: string;
  tenant?: string;
  /** Default: undici's global dispatcher. */
  dispatcher?: Dispatcher;
  /** How long the answer may take (headers, then body); default undici's. */
  timeoutMs?: number;
}

export interface ExchangeAnswer {
  status: number;
  /** The refresh token, when the registry gave one (status 200). */
  refreshToken?: string;
  /** The registry's first error, when it sent one. */
  error?: { code?: string; message?: string };
}

/** A registry's exchange endpoint: plain HTTP for loopback registries unless `scheme` says otherwise. */
export function exchangeUrl(loginServer: string, scheme?: 'http' | 'https'): string {
  return `${scheme ?? (isLoopbackHost(loginServer) ? 'http' : 'https')}://${loginServer}/oauth2/exchange`;
}

/**
 * POSTs the exchange and reads the answer (at most 64 KiB). Throws the network's own error (callers name
 * the host and the code in their words); a refusal is an answer without refreshToken. undici is loaded
 * here, not at import: importing it installs its Agent behind Node's global fetch for the whole process.
 */
export async function exchangeAccessToken(r: ExchangeRequest): Promise<ExchangeAnswer> {
  const { request } = await import('undici');
  const form = new URLSearchParams({ grant_type: 'access_token', service: r.service, access_token: r.accessToken });
  if (r.tenant) form.set('tenant', r.tenant);
  const res = await request(r.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    ...(r.timeoutMs !== undefined ? { headersTimeout: r.timeoutMs, bodyTimeout: r.timeoutMs } : {}),
    ...(r.dispatcher ? { dispatcher: r.dispatcher } : {}),
  });
  const text = (await res.body.text()).slice(0, 64 * 1024);
  let body: { refresh_token?: unknown; errors?: Array<{ code?: string; message?: string }> } = {};
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  const refreshToken = typeof body.refresh_token === 'string' && body.refresh_token !== '' ? body.refresh_token : undefined;
  const error = Array.isArray(body.errors) ? body.errors[0] : undefined;
  return { status: res.statusCode, ...(refreshToken ? { refreshToken } : {}), ...(error ? { error } : {}) };
}
