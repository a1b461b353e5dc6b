// The one place that decides whether two ways of writing a registry server name the same server. Every
// credential source keys its entries with serverKey() and looks targets up with it, so that
// `https://MyReg.azurecr.io/v2/`, `myreg.azurecr.io:443` and `myreg.azurecr.io` all find one entry, and
// Docker Hub's many names (`index.docker.io`, `registry-1.docker.io`, `https://index.docker.io/v1/`)
// are one server, `docker.io`.
import { KeychainError } from './keychain.js';
import { DOCKER_HUB, DOCKER_HUB_ALIASES, DOCKER_HUB_CONFIG_KEY } from '../oci/docker-hub.js';

export { DOCKER_HUB, DOCKER_HUB_CONFIG_KEY };

/**
 * The normalised key of a registry server: lower-case host, `:port` only when it is not the default,
 * no scheme, no path, Docker Hub's aliases folded into `docker.io`. Throws a KeychainError for
 * something that is no server name at all (empty, spaces, user info).
 */
export function serverKey(server: string): string {
  const raw = server.trim();
  let rest = raw;
  let scheme: string | undefined;
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (m) {
    scheme = m[1]!.toLowerCase();
    rest = rest.slice(m[0].length);
  }
  const slash = rest.indexOf('/');
  let host = (slash >= 0 ? rest.slice(0, slash) : rest).toLowerCase();
  if (host === '' || /[\s@?#]/.test(host) || (scheme !== undefined && scheme !== 'http' && scheme !== 'https')) {
    throw new KeychainError('keychain', `'${raw.slice(0, 100)}' is not a registry server: write a host name with an optional port, such as myregistry.azurecr.io or localhost:5000`);
  }
  if (host.endsWith(':443') && scheme !== 'http') host = host.slice(0, -4);
  else if (host.endsWith(':80') && scheme === 'http') host = host.slice(0, -3);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/** serverKey() that answers undefined instead of throwing, for keys read from files. */
export function tryServerKey(server: string): string | undefined {
  try {
    return serverKey(server);
  } catch {
    return undefined;
  }
}

/** The address to hand a Docker credential helper for a server (Docker Hub has its own legacy URL). */
export function helperServerUrl(key: string): string {
  return key === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : key;
}
