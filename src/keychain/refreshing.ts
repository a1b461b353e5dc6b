// A password that expires (seed 004's ECR case: `aws ecr get-login-password` gives one that lasts
// 12 hours). The keychain hands out the cached password until shortly before it expires, then asks the
// refresher for a new one; without a refresher, an expired password is a KeychainError that says it
// expired and when, instead of a registry's bare "unauthorized".
import { spawn } from 'node:child_process';
import { KeychainError, type Keychain, type KeychainTarget, type RegistryCredential } from './keychain.js';
import { serverKey } from './server-key.js';

export interface ExpiringPassword {
  username: string;
  password: string;
  expiresAt: Date;
}

export type PasswordRefresher = (signal?: AbortSignal) => Promise<ExpiringPassword>;

export interface ExpiringPasswordOptions {
  server: string;
  /** The password known now, if any. */
  current?: ExpiringPassword;
  /** Gets a fresh password; without one, an expired password cannot be replaced. */
  refresh?: PasswordRefresher;
  /** Where it comes from, for diagnoses: `ECR password (aws ecr get-login-password)`. */
  label?: string;
  /** Refresh this long before expiry; default 5 minutes. */
  refreshMarginMs?: number;
  now?: () => number;
}

export class ExpiringPasswordKeychain implements Keychain {
  readonly description: string;
  private readonly server: string;
  private current: ExpiringPassword | undefined;
  private stale = false;
  private inflight: Promise<ExpiringPassword> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: ExpiringPasswordOptions) {
    this.server = serverKey(opts.server);
    if (!opts.current && !opts.refresh) throw new KeychainError(opts.label ?? 'expiring password', `an expiring password for ${this.server} needs a current password or a way to refresh it`);
    this.current = opts.current;
    this.description = `${opts.label ?? 'expiring password'} for ${this.server}${opts.current ? ` (user ${opts.current.username})` : ''}`;
    this.now = opts.now ?? Date.now;
  }

  async resolve(target: KeychainTarget, signal?: AbortSignal): Promise<RegistryCredential | undefined> {
    if (serverKey(target.registry) !== this.server) return undefined;
    const margin = this.opts.refreshMarginMs ?? 5 * 60_000;
    const now = this.now();
    let p = this.current;
    if (!p || this.stale || p.expiresAt.getTime() - margin <= now) {
      if (this.opts.refresh) {
        try {
          this.inflight ??= this.refreshOnce(signal).finally(() => { this.inflight = undefined; });
          p = await this.inflight;
        } catch (e) {
          // A refresher that fails while the old password still works: keep using it.
          if (!(p && !this.stale && p.expiresAt.getTime() > now)) throw e;
        }
      } else if (p && p.expiresAt.getTime() <= now) {
        throw new KeychainError(this.description, `the password for user ${p.username} on ${this.server} expired at ${p.expiresAt.toISOString()} (${ago(now - p.expiresAt.getTime())} ago) and there is no way to refresh it here: get a new one (for ECR: aws ecr get-login-password) and update the credential`);
      }
    }
    return { kind: 'basic', username: p!.username, password: p!.password, source: this.description, expiresAt: p!.expiresAt };
  }

  /** The registry refused the password: get a new one on the next resolve. */
  invalidate(target: KeychainTarget, credential: RegistryCredential): void {
    if (serverKey(target.registry) !== this.server || !this.opts.refresh) return;
    if (credential.kind === 'basic' && this.current && credential.password !== this.current.password) return; // already replaced
    this.stale = true;
  }

  private async refreshOnce(signal?: AbortSignal): Promise<ExpiringPassword> {
    let next: ExpiringPassword;
    try {
      next = await this.opts.refresh!(signal);
    } catch (e) {
      throw new KeychainError(this.description, `could not refresh the password for ${this.server}: ${(e as Error).message}`);
    }
    if (!next || typeof next.username !== 'string' || next.username === '' || typeof next.password !== 'string' || next.password === '' || !(next.expiresAt instanceof Date) || Number.isNaN(next.expiresAt.getTime())) {
      throw new KeychainError(this.description, `the refresher for ${this.server} returned no username, password and expiry`);
    }
    if (next.expiresAt.getTime() <= this.now()) {
      throw new KeychainError(this.description, `the refresher for ${this.server} returned a password that already expired at ${next.expiresAt.toISOString()}`);
    }
    this.current = next;
    this.stale = false;
    return next;
  }
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/**
 * A refresher that runs a command and takes its standard output as the password, e.g.
 * `aws ecr get-login-password --region eu-west-1` with user `AWS` and a 12-hour lifetime. The command
 * runs without a shell, asynchronously, with a time limit; its output is never put in a message.
 */
export function commandRefresher(opts: { command: string; args?: string[]; username: string; lifetimeMs: number; timeoutMs?: number; env?: NodeJS.ProcessEnv; now?: () => number }): PasswordRefresher {
  const shown = [opts.command, ...(opts.args ?? [])].join(' ');
  return (signal) => new Promise((resolve, reject) => {
    const started = (opts.now ?? Date.now)();
    const child = spawn(opts.command, opts.args ?? [], { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    let out = '';
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (d: Buffer) => { if (out.length < 64 * 1024) out += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { if (err.length < 64 * 1024) err += d.toString('utf8'); });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(e.code === 'ENOENT' ? `${opts.command} was not found on PATH` : `${shown} could not be started (${e.code ?? e.message})`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) return reject(new Error(`${shown} did not finish within ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s`));
      const password = out.trim();
      if (code !== 0) return reject(new Error(`${shown} failed with exit code ${code}${err.trim() ? `: ${err.trim().replace(/\s+/g, ' ').slice(0, 300)}` : ''}`));
      if (!password) return reject(new Error(`${shown} printed no password`));
      resolve({ username: opts.username, password, expiresAt: new Date(started + opts.lifetimeMs) });
    });
  });
}
