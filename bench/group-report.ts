// The container-group section of `npm run bench`'s table (bench/groups.ts measures it).
import type { GroupsBenchResult, StartTimes } from './groups.js';

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);

export function printGroups(g: GroupsBenchResult, out: (s?: string) => void, table: (rows: string[][]) => string): void {
  out();
  out(`Container groups: create-to-first-log-line of a busybox group (\`/bin/busybox echo ready\`), image from one docker-registry ` +
    `on loopback (plain HTTP), median of ${g.runs}. Cold = image cached nowhere (fresh berth serve data directory, fresh podman ` +
    '--root, docker rmi); warm = cached.');
  out('Berth API = PUT (undici, token in hand), the long-running operation polled until it ends, then the logs API until it holds ' +
    'the line; Berth CLI = `berth container create … --restart-policy Never` (CLI start-up, PUT, its polling) until the logs API, ' +
    'polled every 50 ms after the CLI returns, holds the line; podman/docker = `run --rm` from spawn until the line is on stdout ' +
    '(podman --runtime=runc --cgroup-manager=cgroupfs, with slirp4netns as a Berth group has outbound network, and with none; ' +
    'docker = a private dockerd without a bridge, so --network none).');
  const row = (t: StartTimes) => [t.label, f2(t.cold), f2(t.warm)];
  const ratio = (a: StartTimes, b: StartTimes) => [`${a.label} / ${b.label}`, `${f2(a.cold / b.cold)}×`, `${f2(a.warm / b.warm)}×`];
  out(table([
    ['', 'cold s', 'warm s'],
    row(g.berthApi),
    row(g.berth),
    row(g.podman),
    row(g.podmanNone),
    row(g.docker),
    ratio(g.berthApi, g.podman),
    ratio(g.berth, g.podman),
    ratio(g.berthApi, g.docker),
  ]));
  out(`(of the Berth CLI's times, the \`container create\` CLI took ${f2(g.berth.createCold!)} s cold, ${f2(g.berth.createWarm!)} s warm; ` +
    'a user who then runs `berth container logs` adds one more CLI start-up.)');
  const f = g.fanOut;
  const gets = Object.entries(f.blobGets).map(([d, n]) => `${d.slice(0, 19)}… ×${n}`).join(', ');
  out(`Fan-out: ${f.groups} groups created at once (parallel PUTs) from one image through a counting proxy: all logged "ready" ` +
    `${f2(f.seconds)} s after the first PUT; blob GETs: ${gets || 'none'}; manifest GETs: ${f.manifestGets}. ` +
    (f.ok ? 'Each blob fetched once.' : 'A BLOB WAS FETCHED MORE THAN ONCE.'));
  const l = g.list;
  const lat = (x: typeof l.show) => [f1(x.medianMs), f1(x.p95Ms), String(x.samples)];
  out(`With ${l.groups} groups stored (stopped), over HTTP (no CLI start-up); a subscription-wide list answer is ${f1(l.listBytes / 1e6)} MB:`);
  out(table([
    ['', 'median ms', 'p95 ms', 'requests'],
    ['container list (subscription)', ...lat(l.listSubscription)],
    ['container list -g (resource group)', ...lat(l.listResourceGroup)],
    ['container show', ...lat(l.show)],
  ]));
}
