// The OCI bundle config from an image config merged with a container spec, and the image's User
// resolved against its own /etc/passwd and /etc/group (no runc needed).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildOciSpec, mergeEnv, processArgs } from '../src/runtime/runc/spec.js';
import { resolveUser } from '../src/runtime/runc/user.js';
import type { PulledImage } from '../src/pull/types.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function rootfs(passwd: string, group: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'berth-spec-'));
  dirs.push(d);
  await mkdir(join(d, 'etc'));
  await writeFile(join(d, 'etc', 'passwd'), passwd);
  await writeFile(join(d, 'etc', 'group'), group);
  return d;
}

describe('bundle config', () => {
  test('env: later lists override by name, order of first appearance kept', () => {
    assert.deepEqual(mergeEnv(['PATH=/bin', 'A=1'], ['A=2', 'B=x=y'], ['EMPTY=', 'A=3']), ['PATH=/bin', 'A=3', 'B=x=y', 'EMPTY=']);
  });

  test('command replaces Entrypoint and Cmd; otherwise Entrypoint + Cmd', () => {
    assert.deepEqual(processArgs({ entrypoint: ['/ep'], cmd: ['a'] }), ['/ep', 'a']);
    assert.deepEqual(processArgs({ entrypoint: ['/ep'], cmd: ['a'] }, ['/bin/sh', '-c', 'x']), ['/bin/sh', '-c', 'x']);
    assert.deepEqual(processArgs({ cmd: ['a'] }, []), ['a']);
    assert.throws(() => processArgs({}), /no Entrypoint or Cmd/);
  });

  test('resources, rlimits, namespace path, hosts file', () => {
    const image = { reference: 'r', config: { cmd: ['x'], env: ['HOME=/custom'], workingDir: '/w' } } as unknown as PulledImage;
    const spec = buildOciSpec({
      image: image.config,
      container: { name: 'c', image, env: ['S=secret'], cpu: 0.25, memoryBytes: 64 * 1024 * 1024 },
      user: { uid: 5, gid: 6, additionalGids: [7], home: '/home/u' },
      hostname: 'c',
      netnsPath: '/data/netns',
      hostsPath: '/data/hosts',
      cgroupsPath: 'berth-x',
      limits: { nofile: 20000, memory: true, cpu: true },
    }) as any;
    assert.deepEqual(spec.process.args, ['x']);
    assert.equal(spec.process.cwd, '/w');
    assert.deepEqual(spec.process.user, { uid: 5, gid: 6, additionalGids: [7] });
    assert.ok(spec.process.env.includes('HOME=/custom'), 'the image\'s HOME wins over the passwd entry');
    assert.ok(spec.process.env.includes('S=secret'));
    assert.deepEqual(spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 1024 }]);
    assert.deepEqual(spec.linux.resources.memory, { limit: 67108864, swap: 67108864 });
    assert.deepEqual(spec.linux.resources.cpu, { quota: 25000, period: 100000 });
    assert.deepEqual(spec.linux.namespaces.find((n: any) => n.type === 'network'), { type: 'network', path: '/data/netns' });
    assert.ok(spec.mounts.some((m: any) => m.destination === '/etc/hosts' && m.source === '/data/hosts'));
    const noCgroups = buildOciSpec({
      image: image.config, container: { name: 'c', image, env: [], cpu: 1, memoryBytes: 1 }, user: { uid: 0, gid: 0, additionalGids: [], home: '/root' },
      hostname: 'c', netnsPath: '/n', hostsPath: '/h', cgroupsPath: 'p', limits: { nofile: 512, memory: false, cpu: false },
    }) as any;
    assert.equal(noCgroups.linux.resources.memory, undefined);
    assert.equal(noCgroups.linux.resources.cpu, undefined);
    assert.deepEqual(noCgroups.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 512, soft: 512 }]);
  });
});

describe('image user', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n';
  const group = 'root:x:0:\nstaff:x:50:app,other\napp:x:1000:\nweb:x:33:\n';

  test('names, ids, user:group, supplementary groups', async () => {
    const r = await rootfs(passwd, group);
    assert.deepEqual(await resolveUser(r, undefined), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
    assert.deepEqual(await resolveUser(r, 'app'), { uid: 1000, gid: 1000, additionalGids: [50], home: '/home/app' });
    assert.deepEqual(await resolveUser(r, '1000'), { uid: 1000, gid: 1000, additionalGids: [50], home: '/home/app' });
    assert.deepEqual(await resolveUser(r, 'app:web'), { uid: 1000, gid: 33, additionalGids: [], home: '/home/app' });
    assert.deepEqual(await resolveUser(r, '4242:77'), { uid: 4242, gid: 77, additionalGids: [], home: '/' });
    await assert.rejects(resolveUser(r, 'ghost'), /user "ghost" is not in the image's \/etc\/passwd/);
    await assert.rejects(resolveUser(r, 'app:nogroup'), /group "nogroup" is not in the image's \/etc\/group/);
  });

  test('/etc/passwd is read inside the root filesystem, even through a symlink pointing out of it', async () => {
    const r = await rootfs('', '');
    const outside = await rootfs('evil:x:0:0::/:/bin/sh\n', '');
    await rm(join(r, 'etc', 'passwd'));
    await symlink(join(outside, 'etc', 'passwd'), join(r, 'etc', 'passwd'));
    await assert.rejects(resolveUser(r, 'evil'), /not in the image's \/etc\/passwd/);
  });
});
