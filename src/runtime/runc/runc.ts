// The runc command line, with Berth's own state root (--root in the data directory, so Berth's
// containers are its own and `runc list` there shows only them).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CodedError, type RuntimeErrorCode } from '../../lib/errors.js';

const run = promisify(execFile);

export interface RuncState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
  created?: string;
}

// runc says why a command failed only in words on stderr (its exit status is 1 for every failure), so
// this is the one place that reads them: each failure gets a code of RUNTIME_CODES and callers match on it.
const NOT_FOUND = /does not exist|not exist|container .* not found/i;
const NOT_RUNNING = /not running|container .* is stopped/i;

function runcCode(stderr: string): RuntimeErrorCode {
  if (NOT_FOUND.test(stderr)) return 'RuncContainerNotFound';
  if (NOT_RUNNING.test(stderr)) return 'RuncContainerNotRunning';
  return 'RuncFailed';
}

export class RuncError extends CodedError<RuntimeErrorCode> {
  constructor(readonly args: string[], readonly stderr: string) {
    super(runcCode(stderr), `runc ${args[0] === '--root' ? args.slice(2).join(' ') : args.join(' ')}: ${stderr.trim() || 'failed'}`, 'RuncError');
  }
}

export class Runc {
  constructor(readonly bin: string, readonly root: string) {}

  args(...rest: string[]): string[] {
    return ['--root', this.root, ...rest];
  }

  private async call(...rest: string[]): Promise<string> {
    const args = this.args(...rest);
    try {
      return (await run(this.bin, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (e) {
      throw new RuncError(args, (e as { stderr?: string }).stderr ?? (e as Error).message);
    }
  }

  /** The container's state, or undefined when runc does not know it. */
  async state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse(await this.call('state', id)) as RuncState;
    } catch (e) {
      if (e instanceof RuncError && e.code === 'RuncContainerNotFound') return undefined;
      throw e;
    }
  }

  async list(): Promise<RuncState[]> {
    const out = await this.call('list', '--format', 'json');
    return (JSON.parse(out || 'null') as RuncState[] | null) ?? [];
  }

  async kill(id: string, signal: string, all = false): Promise<void> {
    await this.call('kill', ...(all ? ['--all'] : []), id, signal);
  }

  async delete(id: string): Promise<void> {
    try {
      await this.call('delete', '--force', id);
    } catch (e) {
      if (e instanceof RuncError && e.code === 'RuncContainerNotFound') return;
      throw e;
    }
  }
}
