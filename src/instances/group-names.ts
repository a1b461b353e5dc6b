// The DNS names of the groups that have a sandbox, written into the hosts file when Berth keeps one
// (berth serve --hosts-file): each labelled group then has a loopback address of its own.
import type { Logger } from '../lib/logger.js';
import type { HostsFile } from './hosts-file.js';
import { fqdnOf } from './dns-names.js';
import type { GroupState } from './state.js';
import type { StoredGroup } from './store.js';

export class GroupNames {
  /** Per group, the address and stop flag its DNS name was last written with. */
  private readonly marks = new Map<string, string>();
  /** Syncs run one at a time, so that an older listing is never written after a newer one. */
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly file: HostsFile | undefined, private readonly list: () => Promise<StoredGroup[]>, private readonly log: Logger) {}

  /**
   * After a state save (`saved`: when it has landed): syncs only when that group's address or stop
   * flag changed. Saves come several times a second (events, pull progress), and listing the groups
   * opens every one's secrets.
   */
  stateSaved(id: string, state: GroupState, saved: Promise<void>): void {
    if (!this.file) return;
    const mark = `${state.sandbox?.ip ?? ''}|${state.stopped ? 1 : 0}`;
    if (this.marks.get(id) === mark) return;
    this.marks.set(id, mark);
    void saved.then(() => this.sync(), () => undefined);
  }

  /** A stop or delete changed the list outside a save: every group's next save syncs again. */
  changed(): void {
    if (!this.file) return;
    this.marks.clear();
    this.sync();
  }

  private sync(): void {
    const file = this.file!;
    this.running = this.running.then(async () => {
      const entries = (await this.list()).flatMap((g) => (g.spec.ipAddress?.dnsNameLabel && g.state.sandbox && !g.state.stopped
        ? [{ address: g.state.sandbox.ip, name: fqdnOf(g.spec.ipAddress.dnsNameLabel, g.location) }] : []));
      await file.set(entries);
    }).catch((e: Error) => this.log.warn('updating the container groups\' DNS names failed', { error: e.message }));
  }
}
