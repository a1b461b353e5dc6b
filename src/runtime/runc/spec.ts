// The OCI runtime config (config.json) for one container: the image config (Entrypoint, Cmd, Env,
// WorkingDir, User) merged with the container spec the way ACI does it — `command` replaces
// Entrypoint and Cmd, the spec's environment overrides the image's by name — plus the group's network
// namespace, resource limits and rlimits within what the host allows.
import type { ImageRunConfig } from '../../pull/types.js';
import type { ContainerSpec } from '../runtime.js';
import type { ResolvedUser } from './user.js';
import { CodedError, type RuntimeErrorCode } from '../../lib/errors.js';

export class SpecError extends CodedError<RuntimeErrorCode> {
  constructor(message: string) { super('NoCommand', message, 'SpecError'); }
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CPU_PERIOD = 100_000;
// Docker's default capability set.
const CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

/** Merges KEY=VALUE lists: later lists override earlier ones by key, order of first appearance kept. */
export function mergeEnv(...lists: Array<string[] | undefined>): string[] {
  const m = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list ?? []) {
      const i = kv.indexOf('=');
      const k = i < 0 ? kv : kv.slice(0, i);
      m.set(k, kv);
    }
  }
  return [...m.values()];
}

/** The process argv: `command` when given, else Entrypoint + Cmd. */
export function processArgs(image: ImageRunConfig, command?: string[]): string[] {
  const args = command && command.length > 0 ? command : [...(image.entrypoint ?? []), ...(image.cmd ?? [])];
  if (args.length === 0) throw new SpecError('the image has no Entrypoint or Cmd and the container has no command: give the container a command');
  return args;
}

export interface OciSpecInput {
  image: ImageRunConfig;
  container: ContainerSpec;
  user: ResolvedUser;
  hostname: string;
  netnsPath: string;
  /** Host file bind-mounted read-only at /etc/hosts. */
  hostsPath: string;
  /** Host file bind-mounted read-only at /etc/resolv.conf (the image's own is kept when not given). */
  resolvConfPath?: string;
  /** Relative cgroup path (runc's cgroupfs driver puts it under its own cgroup). */
  cgroupsPath: string;
  limits: { nofile: number; memory: boolean; cpu: boolean };
}

export function buildOciSpec(i: OciSpecInput): Record<string, unknown> {
  // PATH, HOSTNAME and HOME (from the passwd entry) unless the image or the spec set them, as in Docker.
  const env = mergeEnv([DEFAULT_PATH, `HOSTNAME=${i.hostname}`, `HOME=${i.user.home}`], i.image.env, i.container.env);
  const resources: Record<string, unknown> = { devices: [{ allow: false, access: 'rwm' }] };
  if (i.container.memoryBytes && i.limits.memory) {
    resources.memory = { limit: Math.floor(i.container.memoryBytes), swap: Math.floor(i.container.memoryBytes) };
  }
  if (i.container.cpu && i.limits.cpu) resources.cpu = { quota: Math.max(1000, Math.round(i.container.cpu * CPU_PERIOD)), period: CPU_PERIOD };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: i.user.uid, gid: i.user.gid, ...(i.user.additionalGids.length ? { additionalGids: i.user.additionalGids } : {}) },
      args: processArgs(i.image, i.container.command),
      env,
      cwd: i.image.workingDir || '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: i.limits.nofile, soft: Math.min(1024, i.limits.nofile) }],
      noNewPrivileges: false,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: i.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      { destination: '/etc/hosts', type: 'bind', source: i.hostsPath, options: ['rbind', 'ro'] },
      ...(i.resolvConfPath ? [{ destination: '/etc/resolv.conf', type: 'bind', source: i.resolvConfPath, options: ['rbind', 'ro'] }] : []),
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network', path: i.netnsPath }],
      cgroupsPath: i.cgroupsPath,
      resources,
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
