// Writes a registry credential into a Docker config.json / containers auth.json (the same format) as
// `docker login` and `podman login` do: `auths[server] = {"auth": base64(user:password)}` (or, when the
// file names a credential helper for the server, `{}` and the credential goes to the helper), every
// other entry and key of the file kept. The file is replaced atomically (temp + rename) with mode 0600, so a
// reader sees the old file or the new one, never a half-written one; a file that is not a JSON object
// is left alone and named in the error (never its content).
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { homedir } from 'node:os';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { CodedError, type KeychainErrorCode } from '../lib/errors.js';

export class AuthFileError extends CodedError<KeychainErrorCode> {
  constructor(message: string) { super('InvalidAuthFile', message); }
}

const MAX_BYTES = 4 * 1024 * 1024;

/**
 * Where `berth acr login` writes: the Docker config (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`) that docker reads and podman/skopeo fall back to; plus the containers auth
 * file that podman and skopeo read first — `$REGISTRY_AUTH_FILE` when it is set, else
 * `$XDG_RUNTIME_DIR/containers/auth.json` when that file already exists (so an older entry there cannot
 * shadow the new one).
 */
export function loginAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  const out = [env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(home, '.docker', 'config.json')];
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  else if (env.XDG_RUNTIME_DIR && existsSync(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'))) out.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  return out;
}

/** A file's new content, and the credential helper it names for the server (docker asks that instead of `auths`), if any. */
export interface AuthUpdate { path: string; content: string; helper?: string }

/** The content of `path` with auths[server] set and everything else kept; reads only, so that every file can be checked before any is written. */
export async function prepareRegistryAuth(path: string, server: string, username: string, password: string): Promise<AuthUpdate> {
  let doc: Record<string, unknown> = {};
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new AuthFileError(`Cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (text !== undefined && text.trim() !== '') {
    if (text.length > MAX_BYTES) throw new AuthFileError(`${path} is larger than ${MAX_BYTES} bytes; it is not a credentials file. Move it away and log in again.`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new AuthFileError(`${path} is not valid JSON; fix or remove it and log in again (nothing was written).`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new AuthFileError(`${path} must hold a JSON object such as {"auths": {}}; fix or remove it (nothing was written).`);
    doc = parsed as Record<string, unknown>;
  }
  const auths = doc.auths && typeof doc.auths === 'object' && !Array.isArray(doc.auths) ? { ...(doc.auths as Record<string, unknown>) } : {};
  // Other spellings of the same server (`https://host`, `host/`) would be ambiguous next to the new entry.
  for (const k of Object.keys(auths)) if (k !== server && normalise(k) === normalise(server)) delete auths[k];
  const helpers = doc.credHelpers && typeof doc.credHelpers === 'object' ? doc.credHelpers as Record<string, unknown> : {};
  const helper = typeof helpers[server] === 'string' ? helpers[server] : typeof doc.credsStore === 'string' && doc.credsStore ? doc.credsStore : undefined;
  // As docker login: with a credential helper for the server, the helper keeps the credential and the
  // file only an empty entry for it.
  auths[server] = helper ? {} : { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  const content = JSON.stringify({ ...doc, auths }, null, '\t') + '\n';
  return { path, content, ...(helper ? { helper } : {}) };
}

/** Writes a prepared update (its directory created 0700 when missing). */
export async function writeRegistryAuth(u: AuthUpdate): Promise<void> {
  await mkdir(dirname(u.path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(u.path, u.content, 0o600);
}

function normalise(key: string): string {
  return key.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '').replace(/\/+$/, '');
}
