// The portal's calls: Berth's public ARM API on this origin, with the signed-in principal's token.
// Nothing here reaches a private endpoint: what a principal can do in the portal is what it can do with az.
import { currentSession, signOut } from './session.js';

/** Fired when the API refuses the session's token: the shell goes back to the sign-in page. */
export const SIGNED_OUT = 'berth-signed-out';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export const API = {
  resources: '2021-04-01',
  registries: '2023-07-01',
  groups: '2023-05-01',
  authorization: '2022-04-01',
  msi: '2023-01-31',
  vaults: '2023-07-01',
};

export function session() {
  const s = currentSession();
  if (!s) {
    dispatchEvent(new Event(SIGNED_OUT));
    throw new ApiError(401, 'SignedOut', 'Your session has ended. Sign in again.');
  }
  return s;
}

async function failure(res: Response): Promise<ApiError> {
  let code = String(res.status);
  let message = `${res.status} ${res.statusText}`;
  try {
    const b = (await res.json()) as { error?: { code?: string; message?: string }; errors?: Array<{ code?: string; message?: string }> };
    const e = b.error ?? b.errors?.[0];
    if (e?.message) message = e.message;
    if (e?.code) code = e.code;
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, message);
}

/** A management-API request; `path` includes its own query apart from api-version. */
export async function arm<T>(method: string, path: string, apiVersion: string, body?: unknown): Promise<T> {
  const s = session();
  const url = `${path}${path.includes('?') ? '&' : '?'}api-version=${apiVersion}`;
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${s.management}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status === 401) {
    signOut();
    dispatchEvent(new Event(SIGNED_OUT));
    throw new ApiError(401, 'SignedOut', 'Your session has ended. Sign in again.');
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

let subscription: string | undefined;
/** The subscription the principal sees (a Berth server has one). */
export async function subscriptionId(): Promise<string> {
  if (subscription) return subscription;
  const r = await arm<{ value: Array<{ subscriptionId: string }> }>('GET', '/subscriptions', '2022-12-01');
  const first = r.value[0];
  if (!first) throw new ApiError(403, 'NoSubscription', 'This principal holds no role in the Berth subscription, so it sees nothing. An owner can give it one with `berth role assignment create`.');
  subscription = first.subscriptionId;
  return subscription;
}

export interface ArmResource<P = Record<string, unknown>> {
  id: string;
  name: string;
  location?: string;
  type?: string;
  properties: P;
}

export const rgOf = (id: string) => /\/resourceGroups\/([^/]+)/i.exec(id)?.[1] ?? '';

export async function list<P>(pathUnderSub: string, apiVersion: string): Promise<Array<ArmResource<P>>> {
  const sub = await subscriptionId();
  const r = await arm<{ value: Array<ArmResource<P>> }>('GET', `/subscriptions/${sub}${pathUnderSub}`, apiVersion);
  return r.value;
}

export async function subPath(pathUnderSub: string): Promise<string> {
  return `/subscriptions/${await subscriptionId()}${pathUnderSub}`;
}
