// The container groups' DNS names in a hosts file (`berth serve --hosts-file /etc/hosts`): one block of
// lines between markers that name the server's data directory, rewritten whole whenever the names
// change; every other line of the file is left as it was. The system resolver (nss `files`, before
// `myhostname`) then resolves `<label>.<location>.containers.localhost` to the group's own loopback
// address. The file is replaced atomically (temp file + rename, same mode), or written in place when
// it cannot be replaced (a bind-mounted /etc/hosts in a container).
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface HostsEntry { address: string; name: string }

export class HostsFile {
  private readonly begin: string;
  private readonly end: string;
  private last?: string;
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string, owner: string) {
    this.begin = `# BEGIN berth container groups (${owner})`;
    this.end = `# END berth container groups (${owner})`;
  }

  /** The file's text with Berth's block holding exactly `entries` (no block when there are none). */
  render(text: string, entries: HostsEntry[]): string {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const from = lines.indexOf(this.begin);
    const to = from >= 0 ? lines.indexOf(this.end, from) : -1;
    if (from >= 0) lines.splice(from, (to >= 0 ? to : lines.length - 1) - from + 1);
    if (entries.length > 0) {
      const sorted = [...entries].sort((a, b) => a.name.localeCompare(b.name));
      lines.push(this.begin, ...sorted.map((e) => `${e.address}\t${e.name}`), this.end);
    }
    return lines.map((l) => `${l}\n`).join('');
  }

  /** Makes the block hold `entries`; writes only when that changes the file. Calls run one at a time. */
  set(entries: HostsEntry[]): Promise<void> {
    const key = JSON.stringify([...entries].sort((a, b) => a.name.localeCompare(b.name)));
    const next = this.queue.then(async () => {
      if (key === this.last) return;
      const text = await readFile(this.path, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return '';
        throw new Error(`cannot read the hosts file ${this.path}: ${e.code ?? e.message}`);
      });
      const out = this.render(text, entries);
      if (out !== text) await this.write(out);
      this.last = key;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async write(text: string): Promise<void> {
    const mode = (await stat(this.path).catch(() => undefined))?.mode ?? 0o644;
    const tmp = join(dirname(this.path), `.${basename(this.path)}.berth-${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(tmp, text, { mode: mode & 0o777 });
      await chmod(tmp, mode & 0o777);
      await rename(tmp, this.path);
    } catch (e) {
      await rm(tmp, { force: true });
      const code = (e as NodeJS.ErrnoException).code;
      // A bind-mounted file cannot be replaced, only rewritten.
      if (code !== 'EBUSY' && code !== 'EXDEV') throw new Error(`cannot write the hosts file ${this.path}: ${code ?? (e as Error).message}`);
      await writeFile(this.path, text);
    }
  }
}
