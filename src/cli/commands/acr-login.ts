// `berth acr login -n R [--expose-token]`: az's registry login. With --expose-token it prints the
// registry refresh token got with the CLI's identity (as az does, for `docker login` by hand). Without
// it az runs `docker login`; Berth does not need docker: it checks the credential against the registry
// itself (the /v2/ challenge and a token, as docker login does) and then writes it where docker, podman
// and skopeo read credentials (see loginAuthFiles), atomically and with mode 0600.
import type { Command } from 'commander';
import { leaf } from '../command.js';
import type { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import { exchangeForRefreshToken, findRegistry } from './acr.js';
import { basename } from 'node:path';
import { AuthFileError, loginAuthFiles, prepareRegistryAuth, writeRegistryAuth } from '../../keychain/auth-file-store.js';
import { storeWithCredentialHelper } from '../../keychain/cred-helper.js';
import { KeychainError } from '../../keychain/keychain.js';
import { helperServerUrl, serverKey } from '../../keychain/server-key.js';

export const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';

/** Checks that `username`/`password` get through the registry's /v2/ (Basic, or the Bearer token flow). */
export async function checkRegistryLogin(loginServer: string, username: string, password: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const { RegistryClient, RegistryHttpError, expectOk } = await import('../../client/registry-client.js');
  const rc = new RegistryClient(loginServer, { kind: 'basic', username, password });
  try {
    const res = await rc.send('GET', '/v2/', 'registry:catalog:*');
    await expectOk(res, loginServer);
    await res.body.dump();
    return { ok: true };
  } catch (e) {
    if (e instanceof RegistryHttpError) return { ok: false, reason: e.message };
    return { ok: false, reason: `${loginServer} is not reachable (${(e as { code?: string }).code ?? (e as Error).message})` };
  }
}

export function registerAcrLoginCommand(acr: Command, client: () => ArmClient): void {
  leaf<{ name: string; resourceGroup?: string; suffix?: string; username?: string; password?: string; exposeToken?: boolean }>(
    acr, 'login', 'Log in to a container registry: checks the credential and stores it for docker, podman and skopeo (or prints a token with --expose-token).',
    (c) => c.requiredOption('-n, --name <name>', 'The name of the container registry.')
      .option('-g, --resource-group <group>', 'Name of resource group (not needed: registry names are unique).')
      .option('-t, --suffix <suffix>', 'The tenant suffix in the registry login server (ignored by Berth).')
      .option('-u, --username <username>', 'The username used to log into the container registry (default: the CLI\'s identity).')
      .option('-p, --password <password>', 'The password used to log into the container registry.')
      .option('--expose-token', 'Expose the access token instead of storing it (no docker needed).'),
    async (o, io) => {
      if (o.exposeToken && (o.username || o.password)) throw new CliError('`--expose-token` cannot be combined with `--username` or `--password`.');
      if (Boolean(o.username) !== Boolean(o.password)) throw new CliError('Please specify both username and password in non-interactive mode.');
      const c = client();
      const r = await findRegistry(c, o.name, o.resourceGroup);
      if (o.exposeToken) {
        const accessToken = await exchangeForRefreshToken(c, r.loginServer);
        io.warn(`You can perform manual login using the provided access token below, for example: 'docker login loginServer -u ${EMPTY_GUID} -p accessToken'`);
        return { loginServer: r.loginServer, accessToken };
      }
      const username = o.username ?? EMPTY_GUID;
      const password = o.password ?? await exchangeForRefreshToken(c, r.loginServer);
      const check = await checkRegistryLogin(r.loginServer, username, password);
      if (!check.ok) {
        io.stderr(`${check.reason}\n`);
        throw new CliError('Login failed.');
      }
      // Every file is read and checked before any is written: a bad one leaves them all as they were.
      const updates = await Promise.all(loginAuthFiles().map((p) => prepareRegistryAuth(p, r.loginServer, username, password)))
        .catch((e: unknown) => { throw e instanceof AuthFileError ? new CliError(e.message) : e; });
      // Credential helpers first: one that fails leaves every file as it was.
      for (const u of updates) {
        if (!u.helper) continue;
        try {
          await storeWithCredentialHelper(u.helper, helperServerUrl(serverKey(r.loginServer)), username, password,
            { configuredIn: `${basename(u.path)}`, source: `credential helper docker-credential-${u.helper}` });
        } catch (e) {
          if (e instanceof KeychainError) throw new CliError(`${e.message}. Nothing was written.`);
          throw e;
        }
      }
      for (const u of updates) await writeRegistryAuth(u);
      const inFiles = updates.filter((u) => !u.helper).map((u) => u.path);
      const inHelpers = [...new Set(updates.filter((u) => u.helper).map((u) => `docker-credential-${u.helper}`))];
      io.warn(`The credential is stored ${[...(inFiles.length ? [`unencrypted (mode 0600) in ${inFiles.join(' and ')}`] : []), ...(inHelpers.length ? [`by ${inHelpers.join(' and ')}`] : [])].join(', and ')}.` +
        `${username === EMPTY_GUID ? ' It is a registry refresh token that expires in 3 hours: run berth acr login again then.' : ''}`);
      io.stdout('Login Succeeded\n');
      return undefined;
    });
}
