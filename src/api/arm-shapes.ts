// ARM JSON shapes of Berth's resources, as Azure returns them.
import type { RegistryRecord } from '../registry/registries.js';
import { armId } from '../registry/registries.js';

export function registryResource(r: RegistryRecord, loginServer: string) {
  return {
    id: armId(r),
    name: r.name,
    type: 'Microsoft.ContainerRegistry/registries',
    location: r.location,
    tags: r.tags,
    sku: { name: r.sku, tier: r.sku },
    systemData: { createdAt: r.createdAt, createdByType: 'Application', lastModifiedAt: r.createdAt, lastModifiedByType: 'Application' },
    properties: {
      loginServer,
      creationDate: r.createdAt,
      provisioningState: 'Succeeded',
      adminUserEnabled: r.adminUserEnabled,
      networkRuleSet: r.sku === 'Premium' ? { defaultAction: 'Allow', ipRules: [] } : null,
      policies: {
        quarantinePolicy: { status: 'disabled' },
        trustPolicy: { type: 'Notary', status: 'disabled' },
        retentionPolicy: { days: 7, lastUpdatedTime: r.createdAt, status: 'disabled' },
        exportPolicy: { status: 'enabled' },
      },
      encryption: { status: 'disabled' },
      status: null,
      dataEndpointEnabled: false,
      dataEndpointHostNames: [],
      privateEndpointConnections: [],
      publicNetworkAccess: 'Enabled',
      networkRuleBypassOptions: 'AzureServices',
      zoneRedundancy: 'Disabled',
      anonymousPullEnabled: false,
    },
  };
}
