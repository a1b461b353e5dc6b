// Free space on the data directory's filesystem, and the reserve kept for metadata: blob data (pushed
// blobs, unpacked layers) may not eat into it, so SQLite writes (tags, role assignments, group state)
// still succeed on a nearly full disk.
import { statfs } from 'node:fs/promises';
import { formatBytes } from '../lib/bytes.js';
import { CodedError, type StorageErrorCode } from '../lib/errors.js';

/** The reserve when none is configured: 5% of the filesystem, at most 1 GiB. */
export function defaultReserve(fsBytes: number): number {
  return Math.min(1024 ** 3, Math.floor(fsBytes * 0.05));
}

/** Writing would cross the reserve, or the filesystem answered ENOSPC/EDQUOT. */
export class StorageFullError extends CodedError<StorageErrorCode> {
  constructor(
    /** `reserve`: refused before the disk filled; `full`: the filesystem itself refused a write. */
    readonly kind: 'reserve' | 'full',
    readonly free: number,
    readonly reserve: number,
  ) {
    super('StorageFull', kind === 'reserve'
      ? `only ${formatBytes(free)} free, and ${formatBytes(reserve)} is kept in reserve for metadata`
      : `the filesystem is full (${formatBytes(free)} free)`, 'StorageFullError');
  }
}

/** ENOSPC (no space left) or EDQUOT (disk quota exceeded) from the filesystem, or SQLITE_FULL. */
export function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

export interface DiskSpaceOptions {
  /** Bytes to keep free (default: defaultReserve of the filesystem's size). */
  reserve?: number;
  /** Re-read free space after this many bytes were budgeted (other writers share the disk). */
  refreshBytes?: number;
}

/** Free space of one filesystem (the one holding `dir`) against a reserve. */
export class DiskSpace {
  private reserveBytes: number | undefined;
  readonly refreshBytes: number;

  constructor(readonly dir: string, opts: DiskSpaceOptions = {}) {
    this.reserveBytes = opts.reserve;
    this.refreshBytes = opts.refreshBytes ?? 8 * 1024 * 1024;
  }

  /** Free bytes (for unprivileged writers) and the reserve in force. */
  async read(): Promise<{ free: number; reserve: number }> {
    const s = await statfs(this.dir);
    this.reserveBytes ??= defaultReserve(s.blocks * s.bsize);
    return { free: s.bavail * s.bsize, reserve: this.reserveBytes };
  }

  /** Bytes that may still be written before the reserve is reached (0 or more). */
  async budget(): Promise<number> {
    const { free, reserve } = await this.read();
    return Math.max(0, free - reserve);
  }

  /** Throws StorageFullError when the reserve is already reached. */
  async check(): Promise<void> {
    const { free, reserve } = await this.read();
    if (free <= reserve) throw new StorageFullError('reserve', free, reserve);
  }

  /**
   * A per-write meter: `take(n)` resolves when `n` more bytes fit above the reserve and throws
   * StorageFullError when they do not. Free space is read again every `refreshBytes`.
   */
  meter(): { take(n: number): Promise<void> } {
    let left = -1;
    let sinceRead = 0;
    return {
      take: async (n: number) => {
        if (left < n || sinceRead >= this.refreshBytes) {
          left = await this.budget();
          sinceRead = 0;
          if (left < n) {
            const { free, reserve } = await this.read();
            throw new StorageFullError('reserve', free, reserve);
          }
        }
        left -= n;
        sinceRead += n;
      },
    };
  }

  /** A StorageFullError for a write the filesystem refused (with the free space now). */
  async fullError(): Promise<StorageFullError> {
    const { free, reserve } = await this.read().catch(() => ({ free: 0, reserve: 0 }));
    return new StorageFullError('full', free, reserve);
  }
}
