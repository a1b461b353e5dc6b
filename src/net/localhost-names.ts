// Whether this machine resolves names under `.localhost` to loopback (nss-myhostname does, as RFC 6761
// says they should). Vaults are addressed by name under `vault.localhost` only where they do.
import { lookup } from 'node:dns/promises';

const PROBE = 'berth-probe.vault.localhost';
const LOOKUP_TIMEOUT_MS = 2000;

export async function localhostNamesResolve(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), LOOKUP_TIMEOUT_MS); });
  try {
    const found = await Promise.race([lookup(PROBE, { all: true }), timeout]);
    return found.length > 0 && found.every((a) => a.address === '::1' || a.address.startsWith('127.'));
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
