// Container groups end to end on the real runc runtime (src/runtime/runc): a busybox httpd group
// answers on its published port, a command group's logs and exit code, restart per policy, and delete
// leaves nothing running. The image comes from a puller test double that hands over a busybox image
// built here (test/helpers/runtime-images.ts); the real pull client is wired in at merge. Exec over
// ACI's websocket protocol, as az speaks it, against a real container.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import type { RunningBerth } from '../src/platform/berth.js';
import { runcUnavailable, type RuncRuntime } from '../src/runtime/runc/runc-runtime.js';
import type { ImagePuller, PulledImage } from '../src/pull/types.js';
import { PullError } from '../src/pull/types.js';
import type { BuiltLayer } from '../src/image/layer.js';
import { busyboxLayer, busyboxPath, imageWorkDir, pulledImage } from './helpers/runtime-images.js';
import { execSocket, ownerToken, postExec } from './helpers/exec-socket.js';
import { runCli } from './helpers/berth.js';
import { openTestRuntime, startBerthOn, stopRuncBerth } from './helpers/runc-berth.js';

const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed');
if (skip) console.log(`# skipping instances-runc tests: ${skip}`);

let b: RunningBerth;
let dir: string;
let work: string;
let runtime: RuncRuntime;
let layer: BuiltLayer;

/** Test double of the pull client: `localhost/busybox:*` is the busybox image built here; anything else is unknown. */
const puller: ImagePuller = {
  async pull(reference: string): Promise<PulledImage> {
    if (!reference.startsWith('localhost/busybox:')) throw new PullError('MANIFEST_UNKNOWN', 'manifest unknown: manifest unknown', `no such image ${reference}`);
    return pulledImage([layer], { cmd: ['/bin/sh'] }, reference);
  },
};

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  work = await imageWorkDir();
  layer = await busyboxLayer(work);
  runtime = await openTestRuntime(dir);
  b = await startBerthOn(dir, runtime, puller);
});
after(async () => {
  if (skip) return;
  await stopRuncBerth(b, runtime, [dir, work]);
});

const doc = (command: string[], restartPolicy: string, ports: number[] = []) => ({
  location: 'westus',
  properties: { osType: 'Linux', restartPolicy,
    ...(ports.length ? { ipAddress: { type: 'Public', ports: ports.map((port) => ({ port })) } } : {}),
    containers: [{ name: 'app', properties: { image: 'localhost/busybox:1', command, ports: ports.map((port) => ({ port })), resources: { requests: { cpu: 0.5, memoryInGB: 0.25 } } } }] },
});

async function createAndWait(name: string, body: unknown) {
  const { operation } = await b.containerGroups.createOrUpdate('rg', name, body);
  while (b.containerGroups.operation(operation.id)!.status === 'InProgress') await new Promise((r) => setTimeout(r, 50));
  return b.containerGroups.operation(operation.id)!;
}

/** Polls a condition a bounded number of times (a process's progress, not a timing assertion). */
async function eventually<T>(what: string, f: () => T | undefined | Promise<T | undefined>, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen`);
}

test('S1-style: a busybox httpd group answers on its published port; delete leaves nothing running', { skip }, async () => {
  const op = await createAndWait('web', doc(['httpd', '-f', '-p', '80', '-h', '/www'], 'Always', [80]));
  assert.equal(op.status, 'Succeeded', JSON.stringify(op.error));
  const shown = b.containerGroups.resource(await b.containerGroups.get('rg', 'web'));
  const ip = shown.properties.ipAddress!;
  const hostPort = (ip.ports[0] as { hostPort?: number }).hostPort ?? 80;
  const page = await eventually('the page', async () => {
    try {
      const res = await fetch(`http://${ip.ip}:${hostPort}/`);
      return res.ok ? await res.text() : undefined;
    } catch { return undefined; }
  });
  assert.equal(page, 'hello from busybox httpd\n');
  const id = (await b.containerGroups.get('rg', 'web')).id;
  await b.containerGroups.delete('rg', 'web');
  assert.equal((await runtime.list()).some((g) => g.groupId === id), false);
});

test('a command group: logs, exit code, restart per OnFailure with back-off, then Terminated', { skip }, async () => {
  // Exits 3 every time: OnFailure restarts it with back-off (200 ms, 400 ms here) until it is stopped.
  const op = await createAndWait('job', doc(['sh', '-c', 'echo working; echo oops >&2; exit 3'], 'OnFailure'));
  assert.equal(op.status, 'Succeeded', JSON.stringify(op.error));
  const g = await eventually('two restarts', async () => {
    const x = await b.containerGroups.get('rg', 'job');
    return x.state.containers.app!.restartCount >= 2 ? x : undefined;
  });
  const cs = g.state.containers.app!;
  assert.equal(cs.previousState!.state, 'Terminated');
  assert.equal(cs.previousState!.exitCode, 3);
  const backoff = cs.events.find((e) => e.name === 'BackOff')!;
  assert.match(backoff.message, /last error: exited with code 3 \(Error\); last output: .*oops/);
  assert.match(await b.containerGroups.logs('rg', 'job', 'app'), /working\n/);
  await b.containerGroups.stop('rg', 'job');
  const stopped = await b.containerGroups.get('rg', 'job');
  assert.equal(stopped.state.state, 'Stopped');

  const once = await createAndWait('once', doc(['sh', '-c', 'echo done; exit 0'], 'Never'));
  assert.equal(once.status, 'Succeeded');
  const fin = await eventually('the exit', async () => {
    const x = await b.containerGroups.get('rg', 'once');
    return x.state.containers.app!.currentState?.state === 'Terminated' ? x : undefined;
  });
  assert.equal(fin.state.containers.app!.currentState!.exitCode, 0);
  assert.equal(fin.state.state, 'Succeeded');
  assert.equal(await b.containerGroups.logs('rg', 'once', 'app'), 'done\n');
});

test('a Berth restart adopts the running httpd group: same port, still serving, then restarted per policy when killed', { skip }, async () => {
  const op = await createAndWait('keep', doc(['httpd', '-f', '-p', '80', '-h', '/www'], 'Always', [80]));
  assert.equal(op.status, 'Succeeded');
  const before = b.containerGroups.resource(await b.containerGroups.get('rg', 'keep')).properties.ipAddress!;
  const port = (before.ports[0] as { hostPort?: number }).hostPort ?? 80;
  const get = async () => { try { const r = await fetch(`http://${before.ip}:${port}/`); return r.ok ? r.text() : undefined; } catch { return undefined; } };
  await eventually('the page', get);
  // Server and runtime go away; the container keeps running.
  await b.stop();
  await runtime.close();
  runtime = await openTestRuntime(dir);
  b = await startBerthOn(dir, runtime, puller);
  assert.equal(await get(), 'hello from busybox httpd\n', 'served across the restart');
  const g = await b.containerGroups.get('rg', 'keep');
  assert.equal(g.state.containers.app!.events.filter((e) => e.name === 'Created').length, 1);
  assert.equal(g.state.containers.app!.events.find((e) => e.name === 'Created')!.count, 1, 'adopted, not created again');
  // The adopted container is watched: when it dies, Always restarts it.
  const task = { groupId: g.id, name: 'app', logPath: g.state.containers.app!.logPath! };
  await runtime.kill(task, 'SIGKILL');
  await eventually('the restart', async () => ((await b.containerGroups.get('rg', 'keep')).state.containers.app!.restartCount >= 1 ? true : undefined));
  await eventually('the page again', get);
});

test('an unknown image is refused at create with InaccessibleImage', { skip }, async () => {
  await assert.rejects(b.containerGroups.createOrUpdate('rg', 'nope', { ...doc(['true'], 'Never'), properties: { ...doc(['true'], 'Never').properties,
    containers: [{ name: 'app', properties: { image: 'localhost/nothing:1', resources: { requests: { cpu: 1, memoryInGB: 1 } } } }] } }),
  (e: { code?: string; message: string }) => e.code === 'InaccessibleImage' && /manifest unknown/.test(e.message));
});

test('exec over the websocket as az does it (password first, then keystrokes), on http and https; bad passwords and reused sessions get nothing', { skip }, async () => {
  const op = await createAndWait('shell', doc(['sleep', '1000'], 'Always'));
  assert.equal(op.status, 'Succeeded', JSON.stringify(op.error));
  const token = await ownerToken(b);
  const exec = async (base: string, command: string) => {
    const r = await postExec(b, base, token, 'rg', 'shell', 'app', command);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { webSocketUri: string; password: string };
  };

  // Plain HTTP: ws://, cat with az's keystrokes. The emulated terminal echoes them, turns Enter (\r) into
  // a newline and ^D into end of input; output newlines come as CR LF.
  const plain = await exec(b.url, 'cat');
  assert.match(plain.webSocketUri, /^ws:\/\/127\.0\.0\.1:\d+\/berth\/exec-sockets\/[0-9a-f-]{36}$/);
  assert.ok(!plain.webSocketUri.includes(plain.password));
  const cat = await execSocket(plain.webSocketUri, plain.password, { input: [...'hello\r', '\x04'] });
  assert.equal(cat.output, 'hello\r\nhello\r\n');
  assert.ok(cat.frames.every((f) => f.text), 'text frames: az writes them to stdout as str');
  assert.deepEqual([cat.code, cat.reason], [1000, 'exit code 0']);

  // The session was used: the same URI and password get nothing more.
  const again = await execSocket(plain.webSocketUri, plain.password, { input: ['hello\r'] });
  assert.deepEqual([again.output, again.code], ['', 1008]);

  // HTTPS (trusting Berth's CA): wss://, a shell; the exit code comes in the close reason.
  const secure = await exec(b.httpsUrl!, '/bin/sh');
  assert.match(secure.webSocketUri, /^wss:\/\/localhost:\d+\/berth\/exec-sockets\//);
  const sh = await execSocket(secure.webSocketUri, secure.password, { ca: b.tls!.ca, input: [...'echo "$((6 * 7)) $(hostname)"\r', ...'exit 3\r'] });
  assert.match(sh.output, /^echo "\$\(\(6 \* 7\)\) \$\(hostname\)"\r\n/);
  assert.match(sh.output, /\r\n42 \S+\r\n/);
  assert.deepEqual([sh.code, sh.reason], [1000, 'exit code 3']);

  // A wrong password: closed with a policy violation, the command never runs, no output.
  const wrong = await exec(b.url, 'sh -c "echo should-not-run"');
  const denied = await execSocket(wrong.webSocketUri, wrong.password.slice(1) + 'x', { input: ['echo hi\r'] });
  assert.deepEqual([denied.output, denied.frames.length, denied.code], ['', 0, 1008]);
  // ... and the session is gone: the right password after a wrong one gets nothing either.
  const late = await execSocket(wrong.webSocketUri, wrong.password);
  assert.deepEqual([late.output, late.code], ['', 1008]);

  // Berth's raw mode (its CLI): bytes as they are in binary frames, an empty message ends stdin.
  const rawSession = await exec(b.url, 'cat');
  const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13, 10, 4]);
  const raw = await execSocket(rawSession.webSocketUri, rawSession.password, { protocol: 'berth-exec-raw', input: [bytes, Buffer.alloc(0)] });
  assert.deepEqual(raw.bytes, bytes);
  assert.ok(raw.frames.every((f) => !f.text));
  assert.deepEqual([raw.code, raw.reason], [1000, 'exit code 0']);
});

test('a client that goes away hangs its exec up: the command ends', { skip }, async () => {
  const op = await createAndWait('hangup', doc(['sleep', '1000'], 'Always'));
  assert.equal(op.status, 'Succeeded', JSON.stringify(op.error));
  const token = await ownerToken(b);
  const ps = async () => {
    let out = '';
    await b.containerGroups.exec('rg', 'hangup', 'app', ['ps', '-o', 'pid,args'], { stdout: new Writable({ write(c, _e, cb) { out += c; cb(); } }), stderr: new Writable({ write(_c, _e, cb) { cb(); } }) });
    return out;
  };
  const s = (await postExec(b, b.url, token, 'rg', 'hangup', 'app', 'sleep 2000')).body as { webSocketUri: string; password: string };
  const ws = new WebSocket(s.webSocketUri);
  await new Promise((r) => ws.once('open', r));
  ws.send(s.password);
  await eventually('the exec\'d sleep', async () => ((await ps()).includes('sleep 2000') ? true : undefined));
  ws.terminate();
  await eventually('the hang-up', async () => ((await ps()).includes('sleep 2000') ? undefined : true));
});

test('`berth container exec` over the websocket: piped stdin, both output streams, the exit code; on http and https', { skip }, async () => {
  const op = await createAndWait('cli', doc(['sleep', '1000'], 'Always'));
  assert.equal(op.status, 'Succeeded', JSON.stringify(op.error));
  const cli = (server: string, command: string, input?: string) =>
    runCli(['container', 'exec', '-g', 'rg', '-n', 'cli', '--exec-command', command], { ...process.env, BERTH_SERVER: server, BERTH_DATA_DIR: dir }, input);
  const cat = await cli(b.url, 'cat', 'line one\nline two\n');
  assert.deepEqual([cat.code, cat.stdout, cat.stderr], [0, 'line one\nline two\n', '']);
  const big = 'x'.repeat(1023) + '\n';
  const counted = await cli(b.httpsUrl!, 'wc -c', big.repeat(6 * 1024));
  assert.deepEqual([counted.code, counted.stdout.trim()], [0, String(6 * 1024 * 1024)]);
  const fails = await cli(b.httpsUrl!, "sh -c 'echo out; echo err >&2; exit 5'");
  assert.equal(fails.code, 5);
  assert.deepEqual(fails.stdout.split('\n').sort(), ['', 'err', 'out']);
  assert.equal(fails.stderr, 'ERROR: The command exited with code 5.\n');
  const missing = await cli(b.url, 'no-such-program');
  assert.equal(missing.code, 255, 'runc exec\'s own failure code');
  assert.match(missing.stdout, /executable file not found/);
});

test('attach: the websocket streams the container\'s output from now on and closes when the container stops', { skip }, async () => {
  const op = await createAndWait('ticker', doc(['sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done'], 'Always'));
  assert.equal(op.status, 'Succeeded', JSON.stringify(op.error));
  await eventually('three ticks', async () => ((await b.containerGroups.logs('rg', 'ticker', 'app')).includes('tick 3\n') ? true : undefined));
  const url = `${b.url}/subscriptions/${b.identity.ids.subscriptionId}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/ticker/containers/app/attach?api-version=2023-05-01`;
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${await ownerToken(b)}` } });
  assert.equal(res.status, 200);
  const s = (await res.json()) as { webSocketUri: string; password: string };
  // The swagger's way: the password as the Authorization header.
  const ws = new WebSocket(s.webSocketUri, { headers: { authorization: s.password } });
  let out = '';
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, why) => r({ code, reason: why.toString() })));
  ws.on('message', (d: Buffer) => (out += d.toString()));
  await eventually('live output', () => (/tick \d+\r\n/.test(out) ? true : undefined));
  assert.ok(!out.includes('tick 1\r\n'), 'only output from the attach on');
  await b.containerGroups.stop('rg', 'ticker');
  assert.deepEqual(await closed, { code: 1000, reason: 'The container stopped.' });
});
