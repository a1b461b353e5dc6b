// Turns a failed connection (DNS, refused, TLS, timeout, reset) into a PullError with a diagnosis, and
// says which failures are worth retrying. Pure: no I/O.
import { PullError } from './types.js';

/** The error codes of a network failure, including those nested in `cause` and AggregateError. */
function codes(e: unknown, depth = 0): string[] {
  if (!e || typeof e !== 'object' || depth > 4) return [];
  const x = e as { code?: unknown; cause?: unknown; errors?: unknown[]; message?: unknown };
  const out: string[] = [];
  if (typeof x.code === 'string') out.push(x.code);
  if (Array.isArray(x.errors)) for (const i of x.errors) out.push(...codes(i, depth + 1));
  if (x.cause) out.push(...codes(x.cause, depth + 1));
  return out;
}

const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|CERT_|ERR_OSSL_|HOSTNAME_MISMATCH)/;
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_CLOSED', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);

/** True for a failure that may go away on its own (a dropped connection, a timeout). */
export function isTransientNetworkError(e: unknown): boolean {
  if (e instanceof PullError) return Boolean(e.opts.temporary);
  const cs = codes(e);
  if (cs.some((c) => RESET_CODES.has(c) || TIMEOUT_CODES.has(c))) return true;
  const msg = String((e as Error)?.message ?? '');
  return /terminated|other side closed|aborted|socket hang up/i.test(msg) && !cs.some((c) => TLS_CODE.test(c));
}

/** A PullError for a network failure talking to `host` (undefined when `e` is not a network failure). */
export function networkPullError(e: unknown, host: string, opts: { caFile?: string; url?: string }): PullError | undefined {
  if (e instanceof PullError) return e;
  const cs = codes(e);
  const msg = String((e as Error)?.message ?? e);
  const hostname = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (cs.includes('ENOTFOUND') || cs.includes('EAI_AGAIN') || cs.includes('EAI_NONAME')) {
    return new PullError('NO_SUCH_HOST', `dial tcp: lookup ${hostname}: no such host`,
      `The registry host "${hostname}" does not resolve. Check the spelling of the registry in the image reference and this machine's DNS.`,
      { temporary: cs.includes('EAI_AGAIN') });
  }
  if (cs.includes('ECONNREFUSED')) {
    return new PullError('CONNECTION_REFUSED', `dial tcp ${host}: connect: connection refused`,
      `Nothing listens on ${host}. Is the registry running, and are the host and port in the reference right?`, { temporary: true });
  }
  const tls = cs.find((c) => TLS_CODE.test(c));
  if (tls) {
    const wrongProtocol = /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST/.test(tls);
    const fix = wrongProtocol
      ? `${host} does not speak TLS (it looks like plain HTTP). Use --insecure to pull over plain HTTP from a registry you trust, or point at its TLS port.`
      : opts.caFile
        ? `The certificate of ${host} is not signed by the CA in ${opts.caFile} (--ca-file), or does not name ${hostname}.`
        : `The certificate of ${host} is not trusted by this machine. For a self-hosted registry pass its CA certificate with --ca-file FILE (PEM); for a pinned name, check that the certificate names ${hostname}.`;
    return new PullError('TLS', `tls: ${tls}: ${msg}`, fix);
  }
  if (cs.some((c) => TIMEOUT_CODES.has(c))) {
    return new PullError('TIMEOUT', `${opts.url ?? host}: ${cs.find((c) => TIMEOUT_CODES.has(c))}: ${msg}`,
      `${host} did not answer in time. The registry may be overloaded or a firewall may drop the connection; try again later.`, { temporary: true });
  }
  if (isTransientNetworkError(e)) {
    return new PullError('UNKNOWN', `${host}: connection lost: ${msg}`, 'The connection to the registry dropped and retries did not help; try again.', { temporary: true });
  }
  return undefined;
}
