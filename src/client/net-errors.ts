// Turns a failed connection (DNS, refused, TLS, timeout, reset) into a PullError with a diagnosis, and
// says which failures are worth retrying. Pure: no I/O.
import { PullError } from './errors.js';
import { formatMs } from '../keychain/keychain.js';

/** The error codes of a network failure, including those nested in `cause` and AggregateError. */
function codes(e: unknown, depth = 0): string[] {
  if (!e || typeof e !== 'object' || depth > 4) return [];
  const x = e as { code?: unknown; cause?: unknown; errors?: unknown[]; message?: unknown };
  const out: string[] = [];
  if (typeof x.code === 'string') out.push(x.code);
  // node:tls reports a failed handshake write as EPROTO with OpenSSL's reason only in the message.
  const ssl = x.code === 'EPROTO' && typeof x.message === 'string' ? /SSL routines:[^:]*:([a-z ]+):/.exec(x.message) : null;
  if (ssl) out.push(`ERR_SSL_${ssl[1]!.trim().toUpperCase().replace(/ /g, '_')}`);
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

export interface NetworkErrorContext {
  /** CA files the transport trusted besides the system's (`--ca-file`, `berth serve --registry-ca`). */
  caFiles?: string[];
  /** The URL that was asked for (its origin and path; never a query, which may hold a scope or a token). */
  url?: string;
  /** How long the transport waits for a connection and for the answer's headers, in ms. */
  timeoutMs?: number;
}


/** A PullError for a network failure talking to `host` (undefined when `e` is not a network failure). */
export function networkPullError(e: unknown, host: string, opts: NetworkErrorContext): PullError | undefined {
  if (e instanceof PullError) return e;
  const cs = codes(e);
  const msg = String((e as Error)?.message ?? e);
  const hostname = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (cs.includes('ENOTFOUND') || cs.includes('EAI_AGAIN') || cs.includes('EAI_NONAME')) {
    return new PullError('NO_SUCH_HOST', `lookup ${hostname}: no such host`,
      `The registry host "${hostname}" does not resolve. Check the spelling of the registry in the image reference and this machine's DNS.`,
      { temporary: cs.includes('EAI_AGAIN'), source: 'dns' });
  }
  if (cs.includes('ECONNREFUSED')) {
    return new PullError('CONNECTION_REFUSED', `dial tcp ${host}: connect: connection refused`,
      `Nothing listens on ${host}. Is the registry running, and are the host and port in the reference right?`, { temporary: true, source: 'refused' });
  }
  const tls = cs.find((c) => TLS_CODE.test(c));
  if (tls) {
    if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST/.test(tls)) {
      return new PullError('TLS', `${tls}: ${msg}`, `${host} does not speak TLS (it looks like plain HTTP)`, { source: 'tls', remedy: { kind: 'plain-http', host } });
    }
    const cas = opts.caFiles?.length ? opts.caFiles.join(', ') : undefined;
    return new PullError('TLS', `${tls}: ${msg}`,
      `The certificate of ${host} is not ${cas ? `signed by the CA in ${cas}` : 'trusted by this machine'}, or does not name ${hostname}`,
      { source: 'tls', remedy: { kind: 'ca', host, ...(opts.caFiles?.length ? { caFiles: opts.caFiles } : {}) } });
  }
  const timeout = cs.find((c) => TIMEOUT_CODES.has(c));
  if (timeout) {
    const what = timeout === 'UND_ERR_CONNECT_TIMEOUT' || timeout === 'ETIMEDOUT' ? 'a connection' : timeout === 'UND_ERR_BODY_TIMEOUT' ? 'more of the answer' : 'an answer';
    const limit = opts.timeoutMs === undefined ? undefined : what === 'a connection' ? Math.min(opts.timeoutMs, 15_000) : opts.timeoutMs;
    return new PullError('TIMEOUT', `${opts.url ?? host}: no ${what.replace(/^an? /, '')} within ${limit !== undefined ? formatMs(limit) : 'the time limit'}`,
      `Berth waited ${limit !== undefined ? formatMs(limit) : 'its time limit'} for ${what} from ${host}. The registry may be overloaded or a firewall may drop the connection; try again later`,
      { temporary: true, source: 'timeout' });
  }
  if (isTransientNetworkError(e)) {
    return new PullError('UNKNOWN', `${opts.url ?? host}: ${msg}`, 'The connection to the registry dropped and retries did not help; try again', { temporary: true, source: 'connection' });
  }
  return undefined;
}
