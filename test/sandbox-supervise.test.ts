// A running group's helper processes are watched (src/instances/reconciler.ts superviseSandbox over the
// runc runtime's sandboxDown/repairSandbox): against the real runc and slirp4netns, a kill -9 of the
// port forwarder or of slirp4netns is followed, within a deadline, by the port answering again / outbound
// access working again and an event on the group naming what exited and how; a stack that cannot be
// restarted marks the group Failed until it can; one that died while Berth was down is restarted on adoption.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { AciEvent } from '../src/instances/state.js';
import type { RunningBerth } from '../src/platform/berth.js';
import { HOST_ALIAS } from '../src/runtime/runc/outbound.js';
import { processesWith } from '../src/runtime/runc/proc.js';
import { FORWARDER_SCRIPT } from '../src/runtime/runc/publish.js';
import { runcUnavailable, type RuncRuntime } from '../src/runtime/runc/runc-runtime.js';
import { busyboxPath } from './helpers/runtime-images.js';
import { startRuncBerth, type RuncBerth } from './helpers/runc-berth.js';

const slirpMissing = await promisify(execFile)('slirp4netns', ['--version']).then(() => undefined, () => 'slirp4netns is not installed (apt-get install slirp4netns)');
const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed') ?? slirpMissing;
if (skip) console.log(`# skipping sandbox-supervise tests: ${skip}`);

let b: RunningBerth;
let rb: RuncBerth | undefined;
let dir: string;
let wrapperDir: string;
let runtime: RuncRuntime;
let server: http.Server;
let serverPort: number;
/** While this file exists, the slirp4netns wrapper the runtime uses fails as a broken binary would. */
let brokenFlag: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until f gives a value, for at most `ms` (a process's progress, not a timing assertion). */
async function within<T>(ms: number, what: string, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) {
    const v = await f();
    if (v !== undefined) return v;
  }
  throw new Error(`${what} did not happen within ${ms / 1000} s`);
}

async function createRunning(name: string, ports: number[]): Promise<string> {
  const body = {
    location: 'westus',
    properties: { osType: 'Linux', restartPolicy: 'Always',
      ...(ports.length ? { ipAddress: { type: 'Public', ports: ports.map((port) => ({ port })) } } : {}),
      containers: [{ name: 'app', properties: { image: 'localhost/busybox:1', command: ['httpd', '-f', '-p', '80', '-h', '/www'],
        ports: ports.map((port) => ({ port })), resources: { requests: { cpu: 0.5, memoryInGB: 0.25 } } } }] },
  };
  const { operation } = await b.containerGroups.createOrUpdate('rg', name, body);
  await within(30_000, `group ${name} running`, () => (b.containerGroups.operation(operation.id)!.status === 'InProgress' ? undefined : true));
  assert.equal(b.containerGroups.operation(operation.id)!.status, 'Succeeded', JSON.stringify(b.containerGroups.operation(operation.id)!.error));
  return (await b.containerGroups.get('rg', name)).id;
}

const groupDir = (id: string) => join(dir, 'runtime', 'groups', id);
const forwarders = (id: string) => processesWith(FORWARDER_SCRIPT, join(groupDir(id), 'forwarder.json'));
const stacks = (id: string) => processesWith('--netns-type=path', join(groupDir(id), 'netns'));
const groupEvents = async (name: string): Promise<AciEvent[]> => b.containerGroups.resource(await b.containerGroups.get('rg', name)).properties.instanceView!.events as AciEvent[];

async function page(port: number): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}

/** wget from inside the group's container to this test's server on the host: the output, or undefined when it fails. */
async function outbound(groupId: string, path: string): Promise<string | undefined> {
  const out = new PassThrough();
  let got = '';
  out.on('data', (d) => (got += d));
  const r = await runtime.exec({ groupId, name: 'app', logPath: '' }, ['wget', '-q', '-O', '-', `http://${HOST_ALIAS}:${serverPort}${path}`], { stdout: out, stderr: new PassThrough() });
  return r.exitCode === 0 ? got : undefined;
}

describe('helper processes of a running group are restarted when they die', { skip }, () => {
  before(async () => {
    wrapperDir = await mkdtemp(join(tmpdir(), 'berth-supervise-'));
    brokenFlag = join(wrapperDir, 'slirp-broken');
    const wrapper = join(wrapperDir, 'slirp4netns-wrapper');
    await writeFile(wrapper, `#!/bin/sh\nif [ -e '${brokenFlag}' ]; then echo 'slirp4netns: broken for this test' >&2; exit 1; fi\nexec slirp4netns "$@"\n`);
    await chmod(wrapper, 0o755);
    server = http.createServer((req, res) => res.end(`hello from the host, ${req.url}\n`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverPort = (server.address() as AddressInfo).port;
    rb = await startRuncBerth({ runtime: { slirp4netns: wrapper }, reconciler: { helperBackoff: { baseMs: 500, maxMs: 1000 } } });
    ({ b, runtime, dir } = rb);
  });

  after(async () => {
    await rb?.stop();
    server?.close();
    if (wrapperDir) await rm(wrapperDir, { recursive: true, force: true });
  });

  test('kill -9 of the port forwarder: the port answers again on the same host port, and the group says so', async () => {
    const id = await createRunning('web', [80]);
    const ip = b.containerGroups.resource(await b.containerGroups.get('rg', 'web')).properties.ipAddress!;
    const port = (ip.ports[0] as { hostPort?: number }).hostPort ?? 80;
    assert.equal(await within(20_000, 'the page', () => page(port)), 'hello from busybox httpd\n');
    const [fwd, ...more] = await forwarders(id);
    assert.ok(fwd, 'the group has a forwarder');
    assert.deepEqual(more, []);

    process.kill(fwd, 'SIGKILL');
    const restarted = await within(10_000, 'a new forwarder', async () => {
      const now = await forwarders(id);
      return now.length === 1 && now[0] !== fwd ? now[0] : undefined;
    });
    assert.notEqual(restarted, fwd);
    assert.equal(await within(10_000, 'the page again', () => page(port)), 'hello from busybox httpd\n', 'the same host port answers again');
    const ev = await within(5000, 'the event', async () => (await groupEvents('web')).find((e) => e.name === 'Restarted'));
    assert.equal(ev.message, 'Port forwarder for 80/TCP exited (signal SIGKILL); restarted');
    assert.equal(ev.type, 'Warning');
    assert.equal((await b.containerGroups.get('rg', 'web')).state.state, 'Running');
    const rec = JSON.parse(await readFile(join(groupDir(id), 'sandbox.json'), 'utf8')) as { forwarderPid: number };
    assert.equal(rec.forwarderPid, restarted, 'the new forwarder is recorded (a delete stops it)');
    await b.containerGroups.delete('rg', 'web');
    assert.deepEqual(await forwarders(id), [], 'deleting the group stops the restarted forwarder');
  });

  test('a forwarder that died while Berth was down is restarted when the next server adopts the group, with an event', async () => {
    const id = await createRunning('adopted', [80]);
    const ip = b.containerGroups.resource(await b.containerGroups.get('rg', 'adopted')).properties.ipAddress!;
    const port = (ip.ports[0] as { hostPort?: number }).hostPort ?? 80;
    await within(20_000, 'the page', () => page(port));
    const newForwarder = (old: number) => within(10_000, 'a new forwarder', async () => {
      const now = await forwarders(id);
      return now.length === 1 && now[0] !== old ? now[0] : undefined;
    });

    const [first] = await forwarders(id);
    // Killed while no server runs: the next one finds it dead when it adopts the group.
    await rb!.restart(async () => {
      process.kill(first!, 'SIGKILL');
    });
    ({ b, runtime } = rb!);
    await newForwarder(first!);
    assert.equal(await within(10_000, 'the page after the restart', () => page(port)), 'hello from busybox httpd\n');
    const ev = await within(5000, 'the event', async () => (await groupEvents('adopted')).find((e) => e.name === 'Restarted'));
    assert.equal(ev.message, 'Port forwarder for 80/TCP exited; restarted', 'how it ended is unknown: it was no child of this server');
    await b.containerGroups.delete('rg', 'adopted');
  });

  test('kill -9 of slirp4netns: outbound access works again; a stack that cannot start marks the group Failed until it can', async () => {
    const id = await createRunning('out', []);
    assert.equal(await within(10_000, 'outbound access', () => outbound(id, '/before')), 'hello from the host, /before\n');
    const [stack] = await stacks(id);
    assert.ok(stack);

    process.kill(stack, 'SIGKILL');
    await within(10_000, 'a new stack', async () => {
      const now = await stacks(id);
      return now.length === 1 && now[0] !== stack ? true : undefined;
    });
    assert.equal(await within(10_000, 'outbound access again', () => outbound(id, '/again')), 'hello from the host, /again\n');
    const ev = await within(5000, 'the event', async () => (await groupEvents('out')).find((e) => e.name === 'Restarted'));
    assert.equal(ev.message, 'Outbound network (slirp4netns) exited (signal SIGKILL); restarted');
    assert.equal((await b.containerGroups.get('rg', 'out')).state.state, 'Running');

    // Now slirp4netns cannot start: the group is Failed, with the reason, and tried again.
    await writeFile(brokenFlag, '');
    const [second] = await stacks(id);
    process.kill(second!, 'SIGKILL');
    const failed = await within(15_000, 'the Failed state', async () => ((await b.containerGroups.get('rg', 'out')).state.state === 'Failed' ? true : undefined));
    assert.ok(failed);
    const why = (await groupEvents('out')).find((e) => e.name === 'Failed')!;
    assert.match(why.message, /^Outbound network \(slirp4netns\) exited \(signal SIGKILL\); restarting it failed: .*slirp4netns: broken for this test.*; trying again in \d+ s$/);
    assert.equal(await outbound(id, '/broken'), undefined, 'no outbound access meanwhile');

    await rm(brokenFlag);
    await within(15_000, 'the Running state again', async () => ((await b.containerGroups.get('rg', 'out')).state.state === 'Running' ? true : undefined));
    assert.equal(await within(10_000, 'outbound access once more', () => outbound(id, '/restored')), 'hello from the host, /restored\n');
    assert.equal((await stacks(id)).length, 1, 'one stack, not one per attempt');
  });
});
