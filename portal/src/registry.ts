// A registry's data plane (repositories, tags, manifests) through ACR's own token flow, as az does:
// the management token is exchanged for a registry refresh token (/oauth2/exchange), which buys an
// access token per scope (/oauth2/token). The registry answers the portal's origin with CORS headers.
import { ApiError, session } from './api.js';

export interface ManifestInfo {
  digest: string;
  imageSize: number;
  createdTime: string;
  lastUpdateTime: string;
  architecture?: string;
  os?: string;
  mediaType: string;
  tags: string[];
  references?: Array<{ digest: string; architecture?: string; os?: string }>;
}

const refreshTokens = new Map<string, string>();

/** The registry's base URL as this page can reach it (same scheme as the portal). */
export function registryBase(loginServer: string): string {
  return `${location.protocol}//${loginServer}`;
}

async function form(url: string, fields: Record<string, string>): Promise<Record<string, string>> {
  const res = await fetch(url, { method: 'POST', body: new URLSearchParams(fields) });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const e = (body.errors as Array<{ code?: string; message?: string }> | undefined)?.[0];
    throw new ApiError(res.status, e?.code ?? String(body.error ?? res.status), e?.message ?? String(body.error_description ?? res.statusText));
  }
  return body as Record<string, string>;
}

async function accessToken(loginServer: string, scope: string): Promise<string> {
  const base = registryBase(loginServer);
  let rt = refreshTokens.get(loginServer);
  if (!rt) {
    rt = (await form(`${base}/oauth2/exchange`, { grant_type: 'access_token', service: loginServer, access_token: session().management })).refresh_token!;
    refreshTokens.set(loginServer, rt);
  }
  return (await form(`${base}/oauth2/token`, { grant_type: 'refresh_token', service: loginServer, scope, refresh_token: rt })).access_token!;
}

/** Every page of a list (following the registry's Link headers, at most 50 pages). */
async function pages<T>(loginServer: string, first: string, scope: string, items: (body: Record<string, unknown>) => T[] | undefined): Promise<T[]> {
  const token = await accessToken(loginServer, scope);
  const out: T[] = [];
  let path: string | undefined = first;
  for (let i = 0; path && i < 50; i++) {
    const res = await fetch(`${registryBase(loginServer)}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & { errors?: Array<{ code: string; message: string }> };
    if (!res.ok) throw new ApiError(res.status, body.errors?.[0]?.code ?? String(res.status), body.errors?.[0]?.message ?? res.statusText);
    out.push(...(items(body) ?? []));
    path = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
  }
  return out;
}

export function repositories(loginServer: string): Promise<string[]> {
  return pages(loginServer, '/acr/v1/_catalog?n=500', 'registry:catalog:*', (b) => b.repositories as string[] | undefined);
}

export function manifests(loginServer: string, repo: string): Promise<ManifestInfo[]> {
  return pages(loginServer, `/acr/v1/${repo}/_manifests?n=500&orderby=timedesc`, `repository:${repo}:metadata_read`, (b) => b.manifests as ManifestInfo[] | undefined);
}

export async function deleteTag(loginServer: string, repo: string, tag: string): Promise<void> {
  const token = await accessToken(loginServer, `repository:${repo}:delete`);
  const res = await fetch(`${registryBase(loginServer)}/acr/v1/${repo}/_tags/${encodeURIComponent(tag)}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { errors?: Array<{ code: string; message: string }> };
    throw new ApiError(res.status, body.errors?.[0]?.code ?? String(res.status), body.errors?.[0]?.message ?? res.statusText);
  }
}
