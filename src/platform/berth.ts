// The composition root: opens the data directory and wires every service together. `berth serve`
// and the tests both start Berth through startBerth().
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import { mkdir, rm } from 'node:fs/promises';
import type { Db } from '../storage/sqlite.js';
import { openMetadata } from '../storage/sql/open.js';
import type { Sql } from '../storage/sql/sql.js';
import { FsBlobStore } from '../storage/fs-blob-store.js';
import { parseS3Location } from '../storage/s3-location.js';
import type { BlobStore } from '../storage/blob-store.js';
import { DiskSpace } from '../storage/disk-space.js';
import { SqlRegistryMetadata } from '../storage/sql-registry-metadata.js';
import { loadKek, rotateKek } from '../storage/kek.js';
import { Vaults, VAULT_DNS_SUFFIX, vaultArmId, vaultHostName, vaultNameFromHost } from '../vault/vaults.js';
import { localhostNamesResolve } from '../net/localhost-names.js';
import { makePrivate } from '../lib/private-files.js';
import { Secrets } from '../vault/secrets.js';
import { VaultHttp } from '../vault/http.js';
import { TokenService } from '../identity/token-service.js';
import { IdentityService } from '../identity/service.js';
import { ResourceGroups } from '../resources/groups.js';
import { Registries } from '../registry/registries.js';
import { RegistryService } from '../registry/service.js';
import { SKU_STORAGE_BYTES } from '../registry/quota.js';
import type { Sku } from '../registry/registries.js';
import { RegistryAuth } from '../registry/auth.js';
import { ScopeMapsAndTokens } from '../registry/scope-maps.js';
import { Applications } from '../identity/applications.js';
import { ManagedIdentities } from '../identity/managed-identities.js';
import { WorkloadIdentities } from '../identity/workload-identity.js';
import { RegistryHttp } from '../registry/http/server.js';
import { apiRoutes, buildApi, declaredRoutes, type ApiRoute } from '../api/server.js';
import type { RouteListing } from '../api/route-table.js';
import { PortListeners, alsoListenOn, closeServer, freeLoopbackPort } from '../net/listeners.js';
import { dataPaths } from '../lib/data-dir.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { createLogger, type Level, type Logger } from '../lib/logger.js';
import { LazyPuller } from '../pull/lazy-puller.js';
import { ensureTls, type TlsMaterial } from '../net/tls.js';
import { serverNames } from './server-names.js';
import type { Runtime } from '../runtime/runtime.js';
import type { ImagePuller } from '../pull/types.js';
import type { KeychainFactory } from '../instances/keychains.js';
import { ContainerGroups, type ContainerGroupsOptions } from '../instances/service.js';
import { platformKeychainFactory } from '../instances/platform-keychains.js';
import { VaultSecretReader } from '../vault/reader.js';
import { DockerConfigKeychain } from '../keychain/docker-config.js';
import { HostsFile } from '../instances/hosts-file.js';
import { ContentStore } from '../pull/content-store.js';
import { ImageGc } from '../instances/image-gc.js';

export interface BerthOptions {
  dataDir: string;
  /** Management API port on 127.0.0.1; 0 picks a free one. */
  port: number;
  host?: string;
  logLevel?: Level;
  logSink?: (line: string) => void;
  /** Garbage collection every this many ms (0 disables the timer; `berth acr gc` still works). */
  gcIntervalMs?: number;
  /** An extra DNS name (or IP address) the server certificate covers, besides localhost, 127.0.0.1 and ::1. */
  domain?: string;
  /** false: plain HTTP only, no CA or certificate (default true: HTTPS and HTTP on every port). */
  tls?: boolean;
  /** Container runtime for container groups (runc by default at merge); undefined: creates are refused. */
  runtime?: Runtime;
  /** Image puller for container groups; undefined: creates are refused. */
  puller?: ImagePuller;
  /** Makes the credential sources of a group's keychain; default: the keychain module's classes over Berth's identity and vault. */
  keychainFactory?: KeychainFactory;
  /**
   * Docker config.json files (`berth serve --docker-config`) whose credentials every group's pulls may
   * use, tried before the default locations ($DOCKER_CONFIG/config.json or ~/.docker/config.json, ...).
   * Each must exist and parse when the server starts; it is read again at every pull.
   */
  dockerConfig?: string[];
  /**
   * A hosts file (berth serve --hosts-file /etc/hosts) Berth keeps the groups' DNS names in: a group with
   * a dnsNameLabel then publishes its ports on a loopback address of its own, which its fqdn names.
   */
  hostsFile?: string;
  /** Reconciler back-off/sleep overrides (tests). */
  reconciler?: ContainerGroupsOptions['reconciler'];
  /** What one container group may ask for (default: this host's CPUs and memory). */
  groupCapacity?: ContainerGroupsOptions['capacity'];
  /** Image garbage collection (cached layers, pulled blobs) every this many ms (default: never; `berth container prune-images` still works). */
  imageGcIntervalMs?: number;
  /** What the image garbage collection keeps: anything used within this many ms (default 24 h). */
  imageGcGraceMs?: number;
  /** PEM files with CA certificates container groups trust for registries (`berth serve --registry-ca`). */
  registryCaFiles?: string[];
  /** Bytes kept free on the data directory's filesystem for metadata: no blob data is written into them (default: 5% of the filesystem, at most 1 GiB). */
  storageReserve?: number;
  /**
   * Where registry blobs live: `s3://BUCKET[/PREFIX]?endpoint=URL&region=R` (an S3-compatible bucket that
   * several replicas share; credentials from the AWS SDK's chain), or the data directory when absent.
   */
  blobStore?: string;
  /**
   * The metadata database: `postgres://USER@HOST:PORT/DB` keeps every service's metadata in PostgreSQL
   * (the password from PGPASSWORD, ~/.pgpass or the URL); absent, the embedded SQLite file in the data
   * directory.
   */
  database?: string;
  /** Storage quota per registry SKU in bytes (default ACR's included storage: Basic 10 GiB, Standard 100 GiB, Premium 500 GiB). */
  skuStorageLimits?: Partial<Record<Sku, number>>;
}

export interface RunningBerth {
  /** Plain HTTP on loopback: http://127.0.0.1:<port>. */
  url: string;
  /** HTTPS with Berth's CA: https://localhost:<port> (undefined with tls: false). */
  httpsUrl: string | undefined;
  /** TLS material (CA path and certificate); undefined with tls: false. */
  tls: TlsMaterial | undefined;
  port: number;
  dataDir: string;
  /** The embedded SQLite database (undefined when the metadata is in PostgreSQL). */
  db: Db | undefined;
  /** The metadata database, whichever engine. */
  sql: Sql;
  /** Where the metadata is: the SQLite file, or the PostgreSQL URL without its password. */
  metadata: string;
  groups: ResourceGroups;
  registries: Registries;
  registryService: RegistryService;
  identity: IdentityService;
  repoTokens: ScopeMapsAndTokens;
  applications: Applications;
  managedIdentities: ManagedIdentities;
  workloads: WorkloadIdentities;
  /** The pull client for container groups: one content store (<dataDir>/content) shared by all pulls. */
  puller: LazyPuller;
  containerGroups: ContainerGroups;
  /** Garbage collection of the runtime's layers and the pull client's content store. */
  imageGc: ImageGc;
  vaults: Vaults;
  secrets: Secrets;
  /** Re-seals every sealed value under a new key-encryption key (see src/storage/kek.ts). */
  rotateKek(): Promise<{ keyId: string; resealed: number }>;
  /** The management API's routes (method and URL pattern). */
  apiRoutes(): ApiRoute[];
  /** Every route as its table declares it (method, path, action, scope): the management API's and the vault data plane's. */
  declaredRoutes(): { api: RouteListing[]; vault: ReturnType<VaultHttp['declaredRoutes']> };
  stop(): Promise<void>;
}

export async function startBerth(o: BerthOptions): Promise<RunningBerth> {
  const host = o.host ?? '127.0.0.1';
  const log: Logger = createLogger(o.logLevel ?? 'info', o.logSink);
  const paths = dataPaths(o.dataDir);
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  // The data directory holds specs, environment values, password hashes and pulled private layers:
  // private to its owner, whoever created it (mkdir -p makes it 0755).
  await makePrivate(o.dataDir, 0o700, log);
  if (o.tls === false && o.domain) throw new Error('--domain names a host for the TLS certificate; it cannot be used with --no-tls.');
  // Checked before anything listens: a server whose configured credentials cannot be read says so at once.
  const dockerConfigs = (o.dockerConfig ?? []).map((path) => new DockerConfigKeychain({ path, optional: false }));
  for (const c of dockerConfigs) await c.check().catch((e: Error) => { throw new Error(`--docker-config: ${e.message}`); });
  const tls = o.tls === false ? undefined
    : await ensureTls(paths.tls, serverNames(o.domain), (msg, fields) => log.info(msg, fields));
  const metadata = await openMetadata({ dbPath: paths.db, ...(o.database ? { database: o.database } : {}) });
  const { sql, db } = metadata;
  if (db) for (const f of [paths.db, `${paths.db}-wal`, `${paths.db}-shm`]) await makePrivate(f, 0o600, log);
  else log.info('metadata in PostgreSQL', { database: metadata.where });
  const space = new DiskSpace(o.dataDir, o.storageReserve !== undefined ? { reserve: o.storageReserve } : {});
  // The AWS SDK is loaded only for an S3 store.
  const s3 = o.blobStore ? new (await import('../storage/s3-blob-store.js')).S3BlobStore(parseS3Location(o.blobStore)) : undefined;
  const blobs: BlobStore & { init(): Promise<void> } = s3 ?? new FsBlobStore(o.dataDir, { space });
  await blobs.init();
  if (s3) log.info('registry blobs in S3', { store: s3.describe() });
  const sealer = await loadKek(sql, paths.kek);
  const tokens = await TokenService.load(paths.signingKey);
  const ids = await IdentityService.platformIds(sql);
  let baseUrl = '';
  let otherBases: string[] = [];
  const identity = new IdentityService(sql, tokens, ids, () => baseUrl, () => otherBases);
  const groups = new ResourceGroups(sql, ids.subscriptionId);
  const registries = new Registries(sql, ids.subscriptionId, groups, sealer, () => freeLoopbackPort(host), 'localhost');
  const meta = new SqlRegistryMetadata(sql);
  const skuLimits = { ...SKU_STORAGE_BYTES, ...o.skuStorageLimits };
  const registryService = new RegistryService(meta, blobs, {
    quota: async (id) => {
      const r = await registries.byId(id);
      return r ? { name: r.name, sku: r.sku, limit: skuLimits[r.sku] } : undefined;
    },
  });
  const repoTokens = new ScopeMapsAndTokens(sql);
  const applications = new Applications(sql, ids.tenantId);
  const managedIdentities = new ManagedIdentities(sql, ids.subscriptionId, ids.tenantId, groups);
  const workloads = new WorkloadIdentities(identity, managedIdentities);
  const auth = new RegistryAuth(registries, identity, tokens, repoTokens);
  // The portal's origins (the main port's), which registries and vaults answer from a browser.
  const browserOrigins = () => [baseUrl, ...otherBases];
  const registryHttp = new RegistryHttp({ registries, service: registryService, auth, log, browserOrigins });
  // Look the registry up per request: it may have been updated (admin user) since the listener opened,
  // here or by another replica on the same database. One indexed look-up; nothing is cached.
  const listeners = new PortListeners('registry', (p) => (req, res) => void registryHttp.handle(req, res, () => registries.byPort(p)), host, log, tls);
  registries.onChange({ opened: (r) => listeners.open(r, registries.loginServer(r)), closed: (r) => listeners.close(r) });
  // Every vault's data plane on a loopback port of its own (the SDK wants /secrets/... at the path root).
  // The scheme comes from here only.
  // With TLS, and where names under .localhost resolve here, a vault's URI is its name on the main port
  // (what az builds from --vault-name, and a host the Key Vault SDKs' challenge check accepts).
  const dataPlaneScheme = tls ? 'https' : 'http';
  const byName = tls !== undefined && await localhostNamesResolve();
  if (tls && !byName) log.warn('vaults are served by port only: names under .localhost do not resolve here', { fix: 'apt-get install libnss-myhostname (adds myhostname to /etc/nsswitch.conf)' });
  const vaults = new Vaults(sql, ids.subscriptionId, groups, sealer, () => freeLoopbackPort(host),
    (v) => (byName ? `https://${vaultHostName(v.name)}:${port}/` : `${dataPlaneScheme}://localhost:${v.port}/`));
  const secrets = new Secrets(sql, vaults);
  const vaultHttp = new VaultHttp({ vaults, secrets, identity, log, identityBase: () => (tls ? `https://localhost:${port}` : baseUrl), browserOrigins });
  const vaultByHost = (req: IncomingMessage, res: ServerResponse): boolean => {
    const name = vaultNameFromHost(req.headers.host);
    if (!name) return false;
    void vaultHttp.handle(req, res, () => vaults.byName(name));
    return true;
  };
  const vaultListeners = new PortListeners('vault', (p) => (req, res) => void vaultHttp.handle(req, res, () => vaults.byPort(p)), host, log, tls);
  vaults.onChange({ opened: (v) => vaultListeners.open(v, vaults.vaultUri(v)), closed: (v) => vaultListeners.close(v) });

  // The pull client for container groups and `berth pull`: one content store shared by all pulls.
  const contentStore = new ContentStore(paths.content);
  const puller = new LazyPuller({ contentDir: paths.content, store: contentStore, space, ...(o.registryCaFiles?.length ? { caFiles: o.registryCaFiles } : {}) });
  const imageGc = new ImageGc({ store: contentStore, runtime: o.runtime, ...(o.imageGcGraceMs !== undefined ? { graceMs: o.imageGcGraceMs } : {}) });
  const containerGroups = new ContainerGroups({ sql, subscriptionId: ids.subscriptionId, tenantId: ids.tenantId, sealer, groups, managedIdentities, workloads, log,
    ...(o.runtime ? { runtime: o.runtime } : {}), puller: o.puller ?? puller, keychainFactory: o.keychainFactory ?? platformKeychainFactory({ identity, secrets: new VaultSecretReader(vaults, secrets), defaults: () => [...dockerConfigs, ...DockerConfigKeychain.defaults()] }),
    vaultExists: async (id) => (await vaults.list()).some((v) => vaultArmId(v).toLowerCase() === id.toLowerCase().replace(/\/+$/, '')),
    ...(o.reconciler ? { reconciler: o.reconciler } : {}), ...(o.groupCapacity ? { capacity: o.groupCapacity } : {}),
    ...(o.hostsFile ? { hostsFile: new HostsFile(o.hostsFile, o.dataDir) } : {}) });

  const api = buildApi({ identity, tokens, groups, registries, registryService, repoTokens, applications, managedIdentities, workloads, vaults, containerGroups, imageGc, log, baseUrl: () => baseUrl, tls, hostRoute: vaultByHost,
    vaultDnsSuffix: () => (byName ? `${VAULT_DNS_SUFFIX}:${port}` : undefined) });
  await api.listen({ port: o.port, host });
  const port = (api.server.address() as { port: number }).port;
  // Names under .localhost resolve to ::1 before 127.0.0.1, and not every client falls back from one
  // to the other: the main port answers on ::1 too (same server; connections handed over).
  const v6 = byName && host === '127.0.0.1' ? await alsoListenOn('::1', port, api.server, log) : undefined;
  baseUrl = `http://${host}:${port}`;
  const httpsUrl = tls ? `https://localhost:${port}` : undefined;
  otherBases = (tls ? ['http', 'https'] : ['http']).flatMap((scheme) =>
    serverNames(o.domain).map((n) => `${scheme}://${isIPv6(n) ? `[${n}]` : n}:${port}`)).filter((b) => b !== baseUrl);

  const cred = await identity.ensureOwner(existsSync(paths.ownerCredential));
  if (cred) await writeFileAtomic(paths.ownerCredential, JSON.stringify(cred, null, 2) + '\n', 0o600);

  for (const r of await registries.list()) await listeners.open(r, registries.loginServer(r));
  for (const v of await vaults.list()) await vaultListeners.open(v, vaults.vaultUri(v));
  // Containers reach a vault by its vaultUri too: its name points at the host in every group's /etc/hosts.
  const vaultHostAliases = async () => {
    if (byName) await o.runtime?.setHostAliases?.((await vaults.list()).map((v) => vaultHostName(v.name)));
  };
  await vaultHostAliases();
  vaults.onChange({ opened: vaultHostAliases, closed: vaultHostAliases });
  await containerGroups.recover();
  await writeFileAtomic(paths.serverInfo, JSON.stringify({ url: baseUrl, ...(httpsUrl ? { httpsUrl, ca: tls!.caPath } : {}), pid: process.pid }) + '\n', 0o644);

  let timer: NodeJS.Timeout | undefined;
  if (o.gcIntervalMs) {
    timer = setInterval(() => {
      registryService.collectGarbage().then((r) => {
        if (r.blobsDeleted || r.uploadsExpired) log.info('garbage collected', { ...r });
      }).catch((e) => log.error('garbage collection failed', { error: String(e) }));
    }, o.gcIntervalMs);
    timer.unref();
  }
  let imageGcTimer: NodeJS.Timeout | undefined;
  if (o.imageGcIntervalMs) {
    imageGcTimer = setInterval(() => {
      imageGc.collect().then((r) => {
        if (r.layers.removed || r.blobs.removed) log.info('image garbage collected', { layers: r.layers.removed, blobs: r.blobs.removed, bytesFreed: r.bytesFreed });
      }).catch((e) => log.error('image garbage collection failed', { error: String(e) }));
    }, o.imageGcIntervalMs);
    imageGcTimer.unref();
  }

  return {
    url: baseUrl, httpsUrl, tls, port, dataDir: o.dataDir, db, sql, metadata: metadata.where, groups, registries, registryService, identity, repoTokens, applications, managedIdentities, workloads, vaults, secrets, puller, containerGroups, imageGc,
    rotateKek: () => rotateKek(sql, paths.kek, sealer),
    apiRoutes: () => apiRoutes(api),
    declaredRoutes: () => ({ api: declaredRoutes(api), vault: vaultHttp.declaredRoutes() }),
    async stop() {
      if (timer) clearInterval(timer);
      if (imageGcTimer) clearInterval(imageGcTimer);
      await containerGroups.detach();
      await puller.close();
      await listeners.closeAll();
      await vaultListeners.closeAll();
      await api.close();
      if (v6) await closeServer(v6);
      if (db) db.close();
      else await sql.close();
      s3?.close();
      await rm(paths.serverInfo, { force: true });
    },
  };
}
