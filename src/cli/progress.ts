// Transfer progress on stderr: one bar per blob on a terminal (cli-progress), one line per finished
// blob otherwise, so logs and CI output stay readable.
import { createRequire } from 'node:module';
import type * as CliProgress from 'cli-progress';
import type { Descriptor } from '../oci/manifest.js';
import type { PushProgress } from '../image/push.js';
import type { PullProgress } from '../pull/types.js';
import { formatBytes } from '../lib/bytes.js';

export { formatBytes };

/** cli-progress (~6 MB of a process) is loaded only when bars are drawn, not for quiet or non-terminal runs. */
const cliProgress = (): typeof CliProgress => createRequire(import.meta.url)('cli-progress') as typeof CliProgress;

const short = (d: { digest: string }) => d.digest.slice(d.digest.indexOf(':') + 1, d.digest.indexOf(':') + 13);

export function pushProgress(write: (s: string) => void, opts: { tty: boolean; quiet: boolean }): PushProgress & { stop(): void } {
  if (opts.quiet) return { blobStart() {}, blobProgress() {}, blobDone() {}, stop() {} };
  if (!opts.tty) {
    return {
      blobStart() {},
      blobProgress() {},
      blobDone(d, how) { write(`${short(d)}: ${how === 'exists' ? 'Layer already exists' : `Pushed ${formatBytes(d.size)}`}\n`); },
      stop() {},
    };
  }
  const multi = multiBar();
  const bars = new Map<string, CliProgress.SingleBar>();
  const sizes = new Map<string, number>();
  return {
    blobStart(d) {
      sizes.set(d.digest, 0);
      bars.set(d.digest, multi.create(d.size, 0, { id: short(d), status: 'Preparing', value_h: formatBytes(0), total_h: formatBytes(d.size) }));
    },
    blobProgress(d, n) {
      const v = (sizes.get(d.digest) ?? 0) + n;
      sizes.set(d.digest, v);
      bars.get(d.digest)?.update(v, { status: 'Pushing', value_h: formatBytes(v) });
    },
    blobDone(d, how) {
      bars.get(d.digest)?.update(d.size, { status: how === 'exists' ? 'Layer already exists' : 'Pushed', value_h: formatBytes(d.size) });
    },
    stop() { multi.stop(); },
  };
}

function multiBar(): CliProgress.MultiBar {
  const cp = cliProgress();
  return new cp.MultiBar({
    format: '{id}: {bar} {value_h}/{total_h} {status}',
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    barsize: 30,
    stream: process.stderr,
    formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? formatBytes(v) : String(v)),
  }, cp.Presets.shades_classic);
}

/** One bar per layer while `berth pull` downloads (a line per finished layer without a terminal). */
export function pullProgress(write: (s: string) => void, opts: { tty: boolean; quiet: boolean }): PullProgress & { stop(): void; bytes: number } {
  const state = { bytes: 0 };
  if (opts.quiet || !opts.tty) {
    return {
      get bytes() { return state.bytes; },
      layerProgress(_l, n) { state.bytes += n; },
      layerDone(l, how) { if (!opts.quiet) write(`${short(l)}: ${how === 'cached' ? 'Already exists' : `Pull complete ${formatBytes(l.size)}`}\n`); },
      stop() {},
    };
  }
  const multi = multiBar();
  const bars = new Map<string, CliProgress.SingleBar>();
  const done = new Map<string, number>();
  return {
    get bytes() { return state.bytes; },
    layerStart(l) {
      if (!bars.has(l.digest)) bars.set(l.digest, multi.create(l.size, 0, { id: short(l), status: 'Waiting', value_h: formatBytes(0), total_h: formatBytes(l.size) }));
    },
    layerProgress(l, n) {
      state.bytes += n;
      const v = (done.get(l.digest) ?? 0) + n;
      done.set(l.digest, v);
      bars.get(l.digest)?.update(v, { status: 'Downloading', value_h: formatBytes(v) });
    },
    layerDone(l, how) {
      bars.get(l.digest)?.update(l.size, { status: how === 'cached' ? 'Already exists' : 'Pull complete', value_h: formatBytes(l.size) });
    },
    stop() { multi.stop(); },
  };
}
