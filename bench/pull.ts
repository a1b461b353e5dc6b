// Client bench: `berth pull REF --to DIR` against `skopeo copy docker://REF oci:DIR` of the same image
// from the same registry (the reference docker-registry, so neither client talks to its own server),
// alternating B S, S B … in one run. Each client runs under /usr/bin/time for its wall time, user + system
// CPU seconds and peak RSS (maxrss of the whole process); Berth starts with an empty content store every
// run, so both download every blob.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchImage } from './image.js';
import { Cleanup, run, which } from './proc.js';
import { BERTH_BIN, reference } from './servers.js';

export interface ClientRecord {
  seconds: number;
  cpuSeconds: number;
  maxRssKb: number;
}

export interface ClientSummary {
  label: string;
  runs: ClientRecord[];
  seconds: number;
  MBps: number;
  cpuSeconds: number;
  peakRssMB: number;
}

export interface PullBenchResult {
  berth: ClientSummary;
  skopeo: ClientSummary;
  /** CLI start-up: `berth --version` against `node -e 0` (medians of 5: CPU s and peak RSS MB). */
  startup: { berthVersion: { cpuSeconds: number; peakRssMB: number }; node: { cpuSeconds: number; peakRssMB: number } };
  /** Berth MB/s ÷ skopeo MB/s (above 1: Berth is faster). */
  ratio: number;
}

const MB = 1e6;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function timed(cmd: string[], env: NodeJS.ProcessEnv, redact: string[], timeFile: string): Promise<ClientRecord> {
  await run('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, ...cmd], { env, redact });
  const [e, u, s, m] = (await readFile(timeFile, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
  return { seconds: e!, cpuSeconds: u! + s!, maxRssKb: m! };
}

async function manifestDigest(layout: string): Promise<string> {
  return (JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0]!.digest;
}

export function pullBenchSkipReason(): string | undefined {
  if (!which('time') && !which('/usr/bin/time')) return '/usr/bin/time (Debian package "time") is not installed';
  return undefined;
}

export async function pullBench(image: BenchImage, tmp: string, cleanup: Cleanup, runs: number,
  progress: (s: string) => void): Promise<PullBenchResult> {
  const server = await reference.start(await mkdtemp(join(tmp, 'pull-registry-')), cleanup);
  try {
    const creds = `${server.username}:${server.password}`;
    const ref = `${server.registry}/bench/pull:v1`;
    const redact = [server.password];
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${image.dir}:${image.tag}`, `docker://${ref}`], { redact });
    const records = { berth: [] as ClientRecord[], skopeo: [] as ClientRecord[] };
    const clients = {
      berth: async (round: number) => {
        const dataDir = await mkdtemp(join(tmp, `pull-berth-data-${round}-`));
        const out = join(tmp, `pull-berth-${round}`);
        try {
          const r = await timed([process.execPath, BERTH_BIN, 'pull', ref, '--to', out, '--creds', creds, '--only-show-errors', '-o', 'none'],
            { ...process.env, BERTH_DATA_DIR: dataDir }, redact, join(tmp, 'time.txt'));
          if (await manifestDigest(out) !== image.manifest.digest) throw new Error(`berth pull wrote ${await manifestDigest(out)}, expected ${image.manifest.digest}`);
          return r;
        } finally {
          await rm(out, { recursive: true, force: true });
          await rm(dataDir, { recursive: true, force: true });
        }
      },
      skopeo: async (round: number) => {
        const out = join(tmp, `pull-skopeo-${round}`);
        try {
          const r = await timed(['skopeo', 'copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${ref}`, `oci:${out}:v1`], process.env, redact, join(tmp, 'time.txt'));
          if (await manifestDigest(out) !== image.manifest.digest) throw new Error(`skopeo wrote ${await manifestDigest(out)}, expected ${image.manifest.digest}`);
          return r;
        } finally {
          await rm(out, { recursive: true, force: true });
        }
      },
    };
    for (let round = 0; round < runs; round++) {
      const order: Array<'berth' | 'skopeo'> = round % 2 ? ['skopeo', 'berth'] : ['berth', 'skopeo'];
      for (const k of order) {
        if (which('sync')) await run('sync', []);
        const r = await clients[k](round);
        records[k].push(r);
        progress(`bench: pull client run ${round + 1}/${runs} ${k.padEnd(6)} ${r.seconds.toFixed(2)} s (${(image.totalBytes / MB / r.seconds).toFixed(1)} MB/s), ` +
          `CPU ${r.cpuSeconds.toFixed(2)} s, peak RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB`);
      }
    }
    const summary = (label: string, rs: ClientRecord[]): ClientSummary => {
      const seconds = median(rs.map((r) => r.seconds));
      return { label, runs: rs, seconds, MBps: image.totalBytes / MB / seconds, cpuSeconds: median(rs.map((r) => r.cpuSeconds)), peakRssMB: Math.max(...rs.map((r) => r.maxRssKb)) * 1024 / MB };
    };
    const b = summary('berth pull', records.berth);
    const s = summary('skopeo copy', records.skopeo);
    const startup = async (cmd: string[]) => {
      const rs: ClientRecord[] = [];
      for (let i = 0; i < 5; i++) rs.push(await timed(cmd, process.env, [], join(tmp, 'time.txt')));
      return { cpuSeconds: median(rs.map((r) => r.cpuSeconds)), peakRssMB: median(rs.map((r) => r.maxRssKb)) * 1024 / MB };
    };
    const st = { berthVersion: await startup([process.execPath, BERTH_BIN, '--version']), node: await startup([process.execPath, '-e', '0']) };
    progress(`bench: CLI start-up: berth --version ${st.berthVersion.cpuSeconds.toFixed(2)} CPU s, ${st.berthVersion.peakRssMB.toFixed(0)} MB; ` +
      `node -e 0 ${st.node.cpuSeconds.toFixed(2)} CPU s, ${st.node.peakRssMB.toFixed(0)} MB`);
    return { berth: b, skopeo: s, startup: st, ratio: b.MBps / s.MBps };
  } finally {
    await server.stop();
  }
}
