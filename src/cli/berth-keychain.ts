// The CLI's own identity as a keychain source: for a registry of the configured Berth server, the
// identity's Entra token exchanged at the registry's /oauth2/exchange for a refresh token (`berth pull`
// and `berth image push`, after the flags and before docker's and podman's files).
import { flatten, type ArmClient } from './arm-client.js';
import { resolveContext } from './context.js';
import { exchangeForRefreshToken } from './commands/acr.js';
import { trustBerthCa } from './trust.js';
import type { Keychain, KeychainTarget, RegistryCredential } from '../keychain/keychain.js';

/** The CLI's own identity for the registries of the configured Berth server (as `berth image push`). */
export class BerthCliKeychain implements Keychain {
  readonly description = 'berth CLI identity';
  private readonly cache = new Map<string, Promise<string | undefined>>();
  constructor(private readonly client: () => ArmClient) {}

  async resolve(target: KeychainTarget): Promise<RegistryCredential | undefined> {
    const host = target.registry.toLowerCase();
    let p = this.cache.get(host);
    if (!p) this.cache.set(host, (p = this.exchange(host)));
    const refreshToken = await p;
    if (!refreshToken) return undefined;
    return { kind: 'refreshToken', refreshToken, source: `berth CLI identity (${this.clientId})` };
  }

  invalidate(target: KeychainTarget): void {
    this.cache.delete(target.registry.toLowerCase());
  }

  private clientId = '';
  private async exchange(host: string): Promise<string | undefined> {
    let c: ArmClient;
    try {
      resolveContext();
      c = this.client();
    } catch {
      return undefined; // no Berth configured: not our registry
    }
    let regs: Array<Record<string, unknown>>;
    try {
      regs = (await c.request<{ value: Array<Record<string, unknown>> }>('GET', c.sub('/providers/Microsoft.ContainerRegistry/registries')))!.value.map(flatten);
    } catch {
      return undefined;
    }
    if (!regs.some((r) => String(r.loginServer).toLowerCase() === host)) return undefined;
    this.clientId = resolveContext().credential.clientId;
    // The exchange goes through undici's global dispatcher: it trusts Berth's CA once this has run
    // (berth pull skips that at start-up: see cli/main.ts).
    await trustBerthCa();
    return exchangeForRefreshToken(c, host);
  }
}
