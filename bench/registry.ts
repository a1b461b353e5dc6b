// The registry figures beyond the push/pull table (issue 15), Berth against docker-registry on one
// fresh server each: manifest GET requests per second and p99 latency with `wrk` (HEAD with
// ./head-load.ts, as wrk cannot), N skopeo
// pulls of one small image at once (wall time, failures), and the server's RSS while one large blob
// (BENCH_BIG_GB, default 5) is pushed and pulled by a streaming client that generates it on the fly
// (nothing of it is written to disk but the registry's copy, which goes with the server).
import { createHash, randomBytes } from 'node:crypto';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeBenchImage, type BenchImage } from './image.js';
import { Cleanup, RssSampler, procStatusKb, run, sleep, which } from './proc.js';
import type { RunningServer, ServerKind } from './servers.js';
import { headLoad } from './head-load.js';

export interface WrkFigures {
  requestsPerSecond: number;
  p99ms: number;
  /** Non-2xx answers and socket errors. */
  errors: number;
}

export interface RegistryFigures {
  label: string;
  /** How this server's requests authenticated in the wrk runs. */
  auth: string;
  manifestHead: WrkFigures;
  manifestGet: WrkFigures;
  concurrentPulls: { pulls: number; seconds: number; errors: number; firstError?: string };
  bigBlob?: { bytes: number; pushSeconds: number; pullSeconds: number; baselineRssMB: number; peakRssPushMB: number; peakRssPullMB: number };
}

export interface RegistryBenchResult {
  berth: RegistryFigures;
  reference: RegistryFigures;
  wrk: { connections: number; seconds: number };
  pullImageMB: number;
}

const MB = 1e6;
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export function registryBenchSkipReason(): string | undefined {
  return which('wrk') ? undefined : 'wrk is not installed (Debian package wrk)';
}

/** host:port → 127.0.0.1:port: wrk connects to the first address `localhost` resolves to (::1), where neither server listens. */
const loopback = (registry: string) => `127.0.0.1:${registry.split(':').pop()}`;

function basic(s: RunningServer): string {
  return `Basic ${Buffer.from(`${s.username}:${s.password}`).toString('base64')}`;
}

/** A Location header (docker-registry's are absolute URLs) as a path with its query. */
function pathOf(location: string | string[] | undefined): string {
  const u = new URL(String(location), 'http://registry.invalid');
  return u.pathname + u.search;
}

/** GET/POST/PUT/PATCH on the server over HTTPS (the certificate unchecked); resolves with the answer (its body not read). */
function call(s: RunningServer, method: string, path: string, headers: Record<string, string | number>, body?: (req: ClientRequest) => void): Promise<IncomingMessage> {
  const [host, port] = loopback(s.registry).split(':');
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method, path, rejectUnauthorized: false, headers: { Authorization: basic(s), ...headers } }, resolve);
    req.on('error', reject);
    if (body) body(req);
    else req.end();
  });
}

async function text(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function expectStatus(res: IncomingMessage, status: number, what: string): Promise<void> {
  if (res.statusCode === status) {
    res.resume();
    return;
  }
  throw new Error(`${what}: HTTP ${res.statusCode}: ${(await text(res)).slice(0, 300)}`);
}

/**
 * The Authorization header a real client sends on each request: a bearer token from Berth's token
 * endpoint (what skopeo, podman and docker use after the challenge), Basic for docker-registry with
 * htpasswd (it has no token endpoint in this set-up).
 */
async function clientAuth(kind: ServerKind, s: RunningServer, repo: string): Promise<{ header: string; label: string }> {
  if (kind.key !== 'berth') return { header: basic(s), label: 'Basic (htpasswd, bcrypt)' };
  const res = await call(s, 'GET', `/oauth2/token?service=${encodeURIComponent(s.registry)}&scope=${encodeURIComponent(`repository:${repo}:pull`)}`, {});
  if (res.statusCode !== 200) throw new Error(`Berth token endpoint: HTTP ${res.statusCode}: ${await text(res)}`);
  const { token } = JSON.parse(await text(res)) as { token: string };
  return { header: `Bearer ${token}`, label: 'Bearer (token endpoint)' };
}

function parseWrk(out: string): WrkFigures {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  if (!rps || !p99) throw new Error(`could not read wrk's output:\n${out}`);
  const scale = { us: 1e-3, ms: 1, s: 1e3 }[p99[2] as 'us' | 'ms' | 's'];
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  return { requestsPerSecond: Number(rps[1]), p99ms: Number(p99[1]) * scale, errors: non2xx + sockErrors };
}

async function wrk(url: string, headers: string[], connections: number, seconds: number): Promise<WrkFigures> {
  const args = ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--latency'];
  for (const h of headers) args.push('-H', h);
  return parseWrk((await run('wrk', [...args, url])).stdout);
}

/** N `skopeo copy docker://… dir:…` at once; each into its own new directory. */
async function concurrentPulls(s: RunningServer, ref: string, n: number, tmp: string): Promise<RegistryFigures['concurrentPulls']> {
  const dir = await mkdtemp(join(tmp, 'fanout-'));
  const creds = `${s.username}:${s.password}`;
  const started = performance.now();
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) =>
    run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${s.registry}/${ref}`, `dir:${join(dir, String(i))}`], { redact: [s.password] })));
  const seconds = (performance.now() - started) / 1000;
  await rm(dir, { recursive: true, force: true });
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  return { pulls: n, seconds, errors: failed.length, ...(failed[0] ? { firstError: String((failed[0].reason as Error).message).slice(0, 300) } : {}) };
}

/**
 * Pushes one blob of `bytes` generated on the fly (a random 1 MiB block, each copy with its own first
 * 8 bytes) in one streamed PATCH, then pulls it back and checks its digest; samples the server's RSS
 * through both.
 */
async function bigBlob(s: RunningServer, bytes: number): Promise<NonNullable<RegistryFigures['bigBlob']>> {
  const repo = 'bench/big';
  const block = randomBytes(1 << 20);
  const sampler = new RssSampler(s.pid, 100);
  await sleep(500);
  const baselineKb = procStatusKb(s.pid, 'VmRSS') ?? 0;
  sampler.start();
  try {
    const t0 = performance.now();
    const start = await call(s, 'POST', `/v2/${repo}/blobs/uploads/`, { 'Content-Length': 0 });
    await expectStatus(start, 202, 'start upload');
    const location = pathOf(start.headers.location);
    const hash = createHash('sha256');
    const patch = await call(s, 'PATCH', location, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes }, (req) => {
      let sent = 0;
      let n = 0;
      const pump = () => {
        while (sent < bytes) {
          const piece = Buffer.from(block.subarray(0, Math.min(block.length, bytes - sent)));
          piece.writeBigUInt64BE(BigInt(n++), 0);
          hash.update(piece);
          sent += piece.length;
          if (!req.write(piece)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    await expectStatus(patch, 202, 'stream the blob');
    const digest = `sha256:${hash.digest('hex')}`;
    const loc = pathOf(patch.headers.location);
    const put = await call(s, 'PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, { 'Content-Length': 0 });
    await expectStatus(put, 201, 'commit the blob');
    const pushSeconds = (performance.now() - t0) / 1000;
    const peakPushKb = sampler.takePeak();

    const t1 = performance.now();
    const get = await call(s, 'GET', `/v2/${repo}/blobs/${digest}`, {});
    if (get.statusCode !== 200) await expectStatus(get, 200, 'get the blob');
    const back = createHash('sha256');
    let got = 0;
    for await (const c of get) {
      back.update(c as Buffer);
      got += (c as Buffer).length;
    }
    const pullSeconds = (performance.now() - t1) / 1000;
    if (got !== bytes || `sha256:${back.digest('hex')}` !== digest) throw new Error(`the pulled blob differs: ${got} bytes, expected ${bytes} hashing to ${digest}`);
    const peakPullKb = sampler.takePeak();
    return { bytes, pushSeconds, pullSeconds, baselineRssMB: baselineKb * 1024 / MB, peakRssPushMB: peakPushKb * 1024 / MB, peakRssPullMB: peakPullKb * 1024 / MB };
  } finally {
    sampler.stop();
  }
}

async function oneServer(kind: ServerKind, image: BenchImage, tmp: string, cleanup: Cleanup, opts: { connections: number; seconds: number; pulls: number; bigBytes: number }, progress: (s: string) => void): Promise<RegistryFigures> {
  if (which('sync')) await run('sync', []);
  const s = await kind.start(await mkdtemp(join(tmp, `${kind.key}-reg-`)), cleanup);
  try {
    const ref = 'bench/small:v1';
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${s.username}:${s.password}`, `oci:${image.dir}:${image.tag}`, `docker://${s.registry}/${ref}`], { redact: [s.password] });
    // The large blob first, on a server that has served one push only: its RSS is the blob's doing.
    let big: RegistryFigures['bigBlob'];
    if (opts.bigBytes > 0) {
      big = await bigBlob(s, opts.bigBytes);
      progress(`bench: ${kind.label.padEnd(15)} ${(opts.bigBytes / 1e9).toFixed(1)} GB blob: push ${big.pushSeconds.toFixed(1)} s, pull ${big.pullSeconds.toFixed(1)} s, ` +
        `RSS ${big.baselineRssMB.toFixed(0)} → ${big.peakRssPushMB.toFixed(0)} / ${big.peakRssPullMB.toFixed(0)} MB`);
    }
    const auth = await clientAuth(kind, s, 'bench/small');
    const url = `https://${loopback(s.registry)}/v2/bench/small/manifests/v1`;
    const headers = [`Authorization: ${auth.header}`, `Accept: ${MANIFEST_TYPE}`];
    const [host, port] = loopback(s.registry).split(':') as [string, string];
    const manifestHead = await headLoad(host, Number(port), '/v2/bench/small/manifests/v1', headers, opts.connections, opts.seconds);
    const manifestGet = await wrk(url, headers, opts.connections, opts.seconds);
    progress(`bench: ${kind.label.padEnd(15)} manifest HEAD ${manifestHead.requestsPerSecond.toFixed(0)}/s p99 ${manifestHead.p99ms.toFixed(2)} ms, ` +
      `GET ${manifestGet.requestsPerSecond.toFixed(0)}/s p99 ${manifestGet.p99ms.toFixed(2)} ms`);
    const pulls = await concurrentPulls(s, ref, opts.pulls, tmp);
    progress(`bench: ${kind.label.padEnd(15)} ${pulls.pulls} pulls at once: ${pulls.seconds.toFixed(2)} s, ${pulls.errors} failed`);
    return { label: kind.label, auth: auth.label, manifestHead, manifestGet, concurrentPulls: pulls, ...(big ? { bigBlob: big } : {}) };
  } finally {
    await s.stop();
  }
}

export async function registryBench(kinds: { berth: ServerKind; reference: ServerKind }, tmp: string, cleanup: Cleanup,
  env: { pulls: number; bigGB: number; wrkSeconds: number }, progress: (s: string) => void): Promise<RegistryBenchResult> {
  const imageDir = join(tmp, 'small-image');
  const image = await writeBenchImage(imageDir, 5, 2 * MB, 'v1');
  const opts = { connections: 16, seconds: env.wrkSeconds, pulls: env.pulls, bigBytes: Math.round(env.bigGB * 1e9) };
  try {
    const berth = await oneServer(kinds.berth, image, tmp, cleanup, opts, progress);
    const reference = await oneServer(kinds.reference, image, tmp, cleanup, opts, progress);
    return { berth, reference, wrk: { connections: opts.connections, seconds: opts.seconds }, pullImageMB: image.totalBytes / MB };
  } finally {
    await rm(imageDir, { recursive: true, force: true });
  }
}
