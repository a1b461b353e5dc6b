// Starts Debian's `dockerd` for a test or the benchmark with everything of its own — socket, data root, exec root (and so
// its own containerd), pid file, daemon config and client config — so it cannot clash with another
// engine on the machine: no iptables rules, no bridge, no ip_forward change. `stop()` shuts it down
// and removes the directory.
//
// The Berth server under test runs in the test process, so the docker CLI is always run with async
// spawn: a synchronous child would block the event loop that has to answer it.
// Shared by test/helpers/dockerd.ts (which re-exports it) and bench/groups.ts; it imports nothing from test/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep, which } from './proc.js';

export interface Dockerd {
  /** The engine's own directory under /tmp. */
  dir: string;
  /** `unix://…/docker.sock` */
  host: string;
  storageDriver: string;
  /** The docker CLI binary this engine is driven with. */
  cli: string;
  /** Runs the docker CLI against this engine, with a client config of its own (DOCKER_CONFIG). */
  docker(args: string[], opts?: { input?: string }): Promise<DockerResult>;
  /** Like docker(), but rejects with the CLI's output when it exits non-zero. */
  ok(args: string[], opts?: { input?: string }): Promise<string>;
  /** The daemon's log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Debian's CLI matches Debian's daemon; another `docker` on PATH is the fallback. */
function dockerCli(): string | undefined {
  if (existsSync('/usr/bin/docker')) return '/usr/bin/docker';
  return which('docker') ? 'docker' : undefined;
}

/** Why a real Docker engine cannot be started here, or undefined when it can be tried. */
export function dockerdUnavailable(): string | undefined {
  if (!which('dockerd')) return 'dockerd is not installed (docker.io; bash scripts/install.sh installs it)';
  if (!dockerCli()) return 'the docker CLI is not installed (docker.io)';
  if (process.getuid?.() !== 0) return 'dockerd needs root, and the tests are not running as root';
  return undefined;
}

function runDocker(host: string, configDir: string, args: string[], input = ''): Promise<DockerResult> {
  return new Promise((res, rej) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: configDir, DOCKER_HOST: host };
    delete env.DOCKER_CONTEXT;
    delete env.DOCKER_TLS_VERIFY;
    const p = spawn(dockerCli()!, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(input);
  });
}

function exited(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

async function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (exited(p)) return true;
  return Promise.race([new Promise<boolean>((r) => p.once('exit', () => r(true))), sleep(ms).then(() => exited(p))]);
}

function killPidFile(path: string): Promise<void> {
  return readFile(path, 'utf8').then(
    (s) => {
      const pid = Number(s.trim());
      if (pid > 1) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    },
    () => undefined,
  );
}

/** Unmounts whatever the engine left mounted under `dir` (deepest first), so the directory can go. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((m) => m.replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    await new Promise<void>((r) => spawn('umount', ['-l', m], { stdio: 'ignore' }).on('close', () => r()).on('error', () => r()));
  }
}

async function startOnce(dir: string, storageDriver: string | undefined): Promise<Dockerd> {
  const host = `unix://${join(dir, 'docker.sock')}`;
  const configDir = join(dir, 'client');
  await mkdir(configDir, { recursive: true });
  await writeFile(join(configDir, 'config.json'), '{"auths":{}}\n', { mode: 0o600 });
  // A daemon config of its own: /etc/docker/daemon.json (if any) must not leak in, and dockerd 20.10's
  // trust key goes here rather than to /etc/docker/key.json (a daemon.json-only setting).
  await writeFile(join(dir, 'daemon.json'), JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') }) + '\n');
  const args = [
    '--iptables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
    '--host', host,
    '--data-root', join(dir, 'root'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'docker.pid'),
    '--config-file', join(dir, 'daemon.json'),
    '--log-level', 'warn',
    ...(storageDriver ? ['--storage-driver', storageDriver] : []),
  ];
  const logPath = join(dir, 'dockerd.log');
  let logText = '';
  const p = spawn('dockerd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (logText += d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (logText += d));
  const failed = new Promise<Error>((r) => p.once('error', (e) => r(e)));
  let spawnError: Error | undefined;
  void failed.then((e) => (spawnError = e));

  const stop = async () => {
    if (!exited(p)) {
      p.kill('SIGTERM');
      if (!(await waitExit(p, 20_000))) {
        p.kill('SIGKILL');
        await waitExit(p, 5_000);
      }
    }
    // dockerd stops its containerd; if it was killed, containerd may still run.
    await killPidFile(join(dir, 'exec', 'containerd', 'containerd.pid'));
    await writeFile(logPath, logText).catch(() => undefined);
  };

  const deadline = Date.now() + 90_000;
  let last = '';
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`dockerd could not be started: ${spawnError.message}`);
    if (exited(p)) {
      await stop();
      throw new Error(`dockerd exited (${p.signalCode ?? `code ${p.exitCode}`}) before it was ready:\n${logText.slice(-4000)}`);
    }
    const info = await runDocker(host, configDir, ['info', '--format', '{{.Driver}}']);
    if (info.code === 0) {
      const docker = (a: string[], o: { input?: string } = {}) => runDocker(host, configDir, a, o.input);
      return {
        dir,
        host,
        storageDriver: info.stdout.trim(),
        cli: dockerCli()!,
        docker,
        ok: async (a, o) => {
          const r = await docker(a, o);
          if (r.code !== 0) throw Object.assign(new Error(`docker ${a.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`), r);
          return r.stdout;
        },
        log: async () => logText,
        stop,
      };
    }
    last = info.stderr.trim();
    await sleep(250);
  }
  await stop();
  throw new Error(`dockerd did not answer \`docker info\` within 90 s (last: ${last}):\n${logText.slice(-4000)}`);
}

/**
 * Starts a private dockerd. Tries the engine's default storage driver (overlay2) first and falls back
 * to vfs, which works on any filesystem, if the daemon cannot start with it.
 */
export async function startDockerd(): Promise<Dockerd> {
  // Short path: the daemon's sockets (docker.sock, exec/containerd/containerd.sock) must fit in 108 bytes.
  const dir = await mkdtemp('/tmp/berth-dockerd-');
  const remove = async () => {
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  };
  let firstError: Error | undefined;
  for (const driver of [undefined, 'vfs']) {
    try {
      const d = await startOnce(dir, driver);
      return {
        ...d,
        stop: async () => {
          await d.stop();
          await remove();
        },
      };
    } catch (e) {
      firstError ??= e as Error;
      await unmountUnder(dir);
      await rm(join(dir, 'root'), { recursive: true, force: true });
      await rm(join(dir, 'exec'), { recursive: true, force: true });
    }
  }
  await remove();
  throw firstError!;
}
