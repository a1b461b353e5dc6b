// `berth ca`: where Berth's local CA is, and how to make each client trust it. `berth ca --path` prints
// only the path (for scripts: `export NODE_EXTRA_CA_CERTS=$(berth ca --path)`).
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { CliError } from '../errors.js';
import { dataPaths, defaultDataDir, readServerInfo } from '../../lib/data-dir.js';

export function registerCaCommand(program: Command): void {
  program.command('ca')
    .description('Show the path of Berth\'s local CA certificate and how to trust it (Node, curl, docker, podman, skopeo).')
    .option('--data-dir <dir>', 'Data directory of berth serve (default: $BERTH_DATA_DIR or ~/.local/share/berth).')
    .option('--path', 'Print only the path of the CA certificate.')
    .action((o: { dataDir?: string; path?: boolean }) => {
      const dir = o.dataDir ?? defaultDataDir();
      const paths = dataPaths(dir);
      const ca = paths.tls.ca;
      if (!existsSync(ca)) {
        throw new CliError(`There is no CA in ${dir} yet: \`berth serve\` creates it on its first start (unless it runs with --no-tls). ` +
          'Set BERTH_DATA_DIR (or --data-dir) to the data directory of the server.');
      }
      if (o.path) {
        process.stdout.write(`${ca}\n`);
        return;
      }
      process.stdout.write(caHelp(ca, readServerInfo(paths.serverInfo)?.httpsUrl ?? 'https://localhost:<port>'));
    });
}

export function caHelp(ca: string, httpsUrl: string): string {
  const reg = 'localhost:<registry-port>';
  return `Berth's CA certificate: ${ca}
Every Berth port (management API, identity endpoint, each registry's login server) speaks HTTPS with a
certificate from this CA (for localhost, 127.0.0.1, ::1 and --domain) and plain HTTP on the same port.
The berth CLI trusts it by itself. Other clients:

  Node (Azure SDK)   export NODE_EXTRA_CA_CERTS=${ca}      (read when node starts)
  curl               curl --cacert ${ca} ${httpsUrl}/...
  skopeo             mkdir -p DIR && cp ${ca} DIR/ca.crt
                     skopeo copy --dest-cert-dir DIR ... docker://${reg}/repo:tag   (--src-cert-dir to pull)
                     or once for all: /etc/containers/certs.d/${reg}/ca.crt
  podman             podman push|pull --cert-dir DIR ...   (DIR as for skopeo)
                     or once for all: /etc/containers/certs.d/${reg}/ca.crt
  docker             /etc/docker/certs.d/${reg}/ca.crt   (one directory per registry login server)
  system store       cp ${ca} /usr/local/share/ca-certificates/berth.crt && update-ca-certificates
`;
}
