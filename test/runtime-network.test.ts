// Outbound network access of container groups on the runc runtime (slirp4netns, src/runtime/runc/outbound.ts),
// against the real runc and slirp4netns: a container fetches a page from an HTTP server this test runs
// on the host's 127.0.0.1 (through host.berth.internal = 10.0.2.2), while the metadata address still
// answers only its own group and published ports still work; resolv.conf and hosts; the network stack
// survives a kill -9 of the server and is adopted, is restarted when it died, and no slirp4netns is left
// after deleteSandbox; `outbound: false` runs groups without it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { BuiltLayer } from '../src/image/layer.js';
import { HOST_ALIAS, OUTBOUND_NET } from '../src/runtime/runc/outbound.js';
import { processesWith } from '../src/runtime/runc/proc.js';
import { RuncRuntime, runcUnavailable } from '../src/runtime/runc/runc-runtime.js';
import type { Sandbox, SandboxSpec, Task } from '../src/runtime/runtime.js';
import { killedServerGroup } from './helpers/killed-server.js';
import { busyboxLayer, busyboxPath, imageWorkDir, pulledImage } from './helpers/runtime-images.js';

const slirpMissing = await promisify(execFile)('slirp4netns', ['--version']).then(() => undefined, () => 'slirp4netns is not installed (apt-get install slirp4netns)');
const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed') ?? slirpMissing;
if (skip) console.log(`# skipping runtime-network tests: ${skip}`);

const BIG = 50 * 1024 * 1024;

let dataDir: string;
let work: string;
let rt: RuncRuntime;
let base: BuiltLayer;
let server: http.Server;
let hostPort: number;
const groups = new Map<string, RuncRuntime>();

async function sandbox(spec: SandboxSpec, runtime = rt): Promise<Sandbox> {
  groups.set(spec.groupId, runtime);
  return runtime.createSandbox(spec);
}

/** Runs `sh -c script` as a container of the group to its end: exit code and output. */
async function sh(sb: Sandbox, name: string, script: string, runtime = rt): Promise<{ code: number; log: string; task: Task }> {
  const task = await runtime.create(sb, { name, image: pulledImage([base], {}), env: [], command: ['sh', '-c', script] });
  await runtime.start(task);
  const exit = await runtime.wait(task);
  return { code: exit.exitCode, log: await readFile(task.logPath, 'utf8'), task };
}

/** The slirp4netns processes attached to a group's namespace. */
const stacksOf = (groupId: string) => processesWith('--netns-type=path', join(dataDir, 'runtime', 'groups', groupId, 'netns'));

const hostUrl = (path: string) => `http://${HOST_ALIAS}:${hostPort}${path}`;

describe('outbound network of container groups (runc + slirp4netns)', { skip }, () => {
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'berth-net-'));
    work = await imageWorkDir();
    base = await busyboxLayer(work);
    rt = new RuncRuntime({ dataDir: join(dataDir, 'runtime') });
    const chunk = randomBytes(1024 * 1024);
    server = http.createServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(BIG) });
        let left = BIG / chunk.length;
        const more = () => {
          while (left > 0) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        return more();
      }
      res.end(`hello from the host, ${req.url}\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hostPort = (server.address() as AddressInfo).port;
  });

  after(async () => {
    for (const [g, runtime] of groups) await runtime.deleteSandbox(g).catch((e: Error) => console.log(`# cleanup of ${g}: ${e.message}`));
    await rt?.close();
    server?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('a container reaches a server on the host\'s 127.0.0.1 through host.berth.internal; resolv.conf and hosts', async () => {
    const sb = await sandbox({ groupId: 'g-out', ports: [] });
    const r = await sh(sb, 'client', `wget -q -O - ${hostUrl('/a')} && wget -q -O - http://${OUTBOUND_NET.gateway}:${hostPort}/b && ` +
      'cat /etc/resolv.conf && cat /etc/hosts && hostname && ip -o -4 addr show dev tap0');
    assert.equal(r.code, 0, r.log);
    const [a, b, ...rest] = r.log.split('\n');
    assert.equal(a, 'hello from the host, /a');
    assert.equal(b, 'hello from the host, /b');
    const text = rest.join('\n');
    assert.match(text, /^nameserver 10\.0\.2\.3$/m);
    assert.doesNotMatch(text, /^nameserver (?!10\.0\.2\.3$)/m, 'the only resolver is slirp\'s');
    assert.match(text, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(text, new RegExp(`^10\\.0\\.2\\.2\\t${HOST_ALIAS.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(text, /^127\.0\.0\.1\tclient$/m, 'the hostname resolves to loopback');
    assert.match(text, /^client$/m);
    assert.match(text, /inet 10\.0\.2\.100\/24/);
    assert.equal((await stacksOf('g-out')).length, 1, 'one slirp4netns for the group');
  });

  test('names resolve through slirp\'s DNS forwarder like on the host', async (t) => {
    const name = 'deb.debian.org';
    const onHost = await dns.resolve4(name).catch(() => undefined);
    if (!onHost) return t.skip(`the host cannot resolve ${name} either (no DNS here)`);
    const sb = await sandbox({ groupId: 'g-out', ports: [] });
    const r = await sh(sb, 'dns', `nslookup ${name}`);
    assert.equal(r.code, 0, r.log);
    assert.match(r.log, /Server:\s+10\.0\.2\.3/);
    assert.ok(onHost.some((ip) => r.log.includes(ip)), `${r.log} names none of ${onHost.join(', ')}`);
  });

  test('a 50 MiB download from the host arrives whole', async () => {
    const sb = await sandbox({ groupId: 'g-out', ports: [] });
    const r = await sh(sb, 'big', `wget -q -O - ${hostUrl('/big')} | wc -c`);
    assert.equal(r.code, 0, r.log);
    assert.equal(r.log.trim(), String(BIG));
  });

  test('the metadata address answers only the group holding the identity; published ports still work', async () => {
    const calls: string[] = [];
    const url = 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net';
    const withId = await sandbox({
      groupId: 'g-id',
      ports: [{ port: 80, protocol: 'TCP' }],
      identityEndpoint: async (req) => {
        calls.push(req.path);
        return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"access_token":"tok-g-id"}' };
      },
    });
    const web = await rt.create(withId, { name: 'web', image: pulledImage([base], {}), env: [], command: ['httpd', '-f', '-p', '80', '-h', '/www'] });
    await rt.start(web);
    const r = await sh(withId, 'c', `wget -q -O - --header 'Metadata: true' '${url}' && echo && wget -q -O - ${hostUrl('/id')}`);
    assert.equal(r.code, 0, r.log);
    assert.equal(r.log, '{"access_token":"tok-g-id"}\nhello from the host, /id\n');
    let page: string | undefined;
    for (let i = 0; i < 100 && page === undefined; i++) {
      page = await fetch(`http://127.0.0.1:${withId.hostPorts[80]}/`).then((x) => x.text(), () => undefined);
      if (page === undefined) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(page, 'hello from busybox httpd\n', 'the published port');

    const noId = await sandbox({ groupId: 'g-noid', ports: [] });
    // (No -T: busybox 1.35's wget crashes with it. These fail at once: unreachable routes, not timeouts.)
    const n = await sh(noId, 'c', `wget -q -O - ${hostUrl('/noid')}; wget -q -O - --header 'Metadata: true' '${url}' || echo "metadata: failed"; ` +
      'wget -q -O - http://169.254.1.1/ || echo "link-local: failed"; wget -q -O - http://168.63.129.16/ || echo "wireserver: failed"');
    // runc copies the container's stdout and stderr through two pipes: their lines may interleave out of order.
    assert.match(n.log, /^hello from the host, \/noid$/m, 'the host is reachable from a group without an identity');
    for (const [what, ip] of [['metadata', '169.254.169.254'], ['link-local', '169.254.1.1'], ['wireserver', '168.63.129.16']]) {
      assert.match(n.log, new RegExp(`^${what}: failed$`, 'm'));
      assert.match(n.log, new RegExp(`\\(${ip.replace(/\./g, '\\.')}\\): No route to host$`, 'm'));
    }
    assert.doesNotMatch(n.log, /tok-g-id/);
    assert.deepEqual(calls, ['/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net']);
  });

  test('kill -9 of the server: the network stack survives and is adopted; one that died is restarted', async () => {
    groups.set('g-killed', rt);
    const sb = await killedServerGroup(join(dataDir, 'runtime'), base);
    const [stack, ...others] = await stacksOf('g-killed');
    assert.ok(stack, 'slirp4netns survives the server');
    assert.deepEqual(others, []);

    const next = new RuncRuntime({ dataDir: join(dataDir, 'runtime') });
    try {
      const client: Task = { groupId: 'g-killed', name: 'client', logPath: '' };
      const fetchFromHost = async (path: string) => {
        const out = new PassThrough();
        let got = '';
        out.on('data', (d) => (got += d));
        const code = (await next.exec(client, ['wget', '-q', '-O', '-', hostUrl(path)], { stdout: out, stderr: out })).exitCode;
        return { code, got };
      };
      assert.deepEqual(await fetchFromHost('/after-kill'), { code: 0, got: 'hello from the host, /after-kill\n' }, 'outbound works before the new server adopts the group');
      await next.createSandbox({ groupId: 'g-killed', ports: [{ port: 80, protocol: 'TCP' }] });
      assert.deepEqual(await stacksOf('g-killed'), [stack], 'the running stack is adopted, not replaced');

      process.kill(stack, 'SIGKILL');
      for (let i = 0; i < 50 && (await stacksOf('g-killed')).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.notEqual((await fetchFromHost('/dead')).code, 0, 'no outbound access while the stack is dead');
      await next.createSandbox({ groupId: 'g-killed', ports: [{ port: 80, protocol: 'TCP' }] });
      const restarted = await stacksOf('g-killed');
      assert.equal(restarted.length, 1);
      assert.notEqual(restarted[0], stack);
      assert.deepEqual(await fetchFromHost('/restarted'), { code: 0, got: 'hello from the host, /restarted\n' });
      assert.equal(sb.groupId, 'g-killed');

      await next.deleteSandbox('g-killed');
      groups.delete('g-killed');
      assert.deepEqual(await stacksOf('g-killed'), [], 'no slirp4netns left after deleteSandbox');
    } finally {
      await next.close();
    }
  });

  test('deleteSandbox stops the slirp4netns of the group', async () => {
    const sb = await sandbox({ groupId: 'g-del', ports: [{ port: 8080, protocol: 'TCP' }] });
    assert.equal((await sh(sb, 'c', `wget -q -O - ${hostUrl('/del')}`)).log, 'hello from the host, /del\n');
    const [pid] = await stacksOf('g-del');
    assert.ok(pid);
    await rt.deleteSandbox('g-del');
    groups.delete('g-del');
    assert.deepEqual(await stacksOf('g-del'), []);
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    assert.ok(stat === undefined || /\) Z /.test(stat), `slirp4netns ${pid} still runs`);
    await rt.deleteSandbox('g-del'); // idempotent
  });

  test('outbound: false runs the group without a network stack: loopback and the metadata address only', async () => {
    const off = new RuncRuntime({ dataDir: join(dataDir, 'runtime'), outbound: false });
    try {
      // An existing group with a stack loses it when the runtime runs without outbound access.
      const sb = await sandbox({ groupId: 'g-out', ports: [] }, off);
      assert.deepEqual(await stacksOf('g-out'), []);
      const r = await sh(sb, 'offline', `wget -q -O - http://${OUTBOUND_NET.gateway}:${hostPort}/off || echo failed; cat /etc/resolv.conf; grep -c ${HOST_ALIAS} /etc/hosts`, off);
      assert.match(r.log, /^failed$/m);
      assert.match(r.log, /\(10\.0\.2\.2\): Network is unreachable$/m);
      assert.doesNotMatch(r.log, /hello from the host/);
      assert.doesNotMatch(r.log, /^nameserver/m);
      assert.match(r.log, /^0$/m);
      // And gets it back with the default runtime.
      await sandbox({ groupId: 'g-out', ports: [] });
      assert.equal((await stacksOf('g-out')).length, 1);
      assert.equal((await sh(sb, 'online', `wget -q -O - ${hostUrl('/on')}`)).log, 'hello from the host, /on\n');
    } finally {
      await off.close();
    }
  });

  test('a missing slirp4netns fails the group with what to do, and leaves nothing behind', async () => {
    const broken = new RuncRuntime({ dataDir: join(dataDir, 'runtime'), slirp4netns: '/nonexistent/slirp4netns' });
    try {
      await assert.rejects(broken.createSandbox({ groupId: 'g-noslirp', ports: [] }), (e: Error) =>
        /slirp4netns is not installed/.test(e.message) && /apt-get install slirp4netns/.test(e.message) && /--no-outbound/.test(e.message));
      await assert.rejects(access(join(dataDir, 'runtime', 'groups', 'g-noslirp')));
    } finally {
      await broken.close();
    }
  });
});
