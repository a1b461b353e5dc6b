// The one reader of a registry's error answers (the distribution spec's `{"errors":[{code, message,
// detail}]}`), and the push client's error for an answer that is not what was asked for.
import type { ResponseBody } from './wire.js';

/** What a registry answered (after redirects, for GET and HEAD). */
export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
  /** The URL that answered (after redirects). */
  url: URL;
}

/** What to grant when a registry names no fix of its own. */
export const GRANT_PULL = 'Grant it pull access: the AcrPull role on the registry for an identity or service principal, or content/read on the repository in the scope map of a repository-scoped token';

/** The fix a Berth registry names in an error's detail (`[{Type, Name, Action, Fix}]`), if it is a plain one-line command. */
function detailFix(detail: unknown): string | undefined {
  const f = Array.isArray(detail) ? (detail[0] as { Fix?: unknown } | undefined)?.Fix : undefined;
  return typeof f === 'string' && /^berth [\x20-\x7e]{1,400}$/.test(f) ? f : undefined;
}


/** The registry's own error, from a distribution-spec error body (`raw` when the body was none). */
export async function readRegistryError(res: Pick<RegistryResponse, 'status' | 'body'>): Promise<{ code?: string; message: string; fix?: string; raw?: true }> {
  let text = '';
  try {
    for await (const c of res.body) {
      text += (c as Buffer).toString('utf8');
      if (text.length > 65536) break;
    }
  } catch { /* body dropped: use the status */ }
  try {
    const j = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }>; message?: string };
    const e = j.errors?.[0];
    const fix = detailFix(e?.detail);
    if (e) return { ...(e.code ? { code: e.code } : {}), message: e.message ?? '', ...(fix ? { fix } : {}) };
  } catch { /* not JSON */ }
  return { message: text.trim().slice(0, 300) || `HTTP ${res.status}`, raw: true };
}

/** A registry answer the push client (and the CLI's registry calls) did not expect, in the registry's words. */
export class RegistryHttpError extends Error {
  constructor(readonly status: number, readonly code: string | undefined, message: string) {
    super(message);
  }
}

/** Throws a RegistryHttpError with the registry's own code and message unless the status is one of `ok`. */
export async function expectOk(res: Pick<RegistryResponse, 'status' | 'body'>, server: string, ok: number[] = [200, 201, 202, 204, 206]): Promise<void> {
  if (ok.includes(res.status)) return;
  const w = await readRegistryError(res);
  const code = w.raw ? undefined : w.code;
  const message = w.raw ? `HTTP ${res.status}` : w.message;
  throw new RegistryHttpError(res.status, code, `${server}: ${code ? `${code.toLowerCase().replace(/_/g, ' ')}: ` : ''}${message}`);
}
