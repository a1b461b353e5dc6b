// Small stored content (manifests, configs) kept in memory by digest, least recently used out first,
// within a byte budget. Content is addressed by its digest, so an entry never goes stale: whether a
// manifest may be served is decided by the metadata before its bytes are looked up here.
import type { Digest } from '../oci/digest.js';

export class ContentCache {
  private readonly entries = new Map<Digest, Buffer>();
  private bytes = 0;

  constructor(private readonly budget = 8 * 1024 * 1024, private readonly maxEntry = 256 * 1024) {}

  get(d: Digest): Buffer | undefined {
    const b = this.entries.get(d);
    if (b) {
      // Most recently used last.
      this.entries.delete(d);
      this.entries.set(d, b);
    }
    return b;
  }

  put(d: Digest, b: Buffer): void {
    if (b.length > this.maxEntry || this.entries.has(d)) return;
    this.entries.set(d, b);
    this.bytes += b.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.budget) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }
}
