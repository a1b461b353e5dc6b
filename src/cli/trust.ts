// The CLI trusts Berth's local CA (tls/ca.pem in the data directory) in addition to the system's roots,
// so `BERTH_SERVER=https://localhost:<port>` and HTTPS registry login servers work without setup.
import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { dataPaths, defaultDataDir } from '../lib/data-dir.js';

/** Installs an undici dispatcher that trusts Berth's CA too. Returns the CA path, or undefined when there is none. */
export async function trustBerthCa(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const ca = dataPaths(defaultDataDir(env)).tls.ca;
  const pem = berthCaPem(env);
  if (pem === undefined) return undefined;
  const { Agent, setGlobalDispatcher } = await import('undici');
  setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, pem] } }));
  return ca;
}

/** Berth's CA certificate (PEM) from the data directory, when there is one. */
export function berthCaPem(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const ca = dataPaths(defaultDataDir(env)).tls.ca;
  if (!existsSync(ca)) return undefined;
  try {
    return readFileSync(ca, 'utf8');
  } catch {
    return undefined;
  }
}
