// The CLI trusts Berth's local CA (tls/ca.pem in the data directory) in addition to the system's roots,
// so `BERTH_SERVER=https://localhost:<port>` and HTTPS registry login servers work without setup.
import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { dataPaths, defaultDataDir } from '../platform/data-dir.js';

/** Installs an undici dispatcher that trusts Berth's CA too. Returns the CA path, or undefined when there is none. */
export async function trustBerthCa(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const ca = dataPaths(defaultDataDir(env)).tls.ca;
  if (!existsSync(ca)) return undefined;
  let pem: string;
  try {
    pem = readFileSync(ca, 'utf8');
  } catch {
    return undefined;
  }
  const { Agent, setGlobalDispatcher } = await import('undici');
  setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, pem] } }));
  return ca;
}
