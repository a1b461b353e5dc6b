// An S3 blob store's upload session, as plain objects any replica can read:
//   <prefix>uploads/<id>/session            empty marker written when the session starts
//   <prefix>uploads/<id>/seg-<offset, 16 digits>   the session's bytes from that offset on
// Every segment but the last holds exactly the part size (at least S3's 5 MiB minimum part, so commit can
// assemble the blob with server-side UploadPartCopy); the last may be shorter, and an append that starts
// on a short last segment rewrites it under the same key (an atomic PUT) with the new bytes behind the
// old. So at any moment the segments, walked from offset 0, are a prefix of the bytes received, whichever
// replica wrote them and wherever a process died.

export interface Segment {
  key: string;
  offset: number;
  size: number;
}

export interface SessionListing {
  /** The objects under the session's prefix: key (relative to it), size, last modified. */
  objects: { name: string; size: number; modifiedAt: number }[];
}

export interface SessionState {
  size: number;
  segments: Segment[];
  modifiedAt: number;
}

const SEG = /^seg-(\d{16})$/;

export function segmentName(offset: number): string {
  return `seg-${String(offset).padStart(16, '0')}`;
}

/** The session's state from a listing of its objects, or undefined when it has no marker (no session). */
export function sessionState(sessionPrefix: string, listing: SessionListing): SessionState | undefined {
  let marker = false;
  let modifiedAt = 0;
  const found: Segment[] = [];
  for (const o of listing.objects) {
    modifiedAt = Math.max(modifiedAt, o.modifiedAt);
    if (o.name === 'session') { marker = true; continue; }
    const m = SEG.exec(o.name);
    if (m) found.push({ key: sessionPrefix + o.name, offset: Number(m[1]), size: o.size });
  }
  if (!marker) return undefined;
  found.sort((a, b) => a.offset - b.offset);
  const segments: Segment[] = [];
  let size = 0;
  for (const s of found) {
    // Only a chain from 0 counts; anything else is left over from a write that did not finish.
    if (s.offset !== size || s.size === 0) continue;
    segments.push(s);
    size += s.size;
  }
  return { size, segments, modifiedAt };
}

/**
 * Collects appended bytes into part-sized pieces. `flush` is called with each full piece and, at the end,
 * with the rest; `start` is the offset the first piece is stored at (the short last segment's, when the
 * append continues it).
 */
export class PartBuffer {
  private chunks: Buffer[] = [];
  private length = 0;
  constructor(private offset: number, private readonly partSize: number,
    private readonly flush: (offset: number, bytes: Buffer) => Promise<void>) {}

  get pending(): number { return this.length; }

  async add(chunk: Buffer): Promise<void> {
    this.chunks.push(chunk);
    this.length += chunk.length;
    while (this.length >= this.partSize) {
      const all = Buffer.concat(this.chunks, this.length);
      const part = all.subarray(0, this.partSize);
      await this.flush(this.offset, part);
      this.offset += this.partSize;
      const rest = all.subarray(this.partSize);
      this.chunks = rest.length ? [Buffer.from(rest)] : [];
      this.length = rest.length;
    }
  }

  /** Stores what is left (a short last segment). */
  async end(): Promise<void> {
    if (this.length === 0) return;
    const rest = Buffer.concat(this.chunks, this.length);
    await this.flush(this.offset, rest);
    this.chunks = [];
    this.length = 0;
  }
}
