// Host rules as data: where a registry's API answers and whether Berth speaks plain HTTP to it by
// default. The first rule that matches a host applies; Docker Hub's names are in oci/docker-hub.ts and
// "loopback" is lib/loopback.ts's one rule.
import { DOCKER_HUB_ALIASES, DOCKER_HUB_API_HOST } from '../oci/docker-hub.js';
import { isLoopbackHost } from '../lib/loopback.js';

export interface HostRule {
  /** What the rule is for (in comments and errors). */
  name: string;
  matches(host: string): boolean;
  /** The host that serves the registry API, when it is not the host itself. */
  apiHost?: string;
  /** Plain HTTP by default (docker and containers/image do the same for loopback). */
  plainHttp?: boolean;
}

export const HOST_RULES: readonly HostRule[] = [
  { name: 'Docker Hub', matches: (h) => DOCKER_HUB_ALIASES.has(h.toLowerCase()), apiHost: DOCKER_HUB_API_HOST },
  { name: 'loopback', matches: isLoopbackHost, plainHttp: true },
];

/** Where `registry` (host[:port], as references name it) answers, and whether plain HTTP is its default. */
export function registryEndpoint(registry: string): { host: string; plainHttp: boolean } {
  const rule = HOST_RULES.find((r) => r.matches(registry));
  return { host: rule?.apiHost ?? registry, plainHttp: rule?.plainHttp ?? false };
}
