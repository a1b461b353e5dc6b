// A running group's containers from outside: their output (logs, attach) and exec into them.
import type { Runtime, Task } from '../runtime/runtime.js';
import { conflict, invalid, notFound } from '../lib/errors.js';
import type { GroupsContext } from './context.js';
import { followLog, lastLines, logSize, readLogTail } from './log-tail.js';
import type { StoredGroup } from './store.js';

export class ContainerIo {
  constructor(private readonly c: GroupsContext) {}

  private container(g: StoredGroup, container: string) {
    const c = g.spec.containers.find((x) => x.name === container);
    if (!c) throw notFound('ContainerNotFound', `The container '${container}' does not exist in container group '${g.name}'. Its containers: ${g.spec.containers.map((x) => x.name).join(', ')}.`);
    return c;
  }

  /** The container's output: everything up to 4 MiB, or its last `tail` lines. */
  async logs(rg: string, name: string, container: string, tail?: number): Promise<string> {
    const g = await this.c.get(rg, name);
    this.container(g, container);
    const path = g.state.containers[container]?.logPath;
    if (!path) return '';
    const text = await readLogTail(path, 4 * 1024 * 1024);
    return tail === undefined ? text : lastLines(text, tail);
  }

  /** The container's task; throws when the group or container does not exist or does not run (exec needs it running). */
  async runningTask(rg: string, name: string, container: string): Promise<Task> {
    const g = await this.c.get(rg, name);
    this.container(g, container);
    const reconciler = this.c.requireRuntime();
    const task = reconciler.runner(g.id)?.task(container);
    if (!task) throw conflict('ContainerNotRunning', `The container '${container}' in container group '${g.name}' is not running (state: ${g.state.containers[container]?.currentState?.state ?? 'Unknown'}); exec needs a running container.`);
    return task;
  }

  /** Streams the container's output from now on into `out` until the container stops running or `signal` aborts. */
  async attach(rg: string, name: string, container: string, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
    const task = await this.runningTask(rg, name, container);
    const running = async () => (await this.c.store.find(rg, name))?.state.containers[container]?.currentState?.state === 'Running';
    await followLog(task.logPath, await logSize(task.logPath), out, running, signal);
  }

  async exec(rg: string, name: string, container: string, argv: string[], io: Parameters<Runtime['exec']>[2]): Promise<number> {
    const task = await this.runningTask(rg, name, container);
    if (argv.length === 0) throw invalid('InvalidExecCommand', 'The exec command is empty.');
    const r = await this.c.o.runtime!.exec(task, argv, io);
    return r.exitCode;
  }
}
