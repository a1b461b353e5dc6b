// Work that runs one piece at a time per key, in the order it was asked for; different keys run side
// by side. For writes that must land in call order on an engine that may run two statements at once
// (a pool of connections): a later snapshot must not be overtaken by an earlier one.
export class KeyedQueue {
  /** Per key, the end of the last piece of work queued (never rejects). */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once everything queued for `key` before it has run; its result or error is the caller's. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves once everything queued for `key` so far has run (whether it succeeded or not). */
  settled(key: string): Promise<void> {
    return this.tails.get(key) ?? Promise.resolve();
  }

  /** Resolves once everything queued so far, for every key, has run. */
  async idle(): Promise<void> {
    await Promise.all(this.tails.values());
  }
}
