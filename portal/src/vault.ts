// A vault's data plane (Key Vault's REST API, api-version 7.4) with the signed-in principal's vault
// token. The vault answers the portal's origins with CORS headers; it is reached with the page's own
// scheme (Berth's ports speak HTTP and HTTPS alike).
import { ApiError, session } from './api.js';

export interface SecretItem {
  id: string;
  contentType?: string;
  attributes: { enabled: boolean; created: number; updated: number; exp?: number; nbf?: number };
  tags?: Record<string, string>;
}

const API_VERSION = '7.4';

export function vaultBase(vaultUri: string): string {
  const u = new URL(vaultUri);
  return `${location.protocol}//${u.host}`;
}

async function get<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${session().vault}` } });
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (!res.ok) throw new ApiError(res.status, body.error?.code ?? String(res.status), body.error?.message ?? res.statusText);
  return body as T;
}

/** Every page of a Key Vault list (bounded: 50 pages). */
async function all<T>(first: string): Promise<T[]> {
  const out: T[] = [];
  let next: string | null = first;
  for (let i = 0; next && i < 50; i++) {
    const page: { value: T[]; nextLink?: string | null } = await get(next);
    out.push(...page.value);
    next = page.nextLink ? page.nextLink.replace(/^https?:\/\/[^/]+/, new URL(first).origin) : null;
  }
  return out;
}

export const secretName = (id: string) => new URL(id).pathname.split('/')[2] ?? '';
export const secretVersion = (id: string) => new URL(id).pathname.split('/')[3] ?? '';

export function listSecrets(vaultUri: string): Promise<SecretItem[]> {
  return all(`${vaultBase(vaultUri)}/secrets?api-version=${API_VERSION}&maxresults=25`);
}

export function listVersions(vaultUri: string, name: string): Promise<SecretItem[]> {
  return all(`${vaultBase(vaultUri)}/secrets/${encodeURIComponent(name)}/versions?api-version=${API_VERSION}&maxresults=25`);
}

/** A secret's value: only on the user's explicit request, and only if the vault allows the principal. */
export async function secretValue(vaultUri: string, name: string, version: string): Promise<string> {
  const r = await get<{ value: string }>(`${vaultBase(vaultUri)}/secrets/${encodeURIComponent(name)}/${encodeURIComponent(version)}?api-version=${API_VERSION}`);
  return r.value;
}
