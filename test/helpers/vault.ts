// Test helpers for the vault: principals with roles, tokens from Berth's identity endpoint, a vault.
import { findRole } from '../../src/identity/roles.js';
import { vaultArmId, type VaultRecord } from '../../src/vault/vaults.js';
import type { RunningBerth } from '../../src/platform/berth.js';

export interface TestPrincipal { appId: string; objectId: string; secret: string }

let seq = 0;

/** A service principal with `role` at `scope` (none when role is undefined). */
export async function principalWithRole(b: RunningBerth, role: string | undefined, scope?: string): Promise<TestPrincipal> {
  const app = await b.applications.createApplication(`vault-test-${role ?? 'none'}-${seq++}`);
  await b.applications.createServicePrincipal(app.appId);
  const pw = await b.applications.addPassword(app.id, {});
  if (role) await b.identity.assignRole(app.id, findRole(role)!, scope!);
  return { appId: app.appId, objectId: app.id, secret: pw.secretText };
}

/** An access token from Berth's client-credentials endpoint for `scope`. */
export async function tokenFor(b: RunningBerth, p: { appId: string; secret: string }, scope = 'https://vault.azure.net/.default'): Promise<{ token: string; expiresOnTimestamp: number }> {
  const res = await fetch(`${b.url}/${b.identity.ids.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: p.appId, client_secret: p.secret, scope }).toString(),
  });
  const body = (await res.json()) as { access_token?: string; expires_in?: number; error_description?: string };
  if (!body.access_token) throw new Error(`token request failed: ${res.status} ${body.error_description}`);
  return { token: body.access_token, expiresOnTimestamp: Date.now() + (body.expires_in ?? 3600) * 1000 };
}

export async function testVault(b: RunningBerth, name: string, group = 'rg'): Promise<{ vault: VaultRecord; uri: string; scope: string }> {
  await b.groups.createOrUpdate(group, 'westus');
  const { vault } = await b.vaults.createOrUpdate(group, name, {});
  return { vault, uri: b.vaults.vaultUri(vault), scope: vaultArmId(vault) };
}
