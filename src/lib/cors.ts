// Cross-origin access for Berth's own portal: registries and vaults answer the portal's origins (the main
// port's) and no other. Tokens travel in the Authorization header, never in cookies, so nothing
// ambient is exposed to the origins allowed here.
import type { IncomingMessage } from 'node:http';

const EXPOSED = 'Docker-Content-Digest, Docker-Distribution-API-Version, Link, Location, Range, WWW-Authenticate';

/** The CORS headers for a request from an allowed origin (none for any other request). */
export function corsHeaders(req: IncomingMessage, allowed: readonly string[]): Record<string, string> {
  const origin = req.headers.origin;
  if (!origin || !allowed.includes(origin.toLowerCase())) return {};
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': EXPOSED, Vary: 'Origin' };
}

/** The answer to a preflight (OPTIONS with Access-Control-Request-Method), or undefined for any other request. */
export function preflight(req: IncomingMessage, allowed: readonly string[]): { status: number; headers: Record<string, string> } | undefined {
  if (req.method !== 'OPTIONS' || !req.headers['access-control-request-method']) return undefined;
  const cors = corsHeaders(req, allowed);
  if (!cors['Access-Control-Allow-Origin']) return { status: 403, headers: { Vary: 'Origin' } };
  return {
    status: 204,
    headers: {
      ...cors,
      'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, PATCH, DELETE',
      'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept',
      'Access-Control-Max-Age': '600',
    },
  };
}
