// `berth cloud register`: prints the shell commands that register Berth with the real az CLI as a
// cloud and select it, so that `eval "$(berth cloud register)"` does both. The endpoints come from
// the server's own cloud metadata (GET /metadata/endpoints), so az and Berth agree on them.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { CliError } from '../errors.js';
import { dataPaths, defaultDataDir, readServerInfo } from '../../lib/data-dir.js';
import { simpleRequest } from '../http.js';
import type { CloudDescriptor } from '../../api/cloud-metadata.js';

/** Single-quotes a value for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'"'"'`)}'`;
}

/** az's cloud config (`az cloud register --cloud-config`) for a Berth cloud descriptor. */
export function azCloudConfig(c: CloudDescriptor): { endpoints: Record<string, string>; suffixes: Record<string, string> } {
  return {
    endpoints: {
      resourceManager: c.resourceManager,
      activeDirectory: c.authentication.loginEndpoint,
      activeDirectoryResourceId: c.authentication.audiences[0]!,
      management: c.authentication.audiences[0]!,
      activeDirectoryGraphResourceId: c.graphAudience,
      microsoftGraphResourceId: c.microsoftGraphResourceId,
      gallery: c.gallery,
      portal: c.portal,
    },
    suffixes: {
      acrLoginServerEndpoint: `.${c.suffixes.acrLoginServer}`,
      ...(c.suffixes.keyVaultDns ? { keyvaultDns: `.${c.suffixes.keyVaultDns}` } : {}),
    },
  };
}

/** The script `eval "$(berth cloud register)"` runs. */
export function registerScript(c: CloudDescriptor, name: string, ca: string, configDir: string | undefined): string {
  const cfg = shellQuote(JSON.stringify(azCloudConfig(c)));
  const n = shellQuote(name);
  return [
    `# Registers Berth (${c.resourceManager}) with az as the cloud ${name} and selects it${configDir ? `, in AZURE_CONFIG_DIR=${configDir}` : ''}.`,
    '# Then: az login --service-principal -u APPID -p SECRET --tenant TENANT',
    `export REQUESTS_CA_BUNDLE=${shellQuote(ca)}`,
    `export WEBSOCKET_CLIENT_CA_BUNDLE=${shellQuote(ca)}`,
    // az sends usage data and error "recommendations" to Microsoft's hosts unless told not to.
    'export AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ERROR_RECOMMENDATION=off AZURE_CORE_SURVEY_MESSAGE=false',
    `az cloud register -n ${n} --cloud-config ${cfg} --only-show-errors 2>/dev/null || az cloud update -n ${n} --cloud-config ${cfg} --only-show-errors`,
    `az cloud set -n ${n} --only-show-errors`,
    '',
  ].join('\n');
}

export function registerCloudCommands(program: Command): void {
  const cloud = program.command('cloud').description('Use Berth from the real az CLI as a cloud of its own.');
  cloud.command('register')
    .description('Print the shell commands that register Berth with az as a cloud and select it: eval "$(berth cloud register)".')
    .option('-n, --name <name>', 'Name of the cloud in az.', 'Berth')
    .option('--data-dir <dir>', 'Data directory of berth serve (default: $BERTH_DATA_DIR or ~/.local/share/berth).')
    .option('--host <name>', 'Host name az reaches Berth by (host.berth.internal from inside a container group). Default: localhost.')
    .action(async (o: { name: string; dataDir?: string; host?: string }) => {
      const dir = o.dataDir ?? defaultDataDir();
      const paths = dataPaths(dir);
      const fromEnv = process.env.BERTH_SERVER?.startsWith('https://') ? process.env.BERTH_SERVER.replace(/\/+$/, '') : undefined;
      const httpsUrl = fromEnv ?? readServerInfo(paths.serverInfo)?.httpsUrl;
      if (!httpsUrl || !existsSync(paths.tls.ca)) {
        throw new CliError(`No running Berth server with HTTPS found for ${dir}: az sends tokens over HTTPS only. ` +
          'Start `berth serve` (without --no-tls), and set BERTH_DATA_DIR (or --data-dir) to its data directory.');
      }
      let res;
      try {
        // The server describes itself as seen from the Host a request names.
        const host: Record<string, string> = o.host ? { host: `${o.host}:${new URL(httpsUrl).port}` } : {};
        res = await simpleRequest(`${httpsUrl}/metadata/endpoints?api-version=2022-09-01`, { method: 'GET', headers: { accept: 'application/json', ...host } });
      } catch (e) {
        throw new CliError(`Cannot reach Berth at ${httpsUrl}: ${(e as Error).message}. Is \`berth serve\` running?`);
      }
      if (!res.ok) throw new CliError(`Berth at ${httpsUrl} answered ${res.status} for its cloud metadata; is it a Berth server of this version?`);
      const [c] = JSON.parse(await res.text()) as CloudDescriptor[];
      if (!c) throw new CliError(`Berth at ${httpsUrl} returned no cloud metadata.`);
      process.stdout.write(registerScript(c, o.name, paths.tls.ca, process.env.AZURE_CONFIG_DIR));
    });
}
