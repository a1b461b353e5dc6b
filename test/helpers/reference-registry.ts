// Starts the reference registry (Debian's docker-registry, CNCF distribution) on loopback in a temp
// directory, for tests that compare Berth with it or pull from a non-Berth registry: with htpasswd
// Basic auth (startReferenceRegistry), or with token auth (startTokenAuthRegistry) backed by a small
// loopback token server (token-server.ts) whose signing certificate is the registry's rootcertbundle.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../src/net/listeners.js';
import { which } from './berth.js';
import { startTokenServer, type TokenServer, type TokenUser } from './token-server.js';

export interface ReferenceRegistry {
  host: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

export interface TokenAuthRegistry extends ReferenceRegistry {
  /** The token server the registry's challenges point at (its realm, users and request counts). */
  tokens: TokenServer;
}

export function haveReferenceRegistry(): string | undefined {
  if (!which('docker-registry')) return 'docker-registry is not installed (bash scripts/install.sh installs it)';
  if (!which('htpasswd')) return 'htpasswd (apache2-utils) is not installed';
  return undefined;
}

/** `tls`: serve HTTPS only, with this key and certificate (PEM files) and `ca` to check it is up. */
export interface RegistryTls { keyFile: string; certFile: string; ca: string }

export async function startReferenceRegistry(opts: { tls?: RegistryTls } = {}): Promise<ReferenceRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-refreg-'));
  const username = 'refuser';
  const password = 'refpass-' + Math.random().toString(36).slice(2);
  await writeFile(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', username, password]));
  const reg = await serveRegistry(dir, `auth: { htpasswd: { realm: reference, path: ${join(dir, 'htpasswd')} } }`, opts.tls);
  return { host: reg.host, username, password, stop: reg.stop };
}

/**
 * The reference registry with `auth: token`. `users` are the token server's accounts (default: one
 * user with pull and push everywhere, `refuser`, whose password is returned).
 */
export async function startTokenAuthRegistry(opts: { users?: TokenUser[]; anonymous?: (repository: string) => string[] } = {}): Promise<TokenAuthRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-refreg-token-'));
  const username = 'refuser';
  const password = 'refpass-' + Math.random().toString(36).slice(2);
  const service = 'berth-reference-registry';
  const issuer = 'berth-test-token-server';
  const tokens = await startTokenServer({ service, issuer, users: opts.users ?? [{ username, password, actions: () => ['pull', 'push', 'delete'] }],
    ...(opts.anonymous ? { anonymous: opts.anonymous } : {}) });
  await writeFile(join(dir, 'root.crt'), tokens.certificatePem);
  try {
    const reg = await serveRegistry(dir, `auth: { token: { realm: "${tokens.realm}", service: ${service}, issuer: ${issuer}, rootcertbundle: ${join(dir, 'root.crt')} } }`);
    return { host: reg.host, username, password, tokens, stop: async () => { await reg.stop(); await tokens.stop(); } };
  } catch (e) {
    await tokens.stop();
    throw e;
  }
}

/** Whether the registry answers /v2/ with its 401 (over https, trusting `ca`, when `tls` is given). */
function answers(host: string, tls?: RegistryTls): Promise<boolean> {
  if (!tls) return fetch(`http://${host}/v2/`).then((r) => r.status === 401, () => false);
  return readFile(tls.ca, 'utf8').then((ca) => new Promise<boolean>((res) => {
    const req = httpsGet(`https://${host}/v2/`, { ca }, (r) => { r.resume(); res(r.statusCode === 401); });
    req.on('error', () => res(false));
  }));
}

async function serveRegistry(dir: string, authLine: string, tls?: RegistryTls): Promise<{ host: string; stop(): Promise<void> }> {
  const port = await freeLoopbackPort();
  await writeFile(join(dir, 'config.yml'), [
    'version: 0.1',
    'log: { level: error }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }`,
    `http: { addr: 127.0.0.1:${port}${tls ? `, tls: { certificate: ${tls.certFile}, key: ${tls.keyFile} }` : ''} }`,
    authLine,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await answers(host, tls);
    if (ok) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
