// Prints the registry figures of bench/registry.ts as a table with Berth / docker-registry ratios.
import type { RegistryBenchResult, RegistryFigures, WrkFigures } from './registry.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const f0 = (n: number) => n.toFixed(0);
const f2 = (n: number) => n.toFixed(2);
const ratio = (a: number, b: number) => `${f2(a / b)}×`;

export function printRegistry(r: RegistryBenchResult, out: (s?: string) => void): void {
  const b = r.berth;
  const ref = r.reference;
  out();
  out(`Registry: manifest GET with wrk, HEAD with bench/head-load.ts (${r.wrk.connections} connections, ${r.wrk.seconds} s, HTTPS on 127.0.0.1, ` +
    `the auth each server's clients use: Berth ${b.auth}, docker-registry ${ref.auth}); ${b.concurrentPulls.pulls} skopeo pulls ` +
    `of one ${r.pullImageMB.toFixed(0)} MB image at once; server RSS through one large blob pushed and pulled by a streaming client. ` +
    'Everything over HTTPS, docker-registry with a self-signed certificate.');
  const w = (label: string, pick: (f: RegistryFigures) => WrkFigures) => [
    label, f0(pick(b).requestsPerSecond), f0(pick(ref).requestsPerSecond), ratio(pick(b).requestsPerSecond, pick(ref).requestsPerSecond),
    f2(pick(b).p99ms), f2(pick(ref).p99ms), `${pick(b).errors} / ${pick(ref).errors}`,
  ];
  out(table([
    ['', 'Berth req/s', 'ref req/s', 'ratio', 'Berth p99 ms', 'ref p99 ms', 'errors B / ref'],
    w('manifest HEAD', (f) => f.manifestHead),
    w('manifest GET', (f) => f.manifestGet),
  ]));
  const p = (f: RegistryFigures) => `${f2(f.concurrentPulls.seconds)} s, ${f.concurrentPulls.errors} errors`;
  out(`${b.concurrentPulls.pulls} concurrent pulls: Berth ${p(b)}; docker-registry ${p(ref)}; ` +
    `Berth / reference wall time ${ratio(b.concurrentPulls.seconds, ref.concurrentPulls.seconds)}` +
    (b.concurrentPulls.firstError ? `; Berth's first failure: ${b.concurrentPulls.firstError}` : '') +
    (ref.concurrentPulls.firstError ? `; docker-registry's first failure: ${ref.concurrentPulls.firstError}` : ''));
  if (b.bigBlob && ref.bigBlob) {
    const g = (f: NonNullable<RegistryFigures['bigBlob']>) =>
      `push ${f2(f.pushSeconds)} s (${f0(f.bytes / 1e6 / f.pushSeconds)} MB/s), pull ${f2(f.pullSeconds)} s (${f0(f.bytes / 1e6 / f.pullSeconds)} MB/s), ` +
      `RSS ${f0(f.baselineRssMB)} MB before, peak ${f0(f.peakRssPushMB)} MB pushing, ${f0(f.peakRssPullMB)} MB pulling`;
    out(`One ${(b.bigBlob.bytes / 1e9).toFixed(1)} GB blob (one streamed PATCH, then GET): Berth ${g(b.bigBlob)}; docker-registry ${g(ref.bigBlob)}.`);
  }
}
