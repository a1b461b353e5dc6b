// Credentials from a Docker `config.json` (or podman's `auth.json`, the same format): `auths` entries
// with a base64 `auth` (user:password), `username`/`password`, `identitytoken` or `registrytoken`;
// `credHelpers` (a helper per server) and `credsStore` (the helper for every other server), each run as
// `docker-credential-<name> get`. The file is read on every resolve, as docker does, so that a
// `docker login` in between is seen. Server keys are matched with serverKey() (`https://` and a path
// ignored, `https://index.docker.io/v1/` is Docker Hub); podman's namespaced keys (`quay.io/org`, no
// scheme) apply to the repositories below them, the most specific first.
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { KeychainError, type Keychain, type KeychainTarget, type RegistryCredential } from './keychain.js';
import { helperServerUrl, serverKey, tryServerKey } from './server-key.js';
import { runCredentialHelper } from './cred-helper.js';

export interface DockerConfigOptions {
  /** The file to read; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  path?: string;
  /** A missing file means "no credentials" (default: only when `path` is not given); otherwise it is an error. */
  optional?: boolean;
  /** The environment: default locations (`DOCKER_CONFIG`, `HOME`) and the credential helpers' own (their PATH); default process.env. */
  env?: NodeJS.ProcessEnv;
  helperTimeoutMs?: number;
}

interface AuthEntry {
  key: string;
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface ParsedDockerConfig {
  auths: Map<string, AuthEntry>;
  credHelpers: Map<string, string>;
  credsStore?: string;
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * Where docker and podman keep credentials, in the order they are consulted: `$DOCKER_CONFIG/config.json`
 * (or `~/.docker/config.json`), then `$REGISTRY_AUTH_FILE` (or `$XDG_RUNTIME_DIR/containers/auth.json`).
 */
export function defaultDockerConfigPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  const paths = [env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(home, '.docker', 'config.json')];
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE);
  else if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  return paths;
}

export class DockerConfigKeychain implements Keychain {
  readonly description: string;
  readonly path: string;
  private readonly optional: boolean;

  constructor(private readonly opts: DockerConfigOptions = {}) {
    this.path = opts.path ?? defaultDockerConfigPaths(opts.env)[0]!;
    this.optional = opts.optional ?? opts.path === undefined;
    this.description = `docker config ${this.path}`;
  }

  /** The keychains for the default locations (missing files are fine). */
  static defaults(env: NodeJS.ProcessEnv = process.env, helperTimeoutMs?: number): DockerConfigKeychain[] {
    return defaultDockerConfigPaths(env).map((path) => new DockerConfigKeychain({ path, optional: true, env, ...(helperTimeoutMs ? { helperTimeoutMs } : {}) }));
  }

  private async load(): Promise<ParsedDockerConfig | undefined> {
    let text: string;
    try {
      const st = await stat(this.path);
      if (!st.isFile()) throw new KeychainError(this.description, `docker config ${this.path} is not a file`);
      if (st.size > MAX_CONFIG_BYTES) throw new KeychainError(this.description, `docker config ${this.path} is larger than ${MAX_CONFIG_BYTES} bytes; it is not a credentials file`);
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if (e instanceof KeychainError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && this.optional) return undefined;
      if (code === 'ENOENT') throw new KeychainError(this.description, `docker config ${this.path} does not exist`);
      throw new KeychainError(this.description, `cannot read docker config ${this.path}: ${code ?? (e as Error).message}`);
    }
    return parseDockerConfig(text, this.path);
  }

  async resolve(target: KeychainTarget, signal?: AbortSignal): Promise<RegistryCredential | undefined> {
    const cfg = await this.load();
    if (!cfg) return undefined;
    const key = serverKey(target.registry);
    const specific = cfg.credHelpers.get(key);
    const helper = specific ?? cfg.credsStore;
    if (helper) {
      const source = `credential helper docker-credential-${helper} (${this.description})`;
      const got = await runCredentialHelper(helper, helperServerUrl(key), {
        // The file by name only: these messages reach API clients, who have no business with the server's paths.
        source, configuredIn: `${specific ? 'credHelpers' : 'credsStore'} in ${basename(this.path)}`,
        ...(this.opts.env ? { env: this.opts.env } : {}), ...(this.opts.helperTimeoutMs ? { timeoutMs: this.opts.helperTimeoutMs } : {}), ...(signal ? { signal } : {}),
      });
      if (got) {
        // `<token>` as the user name means the secret is an identity (refresh) token.
        return got.username === '<token>'
          ? { kind: 'refreshToken', refreshToken: got.secret, source }
          : { kind: 'basic', username: got.username, password: got.secret, source };
      }
    }
    return authsCredential(cfg, target, this.description);
  }

  /** Reads and parses the file now: rejects with what is wrong (missing, unreadable, malformed), as a pull would. */
  async check(): Promise<void> {
    await this.load();
  }
}

/** The credential a parsed config's `auths` hold for the target (the most specific entry), if any. */
export function authsCredential(cfg: ParsedDockerConfig, target: KeychainTarget, description: string): RegistryCredential | undefined {
  const e = lookupAuth(cfg, serverKey(target.registry), target.repository);
  if (!e) return undefined;
  const source = `${description} (auths["${e.key}"])`;
  if (e.identityToken) return { kind: 'refreshToken', refreshToken: e.identityToken, ...(e.username ? { username: e.username } : {}), source };
  if (e.registryToken) return { kind: 'registryToken', token: e.registryToken, source };
  if (e.username !== undefined && e.password !== undefined) return { kind: 'basic', username: e.username, password: e.password, source };
  return undefined;
}

/**
 * Parses config.json text. Throws a KeychainError that names the file and what is wrong in it (never a
 * value from it).
 */
export function parseDockerConfig(text: string, file: string): ParsedDockerConfig {
  const source = `docker config ${file}`;
  const bad = (what: string) => new KeychainError(source, `docker config ${file} is malformed: ${what}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // JSON.parse's own message may quote the text around the error, secrets included: keep only where.
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? ` at ${lineColumn(text, Number(pos[1]))}` : /end of JSON/i.test(msg) ? ': it ends too early' : '';
    throw bad(`not valid JSON${where}`);
  }
  if (!isObject(doc)) throw bad('the top level must be a JSON object such as {"auths": {...}}');
  const out: ParsedDockerConfig = { auths: new Map(), credHelpers: new Map() };
  if (doc.auths !== undefined && doc.auths !== null) {
    if (!isObject(doc.auths)) throw bad('"auths" must be an object of server → {"auth": base64(user:password)}');
    for (const [rawKey, v] of Object.entries(doc.auths)) {
      const where = `auths["${rawKey.slice(0, 200)}"]`;
      const key = authKey(rawKey);
      if (!key) throw bad(`${where}: the key is not a registry server`);
      if (!isObject(v)) throw bad(`${where} must be an object such as {"auth": "..."}`);
      const entry: AuthEntry = { key: rawKey };
      for (const f of ['auth', 'username', 'password', 'identitytoken', 'registrytoken', 'email'] as const) {
        if (v[f] !== undefined && v[f] !== null && typeof v[f] !== 'string') throw bad(`${where}.${f} must be a string`);
      }
      const auth = v.auth as string | undefined;
      if (auth) {
        const compact = auth.replace(/\s+/g, '');
        const decoded = /^[A-Za-z0-9+/_-]*={0,2}$/.test(compact) ? Buffer.from(compact, 'base64').toString('utf8') : '';
        const colon = decoded.indexOf(':');
        if (colon <= 0) throw bad(`${where}.auth is not base64 of "username:password"`);
        entry.username = decoded.slice(0, colon);
        entry.password = decoded.slice(colon + 1);
      }
      if (typeof v.username === 'string' && v.username !== '') entry.username = v.username;
      if (typeof v.password === 'string' && v.password !== '') entry.password = v.password;
      if (typeof v.identitytoken === 'string' && v.identitytoken !== '') entry.identityToken = v.identitytoken;
      if (typeof v.registrytoken === 'string' && v.registrytoken !== '') entry.registryToken = v.registrytoken;
      if ((entry.username === undefined) !== (entry.password === undefined) && !entry.identityToken && !entry.registryToken) {
        throw bad(`${where} has a ${entry.username === undefined ? 'password' : 'username'} but no ${entry.username === undefined ? 'username' : 'password'}`);
      }
      // An exact-looking key (no scheme, no path) wins over a longer spelling of the same server.
      const prev = out.auths.get(key);
      if (!prev || rawKey.toLowerCase() === key) out.auths.set(key, entry);
    }
  }
  if (doc.credHelpers !== undefined && doc.credHelpers !== null) {
    if (!isObject(doc.credHelpers)) throw bad('"credHelpers" must be an object of server → helper name');
    for (const [rawKey, v] of Object.entries(doc.credHelpers)) {
      const key = tryServerKey(rawKey);
      if (!key) throw bad(`credHelpers["${rawKey.slice(0, 200)}"]: the key is not a registry server`);
      if (typeof v !== 'string' || v === '') throw bad(`credHelpers["${rawKey.slice(0, 200)}"] must be a helper name such as "acr-env"`);
      out.credHelpers.set(key, v);
    }
  }
  if (doc.credsStore !== undefined && doc.credsStore !== null && doc.credsStore !== '') {
    if (typeof doc.credsStore !== 'string') throw bad('"credsStore" must be a helper name such as "desktop" or "pass"');
    out.credsStore = doc.credsStore;
  }
  return out;
}

/**
 * The key of an `auths` entry: the server key, or for podman's namespaced keys written without a scheme
 * (`quay.io/org`) the server key plus the namespace. A scheme means docker's style, where a path
 * (`https://index.docker.io/v1/`) is no namespace.
 */
function authKey(rawKey: string): string | undefined {
  const host = tryServerKey(rawKey);
  if (!host || /^[a-z][a-z0-9+.-]*:\/\//i.test(rawKey.trim())) return host;
  const slash = rawKey.trim().indexOf('/');
  const ns = slash >= 0 ? rawKey.trim().slice(slash + 1).replace(/^\/+|\/+$/g, '') : '';
  return ns === '' || /^v[12]$/i.test(ns) ? host : `${host}/${ns.toLowerCase()}`;
}

/** The most specific entry for a repository: `host/a/b`, then `host/a`, then `host` (podman's rule). */
function lookupAuth(cfg: ParsedDockerConfig, key: string, repository: string | undefined): AuthEntry | undefined {
  if (repository) {
    const parts = repository.toLowerCase().split('/');
    for (let n = parts.length; n > 0; n--) {
      const e = cfg.auths.get(`${key}/${parts.slice(0, n).join('/')}`);
      if (e) return e;
    }
  }
  return cfg.auths.get(key);
}

function lineColumn(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return `line ${line}, column ${pos - before.lastIndexOf('\n')}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
