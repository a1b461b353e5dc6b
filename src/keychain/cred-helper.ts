// Runs a Docker credential helper the way the docker CLI does, asynchronously and with a time limit:
// `docker-credential-<name> get` (the server URL on stdin, JSON `{"ServerURL","Username","Secret"}` on
// stdout), and `store` (that JSON on stdin) for berth acr login. "credentials not found in native
// keychain" means not found; anything else that goes
// wrong is a KeychainError naming the helper and the server, never the secret.
import { spawn } from 'node:child_process';
import { KeychainError, formatMs } from './keychain.js';

export interface HelperCredential {
  username: string;
  secret: string;
}

export interface RunHelperOptions {
  /** Environment of the helper (its PATH finds it); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** How long the helper may take; default 30 s (helpers may prompt a keyring unlock). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Where the helper was configured, for messages: `credHelpers in config.json` (a file name, no server path). */
  configuredIn: string;
  /** The KeychainError's source. */
  source: string;
}

const NOT_FOUND = /credentials not found in native keychain/i;
const MAX_OUTPUT = 64 * 1024;
export const DEFAULT_HELPER_TIMEOUT_MS = 30_000;

/** A helper name must be a plain name: it becomes part of a program name looked up on PATH. */
export function validHelperName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(name);
}

interface HelperRun { code: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException; timedOut: boolean }

/** Runs `docker-credential-<name> <action>` with `input` on stdin, within the time limit. */
function spawnHelper(program: string, action: 'get' | 'store', input: string, opts: RunHelperOptions): Promise<HelperRun> {
  return new Promise<HelperRun>((resolve) => {
    const child = spawn(program, [action], { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], ...(opts.signal ? { signal: opts.signal } : {}) });
    let out = '';
    let err = '';
    let timedOut = false;
    let settled = false;
    const done = (r: { code: number | null; error?: NodeJS.ErrnoException }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, stdout: out, stderr: err, timedOut });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => { if (out.length < MAX_OUTPUT) out += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { if (err.length < MAX_OUTPUT) err += d.toString('utf8'); });
    child.stdin.on('error', () => undefined); // a helper that exits without reading stdin
    child.on('error', (e: NodeJS.ErrnoException) => done({ code: null, error: e }));
    child.on('close', (c) => done({ code: c }));
    child.stdin.end(input);
  });
}

/** The failures every helper run shares (not found, cancelled, not started, too slow), as a KeychainError; undefined when it ran. */
function runFailure(r: HelperRun, opts: RunHelperOptions, fail: (what: string) => KeychainError): KeychainError | undefined {
  if (r.error?.code === 'ENOENT') return fail('not found on PATH; install it, or remove it from the configuration');
  if (r.error?.name === 'AbortError') return fail('cancelled');
  if (r.error) return fail(`could not be started (${r.error.code ?? r.error.message})`);
  if (r.timedOut) return fail(`no answer within ${formatMs(opts.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS)}; the helper was stopped`);
  return undefined;
}

function helperFailure(name: string, serverUrl: string, opts: RunHelperOptions): { program: string; fail: (what: string) => KeychainError } {
  const program = `docker-credential-${name}`;
  const fail = (what: string) => new KeychainError(opts.source, `credential helper ${program} (${opts.configuredIn}) for server ${serverUrl}: ${what}`, 'helper');
  if (!validHelperName(name)) throw fail(`invalid helper name '${name.slice(0, 100)}': a helper name is letters, digits, '.', '_' or '-'`);
  return { program, fail };
}

/** Stores a credential with `docker-credential-<name> store` (JSON {"ServerURL","Username","Secret"} on stdin), as docker login does. */
export async function storeWithCredentialHelper(name: string, serverUrl: string, username: string, secret: string, opts: RunHelperOptions): Promise<void> {
  const { program, fail } = helperFailure(name, serverUrl, opts);
  const r = await spawnHelper(program, 'store', JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret }), opts);
  const failed = runFailure(r, opts, fail);
  if (failed) throw failed;
  // Its output may echo what it was given: withheld, as for get.
  if (r.code !== 0) throw fail(`store failed with exit code ${r.code}; its output is withheld (it may hold a secret)`);
}

export async function runCredentialHelper(name: string, serverUrl: string, opts: RunHelperOptions): Promise<HelperCredential | undefined> {
  const { program, fail } = helperFailure(name, serverUrl, opts);
  const r = await spawnHelper(program, 'get', serverUrl, opts);
  const failed = runFailure(r, opts, fail);
  if (failed) throw failed;
  const { code, stdout, stderr } = r;
  if (code !== 0) {
    if (NOT_FOUND.test(stdout) || NOT_FOUND.test(stderr)) return undefined;
    // What a failing helper prints can hold a token (some print the request or the response they got):
    // none of it goes into an error that reaches an API client, a log or an event.
    throw fail(`failed with exit code ${code}; its output is withheld (it may hold a secret): to see it, run \`echo ${serverUrl} | ${program} get\` as the user berth serve runs as`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw fail(`printed something that is not JSON (${stdout.length} bytes); a helper must print {"ServerURL","Username","Secret"}`);
  }
  const p = parsed as { Username?: unknown; Secret?: unknown };
  if (typeof parsed !== 'object' || parsed === null || typeof p.Username !== 'string' || typeof p.Secret !== 'string') {
    throw fail('printed JSON without the string fields Username and Secret');
  }
  if (p.Secret === '') return undefined;
  return { username: p.Username, secret: p.Secret };
}

