// Berth on the real runc runtime for container-group tests, two ways:
// - startRuncBerth(opts): a fresh data directory whose puller test double hands over the busybox image
//   built here (test/helpers/runtime-images.ts) for any reference; restart() stops server and runtime,
//   leaving the groups running, and starts both again on the same directory (they adopt the groups);
//   stop() deletes every group and removes the directories.
// - openTestRuntime(dir) + startBerthOn(dir, runtime, puller) + stopRuncBerth(): the runtime opened in
//   <dir>/runtime and the server over the same directory with a given puller and a short back-off.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuiltLayer } from '../../src/image/layer.js';
import { startBerth, type BerthOptions, type RunningBerth } from '../../src/platform/berth.js';
import type { ImagePuller, PulledImage } from '../../src/pull/types.js';
import { openRuncRuntime, type RuncRuntime, type RuncRuntimeOptions } from '../../src/runtime/runc/runc-runtime.js';
import { busyboxLayer, imageWorkDir, pulledImage } from './runtime-images.js';

export async function openTestRuntime(dir: string, opts: Omit<Partial<RuncRuntimeOptions>, 'dataDir'> = {}): Promise<RuncRuntime> {
  const opened = await openRuncRuntime({ ...opts, dataDir: join(dir, 'runtime') });
  if ('unavailable' in opened) throw new Error(opened.unavailable);
  return opened.runtime;
}

/** Starts Berth on `dir` with `runtime` and `puller`; resource group `rg` exists. */
export async function startBerthOn(dir: string, runtime: RuncRuntime, puller: ImagePuller): Promise<RunningBerth> {
  const b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime, puller, reconciler: { backoff: { baseMs: 200, maxMs: 400 } } });
  await b.groups.createOrUpdate('rg', 'westus');
  return b;
}

export async function stopRuncBerth(b: RunningBerth, runtime: RuncRuntime, dirs: string[]): Promise<void> {
  for (const g of await b.containerGroups.list()) await b.containerGroups.delete(g.resourceGroup, g.name);
  await b.stop();
  await runtime.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

export interface RuncBerth {
  b: RunningBerth;
  runtime: RuncRuntime;
  dir: string;
  /**
   * Stops server and runtime, leaving the groups running, runs `meanwhile`, and starts both again on the
   * same directory (they adopt the groups).
   */
  restart(meanwhile?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export async function startRuncBerth(opts: Omit<Partial<BerthOptions>, 'runtime'> & { runtime?: Omit<RuncRuntimeOptions, 'dataDir'> } = {}): Promise<RuncBerth> {
  const { runtime: runtimeOpts, ...berthOpts } = opts;
  const dir = await mkdtemp(join(tmpdir(), 'berth-runc-'));
  const work = await imageWorkDir();
  const layer: BuiltLayer = await busyboxLayer(work);
  const puller: ImagePuller = { pull: async (reference: string): Promise<PulledImage> => pulledImage([layer], { cmd: ['/bin/sh'] }, reference) };
  const open = async () => {
    const opened = await openRuncRuntime({ ...runtimeOpts, dataDir: join(dir, 'runtime') });
    if ('unavailable' in opened) throw new Error(opened.unavailable);
    const b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, puller, ...berthOpts, runtime: opened.runtime });
    return { b, runtime: opened.runtime };
  };
  const rb: RuncBerth = {
    ...(await open()), dir,
    async restart(meanwhile) {
      await rb.b.stop();
      await rb.runtime.close();
      await meanwhile?.();
      Object.assign(rb, await open());
    },
    async stop() {
      for (const g of await rb.b.containerGroups.list()) await rb.b.containerGroups.delete(g.resourceGroup, g.name);
      await rb.b.stop();
      await rb.runtime.close();
      await rm(dir, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    },
  };
  await rb.b.groups.createOrUpdate('rg', 'westus');
  return rb;
}
