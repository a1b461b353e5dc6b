// Starts the reference registry (Debian's docker-registry, CNCF distribution) on loopback with htpasswd
// auth, in a temp directory, for tests that compare Berth with it or push to a non-Berth registry.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../src/platform/listeners.js';
import { which } from './berth.js';

export interface ReferenceRegistry {
  host: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

export function haveReferenceRegistry(): string | undefined {
  if (!which('docker-registry')) return 'docker-registry is not installed (bash scripts/install.sh installs it)';
  if (!which('htpasswd')) return 'htpasswd (apache2-utils) is not installed';
  return undefined;
}

/** Token auth instead of htpasswd: the registry trusts JWTs from `realm` signed by the cert in `rootCertBundle`. */
export interface TokenAuth {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
}

export async function startReferenceRegistry(opts: { token?: TokenAuth } = {}): Promise<ReferenceRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-refreg-'));
  const port = await freeLoopbackPort();
  const username = 'refuser';
  const password = 'refpass-' + Math.random().toString(36).slice(2);
  await writeFile(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', username, password]));
  await writeFile(join(dir, 'config.yml'), [
    'version: 0.1',
    'log: { level: error }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }`,
    `http: { addr: 127.0.0.1:${port} }`,
    opts.token
      ? `auth: { token: { realm: "${opts.token.realm}", service: ${opts.token.service}, issuer: ${opts.token.issuer}, rootcertbundle: ${opts.token.rootCertBundle} } }`
      : `auth: { htpasswd: { realm: reference, path: ${join(dir, 'htpasswd')} } }`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.status === 401, () => false);
    if (ok) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    username,
    password,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
