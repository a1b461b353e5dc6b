// Reference-counted holds on keys (digests, layer keys): what a garbage collection must not remove
// while a pull or a container create is using it. Each hold is released once, however often its
// release function is called.
export class PinSet {
  private readonly counts = new Map<string, number>();

  /** Holds every key until the returned function is called. */
  pin(keys: Iterable<string>): () => void {
    const held = [...new Set(keys)];
    for (const k of held) this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of held) {
        const n = (this.counts.get(k) ?? 1) - 1;
        if (n > 0) this.counts.set(k, n);
        else this.counts.delete(k);
      }
    };
  }

  has(key: string): boolean {
    return this.counts.has(key);
  }
}
