// The signed-in principal and its access tokens. Tokens live in sessionStorage (as MSAL.js keeps them
// by default): a reload keeps the session, closing the tab ends it. No secret is ever stored: a
// service principal's secret is used once to get the tokens and then dropped.

export interface Session {
  principal: { id: string; displayName: string; appId?: string };
  /** Token for the management API (ARM, Graph subset). */
  management: string;
  /** Token for Key Vault data planes. */
  vault: string;
  /** Milliseconds since the epoch when the tokens expire. */
  expiresOn: number;
  tenantId: string;
}

const KEY = 'berth.portal.session';

export function currentSession(): Session | undefined {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    if (!s || s.expiresOn <= Date.now() + 30_000) return undefined;
    return s;
  } catch {
    return undefined;
  }
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

function save(s: Session): Session {
  sessionStorage.setItem(KEY, JSON.stringify(s));
  return s;
}

async function errorText(res: Response): Promise<string> {
  try {
    const b = (await res.json()) as { error?: { message?: string } | string; error_description?: string };
    if (typeof b.error === 'object' && b.error?.message) return b.error.message;
    if (b.error_description) return b.error_description;
  } catch { /* not JSON */ }
  return `${res.status} ${res.statusText}`;
}

/** Redeems a one-time sign-in code printed by `berth portal`. */
export async function signInWithCode(code: string): Promise<Session> {
  const res = await fetch('/portal/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  if (!res.ok) throw new Error(await errorText(res));
  return save((await res.json()) as Session);
}

async function clientCredentialsToken(tenant: string, appId: string, secret: string, scope: string): Promise<{ token: string; expiresIn: number }> {
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope });
  const res = await fetch(`/${encodeURIComponent(tenant)}/oauth2/v2.0/token`, { method: 'POST', body });
  if (!res.ok) throw new Error(await errorText(res));
  const b = (await res.json()) as { access_token: string; expires_in: number };
  return { token: b.access_token, expiresIn: b.expires_in };
}

function claims(token: string): Record<string, unknown> {
  const part = token.split('.')[1] ?? '';
  return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
}

/** Signs in as a service principal (appId + client secret), as `az login --service-principal`. */
export async function signInWithSecret(tenant: string, appId: string, secret: string): Promise<Session> {
  const t = tenant.trim() || 'organizations';
  const management = await clientCredentialsToken(t, appId.trim(), secret, 'https://management.azure.com/.default');
  const vault = await clientCredentialsToken(t, appId.trim(), secret, 'https://vault.azure.net/.default');
  const c = claims(management.token);
  return save({
    principal: { id: String(c.oid), displayName: appId.trim(), appId: appId.trim() },
    management: management.token, vault: vault.token,
    expiresOn: Date.now() + Math.min(management.expiresIn, vault.expiresIn) * 1000,
    tenantId: String(c.tid),
  });
}
