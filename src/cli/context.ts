// How the CLI finds the server and proves who it is: BERTH_SERVER (or the data directory's server.json,
// or http://127.0.0.1:8080) and the owner credential in BERTH_DATA_DIR (or the default data directory).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from './errors.js';
import { dataPaths, defaultDataDir, readServerInfo } from '../lib/data-dir.js';

export interface ClientCredential {
  tenantId: string;
  subscriptionId: string;
  clientId: string;
  clientSecret: string;
}

export interface CliContext {
  server: string;
  credential: ClientCredential;
  /** Where the CLI may keep its management token between runs (0600, next to the credential's file). */
  tokenCache?: string;
}

/** Where `berth login` keeps the signed-in principal (like ~/.azure): BERTH_CONFIG_DIR or ~/.berth. */
export function profilePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.BERTH_CONFIG_DIR ?? join(homedir(), '.berth'), 'profile.json');
}

/** Where the signed-in principal's management token is cached between runs (beside profile.json). */
export function profileTokenCachePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(dirname(profilePath(env)), 'token-cache.json');
}

export interface Profile extends ClientCredential {
  server: string;
  type: 'servicePrincipal';
}

export function readProfile(env: NodeJS.ProcessEnv = process.env): Profile | undefined {
  const p = profilePath(env);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Profile;
  } catch (e) {
    throw new CliError(`Cannot read ${p}: ${(e as Error).message}. Run berth logout, then berth login again.`);
  }
}

export function resolveContext(env: NodeJS.ProcessEnv = process.env): CliContext {
  // A principal signed in with `berth login` wins over the local owner credential.
  const profile = readProfile(env);
  if (profile) {
    const { server, type: _t, ...credential } = profile;
    return { server: env.BERTH_SERVER?.replace(/\/+$/, '') ?? server, credential, tokenCache: profileTokenCachePath(env) };
  }
  const dir = defaultDataDir(env);
  const paths = dataPaths(dir);
  let server = env.BERTH_SERVER?.replace(/\/+$/, '');
  server ??= readServerInfo(paths.serverInfo)?.url ?? 'http://127.0.0.1:8080';
  if (!existsSync(paths.ownerCredential)) {
    throw new CliError(
      `No credential found for ${server}. Set BERTH_DATA_DIR to the data directory of \`berth serve\` ` +
      `(its --data-dir; it holds owner-credential.json)${env.BERTH_DATA_DIR ? ` - ${dir} has none` : ''}, ` +
      'and BERTH_SERVER to its URL if it does not listen on http://127.0.0.1:8080.');
  }
  let credential: ClientCredential;
  try {
    credential = JSON.parse(readFileSync(paths.ownerCredential, 'utf8')) as ClientCredential;
  } catch (e) {
    throw new CliError(`Cannot read ${paths.ownerCredential}: ${(e as Error).message}`);
  }
  return { server, credential, tokenCache: join(dir, 'cli-token-cache.json') };
}
