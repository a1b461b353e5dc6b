// The names Berth's server certificate covers: what the composition root asks net/tls.ts to issue for.
// They come from the services Berth runs (the containers' host alias, the vaults' DNS suffix), so they
// are decided here, where those services are wired, and not in the TLS module.
import { isIP } from 'node:net';
import { HOST_ALIAS } from '../runtime/runc/outbound.js';
import { VAULT_DNS_SUFFIX } from '../vault/vaults.js';

/**
 * Names every Berth server certificate covers, plus the configured domain (if any). HOST_ALIAS is one:
 * a container calling Berth's vault or API over https as host.berth.internal verifies the certificate.
 */
export function serverNames(domain?: string): string[] {
  const names = ['localhost', '127.0.0.1', '::1', HOST_ALIAS, `*.${VAULT_DNS_SUFFIX}`];
  if (domain) {
    const d = domain.trim().toLowerCase();
    if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(d) && !isIP(d)) {
      throw new Error(`--domain '${domain}' is not a valid host name or IP address (example: berth.example.internal)`);
    }
    if (!names.includes(d)) names.push(d);
  }
  return names;
}
