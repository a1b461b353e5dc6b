// A websocket client for ACI exec sessions that does what `az container exec` does: opens the
// webSocketUri, sends the password as its first message, then the input messages (keystrokes, as text),
// and collects every message it receives until the server closes the socket.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import type { RunningBerth } from '../../src/platform/berth.js';

export interface ExecSocketResult {
  /** Every received message, in order, joined. */
  output: string;
  /** The same, as bytes. */
  bytes: Buffer;
  /** The messages as received: text frames are strings (az writes them to stdout as they are). */
  frames: Array<{ text: boolean; data: Buffer }>;
  code: number;
  reason: string;
}

export interface ExecSocketOptions {
  /** CA to trust for wss:// URIs. */
  ca?: string;
  /** Messages sent after the password (az sends one keystroke per message). */
  input?: Array<string | Buffer>;
  protocol?: string;
}

export function execSocket(uri: string, password: string, o: ExecSocketOptions = {}): Promise<ExecSocketResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(uri, o.protocol ? [o.protocol] : [], o.ca ? { ca: o.ca } : {});
    const frames: ExecSocketResult['frames'] = [];
    ws.on('error', reject);
    ws.on('open', () => {
      ws.send(password);
      for (const m of o.input ?? []) ws.send(m);
    });
    ws.on('message', (data: Buffer, isBinary) => {
      frames.push({ text: !isBinary, data });
    });
    ws.on('close', (code, reason) => {
      const bytes = Buffer.concat(frames.map((f) => f.data));
      resolve({ output: bytes.toString('utf8'), bytes, frames, code, reason: reason.toString('utf8') });
    });
  });
}

/** A management-API token of the server's owner principal. */
export async function ownerToken(b: RunningBerth): Promise<string> {
  const cred = JSON.parse(readFileSync(join(b.dataDir, 'owner-credential.json'), 'utf8')) as { clientId: string; clientSecret: string };
  const res = await fetch(`${b.url}/${b.identity.ids.tenantId}/oauth2/v2.0/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret, scope: 'https://management.azure.com/.default' }).toString(),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`token request failed: ${res.status}`);
  return body.access_token;
}

/** POST .../containers/{c}/exec as az sends it; `base` picks the scheme (http, or https trusting Berth's CA). */
export function postExec(b: RunningBerth, base: string, token: string, rg: string, name: string, container: string, command: string): Promise<{ status: number; body: any }> {
  const url = new URL(`${base}/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.ContainerInstance/containerGroups/${name}/containers/${container}/exec?api-version=2021-09-01`);
  const body = JSON.stringify({ command, terminalSize: { rows: 24, cols: 80 } });
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      ...(secure ? { ca: b.tls!.ca } : {}),
    }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
