// `berth pull REF --to DIR` (an OCI image layout, with a progress bar per layer) and `berth pull REF
// --print` (what the reference resolves to, and which credential source was used).
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { leaf } from '../command.js';
import type { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import { dataPaths, defaultDataDir } from '../../lib/data-dir.js';
import type { PullErrorCode } from '../../pull/types.js';
import type { Keychain, KeychainTarget, RegistryCredential } from '../../keychain/keychain.js';

interface PullOpts {
  to?: string;
  print?: boolean;
  platform?: string;
  creds?: string;
  registryConfig?: string;
  insecure?: boolean;
  caFile?: string;
}

const NOT_FOUND: PullErrorCode[] = ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'PLATFORM_NOT_FOUND'];

function cliErrorOf(e: unknown, PullError: typeof import('../../pull/types.js').PullError, diagnosePull: typeof import('../../pull/diagnosis.js').diagnosePull): never {
  if (e instanceof PullError) throw new CliError(`${diagnosePull(e, { caller: 'pull' })} [${e.code}]`, NOT_FOUND.includes(e.code) ? 3 : e.code === 'INVALID_REFERENCE' ? 2 : 1);
  throw e;
}

/**
 * The CLI identity's keychain (../berth-keychain.ts), loaded when a pull first consults it: a pull
 * that names its credentials never does, and its modules (the ARM client, the ACR exchange) are ~5 MB
 * of a pull's memory.
 */
function lazyBerthKeychain(client: () => ArmClient): Keychain {
  let loaded: Promise<Keychain> | undefined;
  const load = () => (loaded ??= import('../berth-keychain.js').then(({ BerthCliKeychain }) => new BerthCliKeychain(client)));
  return {
    description: 'berth CLI identity',
    resolve: async (target: KeychainTarget, signal?: AbortSignal) => (await load()).resolve(target, signal),
    invalidate: (target: KeychainTarget, credential: RegistryCredential) => {
      void loaded?.then((k) => k.invalidate?.(target, credential));
    },
  };
}

export function registerPullCommand(program: Command, client: () => ArmClient): void {
  leaf<PullOpts>(program, 'pull', 'Pull an image from any OCI/Docker registry into an OCI image layout, or print what it resolves to (Berth).',
    (c) => c.argument('<ref>', 'The image: [registry[:port]/]repository[:tag][@digest]; busybox means docker.io/library/busybox:latest.')
      .option('--to <dir>', 'Write the image as an OCI image layout into this new directory.')
      .option('--print', 'Resolve the reference and print the manifest digest, platform, layers and credential source; download no layers.')
      .option('--platform <os/arch[/variant]>', 'Platform to pick from a multi-platform image.', 'linux/amd64')
      .option('--creds <user:password>', 'Username and password (or token) for the registry.')
      .option('--registry-config <file>', 'A Docker config.json or podman auth.json to take credentials from (auths, credHelpers, credsStore).')
      .option('--insecure', 'Allow plain HTTP to a registry that is not on loopback.')
      .option('--ca-file <file>', 'PEM file with the CA certificate(s) of a self-hosted registry (also makes loopback registries use https).')
      .addHelpText('after', '\nExamples:\n  berth pull localhost:5001/tools/busybox:v1 --to ./busybox\n  berth pull myreg.example.com/app:1 --creds "$USER:$TOKEN" --ca-file ca.pem --print\n  berth pull busybox --platform linux/arm64 --print --query layers[].digest'),
    async (o, io, args) => {
      const [refText] = args as [string];
      // The puller, keychains and progress bars are loaded only when a pull runs.
      const [{ parseReference }, { InlineKeychain }, { DockerConfigKeychain }, { MultiKeychain }, { RegistryPuller }, { writeOciLayout }, { pullProgress, formatBytes }, { PullError }] = await Promise.all([
        import('../../oci/reference.js'), import('../../keychain/inline.js'), import('../../keychain/docker-config.js'), import('../../keychain/keychain.js'),
        import('../../pull/puller.js'), import('../../pull/layout.js'), import('../progress.js'), import('../../pull/types.js')]);
      const { diagnosePull } = await import('../../pull/diagnosis.js');
      const cliError: (e: unknown) => never = (e) => cliErrorOf(e, PullError, diagnosePull);
      if (!o.print && !o.to) throw new CliError('Say what to do: --to DIR writes an OCI layout, --print shows what the reference resolves to.', 2);
      if (o.print && o.to) throw new CliError('--print and --to cannot be used together.', 2);
      let ref;
      try {
        ref = parseReference(refText, { defaultTag: 'latest' });
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      // Order: --creds, --registry-config, the CLI's identity for Berth registries, docker's and podman's default files.
      const chain: Keychain[] = [];
      try {
        if (o.creds !== undefined) chain.push(InlineKeychain.fromUserPass(ref.registry, o.creds, '--creds'));
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      if (o.registryConfig) {
        if (!existsSync(o.registryConfig)) throw new CliError(`--registry-config ${o.registryConfig}: no such file`, 2);
        chain.push(new DockerConfigKeychain({ path: o.registryConfig }));
      }
      chain.push(lazyBerthKeychain(client), ...DockerConfigKeychain.defaults());
      if (o.caFile && !existsSync(o.caFile)) throw new CliError(`--ca-file ${o.caFile}: no such file`, 2);
      const puller = new RegistryPuller({ contentDir: dataPaths(defaultDataDir()).content, ...(o.insecure ? { insecure: true } : {}), ...(o.caFile ? { caFile: o.caFile } : {}) });
      const keychain = new MultiKeychain(chain);
      const started = Date.now();
      try {
        if (o.print) {
          const r = await puller.resolve(refText, { keychain, platform: o.platform! }).catch(cliError);
          return {
            reference: r.reference,
            digest: r.digest,
            mediaType: r.manifest.mediaType,
            ...(r.indexDigest ? { indexDigest: r.indexDigest } : {}),
            platform: r.platform,
            configDigest: r.configDigest,
            config: r.config,
            layers: r.layers.map(({ path: _p, ...l }) => l),
            size: r.layers.reduce((a, l) => a + l.size, 0),
            credentialSource: r.credentialSource,
          };
        }
        const progress = pullProgress(io.stderr, { tty: Boolean(process.stderr.isTTY), quiet: io.onlyShowErrors });
        let r;
        try {
          r = await puller.download(await puller.resolve(refText, { keychain, platform: o.platform! }), { keychain, platform: o.platform!, progress });
        } catch (e) {
          cliError(e);
        } finally {
          progress.stop();
        }
        await writeOciLayout(o.to!, puller.store, {
          manifest: r.manifest,
          blobs: [r.configDescriptor.digest, ...r.layerDescriptors.map((l) => l.digest)],
          ...(ref.tag && !ref.digest ? { tag: ref.tag } : {}),
        }).catch(cliError);
        const seconds = (Date.now() - started) / 1000;
        const total = r.layers.reduce((a, l) => a + l.size, 0);
        if (!io.onlyShowErrors) io.stderr(`Pulled ${r.reference} (${r.digest}): ${r.layers.length} layers, ${formatBytes(total)}, ${formatBytes(progress.bytes)} downloaded in ${seconds.toFixed(1)} s\n`);
        return {
          reference: r.reference,
          digest: r.digest,
          platform: r.platform,
          to: o.to,
          layers: r.layers.length,
          size: total,
          bytesDownloaded: progress.bytes,
          seconds: Math.round(seconds * 10) / 10,
          credentialSource: r.credentialSource,
        };
      } finally {
        await puller.close();
      }
    });
}
