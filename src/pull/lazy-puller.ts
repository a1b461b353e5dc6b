// The server's puller, loaded on its first pull. Importing undici 7 (the pull client's HTTP stack)
// installs its Agent as the process-wide dispatcher of Node 20's built-in fetch (undici's lib/global.js
// sets Symbol.for('undici.globalDispatcher.1')); a process that only starts Berth (every in-process test)
// keeps Node's own fetch until something is really pulled.
import type { PullerOptions, RegistryPuller } from './puller.js';
import type { ImagePuller, PulledImage, PullOptions } from './types.js';

export class LazyPuller implements ImagePuller {
  private loaded: Promise<RegistryPuller> | undefined;

  constructor(private readonly opts: PullerOptions) {}

  /** The real puller (for resolve(), download() and its content store). */
  get(): Promise<RegistryPuller> {
    return (this.loaded ??= import('./puller.js').then((m) => new m.RegistryPuller(this.opts)));
  }

  async pull(reference: string, opts: PullOptions): Promise<PulledImage> {
    return (await this.get()).pull(reference, opts);
  }

  /** Whether the image can be pulled (manifest, config, layer HEADs), without downloading layers. */
  async check(reference: string, opts: PullOptions): Promise<void> {
    return (await this.get()).check(reference, opts);
  }

  async close(): Promise<void> {
    if (this.loaded) await (await this.loaded).close();
  }
}
