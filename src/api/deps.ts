// What the management API is built over: the domain services, the token service, TLS and the
// listener hooks. Routes take this; buildApi (server.ts) wires it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IdentityService } from '../identity/service.js';
import type { ResourceGroups } from '../resources/groups.js';
import type { Registries } from '../registry/registries.js';
import type { RegistryService } from '../registry/service.js';
import type { TokenService } from '../identity/token-service.js';
import type { Logger } from '../lib/logger.js';
import type { ScopeMapsAndTokens } from '../registry/scope-maps.js';
import type { Applications } from '../identity/applications.js';
import type { ManagedIdentities } from '../identity/managed-identities.js';
import type { WorkloadIdentities } from '../identity/workload-identity.js';
import type { Vaults } from '../vault/vaults.js';
import type { TlsMaterial } from '../net/tls.js';
import type { ContainerGroups } from '../instances/service.js';
import type { ImageGc } from '../instances/image-gc.js';
import type { SignInCodes } from '../identity/sign-in-codes.js';

export interface ApiDeps {
  identity: IdentityService;
  tokens: TokenService;
  groups: ResourceGroups;
  registries: Registries;
  registryService: RegistryService;
  repoTokens: ScopeMapsAndTokens;
  applications: Applications;
  managedIdentities: ManagedIdentities;
  workloads: WorkloadIdentities;
  vaults: Vaults;
  containerGroups: ContainerGroups;
  /** Image garbage collection (POST /berth/images/prune). */
  imageGc?: ImageGc;
  log: Logger;
  /** Base URL clients reach this server at (for issuer and discovery documents). */
  baseUrl: () => string;
  /** Serve HTTPS (and plain HTTP) on the same port with this certificate; plain HTTP only when absent. */
  tls?: TlsMaterial;
  /** Requests this answers (true) by their Host header never reach the API: a vault's data plane by name. */
  hostRoute?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** The DNS suffix (with the port) vaults are reached by name under, when they are (`vault.localhost:8080`). */
  vaultDnsSuffix?: () => string | undefined;
  /** The portal's one-time sign-in codes (default: a new in-memory set). */
  signInCodes?: SignInCodes;
  /** Where the built portal is (default: dist/portal). */
  portalDir?: string;
}
