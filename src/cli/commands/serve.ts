import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { dataPaths, defaultDataDir } from '../../lib/data-dir.js';
import { databaseOption } from '../database-url.js';
import { CliError } from '../errors.js';
import { parseGrace } from '../../instances/image-gc.js';
import { parseBytes } from '../../lib/bytes.js';
import { parseS3Location } from '../../storage/s3-location.js';

/** What the CLI needs to find this server: nothing when the data directory is the CLI's default (it reads server.json there). */
function cliHint(dataDir: string): string {
  return dataDir === defaultDataDir({ ...process.env, BERTH_DATA_DIR: '' }) ? '' : `; CLI: export BERTH_DATA_DIR=${dataDir}`;
}

export function registerServeCommand(program: Command): void {
  program.command('serve')
    .description('Run the Berth server: management API, identity endpoint and every registry.')
    .option('--data-dir <dir>', 'Data directory (default: $BERTH_DATA_DIR or ~/.local/share/berth).')
    .option('--port <port>', 'Port of the management API on 127.0.0.1.', '8080')
    .option('--log-level <level>', 'debug, info, warn or error.', 'info')
    .option('--gc-interval <minutes>', 'Collect unreferenced blobs every N minutes (0 = never).', '60')
    .option('--image-gc-interval <minutes>', 'Remove cached image layers and pulled blobs no container uses every N minutes (0 = never).', '60')
    .option('--image-gc-grace <duration>', 'Keep image data used within this period (s, m, h or d; hours when no unit).', '24h')
    .option('--domain <name>', 'An extra DNS name or IP address for the server certificate (it always covers localhost, 127.0.0.1 and ::1).')
    .option('--no-tls', 'Plain HTTP only: no local CA, no HTTPS (Azure SDK clients then cannot send tokens).')
    .option('--storage-reserve <size>', 'Keep this much of the data directory\'s disk free for metadata: pushes stop short of it (e.g. 256MB; default 5% of the disk, at most 1GB).')
    .option('--max-layer-unpacked <size>', 'Largest a layer may expand to when a container group\'s image is unpacked (e.g. 4GB).', '16GB')
    .option('--max-image-unpacked <size>', 'Largest an image\'s layers may expand to together when unpacked.', '16GB')
    .option('--registry-ca <file>', 'A PEM file with CA certificates that container groups trust for private registries (self-signed or in-house CAs); repeat for more files. Also $BERTH_REGISTRY_CA (files separated by \':\').',
      (v: string, prev: string[] = []) => [...prev, v])
    .option('--docker-config <file>', 'A Docker config.json (or podman auth.json) whose credentials container groups pull with, for the servers it names; repeatable, tried in order before ~/.docker/config.json.', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--hosts-file <file>', 'Keep the container groups\' DNS names (--dns-name-label: <label>.<location>.containers.localhost) in this hosts file, normally /etc/hosts; each such group then gets a loopback address of its own.')
    .option('--blob-store <url>', 'Keep registry blobs in an S3-compatible bucket: s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws, never the URL). Default: the data directory.')
    .option('--database <url>', 'Keep all metadata in PostgreSQL: postgres://USER@HOST:PORT/DB (default: $BERTH_DATABASE_URL, else the embedded SQLite file in the data directory); the password from PGPASSWORD or ~/.pgpass, never the command line. The tables are created (and upgraded) at start.')
    .option('--no-outbound', 'Container groups get no outbound network access (by default they reach the host as host.berth.internal and whatever the host reaches, through slirp4netns).')
    .action(async (o: { dataDir?: string; port: string; logLevel: string; gcInterval: string; imageGcInterval: string; imageGcGrace: string; domain?: string; tls: boolean; outbound: boolean; registryCa?: string[];
      storageReserve?: string; maxLayerUnpacked: string; maxImageUnpacked: string; dockerConfig: string[]; hostsFile?: string; blobStore?: string; database?: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`argument --port: invalid value '${o.port}'`, 2);
      if (!['debug', 'info', 'warn', 'error'].includes(o.logLevel)) throw new CliError(`argument --log-level: invalid choice '${o.logLevel}'`, 2);
      if (o.domain && !o.tls) throw new CliError('usage error: --domain names a host for the TLS certificate; it cannot be used with --no-tls', 2);
      let imageGcGraceMs: number;
      try {
        imageGcGraceMs = parseGrace(o.imageGcGrace);
      } catch (e) {
        throw new CliError(`argument --image-gc-grace: ${(e as Error).message}`, 2);
      }
      const imageGcIntervalMs = Number(o.imageGcInterval) * 60_000;
      if (!Number.isFinite(imageGcIntervalMs) || imageGcIntervalMs < 0) throw new CliError(`argument --image-gc-interval: invalid value '${o.imageGcInterval}'`, 2);
      const cas = [...(o.registryCa ?? []).map((f) => ({ f, from: 'argument --registry-ca' })),
        ...(process.env.BERTH_REGISTRY_CA ?? '').split(':').filter(Boolean).map((f) => ({ f, from: 'BERTH_REGISTRY_CA' }))];
      for (const { f, from } of cas) {
        let pem: string;
        try {
          pem = readFileSync(f, 'utf8');
        } catch (e) {
          throw new CliError(`${from}: cannot read ${resolve(f)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 2);
        }
        if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new CliError(`${from}: ${resolve(f)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`, 2);
      }
      const registryCaFiles = cas.map(({ f }) => resolve(f));
      const storageReserve = sizeOption('--storage-reserve', o.storageReserve);
      if (o.blobStore) {
        try { parseS3Location(o.blobStore); } catch (e) { throw new CliError(`argument ${(e as Error).message}`, 2); }
      }
      const database = databaseOption(o.database);
      const unpack = { maxLayerBytes: sizeOption('--max-layer-unpacked', o.maxLayerUnpacked)!, maxImageBytes: sizeOption('--max-image-unpacked', o.maxImageUnpacked)! };
      const dataDir = o.dataDir ?? defaultDataDir();
      let b;
      let runtime: import('../../runtime/runc/runc-runtime.js').RuncRuntime | undefined;
      try {
        // Loaded here, not at the top: the server (fastify, every service) costs every other command ~0.3 s of start-up.
        const { startBerth } = await import('../../platform/berth.js');
        // Container groups run on runc (embedded default). Without it (not root, runc missing) everything
        // else works and container creates say why they cannot run.
        const { openRuncRuntime } = await import('../../runtime/runc/runc-runtime.js');
        const opened = await openRuncRuntime({ dataDir: dataPaths(dataDir).runtime, outbound: o.outbound, unpack,
          ...(storageReserve !== undefined ? { storageReserve } : {}) });
        if ('unavailable' in opened) process.stderr.write(`WARNING: container groups cannot run: ${opened.unavailable}\n`);
        else runtime = opened.runtime;
        b = await startBerth({ dataDir, port, logLevel: o.logLevel as 'info', gcIntervalMs: Number(o.gcInterval) * 60_000, imageGcIntervalMs, imageGcGraceMs,
          ...(o.domain ? { domain: o.domain } : {}), tls: o.tls, ...(runtime ? { runtime } : {}), ...(registryCaFiles.length ? { registryCaFiles } : {}),
          ...(storageReserve !== undefined ? { storageReserve } : {}), dockerConfig: o.dockerConfig.map((f) => resolve(f)), ...(o.hostsFile ? { hostsFile: resolve(o.hostsFile) } : {}),
          ...(o.blobStore ? { blobStore: o.blobStore } : {}), ...(database ? { database } : {}) });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE') throw new CliError(`Port ${port} is already in use. Stop the program using it or pick another with --port.`);
        throw new CliError((e as Error).message);
      }
      process.stdout.write(`Berth is ready at ${b.url}${b.httpsUrl ? ` and ${b.httpsUrl} (CA: ${b.tls!.caPath}; see berth ca)` : ''} ` +
        `(data directory ${dataDir}${database ? `, metadata in ${b.metadata}` : ''}${cliHint(dataDir)})\n`);
      // The pull client (undici) takes 60-200 ms to import: loaded now, not in the first group's create.
      if (runtime) void b.puller.get().catch(() => undefined);
      const stop = async () => {
        await b.stop();
        await runtime?.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
      await new Promise(() => undefined);
    });
}

function sizeOption(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  try {
    return parseBytes(v);
  } catch (e) {
    throw new CliError(`argument ${flag}: ${(e as Error).message}`, 2);
  }
}
