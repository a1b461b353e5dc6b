// A group's --dns-name-label FQDN, usable from the host (src/instances/dns-names.ts,
// src/instances/hosts-file.ts): with a hosts file kept by Berth (here the real /etc/hosts, in a block
// marked with this test's data directory), two runc groups that both publish port 80 each get a
// loopback address of their own; the system resolver (getaddrinfo, through node's dns.lookup and
// fetch) resolves each FQDN to its group's address, and each answers with its own page. A second group
// cannot take a label in use; deleting the groups leaves /etc/hosts as it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import type { RunningBerth } from '../src/platform/berth.js';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';
import { busyboxPath } from './helpers/runtime-images.js';
import { startRuncBerth, type RuncBerth } from './helpers/runc-berth.js';

const HOSTS = '/etc/hosts';
const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed');
if (skip) console.log(`# skipping dns-names tests: ${skip}`);

let b: RunningBerth;
let rb: RuncBerth | undefined;
let hostsBefore: string;

before(async () => {
  if (skip) return;
  hostsBefore = await readFile(HOSTS, 'utf8');
  rb = await startRuncBerth({ hostsFile: HOSTS });
  b = rb.b;
});

after(async () => rb?.stop());

const label = (n: string) => `dns-${n}-${process.pid}`;
const doc = (name: string) => ({
  location: 'westus',
  properties: { osType: 'Linux', restartPolicy: 'Always',
    ipAddress: { type: 'Public', dnsNameLabel: label(name), ports: [{ port: 80 }] },
    containers: [{ name: 'web', properties: { image: 'localhost/busybox:1', ports: [{ port: 80 }], resources: { requests: { cpu: 0.5, memoryInGB: 0.25 } },
      command: ['sh', '-c', `mkdir -p /w && echo page-${name} > /w/index.html && exec httpd -f -p 80 -h /w`] } }] },
});

async function poll<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
  }
  throw new Error(`${what} did not happen within ${ms / 1000} s`);
}

test('two groups with DNS name labels both on port 80: each FQDN resolves through the system resolver to its own group', { skip }, async () => {
  const shown: Record<string, { ip: string; fqdn: string; ports: Array<{ port: number; hostPort?: number }> }> = {};
  for (const name of ['one', 'two']) {
    const { operation } = await b.containerGroups.createOrUpdate('rg', name, doc(name));
    await poll(`group ${name} provisioned`, async () => ((await b.containerGroups.operation(operation.id))!.status === 'InProgress' ? undefined : true));
    assert.equal((await b.containerGroups.operation(operation.id))!.status, 'Succeeded', JSON.stringify((await b.containerGroups.operation(operation.id))!.error));
    shown[name] = (await b.containerGroups.resource(await b.containerGroups.get('rg', name))).properties.ipAddress as never;
  }
  const one = shown.one!;
  const two = shown.two!;
  assert.equal(one.fqdn, `${label('one')}.westus.containers.localhost`);
  assert.notEqual(one.ip, two.ip, 'each group has an address of its own');
  for (const s of [one, two]) {
    assert.match(s.ip, /^127\./);
    assert.equal(s.ports[0]!.hostPort, undefined, 'port 80 is the group\'s own on its address');
  }
  for (const [name, s] of [['one', one], ['two', two]] as const) {
    const found = await poll(`${s.fqdn} resolving`, async () => {
      const all = await lookup(s.fqdn, { all: true });
      return all.some((a) => a.address === s.ip) ? all : undefined;
    });
    assert.deepEqual(found.map((a) => a.address), [s.ip], 'getaddrinfo gives the group\'s address only');
    const page = await poll(`http://${s.fqdn}/`, async () => {
      const r = await fetch(`http://${s.fqdn}/`);
      return r.ok ? r.text() : undefined;
    });
    assert.equal(page, `page-${name}\n`);
  }

  // A label names one group.
  await assert.rejects(b.containerGroups.createOrUpdate('rg', 'three', doc('one')), (e: Error & { code?: string }) =>
    e.code === 'DnsNameLabelAlreadyInUse' && e.message.includes(`'${label('one')}'`) && e.message.includes("container group 'one'"));

  await b.containerGroups.delete('rg', 'one');
  await poll('the name of the deleted group gone', async () => ((await readFile(HOSTS, 'utf8')).includes(one.fqdn) ? undefined : true));
  assert.ok((await readFile(HOSTS, 'utf8')).includes(`${two.ip}\t${two.fqdn}\n`), 'the other group keeps its name');
  await b.containerGroups.delete('rg', 'two');
  assert.equal(await poll('the hosts file as it was', async () => {
    const now = await readFile(HOSTS, 'utf8');
    return now === hostsBefore ? now : undefined;
  }), hostsBefore, 'deleting the groups leaves /etc/hosts as it was');
});
