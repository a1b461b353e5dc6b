// Starts a Berth server in a fresh temp data directory for a test, and runs the real CLI against it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startTestPostgres, type TestPostgres } from './postgres.js';
import { startBerth, type BerthOptions, type RunningBerth } from '../../src/platform/berth.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');
export const BERTH_BIN = join(REPO_ROOT, 'bin', 'berth.js');

export interface TestBerth extends RunningBerth {
  logs: string[];
  env: NodeJS.ProcessEnv;
  cli(args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** fetch that trusts this server's CA (for https:// URLs of Berth's listeners). */
  fetch: typeof fetch;
  /** Stops and starts again on the same data; `samePort` keeps the URL (the identity issuer) too. */
  restart(samePort?: boolean): Promise<TestBerth>;
  cleanup(): Promise<void>;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end with `input` on stdin; killed (SIGKILL) after `timeoutMs` when given. */
export function runProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = opts.timeoutMs ? setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs) : undefined;
    p.on('error', rej);
    p.on('close', (code) => { clearTimeout(timer); res({ code: code ?? -1, stdout, stderr }); });
    p.stdin.end(opts.input ?? '');
  });
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  return runProcess(process.execPath, [BERTH_BIN, ...args], { env, ...(input !== undefined ? { input } : {}) });
}

// BERTH_TEST_DATABASE=postgres runs a test's servers with their metadata in PostgreSQL (issue 18: one
// suite, every backend): one throwaway server per test process, a database of its own per data
// directory (a restart() finds its data again), the server stopped when the process exits.
let testPostgres: Promise<TestPostgres> | undefined;
const databases = new Map<string, string>();

async function testDatabase(dir: string): Promise<{ database?: string }> {
  if (process.env.BERTH_TEST_DATABASE !== 'postgres') return {};
  testPostgres ??= startTestPostgres().then((pg) => {
    process.once('exit', () => pg.stopNow());
    return pg;
  });
  const pg = await testPostgres;
  let url = databases.get(dir);
  if (!url) {
    url = pg.database(`berth${databases.size + 1}`);
    databases.set(dir, url);
  }
  return { database: url };
}

/** `extra`: more server options (a test runtime and puller, say), kept across restart(). */
export async function startTestBerth(dataDir?: string, logs: string[] = [], port = 0, extra: Partial<BerthOptions> = {}): Promise<TestBerth> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'berth-test-')));
  // BERTH_TEST_BLOB_STORE=s3://... runs a test's servers with their blobs there (issue 18: one suite, every backend).
  const blobStore = process.env.BERTH_TEST_BLOB_STORE ? { blobStore: process.env.BERTH_TEST_BLOB_STORE } : {};
  const database = await testDatabase(dir);
  const b = await startBerth({ ...blobStore, ...database, ...extra, dataDir: dir, port, logSink: (l) => logs.push(l) });
  // The CLI's offline commands (berth vault rotate-kek) find the same database through BERTH_DATABASE_URL.
  const env = { ...process.env, BERTH_SERVER: b.url, BERTH_DATA_DIR: dir, ...(database.database ? { BERTH_DATABASE_URL: database.database } : {}) };
  // undici is imported only when a test uses this fetch: importing it installs its own dispatcher behind
  // Node's global fetch for the whole process, which changes how other tests' fetches reuse connections.
  let dispatcher: unknown;
  const trustingFetch = (async (url: string | URL, init?: RequestInit) => {
    const undici = await import('undici');
    dispatcher ??= b.tls ? new undici.Agent({ connect: { ca: b.tls.ca } }) : undefined;
    return undici.fetch(url, { ...(init as object), ...(dispatcher ? { dispatcher } : {}) } as Parameters<typeof undici.fetch>[1]);
  }) as unknown as typeof fetch;
  const t: TestBerth = Object.assign(b, {
    logs,
    env,
    fetch: trustingFetch,
    cli: (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => runCli(args, { ...env, ...opts.env }, opts.input),
    restart: async (samePort = false) => {
      await b.stop();
      return startTestBerth(dir, logs, samePort ? b.port : 0, extra);
    },
    cleanup: async () => {
      await b.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  });
  return t;
}

/** Runs the CLI and parses its JSON output, failing with the CLI's stderr when it exits non-zero. */
export async function cliJson<T = any>(b: TestBerth, args: string[]): Promise<T> {
  const r = await b.cli(args);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export function which(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((p) => p && existsSync(join(p, cmd)));
}

/**
 * Through the CLI of a running server (`env` names it): creates resource group `rg` and a Basic
 * registry with the admin user enabled; returns its login server, credentials and Basic header.
 */
export async function cliAdminRegistry(env: NodeJS.ProcessEnv, name: string): Promise<{ loginServer: string; creds: string; auth: string }> {
  const cli = async (...args: string[]) => {
    const r = await runCli(args, env);
    if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await cli('group', 'create', '-n', 'rg', '-l', 'westus');
  await cli('acr', 'create', '-n', name, '-g', 'rg', '--sku', 'Basic', '--admin-enabled', 'true');
  const loginServer = await cli('acr', 'show', '-n', name, '--query', 'loginServer', '-o', 'tsv');
  const user = await cli('acr', 'credential', 'show', '-n', name, '--query', 'username', '-o', 'tsv');
  const pass = await cli('acr', 'credential', 'show', '-n', name, '--query', 'passwords[0].value', '-o', 'tsv');
  const creds = `${user}:${pass}`;
  return { loginServer, creds, auth: 'Basic ' + Buffer.from(creds).toString('base64') };
}

/** Creates a resource group and a registry with the admin user enabled; returns its login and password. */
export async function adminRegistry(b: RunningBerth, name = 'testreg01'): Promise<{ loginServer: string; username: string; password: string; base: string; auth: string }> {
  await b.groups.createOrUpdate('rg', 'westus');
  const { registry } = await b.registries.createOrUpdate('rg', name, { sku: 'Basic', adminUserEnabled: true });
  const creds = await b.registries.credentials('rg', name);
  const loginServer = b.registries.loginServer(registry);
  const password = creds.passwords[0]!.value;
  return { loginServer, username: creds.username, password, base: `http://${loginServer}`, auth: 'Basic ' + Buffer.from(`${creds.username}:${password}`).toString('base64') };
}
