// The two servers under test, each started as its own process in a fresh data directory so its memory
// can be read from /proc/<pid>: Berth (`berth serve`, then a registry with the admin user created
// through the real CLI) and the reference `docker-registry` (distribution) with htpasswd auth.
import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Cleanup, Tail, freePort, run, sleep } from './proc.js';

/** dist/bench/*.js → the repository root. */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
/** BENCH_BERTH_BIN=/other/checkout/bin/berth.js benchmarks another build (e.g. main, for before/after figures). */
export const BERTH_BIN = process.env.BENCH_BERTH_BIN || join(REPO_ROOT, 'bin', 'berth.js');

export interface RunningServer {
  pid: number;
  /** host:port to put after docker:// */
  registry: string;
  username: string;
  password: string;
  /** Stops the process (SIGTERM, then SIGKILL) and removes its data directory. */
  stop(): Promise<void>;
  /** What the process has written lately, for error messages. */
  output(): string;
  /** Berth only: the environment for its CLI (BERTH_SERVER, BERTH_DATA_DIR). */
  cliEnv?: NodeJS.ProcessEnv;
}

export interface ServerKind {
  key: 'berth' | 'reference';
  label: string;
  start(dataDir: string, cleanup: Cleanup): Promise<RunningServer>;
}

function spawnServer(cmd: string, args: string[], env: NodeJS.ProcessEnv, cleanup: Cleanup, label: string): { p: ChildProcess; tail: Tail; stop: () => Promise<void> } {
  const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = cleanup.child(p, `stop ${label}`);
  const tail = new Tail();
  p.stdout!.setEncoding('utf8').on('data', (d: string) => tail.push(d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => tail.push(d));
  return { p, tail, stop };
}

/** Resolves when `pattern` appears in the child's stdout; rejects if it exits or times out first. */
function waitForLine(p: ChildProcess, tail: Tail, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
  return new Promise((resolveLine, reject) => {
    let seen = '';
    const onData = (d: Buffer | string) => {
      seen += d.toString();
      const m = pattern.exec(seen);
      if (m) done(undefined, m);
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${what} exited (${signal ?? `code ${code}`}) before it was ready:\n${tail}`));
    const timer = setTimeout(() => done(new Error(`${what} was not ready after ${timeoutMs / 1000} s:\n${tail}`)), timeoutMs);
    function done(err: Error | undefined, m?: RegExpExecArray) {
      clearTimeout(timer);
      p.stdout!.off('data', onData);
      p.off('exit', onExit);
      if (err) reject(err);
      else resolveLine(m!);
    }
    p.stdout!.on('data', onData);
    p.once('exit', onExit);
  });
}

/** Polls http://<registry>/v2/ until it answers 401 (auth required) — the registry is serving. */
async function waitForRegistry(registry: string, p: ChildProcess, tail: Tail, what: string, tls = false, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${what} exited before serving /v2/:\n${tail}`);
    try {
      const status = tls ? await httpsStatus(registry) : await fetch(`http://${registry}/v2/`, { signal: AbortSignal.timeout(2_000) }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      });
      if (status === 401) return;
      last = `HTTP ${status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${what} did not answer http://${registry}/v2/ with 401 within ${timeoutMs / 1000} s (last: ${last}):\n${tail}`);
}

/** GET https://<registry>/v2/ without checking the certificate (the bench's own self-signed one). */
function httpsStatus(registry: string): Promise<number> {
  const [host, port] = registry.split(':');
  return new Promise((resolveStatus, reject) => {
    const req = httpsGet({ host: host === 'localhost' ? '127.0.0.1' : host, port: Number(port), path: '/v2/', rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolveStatus(res.statusCode ?? 0);
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error('timed out')));
  });
}

export const berth: ServerKind = {
  key: 'berth',
  label: 'Berth',
  async start(dataDir, cleanup) {
    const removeDir = cleanup.dir(dataDir);
    const { p, tail, stop } = spawnServer(process.execPath,
      [BERTH_BIN, 'serve', '--data-dir', dataDir, '--port', '0', '--log-level', 'warn', '--gc-interval', '0'],
      process.env, cleanup, 'berth serve');
    const [, url] = await waitForLine(p, tail, /Berth is ready at (http:\/\/\S+)/, 30_000, 'berth serve');
    const env = { ...process.env, BERTH_SERVER: url, BERTH_DATA_DIR: dataDir };
    const cli = async (...args: string[]) => JSON.parse((await run(process.execPath, [BERTH_BIN, ...args, '-o', 'json'], { env })).stdout) as unknown;
    await cli('group', 'create', '-n', 'bench', '-l', 'westus');
    const reg = await cli('acr', 'create', '-n', 'benchreg01', '-g', 'bench', '--sku', 'Basic', '--admin-enabled', 'true') as { loginServer: string };
    const cred = await cli('acr', 'credential', 'show', '-n', 'benchreg01', '-g', 'bench') as { username: string; passwords: Array<{ value: string }> };
    const password = cred.passwords[0]?.value;
    if (!password) throw new Error('berth acr credential show returned no password');
    await waitForRegistry(reg.loginServer, p, tail, 'Berth registry');
    return {
      pid: p.pid!,
      registry: reg.loginServer,
      username: cred.username,
      password,
      output: () => tail.toString(),
      cliEnv: env,
      async stop() {
        await stop();
        await removeDir();
      },
    };
  },
};

/**
 * docker-registry; with `tls`, over HTTPS with a throw-away self-signed ECDSA P-256 certificate (as
 * Berth's), so that skopeo (which takes HTTPS wherever it is offered) does the same work with both.
 */
function referenceKind(tls: boolean): ServerKind {
  return {
    key: 'reference',
    label: tls ? 'docker-registry (TLS)' : 'docker-registry',
    async start(dataDir, cleanup) {
      const removeDir = cleanup.dir(dataDir);
      const storage = join(dataDir, 'storage');
      await mkdir(storage, { recursive: true });
      const username = 'bench';
      const password = 'benchpw';
      const { stdout: htpasswd } = await run('htpasswd', ['-Bbn', username, password]);
      const htpasswdFile = join(dataDir, 'htpasswd');
      await writeFile(htpasswdFile, htpasswd.trim() + '\n');
      const port = await freePort();
      // Clients address it as `localhost:<port>`, as they address Berth's registries, so both pay the same
      // name resolution (::1 first, refused, then 127.0.0.1); it listens on 127.0.0.1 like Berth.
      const listen = `127.0.0.1:${port}`;
      const registry = `localhost:${port}`;
      const config = join(dataDir, 'config.yml');
      // JSON is YAML: no quoting surprises in paths.
      await writeFile(config, JSON.stringify({
        version: 0.1,
        log: { level: 'warn', accesslog: { disabled: true } },
        storage: {
          filesystem: { rootdirectory: storage },
          delete: { enabled: true },
          cache: { blobdescriptor: 'inmemory' },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: { addr: listen, secret: 'berth-bench-not-a-secret', ...(tls ? { tls: await selfSigned(dataDir) } : {}) },
        auth: { htpasswd: { realm: 'berth-bench', path: htpasswdFile } },
      }, null, 2) + '\n');
      const { p, tail, stop } = spawnServer('docker-registry', ['serve', config], process.env, cleanup, 'docker-registry');
      await waitForRegistry(registry, p, tail, 'docker-registry', tls);
      return {
        pid: p.pid!,
        registry,
        username,
        password,
        output: () => tail.toString(),
        async stop() {
          await stop();
          await removeDir();
        },
      };
    },
  };
}

export const reference = referenceKind(false);
export const referenceTls = referenceKind(true);

async function selfSigned(dir: string): Promise<{ certificate: string; key: string }> {
  const certificate = join(dir, 'tls-cert.pem');
  const key = join(dir, 'tls-key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', certificate,
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  return { certificate, key };
}


export async function referenceVersion(): Promise<string> {
  try {
    const { stdout } = await run('docker-registry', ['--version']);
    return stdout.trim().split(/\s+/).pop() ?? '';
  } catch {
    return '';
  }
}
