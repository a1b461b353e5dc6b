// Berth on the real runc runtime for container-group tests: the runtime opened in <dir>/runtime, the
// server over the same data directory with a test puller and a short back-off, and a teardown that
// deletes every group and removes the directories.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startBerth, type RunningBerth } from '../../src/platform/berth.js';
import { openRuncRuntime, type RuncRuntime, type RuncRuntimeOptions } from '../../src/runtime/runc/runc-runtime.js';
import type { ImagePuller } from '../../src/pull/types.js';

export async function openTestRuntime(dir: string, opts: Omit<Partial<RuncRuntimeOptions>, 'dataDir'> = {}): Promise<RuncRuntime> {
  const opened = await openRuncRuntime({ ...opts, dataDir: join(dir, 'runtime') });
  if ('unavailable' in opened) throw new Error(opened.unavailable);
  return opened.runtime;
}

/** Starts Berth on `dir` with `runtime` and `puller`; resource group `rg` exists. */
export async function startRuncBerth(dir: string, runtime: RuncRuntime, puller: ImagePuller): Promise<RunningBerth> {
  const b = await startBerth({ dataDir: dir, port: 0, logSink: () => undefined, runtime, puller, reconciler: { backoff: { baseMs: 200, maxMs: 400 } } });
  b.groups.createOrUpdate('rg', 'westus');
  return b;
}

export async function stopRuncBerth(b: RunningBerth, runtime: RuncRuntime, dirs: string[]): Promise<void> {
  for (const g of b.containerGroups.list()) await b.containerGroups.delete(g.resourceGroup, g.name);
  await b.stop();
  await runtime.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
