// A HEAD load generator for the registry figures: wrk 4.1 cannot measure HEAD (it waits for a body the
// answer does not have, so no request ever completes). Keep-alive HTTPS connections (the certificate
// unchecked, as wrk), one request in flight on each: a HEAD answer is headers only, so it ends at its
// blank line.
import { connect } from 'node:tls';
import type { WrkFigures } from './registry.js';

export async function headLoad(host: string, port: number, path: string, headers: string[], connections: number, seconds: number): Promise<WrkFigures> {
  const request = Buffer.from(`HEAD ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`);
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = connect({ port, host, rejectUnauthorized: false });
    let sent = 0;
    let pending = '';
    const next = () => {
      if (performance.now() >= deadline) {
        s.end();
        resolve();
        return;
      }
      sent = performance.now();
      s.write(request);
    };
    s.setEncoding('latin1');
    s.on('secureConnect', next);
    s.on('data', (d: string) => {
      pending += d;
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        if (!/^HTTP\/1\.1 2\d\d /.test(head)) errors++;
        latencies.push(performance.now() - sent);
        next();
      }
    });
    s.on('error', () => {
      errors++;
      resolve();
    });
    s.on('close', () => resolve());
  });
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, one));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const p99 = latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]! : 0;
  return { requestsPerSecond: latencies.length / elapsed, p99ms: p99, errors };
}
