// Who can act on Berth. A principal is authenticated by an authenticator and then authorized by role
// assignments (management plane and registry RBAC) or by its own grants (admin user, repository token).

export type PrincipalKind = 'servicePrincipal' | 'managedIdentity' | 'registryAdmin' | 'registryToken';

export interface Principal {
  kind: PrincipalKind;
  /** Object id (principalId) for Entra principals; registry id for the admin user; token id for tokens. */
  id: string;
  displayName: string;
  /** appId / clientId for Entra principals. */
  appId?: string;
  /** For registry-local principals: the registry they belong to. */
  registryId?: string;
}
