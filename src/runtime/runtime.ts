// The runtime contract: what the container-group reconciler asks of a container runtime. The embedded
// default is runc (./runc/); docker and kubernetes runtimes would implement the same interface.
// A group is a sandbox (one network namespace, its published ports, its managed-identity endpoint);
// containers are tasks inside it.
import type { PulledImage } from '../pull/types.js';
import { CodedError, type RuntimeErrorCode } from '../lib/errors.js';

export interface PortSpec {
  port: number;
  protocol: 'TCP' | 'UDP';
}

export interface SandboxSpec {
  /** Stable id of the group (used to name namespaces, cgroups and directories). */
  groupId: string;
  ports: PortSpec[];
  /** The host address to publish the ports on (default: the runtime's, 127.0.0.1). */
  address?: string;
  /**
   * When set, the sandbox answers `http://169.254.169.254/metadata/identity/oauth2/token` from inside
   * the group by calling this function: only this group's containers can reach it.
   */
  identityEndpoint?: (req: { method: string; path: string; headers: Record<string, string> }) =>
    Promise<{ status: number; headers: Record<string, string>; body: string }>;
}

export interface Sandbox {
  groupId: string;
  /** Host address the ports are published on (loopback by default). */
  ip: string;
  /** Group port → host port (equal when the host port was free). */
  hostPorts: Record<number, number>;
  /** createSandbox on an existing sandbox: the helper processes it found dead and started again. */
  restarted?: SandboxHelperDown[];
}

/** A helper process of a sandbox found dead: its port forwarder (and the ports it held) or its outbound network. */
export interface SandboxHelperDown {
  helper: 'port-forwarder' | 'outbound-network';
  ports?: PortSpec[];
  /** How it ended (`signal SIGKILL`, `exit code 1`), when the runtime saw it end. */
  how?: string;
}

export interface ContainerSpec {
  /** Container name within the group. */
  name: string;
  image: PulledImage;
  /** Replaces the image's Entrypoint+Cmd when given (ACI `command`). */
  command?: string[];
  /** KEY=VALUE; the spec's values override the image's. Secure values are included here but never logged. */
  env: string[];
  cpu?: number;
  memoryBytes?: number;
}

export type TaskStatus = 'created' | 'running' | 'stopped';

export interface ExitStatus {
  exitCode: number;
  /** e.g. `Completed`, `Error`, `OOMKilled`, `Killed`. */
  reason: string;
  finishedAt: Date;
}

export interface Task {
  groupId: string;
  name: string;
  /** File the container's stdout+stderr is appended to (kept after exit until the group is deleted). */
  logPath: string;
}

/**
 * create() could not read image data the pull had stored (a garbage collection or a person removed it
 * since): pull the image again and retry.
 */
export class ImageGoneError extends CodedError<RuntimeErrorCode> {
  constructor(message: string) { super('ImageGone', message, 'ImageGoneError'); }
}

/** What a runtime's image garbage collection freed (cached layers). */
export interface RuntimeGcReport {
  removed: number;
  kept: number;
  bytesFreed: number;
}

export interface ExecResult {
  exitCode: number;
}

export interface Runtime {
  createSandbox(spec: SandboxSpec): Promise<Sandbox>;
  /** Tears down everything the sandbox owns: processes, mounts, namespace, ports. Idempotent. */
  deleteSandbox(groupId: string): Promise<void>;
  /** Prepares the rootfs and bundle; does not start the process. */
  create(sandbox: Sandbox, spec: ContainerSpec): Promise<Task>;
  start(task: Task): Promise<void>;
  /** Resolves when the task's process exits. */
  wait(task: Task): Promise<ExitStatus>;
  kill(task: Task, signal?: NodeJS.Signals): Promise<void>;
  status(task: Task): Promise<TaskStatus | undefined>;
  /** Removes the container (not its log). Idempotent. */
  delete(task: Task): Promise<void>;
  /** Runs argv in the task's container; `signal` aborting (the client went away) hangs the command up (SIGHUP). */
  exec(task: Task, argv: string[], io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; tty?: boolean; signal?: AbortSignal }): Promise<ExecResult>;
  /** Sandboxes and tasks that exist on this machine (after a server restart), for reconciliation. */
  list(): Promise<Array<{ groupId: string; containers: Array<{ name: string; status: TaskStatus; pid?: number }> }>>;
  /**
   * Digests (manifests, configs, layers) of the images its containers use, including containers being
   * created: the pull client's content store keeps these. Runtimes without it keep the store untouched.
   */
  imageReferences?(): Promise<Set<string>>;
  /** Removes what the runtime caches of images (extracted layers) that no container used for `graceMs`. */
  collectGarbage?(opts: { graceMs: number; now?: number }): Promise<RuntimeGcReport>;
  /**
   * Resolves when a helper process of the sandbox (port forwarder, outbound network stack) is found
   * dead — the group's ports or network no longer work; with [] once `signal` aborts.
   */
  sandboxDown?(groupId: string, signal: AbortSignal): Promise<SandboxHelperDown[]>;
  /** Restarts the sandbox's dead helper processes (published ports on their host ports when free); the sandbox as it now is. */
  repairSandbox?(groupId: string): Promise<Sandbox>;
  /** More names by which containers reach the host (Berth's vaults by name), for groups now and later. */
  setHostAliases?(names: string[]): Promise<void>;
}
