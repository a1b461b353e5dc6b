// ACI's exec and attach websockets. POST .../containers/{c}/exec (or /attach) answers {webSocketUri,
// password}; the client opens the websocket (on the management API's own port, wss:// or ws:// as the
// POST came in), sends the password as its first message (or as the upgrade's Authorization header,
// as the swagger describes it), then keystrokes; every message it receives is output for its terminal.
// An exec closes the socket when the command exits (1000, reason "exit code N"); an attach when the
// container stops. A wrong password or a used or expired session closes it with 1008 and nothing else.
// Sessions are single-use and expire after a minute.
//
// Two ways to talk: az's (the default) gets text frames and the emulated terminal of exec-terminal.ts,
// since az expects a TTY; a client that offers the subprotocol `berth-exec-raw` (Berth's CLI) gets the
// process's bytes untouched in binary frames, sends stdin as is, and ends stdin with an empty message.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Writable, type Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { ContainerGroups } from '../instances/service.js';
import type { Logger } from '../lib/logger.js';
import { safeEqual } from '../identity/secrets.js';
import { RAW_PROTOCOL, TerminalInput, terminalOutput } from '../instances/exec-terminal.js';

const PATH = '/berth/exec-sockets/';
const SESSION_TTL_MS = 60_000;
/** A client that connects and does not send the password within this time is dropped. */
const PASSWORD_WAIT_MS = 30_000;
const POLICY_VIOLATION = 1008;
const INTERNAL_ERROR = 1011;
const DENIED = 'The exec session does not exist, was used, has expired, or the password is wrong.';

interface Target { rg: string; name: string; container: string }
/** An exec session runs argv; an attach session (no argv) streams the container's output. */
interface Session extends Target { id: string; password: string; expires: number; argv?: string[] }

/** A close reason fits in 123 bytes of UTF-8. */
function reason(text: string): string {
  let r = text;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

const bytes = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));

export class ContainerSockets {
  private readonly sessions = new Map<string, Session>();
  private readonly wss = new WebSocketServer({
    noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(RAW_PROTOCOL) ? RAW_PROTOCOL : false),
  });

  constructor(private readonly cg: ContainerGroups, private readonly log: Logger) {}

  /** A new session (exec when argv is given, else attach); returns its websocket's path (no secret in it) and its password. */
  open(target: Target & { argv?: string[] }): { path: string; password: string } {
    const now = Date.now();
    for (const [k, s] of this.sessions) if (s.expires < now) this.sessions.delete(k);
    const s: Session = { ...target, id: randomUUID(), password: randomBytes(24).toString('base64url'), expires: now + SESSION_TTL_MS };
    this.sessions.set(s.id, s);
    return { path: PATH + s.id, password: s.password };
  }

  /** Takes an HTTP upgrade for a session's path; false when the path is not one of ours. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '').split('?')[0]!;
    if (!path.startsWith(PATH)) return false;
    // Single use: the first connection takes the session, whatever password it then presents.
    const id = path.slice(PATH.length);
    const session = this.sessions.get(id);
    this.sessions.delete(id);
    const auth = req.headers.authorization;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, session, auth));
    return true;
  }

  /** Ends every open session (the server is stopping); their commands are hung up. */
  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
  }

  private connected(ws: WebSocket, session: Session | undefined, auth: string | undefined): void {
    ws.on('error', () => undefined);
    if (!session || session.expires < Date.now()) return ws.close(POLICY_VIOLATION, DENIED);
    // The swagger describes the password as an Authorization header value; az sends it as the first message.
    if (auth !== undefined) {
      if (!safeEqual(auth, session.password)) return ws.close(POLICY_VIOLATION, DENIED);
      return this.run(ws, session);
    }
    const timer = setTimeout(() => ws.close(POLICY_VIOLATION, 'The password did not arrive in time.'), PASSWORD_WAIT_MS);
    ws.once('close', () => clearTimeout(timer));
    ws.once('message', (data) => {
      clearTimeout(timer);
      if (!safeEqual(bytes(data).toString('utf8'), session.password)) return ws.close(POLICY_VIOLATION, DENIED);
      this.run(ws, session);
    });
  }

  private run(ws: WebSocket, s: Session): void {
    if (s.argv) this.exec(ws, s, s.argv);
    else this.attach(ws, s);
  }

  /** Where output goes: text frames through the terminal's CR LF (az), or the bytes in binary frames (raw). Write callbacks wait for the socket. */
  private output(ws: WebSocket, raw: boolean): Writable {
    const send = (data: Buffer | string, cb: () => void) => {
      if (ws.readyState !== WebSocket.OPEN) return cb();
      ws.send(data, { binary: raw }, () => cb());
    };
    const decoder = new StringDecoder('utf8');
    const sendText = (text: string, cb: () => void) => (text ? send(terminalOutput(text), cb) : cb());
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => (raw ? send(chunk, cb) : sendText(decoder.write(chunk), cb)),
      final: (cb) => (raw ? cb() : sendText(decoder.end(), cb)),
    });
  }

  private fields(ws: WebSocket, s: Target) {
    return { group: s.name, resourceGroup: s.rg, container: s.container, mode: ws.protocol === RAW_PROTOCOL ? 'raw' : 'terminal' };
  }

  /** Streams the container's output until it stops or the client leaves; input is ignored. */
  private attach(ws: WebSocket, s: Session): void {
    const output = this.output(ws, ws.protocol === RAW_PROTOCOL);
    const left = new AbortController();
    ws.once('close', () => left.abort());
    const fields = this.fields(ws, s);
    this.log.info('container attach started', fields);
    this.cg.attach(s.rg, s.name, s.container, output, left.signal)
      .then(() => output.end(() => ws.close(1000, 'The container stopped.')))
      .catch((e: Error) => {
        this.log.warn('container attach failed', { ...fields, error: e.message });
        output.end(() => ws.close(INTERNAL_ERROR, reason(e.message)));
      });
  }

  /** Runs the command with the socket as its terminal. Wires stdin synchronously (no message is lost). */
  private exec(ws: WebSocket, s: Session, argv: string[]): void {
    const raw = ws.protocol === RAW_PROTOCOL;
    const stdin = new PassThrough();
    const hangup = new AbortController();
    const endStdin = () => { if (!stdin.writableEnded) stdin.end(); };
    const toStdin = (b: Buffer | string) => {
      if (stdin.writableEnded || stdin.write(b)) return;
      ws.pause();
      stdin.once('drain', () => ws.resume());
    };
    const output = this.output(ws, raw);
    const terminal = new TerminalInput();
    ws.on('message', (data) => {
      const b = bytes(data);
      if (raw) return b.length === 0 ? endStdin() : toStdin(b);
      const r = terminal.input(b.toString('utf8'));
      if (r.echo && ws.readyState === WebSocket.OPEN) ws.send(r.echo);
      if (r.data) toStdin(r.data);
      if (r.eof) endStdin();
      if (r.interrupt) hangup.abort();
    });
    ws.once('close', () => {
      endStdin();
      hangup.abort();
    });
    const fields = this.fields(ws, s);
    this.log.info('container exec started', fields);
    this.cg.exec(s.rg, s.name, s.container, argv, { stdin, stdout: output, stderr: output, signal: hangup.signal })
      .then((code) => {
        this.log.info('container exec ended', { ...fields, exitCode: code });
        output.end(() => ws.close(1000, `exit code ${code}`));
      })
      .catch((e: Error) => {
        this.log.warn('container exec failed', { ...fields, error: e.message });
        output.end(() => ws.close(INTERNAL_ERROR, reason(e.message)));
      });
  }
}
