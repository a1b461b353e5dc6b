// `berth image push SOURCE REF`: builds an image from a root filesystem directory, or takes one from an
// OCI layout or a docker save archive, and pushes it with a progress display.
import type { Command } from 'commander';
import { leaf } from '../command.js';
import type { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import type { InvalidReferenceError } from '../../oci/reference.js';
import type { Keychain } from '../../keychain/keychain.js';

interface PushOpts {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  platform?: string;
  cmd?: string;
  entrypoint?: string;
  env?: string[];
  workdir?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * The keychain to push with, in the pull's order: the flags, the CLI's own identity for the registries
 * of the configured Berth server, then docker's and podman's credential files.
 */
async function keychainFor(host: string, o: PushOpts, client: () => ArmClient): Promise<Keychain> {
  const [{ InlineKeychain }, { DockerConfigKeychain }, { MultiKeychain }, { BerthCliKeychain }] = await Promise.all([
    import('../../keychain/inline.js'), import('../../keychain/docker-config.js'), import('../../keychain/keychain.js'), import('../berth-keychain.js')]);
  const chain: Keychain[] = [];
  if (o.username !== undefined || o.password !== undefined || o.passwordStdin) {
    const password = o.passwordStdin ? await readStdin() : o.password;
    if (!o.username || !password) throw new CliError('Please specify both --username and --password (or --password-stdin).', 2);
    chain.push(new InlineKeychain({ server: host, username: o.username, password }, '--username'));
  }
  chain.push(new BerthCliKeychain(client), ...DockerConfigKeychain.defaults());
  return new MultiKeychain(chain);
}

/** A command as a JSON array of strings, or words separated by white space. */
function parseCommand(flag: string, s: string): string[] {
  if (s.trim().startsWith('[')) {
    let v: unknown;
    try { v = JSON.parse(s); } catch (e) { throw new CliError(`${flag}: not a valid JSON array: ${(e as Error).message}`, 2); }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new CliError(`${flag} must be a JSON array of strings`, 2);
    return v as string[];
  }
  return s.trim().split(/\s+/).filter(Boolean);
}

function parsePlatform(s: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new CliError(`--platform "${s}" must be os/arch[/variant], for example linux/amd64`, 2);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function registerImageCommands(program: Command, client: () => ArmClient): void {
  const image = program.command('image').description('Build and push images (Berth).');
  leaf<PushOpts>(image, 'push', 'Push an image from a root filesystem directory, an OCI image layout or a docker save archive.',
    (c) => c.argument('<source>', 'A directory holding a root filesystem (packed as one layer), an OCI image layout directory, or a docker/podman save archive (.tar or .tar.gz); PATH:NAME picks one image of several.')
      .argument('<ref>', 'Where to push: host[:port]/repository[:tag|@digest].')
      .option('-u, --username <user>', 'Registry username (default: the CLI\'s own identity for Berth registries).')
      .option('-p, --password <password>', 'Registry password or token.')
      .option('--password-stdin', 'Read the password from standard input.')
      .option('--platform <os/arch>', 'Platform of an image built from a directory (default: this machine\'s).')
      .option('--cmd <command>', 'Default command of an image built from a directory: a JSON array, or words separated by spaces.')
      .option('--entrypoint <command>', 'Entrypoint of an image built from a directory: a JSON array, or words separated by spaces.')
      .option('--env <KEY=VALUE...>', 'Environment of an image built from a directory.')
      .option('--workdir <dir>', 'Working directory of an image built from a directory.')
      .addHelpText('after', '\nExamples:\n  berth image push ./rootfs localhost:5001/tools/busybox:v1 --cmd \'["/bin/sh","-c","echo hi"]\'\n  berth image push ./layout:v1 localhost:5001/app:v1\n  docker save app:1 -o app.tar && berth image push app.tar localhost:5001/app:1'),
    async (o, io, args) => {
      const [source, refText] = args as [string, string];
      // The image readers, registry client and progress bars are loaded only when a push runs.
      const [{ RegistryClient, RegistryHttpError }, { parseReference, referenceTarget, DOCKER_HUB }, { openImageSource }, { ImageSourceError }, { pushImage }, { pushProgress }] = await Promise.all([
        import('../../client/registry-client.js'), import('../../oci/reference.js'), import('../../image/open.js'), import('../../image/source.js'),
        import('../../image/push.js'), import('../progress.js')]);
      let ref;
      try {
        ref = parseReference(refText, { defaultTag: 'latest' });
      } catch (e) {
        throw new CliError((e as InvalidReferenceError).message, 2);
      }
      if (ref.registry === DOCKER_HUB && !refText.startsWith('docker.io/')) {
        throw new CliError(`"${refText}" names no registry host; write it as HOST[:PORT]/${ref.repository.replace(/^library\//, '')}:${ref.tag ?? 'latest'} (for a Berth registry: berth acr show -n NAME --query loginServer -o tsv)`, 2);
      }
      // The credentials go to the token server the registry names, wherever it is (as with docker login and pulls).
      const rc = new RegistryClient(ref.registry, await keychainFor(ref.registry, o, client), { anyRealm: true });
      let src;
      try {
        src = await openImageSource(source, {
          ...(o.platform ? { platform: parsePlatform(o.platform) } : {}),
          ...(o.cmd ? { cmd: parseCommand('--cmd', o.cmd) } : {}),
          ...(o.entrypoint ? { entrypoint: parseCommand('--entrypoint', o.entrypoint) } : {}),
          ...(o.env ? { env: o.env } : {}),
          ...(o.workdir ? { workingDir: o.workdir } : {}),
        });
      } catch (e) {
        if (e instanceof ImageSourceError) throw new CliError(e.message);
        throw e;
      }
      const progress = pushProgress(io.stderr, { tty: Boolean(process.stderr.isTTY), quiet: io.onlyShowErrors });
      const started = Date.now();
      try {
        if (ref.digest && ref.digest !== src.root.digest) {
          throw new CliError(`${source} is ${src.root.digest}, not ${ref.digest}; push it by tag or with its own digest`);
        }
        const r = await pushImage(rc, ref.repository, referenceTarget(ref), src, { progress });
        progress.stop();
        return {
          image: `${ref.registry}/${ref.repository}${ref.tag && !ref.digest ? `:${ref.tag}` : ''}`,
          digest: r.digest,
          mediaType: r.mediaType,
          sourceKind: src.kind,
          blobsPushed: r.blobsPushed,
          blobsSkipped: r.blobsSkipped,
          bytesPushed: r.bytesPushed,
          seconds: Math.round((Date.now() - started) / 100) / 10,
        };
      } catch (e) {
        progress.stop();
        if (e instanceof RegistryHttpError && e.code === 'CONNECTION_REFUSED') throw new CliError(`cannot connect to ${ref.registry}: connection refused. Is the registry running, and is the port right?`);
        if (e instanceof RegistryHttpError) throw new CliError(`push to ${ref.registry}/${ref.repository} failed: ${e.message}`, e.status === 404 ? 3 : 1);
        if (e instanceof ImageSourceError) throw new CliError(e.message);
        throw e;
      } finally {
        await src.close();
      }
    });
}
