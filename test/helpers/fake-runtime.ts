// Test doubles of the Runtime and ImagePuller contracts, for unit- and API-level tests of the
// container-groups logic (the real runc runtime and pull client are tested end to end at merge). The
// test decides when a container exits, which pulls fail and which starts fail.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PullError, type ImagePuller, type PulledImage, type PullOptions } from '../../src/pull/types.js';
import type { ContainerSpec, ExecResult, ExitStatus, Runtime, Sandbox, SandboxSpec, Task, TaskStatus } from '../../src/runtime/runtime.js';
import type { KeychainFactory } from '../../src/instances/keychains.js';

/** Keychains for API-level tests: the inline username/password as given, managed identities find nothing. */
export const inlineKeychainFactory: KeychainFactory = {
  inline: (_s, username, password) => ({ description: 'inline', resolve: async () => ({ kind: 'basic', username, password, source: 'inline' }) }),
  managedIdentity: () => ({ description: 'mi', resolve: async () => undefined }),
};

interface FakeTask { task: Task; spec: ContainerSpec; status: TaskStatus; exit: Promise<ExitStatus>; resolve: (e: ExitStatus) => void }

/** Test double: records calls; containers run until the test ends them with exit(). */
export class FakeRuntime implements Runtime {
  calls: string[] = [];
  sandboxes = new Map<string, Sandbox>();
  tasks = new Map<string, FakeTask>();
  startErrors: string[] = [];
  private waiters: Array<() => void> = [];

  private key(t: { groupId: string; name: string }) { return `${t.groupId}/${t.name}`; }
  private changed() { for (const w of this.waiters.splice(0)) w(); }
  /** Resolves once a task for `name` is running (the n-th time it was started). */
  async running(name: string, startsAtLeast = 1): Promise<FakeTask> {
    for (;;) {
      const starts = this.calls.filter((c) => c === `start ${name}`).length;
      const t = [...this.tasks.values()].find((x) => x.task.name === name && x.status === 'running');
      if (t && starts >= startsAtLeast) return t;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  exit(name: string, exitCode: number, reason = exitCode === 0 ? 'Completed' : 'Error', groupId?: string) {
    const t = [...this.tasks.values()].find((x) => x.task.name === name && x.status === 'running' && (!groupId || x.task.groupId === groupId));
    assert.ok(t, `no running task ${name}`);
    t.status = 'stopped';
    t.resolve({ exitCode, reason, finishedAt: new Date() });
  }
  /** Like runc's: on a group that already has a sandbox it adopts it (its tasks stay). */
  async createSandbox(spec: SandboxSpec): Promise<Sandbox> {
    this.calls.push(`sandbox ${spec.ports.map((p) => p.port).join(',')}${spec.identityEndpoint ? ' +identity' : ''}`);
    const s = { groupId: spec.groupId, ip: '127.0.0.1', hostPorts: Object.fromEntries(spec.ports.map((p) => [p.port, p.port])) };
    this.sandboxes.set(spec.groupId, s);
    return s;
  }
  async deleteSandbox(groupId: string) {
    this.calls.push(`deleteSandbox ${groupId}`);
    this.sandboxes.delete(groupId);
    for (const [k, t] of this.tasks) if (t.task.groupId === groupId) this.tasks.delete(k);
  }
  constructor(private readonly logDir = '/nonexistent') {}
  async create(sandbox: Sandbox, spec: ContainerSpec): Promise<Task> {
    this.calls.push(`create ${spec.name}`);
    const task = { groupId: sandbox.groupId, name: spec.name, logPath: join(this.logDir, `${sandbox.groupId}-${spec.name}.log`) };
    let resolve!: (e: ExitStatus) => void;
    const exit = new Promise<ExitStatus>((r) => (resolve = r));
    this.tasks.set(this.key(task), { task, spec, status: 'created', exit, resolve });
    return task;
  }
  async start(task: Task) {
    const err = this.startErrors.shift();
    if (err) throw new Error(err);
    this.calls.push(`start ${task.name}`);
    this.tasks.get(this.key(task))!.status = 'running';
    this.changed();
  }
  wait(task: Task) { return this.tasks.get(this.key(task))!.exit; }
  async kill(task: Task, signal?: NodeJS.Signals) {
    this.calls.push(`kill ${task.name} ${signal}`);
    const t = this.tasks.get(this.key(task));
    if (t && t.status === 'running') { t.status = 'stopped'; t.resolve({ exitCode: 137, reason: 'Killed', finishedAt: new Date() }); }
  }
  async status(task: Task) { return this.tasks.get(this.key(task))?.status; }
  async delete(task: Task) { this.calls.push(`delete ${task.name}`); this.tasks.delete(this.key(task)); }
  async exec(task: Task, argv: string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): Promise<ExecResult> {
    this.calls.push(`exec ${task.name} ${JSON.stringify(argv)}`);
    io.stdout.write(`ran ${argv.join(' ')} in ${task.name}\n`);
    io.stderr.write('to stderr\n');
    return { exitCode: argv[0] === 'false' ? 1 : 0 };
  }
  async list() {
    const groups = new Map<string, Array<{ name: string; status: TaskStatus }>>();
    for (const id of this.sandboxes.keys()) groups.set(id, []);
    for (const t of this.tasks.values()) groups.get(t.task.groupId)?.push({ name: t.task.name, status: t.status });
    return [...groups].map(([groupId, containers]) => ({ groupId, containers }));
  }
}

/** Test double: fails the scripted number of pulls with the scripted error, then succeeds. */
export class FakePuller implements ImagePuller {
  failures: PullError[] = [];
  /** References that always fail, with their error. */
  refuse = new Map<string, PullError>();
  pulls: string[] = [];
  /** What each pull's keychain answered for the image's registry (to check which credential was chosen). */
  credentials: Array<{ reference: string; kind: string; username?: string; source: string }> = [];
  async pull(reference: string, o: PullOptions): Promise<PulledImage> {
    this.pulls.push(reference);
    const registry = reference.includes('/') ? reference.split('/')[0]! : 'docker.io';
    const c = await o.keychain.resolve({ registry });
    this.credentials.push({ reference, kind: c?.kind ?? 'none', ...(c && c.kind === 'basic' ? { username: c.username } : {}), source: c?.source ?? 'none' });
    const refused = this.refuse.get(reference);
    if (refused) throw refused;
    const f = this.failures.shift();
    if (f) throw f;
    return { reference, digest: 'sha256:' + '1'.repeat(64), platform: { os: 'linux', architecture: 'amd64' }, config: {}, configDigest: 'sha256:' + '2'.repeat(64), layers: [], credentialSource: 'anonymous' };
  }
}

