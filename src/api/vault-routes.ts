// ARM routes for Microsoft.KeyVault/vaults: create/update, show, list by group and subscription, delete,
// name availability. The secrets themselves live on each vault's own data-plane port (src/vault/http.ts).
import { BerthError, invalid } from '../lib/errors.js';
import type { IdentityService } from '../identity/service.js';
import { findRole } from '../identity/roles.js';
import type { ResourceGroups } from '../resources/groups.js';
import type { Logger } from '../lib/logger.js';
import { checkRetentionDays, normaliseAccessPolicies, parseVaultSku, POLICY_KINDS, VAULT_TYPE, vaultArmId, type DeletedVaultRecord, type VaultRecord, type Vaults } from '../vault/vaults.js';
import { answerDelete, route, SCOPE, type RouteDef } from './route-table.js';

export interface VaultRouteDeps {
  identity: IdentityService;
  groups: ResourceGroups;
  vaults: Vaults;
  log: Logger;
}

export function vaultResource(v: VaultRecord, vaultUri: string, tenantId: string) {
  return {
    id: vaultArmId(v),
    name: v.name,
    type: VAULT_TYPE,
    location: v.location,
    tags: v.tags,
    systemData: { createdAt: v.createdAt, createdByType: 'Application', lastModifiedAt: v.createdAt, lastModifiedByType: 'Application' },
    properties: {
      sku: { family: 'A', name: v.sku },
      tenantId,
      accessPolicies: v.accessPolicies.map((p) => ({ tenantId: p.tenantId, objectId: p.objectId, ...(p.applicationId ? { applicationId: p.applicationId } : {}),
        permissions: Object.fromEntries(POLICY_KINDS.map((k) => [k, p.permissions[k] ?? []])) })),
      enabledForDeployment: false,
      enabledForDiskEncryption: false,
      enabledForTemplateDeployment: false,
      enableSoftDelete: true,
      softDeleteRetentionInDays: v.softDeleteRetentionInDays,
      enableRbacAuthorization: v.enableRbacAuthorization,
      enablePurgeProtection: v.enablePurgeProtection ? true : null,
      createMode: null,
      networkAcls: null,
      privateEndpointConnections: null,
      publicNetworkAccess: 'Enabled',
      hsmPoolResourceId: null,
      vaultUri,
      provisioningState: 'Succeeded',
    },
  };
}

/** Azure's DeletedVault: the vault's id, location, tags and dates under properties. */
export function deletedVaultResource(v: DeletedVaultRecord) {
  return {
    id: `/subscriptions/${v.subscription}/providers/Microsoft.KeyVault/locations/${v.location}/deletedVaults/${v.name}`,
    name: v.name,
    type: 'Microsoft.KeyVault/deletedVaults',
    properties: { vaultId: vaultArmId(v), location: v.location, deletionDate: v.deletionDate, scheduledPurgeDate: v.scheduledPurgeDate, tags: v.tags, purgeProtectionEnabled: v.enablePurgeProtection },
  };
}

export function vaultRoutes(d: VaultRouteDeps): RouteDef[] {
  const path = '/subscriptions/:sub/resourcegroups/:rg/providers/Microsoft.KeyVault/vaults' as const;
  const one = `${path}/:name` as const;
  const deleted = '/subscriptions/:sub/providers/Microsoft.KeyVault/locations/:loc/deletedVaults/:name' as const;
  const shape = (v: VaultRecord) => vaultResource(v, d.vaults.vaultUri(v), d.identity.ids.tenantId);
  const vault = SCOPE.resource(VAULT_TYPE);
  // Deleted vaults: listed, shown and purged by subscription and location, as Azure does.
  const DELETED_READ = 'Microsoft.KeyVault/locations/deletedVaults/read';
  const deletedVault = SCOPE.lookup('deleted vault', async (p) => vaultArmId(await d.vaults.getDeleted(p.name!, p.loc!)));

  return [
    route({ method: 'POST', path: '/subscriptions/:sub/providers/Microsoft.KeyVault/checkNameAvailability', action: 'Microsoft.KeyVault/checkNameAvailability/read', scope: SCOPE.subscription,
      handler: (c) => d.vaults.nameAvailable(((c.req.body ?? {}) as { name?: string }).name ?? '') }),
    route({ method: 'GET', path: '/subscriptions/:sub/providers/Microsoft.KeyVault/deletedVaults', action: DELETED_READ, scope: SCOPE.each,
      handler: async (c) => ({ value: (await c.allowed(await d.vaults.listDeleted(), vaultArmId)).map(deletedVaultResource) }) }),
    // Berth has no managed HSMs; az keyvault list-deleted asks for deleted ones too.
    route({ method: 'GET', path: '/subscriptions/:sub/providers/Microsoft.KeyVault/deletedManagedHSMs', action: DELETED_READ, scope: SCOPE.each,
      handler: () => ({ value: [] }) }),
    route({ method: 'GET', path: deleted, action: DELETED_READ, scope: deletedVault,
      handler: async (c) => deletedVaultResource(await d.vaults.getDeleted(c.params.name, c.params.loc)) }),
    route({ method: 'POST', path: `${deleted}/purge`, action: 'Microsoft.KeyVault/locations/deletedVaults/purge/action', scope: deletedVault, handler: async (c) => {
      const v = await d.vaults.purge(c.params.name, c.params.loc);
      d.log.info('deleted vault purged', { vault: v.name });
      return c.reply.status(200).send();
    } }),
    route({ method: 'GET', path: '/subscriptions/:sub/providers/Microsoft.KeyVault/vaults', action: `${VAULT_TYPE}/read`, scope: SCOPE.each,
      handler: async (c) => ({ value: (await c.allowed(await d.vaults.list(), vaultArmId)).map(shape) }) }),
    route({ method: 'GET', path, action: `${VAULT_TYPE}/read`, scope: SCOPE.each, handler: async (c) => {
      await d.groups.get(c.params.rg);
      return { value: (await c.allowed(await d.vaults.list(c.params.rg), vaultArmId)).map(shape) };
    } }),
    route({ method: 'PUT', path: one, action: `${VAULT_TYPE}/write`, scope: vault, handler: async (c) => {
      const { rg, name } = c.params;
      const { req, reply } = c;
      const body = (req.body ?? {}) as { location?: string; tags?: Record<string, string>; properties?: { sku?: { name?: string }; enableRbacAuthorization?: boolean; accessPolicies?: unknown;
        createMode?: string; softDeleteRetentionInDays?: unknown; enablePurgeProtection?: unknown } };
      const props = body.properties ?? {};
      if (typeof props.createMode === 'string' && props.createMode.toLowerCase() === 'recover') {
        const v = await d.vaults.recover(rg, name, body.location);
        d.log.info('vault recovered', { vault: v.name });
        return reply.status(200).send(shape(v));
      }
      if (props.createMode !== undefined && props.createMode !== null && String(props.createMode).toLowerCase() !== 'default') {
        throw invalid('BadRequest', `properties.createMode '${String(props.createMode).slice(0, 50)}' is not valid: use default or recover.`);
      }
      if (props.enablePurgeProtection !== undefined && props.enablePurgeProtection !== null && typeof props.enablePurgeProtection !== 'boolean') {
        throw invalid('BadRequest', 'properties.enablePurgeProtection must be true or false.');
      }
      const accessPolicies = props.accessPolicies === undefined ? undefined : normaliseAccessPolicies(props.accessPolicies, d.identity.ids.tenantId);
      // Without enableRbacAuthorization, a vault given access policies uses them (az keyvault create's
      // default); one given none uses RBAC, Azure's default since api-version 2026-02-01 and Berth's always.
      const rbac = props.enableRbacAuthorization !== undefined ? Boolean(props.enableRbacAuthorization) : accessPolicies?.length ? false : undefined;
      const { vault, created } = await d.vaults.createOrUpdate(rg, name, {
        ...(body.location ? { location: body.location } : {}), ...(body.tags ? { tags: body.tags } : {}),
        ...(props.sku?.name ? { sku: parseVaultSku(props.sku.name) } : {}),
        ...(rbac !== undefined ? { enableRbacAuthorization: rbac } : {}), ...(accessPolicies ? { accessPolicies } : {}),
        ...(props.softDeleteRetentionInDays !== undefined && props.softDeleteRetentionInDays !== null ? { softDeleteRetentionInDays: checkRetentionDays(props.softDeleteRetentionInDays) } : {}),
        ...(typeof props.enablePurgeProtection === 'boolean' ? { enablePurgeProtection: props.enablePurgeProtection } : {}),
      });
      if (created && vault.enableRbacAuthorization) {
        // The creator of an RBAC vault gets Key Vault Administrator on it so that it can manage secrets at
        // once, as the creator's access policy (which az adds itself) allows on an access-policy vault.
        try {
          await d.identity.assignRole(req.principal!.id, findRole('Key Vault Administrator')!, vaultArmId(vault));
        } catch (e) {
          if (!(e instanceof BerthError && e.kind === 'conflict')) throw e;
        }
      }
      if (created) d.log.info('vault created', { vault: vault.name, vaultUri: d.vaults.vaultUri(vault), rbac: vault.enableRbacAuthorization });
      return reply.status(created ? 201 : 200).send(shape(vault));
    } }),
    route({ method: 'PUT', path: `${one}/accessPolicies/:kind`, action: `${VAULT_TYPE}/accessPolicies/write`, scope: vault, handler: async (c) => {
      const { rg, name, kind } = c.params;
      const k = kind.toLowerCase();
      if (k !== 'add' && k !== 'replace' && k !== 'remove') throw invalid('BadRequest', `The access policy operation '${kind}' is not valid: use add, replace or remove.`);
      const entries = normaliseAccessPolicies(((c.req.body ?? {}) as { properties?: { accessPolicies?: unknown } }).properties?.accessPolicies ?? [], d.identity.ids.tenantId);
      const v = await d.vaults.updateAccessPolicies(rg, name, k, entries);
      return { id: `${vaultArmId(v)}/accessPolicies/${k}`, name: k, type: `${VAULT_TYPE}/accessPolicies`, location: v.location, properties: { accessPolicies: shape(v).properties.accessPolicies } };
    } }),
    route({ method: 'GET', path: one, action: `${VAULT_TYPE}/read`, scope: vault, handler: async (c) => shape(await d.vaults.get(c.params.rg, c.params.name)) }),
    route({ method: 'DELETE', path: one, action: `${VAULT_TYPE}/delete`, scope: vault, handler: (c) => answerDelete(c.reply, () => d.vaults.delete(c.params.rg, c.params.name)) }),
  ];
}
