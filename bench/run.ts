// `npm run bench`: push and pull of a ~300 MB image (5 random layers) with skopeo, Berth against the
// reference registry (`docker-registry`, i.e. distribution) on the same machine in the same run. Prints
// MB/s for both, the ratio, and each server's peak resident memory, which must stay flat: a registry
// that streams blobs holds a few chunks per request, whatever the layer size.
//
// Each run starts the server afresh in an empty data directory, so every push uploads every blob
// (nothing to skip or cross-mount) and every pull downloads them into an empty `dir:` directory. The
// servers alternate (B R, R B, B R …) so drift on the machine does not favour either.
//
// Environment: BENCH_LAYER_MB (default 60; MB = 10^6 bytes of random data per layer), BENCH_LAYERS
// (default 5), BENCH_RUNS (default 3, runs per server; the median is reported), BENCH_PULL=0 skips the
// pull-client section (berth pull vs skopeo copy, bench/pull.ts), BENCH_GROUPS=0 the container-group
// section (cold and warm start of a busybox group vs podman run and docker run, and N groups pulling one
// image at once, bench/groups.ts; BENCH_GROUPS_FANOUT sets N, default 50; then list/show latency with
// BENCH_GROUPS_STORED groups stored, default 1000, bench/group-list.ts), BENCH_REGISTRY=0 the registry
// figures (bench/registry.ts: manifest HEAD/GET with wrk for BENCH_WRK_SECONDS, default 5;
// BENCH_CONCURRENT_PULLS skopeo pulls at once, default 100; RSS through one BENCH_BIG_GB blob, default 5,
// 0 skips it).
// The image, the servers' data and the pulled copies live under $TMPDIR (default /tmp), so disk speed
// counts, as it does in production; TMPDIR=/dev/shm takes the disk out of the measurement.
// Flags: --json  prints only a JSON summary on stdout (the table and progress go to stderr), e.g.
//        `npm run -s bench -- --json`.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAYER_MEDIA_TYPE, writeBenchImage, type BenchImage } from './image.js';
import { Cleanup, RssSampler, procCpuSeconds, procStatusKb, run, sleep, which } from './proc.js';
import { berth, reference, referenceTls, referenceVersion, type ServerKind } from './servers.js';
import { pullBench, pullBenchSkipReason, type PullBenchResult } from './pull.js';
import { groupsBench, groupsBenchSkipReason, type GroupsBenchResult } from './groups.js';
import { printGroups } from './group-report.js';
import { registryBench, registryBenchSkipReason, type RegistryBenchResult } from './registry.js';
import { printRegistry } from './registry-report.js';

interface RunRecord {
  round: number;
  pushSeconds: number;
  pullSeconds: number;
  /** VmRSS after start-up and registry creation, before the push (bytes). */
  baselineRss: number;
  peakRssPush: number;
  peakRssPull: number;
  /** VmHWM at the end: the process's peak over its whole life, start-up included (bytes). */
  hwm: number;
  cpuPushSeconds: number;
  cpuPullSeconds: number;
}

interface Summary {
  label: string;
  runs: RunRecord[];
  pushSeconds: number;
  pullSeconds: number;
  pushMBps: number;
  pullMBps: number;
  baselineRss: number;
  peakRss: number;
  /** Largest (peak − baseline) of any run. */
  rssGrowth: number;
  hwm: number;
  cpuPushSeconds: number;
  cpuPullSeconds: number;
}

const MB = 1e6;
const json = process.argv.includes('--json');
const out = (s = '') => (json ? process.stderr : process.stdout).write(s + '\n');
const progress = (s: string) => process.stderr.write(s + '\n');

function envInt(name: string, def: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, not "${raw}"`);
  return n;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0);

async function checkPull(dir: string, image: BenchImage): Promise<void> {
  // skopeo's dir: transport names blobs by their hex digest; it has already verified each digest.
  const names = new Set(await readdir(dir));
  for (const l of [...image.layers, image.config]) {
    const hex = l.digest.slice('sha256:'.length);
    if (!names.has(hex)) throw new Error(`pulled image in ${dir} lacks blob ${l.digest}`);
    const size = (await stat(join(dir, hex))).size;
    if (size !== l.size) throw new Error(`pulled blob ${l.digest} has ${size} bytes, expected ${l.size}`);
  }
}

async function oneRun(kind: ServerKind, image: BenchImage, round: number, tmp: string, cleanup: Cleanup): Promise<RunRecord> {
  // Flush dirty pages left by the previous run (image generation, a registry that does not fsync, the
  // last pull) so their writeback does not land inside this run's timings.
  if (which('sync')) await run('sync', []);
  const server = await kind.start(await mkdtemp(join(tmp, `${kind.key}-data-`)), cleanup);
  const sampler = new RssSampler(server.pid, 100);
  try {
    await sleep(1_000); // let start-up work (JIT, first GC, SQLite) settle before the baseline
    const baselineKb = procStatusKb(server.pid, 'VmRSS') ?? 0;
    const cpu0 = procCpuSeconds(server.pid) ?? 0;
    const creds = `${server.username}:${server.password}`;
    const target = `docker://${server.registry}/bench/img:v1`;
    const redact = [server.password];
    sampler.start();

    const push = await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${image.dir}:${image.tag}`, target], { redact })
      .catch((e: Error) => { throw new Error(`${e.message}\n--- ${kind.label} output ---\n${server.output()}`); });
    const peakPushKb = sampler.takePeak();
    const cpu1 = procCpuSeconds(server.pid) ?? 0;

    // A directory that does not exist yet: skopeo's dir: destination reuses blobs already in it.
    const pullDir = join(tmp, `pull-${kind.key}-${round}`);
    const removePull = cleanup.dir(pullDir);
    const pull = await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, target, `dir:${pullDir}`], { redact })
      .catch((e: Error) => { throw new Error(`${e.message}\n--- ${kind.label} output ---\n${server.output()}`); });
    const peakPullKb = sampler.takePeak();
    const cpu2 = procCpuSeconds(server.pid) ?? 0;
    const hwmKb = procStatusKb(server.pid, 'VmHWM') ?? 0;
    await checkPull(pullDir, image);
    await removePull();

    return {
      round,
      pushSeconds: push.seconds,
      pullSeconds: pull.seconds,
      baselineRss: baselineKb * 1024,
      peakRssPush: peakPushKb * 1024,
      peakRssPull: peakPullKb * 1024,
      hwm: hwmKb * 1024,
      cpuPushSeconds: cpu1 - cpu0,
      cpuPullSeconds: cpu2 - cpu1,
    };
  } finally {
    sampler.stop();
    await server.stop();
  }
}

function summarize(label: string, runs: RunRecord[], totalBytes: number): Summary {
  const pushSeconds = median(runs.map((r) => r.pushSeconds));
  const pullSeconds = median(runs.map((r) => r.pullSeconds));
  return {
    label,
    runs,
    pushSeconds,
    pullSeconds,
    pushMBps: totalBytes / MB / pushSeconds,
    pullMBps: totalBytes / MB / pullSeconds,
    baselineRss: median(runs.map((r) => r.baselineRss)),
    peakRss: max(runs.map((r) => Math.max(r.peakRssPush, r.peakRssPull))),
    rssGrowth: max(runs.map((r) => Math.max(r.peakRssPush, r.peakRssPull) - r.baselineRss)),
    hwm: max(runs.map((r) => r.hwm)),
    cpuPushSeconds: median(runs.map((r) => r.cpuPushSeconds)),
    cpuPullSeconds: median(runs.map((r) => r.cpuPullSeconds)),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => max(rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const mb = (bytes: number) => (bytes / MB).toFixed(0);

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('usage: npm run bench [-- --json]\nenv: BENCH_LAYER_MB (60), BENCH_LAYERS (5), BENCH_RUNS (3), BENCH_REGISTRY=0, BENCH_CONCURRENT_PULLS (100), BENCH_BIG_GB (5), BENCH_WRK_SECONDS (5), BENCH_PULL=0, BENCH_GROUPS=0, BENCH_GROUPS_FANOUT (50), BENCH_GROUPS_STORED (1000)\n');
    return 0;
  }
  const missing = ['skopeo', 'docker-registry', 'htpasswd'].filter((t) => !which(t));
  if (missing.length) {
    out(`bench: skipped — ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not installed ` +
      '(skopeo: the client; docker-registry: the reference registry; htpasswd from apache2-utils: its password file).');
    return 0;
  }
  const layerMB = envInt('BENCH_LAYER_MB', 60, 0.001);
  const layerCount = Math.floor(envInt('BENCH_LAYERS', 5, 1));
  const runs = Math.floor(envInt('BENCH_RUNS', 3, 1));
  const layerBytes = Math.round(layerMB * MB);

  const cleanup = new Cleanup();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`bench: ${sig}, cleaning up`);
    void cleanup.runAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const tmp = await mkdtemp(join(tmpdir(), 'berth-bench-'));
    cleanup.dir(tmp);
    const skopeoVersion = (await run('skopeo', ['--version'])).stdout.trim().replace(/^skopeo version\s*/, '');
    const refVersion = await referenceVersion();

    progress(`bench: writing ${layerCount} layers × ${layerMB} MB of random data (gzip level 0) to ${join(tmp, 'image')} …`);
    const genStart = Date.now();
    const image = await writeBenchImage(join(tmp, 'image'), layerCount, layerBytes);
    progress(`bench: image ready in ${f1((Date.now() - genStart) / 1000)} s, ${f1(image.totalBytes / MB)} MB per transfer`);

    // skopeo speaks HTTPS to every Berth port (each offers it), so the reference offers it too: same work.
    const refKind = process.env.BENCH_REFERENCE_TLS === '0' ? reference : referenceTls;
    const kinds = [berth, refKind];
    const records = new Map<ServerKind, RunRecord[]>(kinds.map((k) => [k, []]));
    for (let round = 0; round < runs; round++) {
      for (const kind of round % 2 ? [...kinds].reverse() : kinds) {
        const r = await oneRun(kind, image, round, tmp, cleanup);
        records.get(kind)!.push(r);
        progress(`bench: run ${round + 1}/${runs} ${kind.label.padEnd(15)} push ${f2(r.pushSeconds)} s (${f1(image.totalBytes / MB / r.pushSeconds)} MB/s), ` +
          `pull ${f2(r.pullSeconds)} s (${f1(image.totalBytes / MB / r.pullSeconds)} MB/s), ` +
          `RSS ${mb(r.baselineRss)} → ${mb(Math.max(r.peakRssPush, r.peakRssPull))} MB`);
      }
    }

    const b = summarize('Berth', records.get(berth)!, image.totalBytes);
    const ref = summarize(`${refKind.label} ${refVersion}`.trim(), records.get(refKind)!, image.totalBytes);
    const ratio = { push: b.pushMBps / ref.pushMBps, pull: b.pullMBps / ref.pullMBps };

    out();
    out(`skopeo ${skopeoVersion} push + pull of ${layerCount} layer${layerCount > 1 ? 's' : ''} × ${layerMB} MB random data (gzip level 0): ` +
      `${f1(image.totalBytes / MB)} MB per transfer.`);
    out(`Median of ${runs} run${runs > 1 ? 's' : ''} per server, each on a fresh server and data directory. MB = 10^6 bytes. ` +
      'RSS from /proc/<pid>/status (VmRSS polled every 100 ms; VmHWM = life-time peak). skopeo uses HTTPS with both servers ' +
      `(${refKind === referenceTls ? 'docker-registry with a self-signed P-256 certificate; BENCH_REFERENCE_TLS=0 serves it plain HTTP' : 'BENCH_REFERENCE_TLS=0: docker-registry over plain HTTP, Berth over HTTPS'}). ` +
      'Server CPU s per GB = user + system CPU seconds of the server process per 10^9 bytes moved.');
    out();
    const row = (s: Summary) => [s.label, f2(s.pushSeconds), f1(s.pushMBps), f2(s.pullSeconds), f1(s.pullMBps),
      mb(s.baselineRss), mb(s.peakRss), mb(s.rssGrowth), mb(s.hwm), `${f1(s.cpuPushSeconds)} / ${f1(s.cpuPullSeconds)}`];
    out(table([
      ['', 'push s', 'push MB/s', 'pull s', 'pull MB/s', 'RSS base MB', 'RSS peak MB', 'growth MB', 'VmHWM MB', 'server CPU s push / pull'],
      row(b),
      row(ref),
      ['Berth / reference', '', `${f2(ratio.push)}×`, '', `${f2(ratio.pull)}×`],
    ]));
    const perGB = (s: Summary) => ({ push: s.cpuPushSeconds / (image.totalBytes / 1e9), pull: s.cpuPullSeconds / (image.totalBytes / 1e9) });
    const cpuGB = { berth: perGB(b), reference: perGB(ref) };
    out(`Server CPU s per GB, push / pull: Berth ${f2(cpuGB.berth.push)} / ${f2(cpuGB.berth.pull)}, ${ref.label} ${f2(cpuGB.reference.push)} / ${f2(cpuGB.reference.pull)}; ` +
      `Berth / reference ${f2(cpuGB.berth.push / cpuGB.reference.push)}× / ${f2(cpuGB.berth.pull / cpuGB.reference.pull)}×`);
    out();
    // A server that buffers a blob grows by at least one layer (skopeo 1.9 sends the layers one after
    // the other); one that streams grows by its runtime's working set, tens of MB whatever the size.
    const verdict = (s: Summary) => layerBytes < 40 * MB
      ? `peak ${mb(s.rssGrowth)} MB above baseline (no verdict: layers under 40 MB are within runtime noise)`
      : s.rssGrowth < layerBytes
        ? `flat: peak ${mb(s.rssGrowth)} MB above baseline, less than one ${mb(layerBytes)} MB layer (streams)`
        : `GROWS by ${mb(s.rssGrowth)} MB, at least one ${mb(layerBytes)} MB layer: blobs are buffered in memory`;
    out(`Berth RSS: ${verdict(b)}`);
    out(`Reference RSS: ${verdict(ref)}`);

    // Registry figures: manifest requests with wrk, concurrent pulls, RSS with one large blob.
    let registry: RegistryBenchResult | undefined;
    const registrySkip = process.env.BENCH_REGISTRY === '0' ? 'BENCH_REGISTRY=0' : registryBenchSkipReason();
    if (registrySkip) {
      out(`Registry figures: skipped (${registrySkip}).`);
    } else {
      registry = await registryBench({ berth, reference: referenceTls }, tmp, cleanup, {
        pulls: Math.floor(envInt('BENCH_CONCURRENT_PULLS', 100, 1)),
        bigGB: envInt('BENCH_BIG_GB', 5, 0),
        wrkSeconds: envInt('BENCH_WRK_SECONDS', 5, 1),
      }, progress);
      printRegistry(registry, out);
    }

    // The pull client: berth pull vs skopeo copy of the same image from the same (reference) registry.
    let pullClient: PullBenchResult | undefined;
    const pullSkip = process.env.BENCH_PULL === '0' ? 'BENCH_PULL=0' : pullBenchSkipReason();
    if (pullSkip) {
      out(`Pull client: skipped (${pullSkip}).`);
    } else {
      pullClient = await pullBench(image, tmp, cleanup, runs, progress);
      out();
      out(`Pull client: berth pull --to vs skopeo copy docker://… oci:… of the same ${f1(image.totalBytes / MB)} MB image from docker-registry, ` +
        `median of ${runs}, CPU = user + system s of the client process, peak RSS = its maxrss.`);
      const crow = (c: PullBenchResult['berth']) => [c.label, f2(c.seconds), f1(c.MBps), f2(c.cpuSeconds), f1(c.peakRssMB)];
      out(table([
        ['', 'seconds', 'MB/s', 'CPU s', 'peak RSS MB'],
        crow(pullClient.berth),
        crow(pullClient.skopeo),
        ['berth / skopeo', '', `${f2(pullClient.ratio)}×`, `${f2(pullClient.berth.cpuSeconds / pullClient.skopeo.cpuSeconds)}×`, `${f2(pullClient.berth.peakRssMB / pullClient.skopeo.peakRssMB)}×`],
      ]));
    }

    // Container groups: create-to-first-log-line, Berth vs podman run vs docker run; and the fan-out.
    let groups: GroupsBenchResult | undefined;
    const groupsSkip = process.env.BENCH_GROUPS === '0' ? 'BENCH_GROUPS=0' : groupsBenchSkipReason();
    if (groupsSkip) {
      out(`Container groups: skipped (${groupsSkip}).`);
    } else {
      groups = await groupsBench(tmp, cleanup, runs, progress);
      printGroups(groups, out, table);
    }

    if (json) {
      process.stdout.write(JSON.stringify({
        ...(pullClient ? { pullClient } : {}),
        ...(groups ? { groups } : {}),
        ...(registry ? { registry } : {}),
        image: { layers: layerCount, layerMB, layerMediaType: LAYER_MEDIA_TYPE, gzipLevel: 0, totalBytes: image.totalBytes },
        runsPerServer: runs,
        skopeo: skopeoVersion,
        berth: b,
        reference: ref,
        ratio,
        cpuPerGB: { berth: perGB(b), reference: perGB(ref) },
      }, null, 2) + '\n');
    }
    return 0;
  } finally {
    if (!interrupted) await cleanup.runAll();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
