// The ARM client's HTTP transport on node:http/https: a CLI command makes a handful of small JSON
// requests, and node:http costs ~10 ms where loading undici costs ~60-120 ms of every command's start-up.
// HTTPS trusts the system roots plus Berth's CA (as trustBerthCa does for undici), with keep-alive.
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { berthCaPem } from './trust.js';

export interface HeaderView { get(name: string): string | null }

export interface SimpleResponse {
  status: number;
  ok: boolean;
  statusText: string;
  headers: HeaderView;
  text(): Promise<string>;
}

let http: HttpAgent | undefined;
let https: HttpsAgent | undefined;

/** One request with a small string body; the response body is read by text(). Network errors reject (with .code). */
export function simpleRequest(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<SimpleResponse> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  if (!secure && u.protocol !== 'http:') return Promise.reject(Object.assign(new Error(`unsupported URL scheme ${u.protocol}`), { code: 'ERR_INVALID_URL_SCHEME' }));
  const headers: Record<string, string | number> = { ...init.headers };
  if (init.body !== undefined) headers['Content-Length'] = Buffer.byteLength(init.body);
  let agent: HttpAgent;
  if (secure) {
    const pem = berthCaPem();
    agent = https ??= new HttpsAgent({ keepAlive: true, ...(pem ? { ca: [...rootCertificates, pem] } : {}) });
  } else {
    agent = http ??= new HttpAgent({ keepAlive: true });
  }
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(u, { method: init.method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      const body = new Promise<string>((ok, fail) => {
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
        res.on('error', fail);
      });
      body.catch(() => undefined);
      const status = res.statusCode ?? 0;
      resolve({
        status,
        ok: status >= 200 && status < 300,
        statusText: res.statusMessage ?? '',
        headers: {
          get: (name) => {
            const v = res.headers[name.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
          },
        },
        text: () => body,
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
