// The composition root: opens the data directory and wires every service together. `berth serve`
// and the tests both start Berth through startBerth().
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { openDatabase, type Db } from '../storage/sqlite.js';
import { FsBlobStore } from '../storage/fs-blob-store.js';
import { SqliteRegistryMetadata } from '../storage/sqlite-registry-metadata.js';
import { loadKek, rotateKek } from '../storage/kek.js';
import { Vaults } from '../vault/vaults.js';
import { Secrets } from '../vault/secrets.js';
import { VaultHttp } from '../vault/http.js';
import { TokenService } from '../identity/token-service.js';
import { IdentityService } from '../identity/service.js';
import { ResourceGroups } from '../resources/groups.js';
import { Registries } from '../registry/registries.js';
import { RegistryService } from '../registry/service.js';
import { RegistryAuth } from '../registry/auth.js';
import { ScopeMapsAndTokens } from '../registry/scope-maps.js';
import { Applications } from '../identity/applications.js';
import { ManagedIdentities } from '../identity/managed-identities.js';
import { WorkloadIdentities } from '../identity/workload-identity.js';
import { RegistryHttp } from '../registry/http/server.js';
import { buildApi } from '../api/server.js';
import { PortListeners, RegistryListeners, freeLoopbackPort } from './listeners.js';
import { dataPaths } from './data-dir.js';
import { writeFileAtomic } from './fs-atomic.js';
import { createLogger, type Level, type Logger } from './logger.js';
import type { Runtime } from '../runtime/runtime.js';
import type { ImagePuller } from '../pull/types.js';
import type { KeychainFactory } from '../instances/keychains.js';
import { ContainerGroups, type ContainerGroupsOptions } from '../instances/service.js';
import { platformKeychainFactory } from '../instances/platform-keychains.js';
import { VaultSecretReader } from '../vault/reader.js';
import { DockerConfigKeychain } from '../keychain/docker-config.js';

export interface BerthOptions {
  dataDir: string;
  /** Management API port on 127.0.0.1; 0 picks a free one. */
  port: number;
  host?: string;
  logLevel?: Level;
  logSink?: (line: string) => void;
  /** Garbage collection every this many ms (0 disables the timer; `berth acr gc` still works). */
  gcIntervalMs?: number;
  /** Container runtime for container groups (runc by default at merge); undefined: creates are refused. */
  runtime?: Runtime;
  /** Image puller for container groups; undefined: creates are refused. */
  puller?: ImagePuller;
  /** Makes the credential sources of a group's keychain; default: the keychain module's classes over Berth's identity and vault. */
  keychainFactory?: KeychainFactory;
  /** Reconciler back-off/sleep overrides (tests). */
  reconciler?: ContainerGroupsOptions['reconciler'];
}

export interface RunningBerth {
  url: string;
  port: number;
  dataDir: string;
  db: Db;
  groups: ResourceGroups;
  registries: Registries;
  registryService: RegistryService;
  identity: IdentityService;
  repoTokens: ScopeMapsAndTokens;
  applications: Applications;
  managedIdentities: ManagedIdentities;
  workloads: WorkloadIdentities;
  containerGroups: ContainerGroups;
  vaults: Vaults;
  secrets: Secrets;
  /** Re-seals every sealed value under a new key-encryption key (see src/storage/kek.ts). */
  rotateKek(): Promise<{ keyId: string; resealed: number }>;
  stop(): Promise<void>;
}

export async function startBerth(o: BerthOptions): Promise<RunningBerth> {
  const host = o.host ?? '127.0.0.1';
  const log: Logger = createLogger(o.logLevel ?? 'info', o.logSink);
  const paths = dataPaths(o.dataDir);
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const db = openDatabase(paths.db);
  const blobs = new FsBlobStore(o.dataDir);
  await blobs.init();
  const sealer = await loadKek(db, paths.kek);
  const tokens = await TokenService.load(paths.signingKey);
  const ids = IdentityService.platformIds(db);
  let baseUrl = '';
  const identity = new IdentityService(db, tokens, ids, () => baseUrl);
  const groups = new ResourceGroups(db, ids.subscriptionId);
  const registries = new Registries(db, ids.subscriptionId, groups, sealer, () => freeLoopbackPort(host), 'localhost');
  const meta = new SqliteRegistryMetadata(db);
  const registryService = new RegistryService(meta, blobs);
  const repoTokens = new ScopeMapsAndTokens(db);
  const applications = new Applications(db, ids.tenantId);
  const managedIdentities = new ManagedIdentities(db, ids.subscriptionId, ids.tenantId, groups);
  const workloads = new WorkloadIdentities(identity, managedIdentities);
  const auth = new RegistryAuth(registries, identity, tokens, repoTokens);
  const registryHttp = new RegistryHttp({ registries, service: registryService, auth, log });
  const listeners = new RegistryListeners(registries, registryHttp, host, log);
  registries.onChange({ opened: (r) => listeners.open(r), closed: (r) => listeners.close(r) });
  // Every vault's data plane on a loopback port of its own (the SDK wants /secrets/... at the path root).
  // The scheme comes from here only.
  const dataPlaneScheme = 'http';
  const vaults = new Vaults(db, ids.subscriptionId, groups, sealer, () => freeLoopbackPort(host), (p) => `${dataPlaneScheme}://localhost:${p}/`);
  const secrets = new Secrets(db, vaults);
  const vaultHttp = new VaultHttp({ vaults, secrets, identity, log, identityBase: () => baseUrl });
  const vaultListeners = new PortListeners('vault', (p) => (req, res) => void vaultHttp.handle(req, res, vaults.byPort(p)), host, log);
  vaults.onChange({ opened: (v) => vaultListeners.open(v, vaults.vaultUri(v)), closed: (v) => vaultListeners.close(v) });

  const containerGroups = new ContainerGroups({ db, subscriptionId: ids.subscriptionId, tenantId: ids.tenantId, sealer, groups, managedIdentities, workloads, log,
    ...(o.runtime ? { runtime: o.runtime } : {}), ...(o.puller ? { puller: o.puller } : {}), keychainFactory: o.keychainFactory ?? platformKeychainFactory({ identity, secrets: new VaultSecretReader(vaults, secrets), defaults: () => DockerConfigKeychain.defaults() }),
    ...(o.reconciler ? { reconciler: o.reconciler } : {}) });

  const api = buildApi({ identity, tokens, groups, registries, registryService, repoTokens, applications, managedIdentities, workloads, vaults, containerGroups, log, baseUrl: () => baseUrl });
  await api.listen({ port: o.port, host });
  const port = (api.server.address() as { port: number }).port;
  baseUrl = `http://${host}:${port}`;

  const cred = await identity.ensureOwner(existsSync(paths.ownerCredential));
  if (cred) await writeFileAtomic(paths.ownerCredential, JSON.stringify(cred, null, 2) + '\n', 0o600);

  for (const r of registries.list()) await listeners.open(r);
  for (const v of vaults.list()) await vaultListeners.open(v, vaults.vaultUri(v));
  await containerGroups.recover();
  await writeFileAtomic(paths.serverInfo, JSON.stringify({ url: baseUrl, pid: process.pid }) + '\n', 0o644);

  let timer: NodeJS.Timeout | undefined;
  if (o.gcIntervalMs) {
    timer = setInterval(() => {
      registryService.collectGarbage().then((r) => {
        if (r.blobsDeleted || r.uploadsExpired) log.info('garbage collected', { ...r });
      }).catch((e) => log.error('garbage collection failed', { error: String(e) }));
    }, o.gcIntervalMs);
    timer.unref();
  }

  return {
    url: baseUrl, port, dataDir: o.dataDir, db, groups, registries, registryService, identity, repoTokens, applications, managedIdentities, workloads, vaults, secrets, containerGroups,
    rotateKek: () => rotateKek(db, paths.kek, sealer),
    async stop() {
      if (timer) clearInterval(timer);
      await containerGroups.detach();
      await listeners.closeAll();
      await vaultListeners.closeAll();
      await api.close();
      db.close();
      await rm(paths.serverInfo, { force: true });
    },
  };
}
