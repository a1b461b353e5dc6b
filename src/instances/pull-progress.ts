// A container's image pull as it goes, for its instance view: "Pulling image: 12 MiB of 60 MiB, 2 of 5
// layers" in currentState.detailStatus while it waits, so `container show` and the portal show
// progress. Reports at most every `intervalMs` (each one is a state save), and whenever a layer ends.
import type { PullProgress } from '../pull/types.js';
import { formatBytes } from '../lib/bytes.js';

export function pullStatusReporter(report: (detail: string) => void, opts: { intervalMs?: number; now?: () => number } = {}): PullProgress {
  const interval = opts.intervalMs ?? 500;
  const now = opts.now ?? Date.now;
  const layers = new Map<string, { size: number; bytes: number; done: boolean }>();
  let last = -Infinity;
  const emit = (force: boolean) => {
    const t = now();
    if (!force && t - last < interval) return;
    last = t;
    let total = 0;
    let have = 0;
    let done = 0;
    for (const l of layers.values()) {
      total += l.size;
      have += l.done ? l.size : Math.min(l.bytes, l.size);
      if (l.done) done++;
    }
    report(`Pulling image: ${formatBytes(have)} of ${formatBytes(total)}, ${done} of ${layers.size} layers`);
  };
  return {
    layerStart(layer) {
      if (!layers.has(layer.digest)) layers.set(layer.digest, { size: layer.size, bytes: 0, done: false });
      emit(false);
    },
    layerProgress(layer, bytes) {
      const l = layers.get(layer.digest);
      if (l) l.bytes += bytes;
      emit(false);
    },
    layerDone(layer) {
      const l = layers.get(layer.digest) ?? { size: layer.size, bytes: layer.size, done: true };
      l.done = true;
      layers.set(layer.digest, l);
      emit(true);
    },
  };
}
