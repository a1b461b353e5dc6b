// The data directory's layout, written down in one place. Version 1:
//   berth.db                  SQLite metadata (registries, repositories, principals, ...)
//   blobs/<alg>/<2>/<hex>     content-addressed blobs (shared by all registries)
//   uploads/<id>              blob upload sessions in progress
//   content/blobs/<alg>/<hex> the pull client's verified content store (content/tmp: downloads in progress)
//   keys/kek                  key-encryption key for sealed values (0600)
//   keys/signing.jwk          ES256 key that signs tokens (0600)
//   owner-credential.json     the local CLI's owner credential (0600)
//   server.json               where the running server listens (written at start)
//   tls/ca.pem                Berth's local CA certificate: clients trust this one (0644)
//   tls/ca-key.pem            the CA's private key (0600)
//   tls/server.pem            server certificate issued by the CA (0644; re-issued when needed)
//   tls/server-key.pem        its private key (0600)
//   runtime/                  the runc runtime's state (`berth serve`): runc root, layer cache
//                             (runtime/layers/<hex>), per-group bundles, namespaces, logs
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BERTH_DATA_DIR) return resolve(env.BERTH_DATA_DIR);
  const base = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'berth');
}

/** What a running server wrote to server.json (its URLs and pid), or undefined when there is none to read. */
export interface ServerInfo { url?: string; httpsUrl?: string; ca?: string; pid?: number }

export function readServerInfo(path: string): ServerInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ServerInfo;
  } catch {
    return undefined;
  }
}

/** The pid of a live `berth serve` recorded in a data directory's server file, if one runs. */
export function runningServerPid(serverInfo: string): number | undefined {
  const pid = readServerInfo(serverInfo)?.pid;
  if (!pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

export function dataPaths(dir: string) {
  return {
    root: dir,
    db: join(dir, 'berth.db'),
    kek: join(dir, 'keys', 'kek'),
    signingKey: join(dir, 'keys', 'signing.jwk'),
    ownerCredential: join(dir, 'owner-credential.json'),
    serverInfo: join(dir, 'server.json'),
    runtime: join(dir, 'runtime'),
    content: join(dir, 'content'),
    tls: {
      ca: join(dir, 'tls', 'ca.pem'),
      caKey: join(dir, 'tls', 'ca-key.pem'),
      cert: join(dir, 'tls', 'server.pem'),
      key: join(dir, 'tls', 'server-key.pem'),
    },
  };
}
