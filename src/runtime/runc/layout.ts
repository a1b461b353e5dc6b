// Where the runc runtime keeps each thing under its directory (see ./runc-runtime.ts for the picture),
// and the checks on the names that become path components: one place that turns a group id and a
// container name into paths, and the small file helpers every part of the runtime reads them with.
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/fs-atomic.js';

/** Group ids and container names: they become path components and parts of runc ids. */
export const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkId(kind: string, id: string): void {
  if (!ID.test(id)) throw new Error(`invalid ${kind} "${id}": use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)`);
}

export class RuntimeLayout {
  constructor(readonly base: string) {}

  get groupsDir(): string {
    return join(this.base, 'groups');
  }

  groupDir(groupId: string): string {
    checkId('group id', groupId);
    return join(this.base, 'groups', groupId);
  }

  bundleDir(task: { groupId: string; name: string }): string {
    checkId('container name', task.name);
    return join(this.groupDir(task.groupId), 'containers', task.name);
  }

  logPath(groupId: string, name: string): string {
    return join(this.groupDir(groupId), 'logs', `${name}.log`);
  }

  /** The metadata endpoint's socket: in the group directory, or under /tmp when that path is too long for a socket. */
  imdsSocket(groupId: string): string {
    const p = join(this.groupDir(groupId), 'imds.sock');
    if (Buffer.byteLength(p) < 100) return p;
    const h = createHash('sha256').update(p).digest('hex').slice(0, 16);
    return join(tmpdir(), `berth-imds-${h}.sock`);
  }

  runcId(groupId: string, name: string): string {
    return `berth-${createHash('sha256').update(`${groupId}\n${name}`).digest('hex').slice(0, 20)}`;
  }
}

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Resolves on the next change in directory `dir`, after `ms`, or on `abort`, whichever comes first.
 * Create it before checking the directory, so that a change during the check is not missed. */
export function nextChange(dir: string, ms: number, abort?: AbortSignal): Promise<void> {
  return new Promise<void>((res) => {
    let w: ReturnType<typeof watch> | undefined;
    const done = () => {
      clearTimeout(t);
      w?.close();
      abort?.removeEventListener('abort', done);
      res();
    };
    const t = setTimeout(done, ms);
    abort?.addEventListener('abort', done);
    try {
      w = watch(dir, done);
      w.on('error', done);
    } catch {
      /* the timer will do */
    }
  });
}

/**
 * Replaces a file of the runtime's state atomically, without an fsync: bundles, pid files and sandbox
 * records describe processes and mounts that a machine crash ends anyway.
 */
export function replaceFile(path: string, data: string, mode = 0o644): Promise<void> {
  return writeFileAtomic(path, data, mode, { durable: false });
}
