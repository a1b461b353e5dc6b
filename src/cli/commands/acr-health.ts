// `berth acr check-health -n R [--ignore-errors] [--yes]`: az's registry health check, with the checks
// that mean something for a Berth registry: the login server's name resolves, it answers over TLS with
// Berth's CA, /v2/ issues a Bearer challenge, and the CLI's identity gets a refresh token
// (/oauth2/exchange) and an access token (/oauth2/token). Output and error titles are az's
// (azure-cli acr check_health.py and _errors.py): "<check> : OK" warnings, and
// "An error occurred: <TITLE>\n<message>" that stops the run unless --ignore-errors. Docker, Helm and
// Notary checks are left out: Berth needs none of them.
import type { Command } from 'commander';
import { lookup } from 'node:dns/promises';
import { leaf, type Io } from '../command.js';
import type { ArmClient } from '../arm-client.js';
import { CliError } from '../errors.js';
import { findRegistry } from './acr.js';
import { parseChallenge } from '../../client/challenge.js';
import { exchangeAccessToken } from '../../keychain/acr-exchange.js';

const FAQ_MESSAGE = '\nPlease refer to https://aka.ms/acr/health-check for more information.';

interface HealthError { title: string; message: string }

const ERRORS = {
  CONNECTIVITY_DNS_ERROR: "Failed to reach DNS for registry '{0}'. Please check if the spelling is correct, if the CLI environment is on correct cloud and your network connectivity.",
  CONNECTIVITY_FORBIDDEN_ERROR: "Looks like you don't have access to registry '{0}'. To see configured firewall rules, run 'berth acr show --query networkRuleSet --name {1}'.",
  CONNECTIVITY_CHALLENGE_ERROR: "Registry '{0}' did not issue a challenge.",
  CONNECTIVITY_AAD_LOGIN_ERROR: "Registry '{0}' does not support AAD login.",
  CONNECTIVITY_REFRESH_TOKEN_ERROR: "Access to registry '{0}' was denied. Response code: {1}. Please try running 'berth login' again to refresh permissions.",
  CONNECTIVITY_ACCESS_TOKEN_ERROR: "Access to registry '{0}' was denied. Response code: {1}. Please try running 'berth login' again to refresh permissions.",
  CONNECTIVITY_SSL_ERROR: "Unable to establish a secure connection to the registry '{0}'. Are you using a proxy server?",
  LOGIN_SERVER_ERROR: "An error occurred while retrieving the login server for registry '{0}'. Please check if the spelling is correct, if the CLI environment is on correct cloud and if you have the right permissions on it.",
} as const;

function healthError(title: keyof typeof ERRORS, ...args: Array<string | number>): HealthError {
  return { title, message: ERRORS[title].replace(/\{(\d)\}/g, (_, i: string) => String(args[Number(i)])) };
}

/** Python's str(datetime.utcnow()), which az puts before every error. */
function timestamp(d = new Date()): string {
  return `${d.toISOString().replace('T', ' ').replace('Z', '')}000`;
}

const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|EPROTO/i;

type Step = { ok: string } | { error: HealthError; detail?: string };

/** The checks of one login server, in az's order; stops at the first failure (az's _check_registry_health). */
async function* registryChecks(c: ArmClient, loginServer: string, registryName: string): AsyncGenerator<Step> {
  const host = loginServer.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  let ip: string;
  try {
    ip = (await lookup(host)).address;
  } catch {
    yield { error: healthError('CONNECTIVITY_DNS_ERROR', loginServer) };
    return;
  }
  yield { ok: `DNS lookup to ${loginServer} at IP ${ip}` };

  const { request } = await import('undici');
  const url = `https://${loginServer}/v2/`;
  let challenge: { statusCode: number; headers: Record<string, string | string[] | undefined> };
  try {
    const res = await request(url, { method: 'GET' });
    await res.body.dump();
    challenge = res;
  } catch (e) {
    const code = `${(e as { code?: string }).code ?? ''} ${(e as { cause?: { code?: string } }).cause?.code ?? ''} ${(e as Error).message}`;
    yield TLS_CODES.test(code)
      ? { error: healthError('CONNECTIVITY_SSL_ERROR', loginServer), detail: `TLS: ${(e as { code?: string }).code ?? (e as Error).message}. Berth's CA is trusted from the data directory (BERTH_DATA_DIR, tls/ca.pem): berth ca shows it.` }
      : { error: healthError('CONNECTIVITY_CHALLENGE_ERROR', loginServer), detail: `${url} is not reachable (${(e as { code?: string }).code ?? (e as Error).message}).` };
    return;
  }
  if (challenge.statusCode === 403) {
    yield { error: healthError('CONNECTIVITY_FORBIDDEN_ERROR', loginServer, registryName) };
    return;
  }
  const wa = challenge.headers['www-authenticate'];
  const header = Array.isArray(wa) ? wa[0] : wa;
  if (challenge.statusCode !== 401 || !header) {
    yield { error: healthError('CONNECTIVITY_CHALLENGE_ERROR', loginServer), detail: `GET ${url} answered ${challenge.statusCode}${header ? '' : ' without WWW-Authenticate'}.` };
    return;
  }
  const ch = parseChallenge(header);
  const params = ch?.params ?? {};
  if (ch?.scheme !== 'bearer' || !params.realm || !params.service) {
    yield { error: healthError('CONNECTIVITY_AAD_LOGIN_ERROR', loginServer) };
    return;
  }
  yield { ok: `Challenge endpoint ${url}` };

  const realm = new URL(params.realm);
  const post = async (path: string, form: Record<string, string>) => {
    const res = await request(`${realm.protocol}//${realm.host}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
    const body = (await res.body.json().catch(() => ({}))) as { access_token?: string };
    return { status: res.statusCode, body };
  };
  const aad = await c.accessToken();
  const ex = await exchangeAccessToken({ url: `${realm.protocol}//${realm.host}/oauth2/exchange`, service: params.service, tenant: c.tenantId, accessToken: aad });
  if (ex.status !== 200 || !ex.refreshToken) {
    yield { error: healthError('CONNECTIVITY_REFRESH_TOKEN_ERROR', loginServer, ex.status) };
    return;
  }
  yield { ok: `Fetch refresh token for registry '${loginServer}'` };
  const tok = await post('/oauth2/token', { grant_type: 'refresh_token', service: loginServer, scope: 'registry:catalog:*', refresh_token: ex.refreshToken });
  if (tok.status !== 200 || !tok.body.access_token) {
    yield { error: healthError('CONNECTIVITY_ACCESS_TOKEN_ERROR', loginServer, tok.status) };
    return;
  }
  yield { ok: `Fetch access token for registry '${loginServer}'` };
}

function report(io: Io, e: HealthError, detail: string | undefined, ignoreErrors: boolean): void {
  const text = `${timestamp()} An error occurred: ${e.title}\n${e.message}${detail ? `\n${detail}` : ''}`;
  if (ignoreErrors) {
    io.stderr(`ERROR: ${text}\n`);
    return;
  }
  throw new CliError(`${text}\nPlease refer to https://aka.ms/acr/errors#${e.title.toLowerCase()} for more information.`);
}

export function registerAcrHealthCommand(acr: Command, client: () => ArmClient): void {
  leaf<{ name?: string; ignoreErrors?: boolean; yes?: boolean }>(acr, 'check-health', 'Get health information on the environment and optionally a target registry.',
    (c) => c.option('-n, --name <name>', 'The name of the container registry.')
      .option('--ignore-errors', 'Provide all health checks, even if errors are found.')
      .option('-y, --yes', 'Do not prompt for confirmation (az asks before a docker pull; Berth pulls nothing here).'),
    async (o, io) => {
      io.warn(`Berth CLI version: ${acr.parent?.version() ?? 'unknown'} (docker, helm and notary checks are left out: Berth needs none of them)`);
      if (!o.name) {
        io.warn('Registry name must be provided to check connectivity.');
      } else {
        const c = client();
        let loginServer: string | undefined;
        try {
          loginServer = (await findRegistry(c, o.name)).loginServer;
        } catch (e) {
          if (!(e instanceof CliError) || e.exitCode !== 3) throw e;
          report(io, healthError('LOGIN_SERVER_ERROR', o.name), undefined, Boolean(o.ignoreErrors));
        }
        if (loginServer) {
          for await (const step of registryChecks(c, loginServer, o.name)) {
            if ('ok' in step) io.warn(`${step.ok} : OK`);
            else report(io, step.error, step.detail, Boolean(o.ignoreErrors));
          }
        }
      }
      io.warn(FAQ_MESSAGE);
      return undefined;
    });
}
