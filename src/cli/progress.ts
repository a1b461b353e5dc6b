// Transfer progress on stderr: one bar per blob on a terminal (cli-progress), one line per finished
// blob otherwise, so logs and CI output stay readable.
import cliProgress from 'cli-progress';
import type { Descriptor } from '../oci/manifest.js';
import type { PushProgress } from '../image/push.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const short = (d: Descriptor) => d.digest.slice(d.digest.indexOf(':') + 1, d.digest.indexOf(':') + 13);

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
  const multi = new cliProgress.MultiBar({
    format: '{id}: {bar} {value_h}/{total_h} {status}',
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    barsize: 30,
    stream: process.stderr,
    formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? formatBytes(v) : String(v)),
  }, cliProgress.Presets.shades_classic);
  const bars = new Map<string, cliProgress.SingleBar>();
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
