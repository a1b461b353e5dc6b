// The Runtime contract (src/runtime/runtime.ts), held against every implementation: the runc runtime
// on busybox images built here, and the test double (test/helpers/fake-runtime.ts) that the
// reconciler and API tests stand on. A behaviour the reconciler relies on belongs here, so that the
// double cannot drift from runc without a test saying so.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { BuiltLayer } from '../src/image/layer.js';
import type { PulledImage } from '../src/pull/types.js';
import { RuncRuntime, runcUnavailable } from '../src/runtime/runc/runc-runtime.js';
import type { ContainerSpec, Runtime, Task } from '../src/runtime/runtime.js';
import { FakeRuntime } from './helpers/fake-runtime.js';
import { busyboxLayer, busyboxPath, imageWorkDir, pulledImage } from './helpers/runtime-images.js';

/** One implementation under test, with the few things the contract cannot say through the interface. */
interface Subject {
  runtime: Runtime;
  /** An image whose default process runs until the test calls exitWith(). */
  image: PulledImage;
  /** Makes a running task's process exit with `code`, as its own program would. */
  exitWith(task: Task, code: number): Promise<void>;
  close(): Promise<void>;
}

interface Implementation {
  name: string;
  skip?: string;
  open(): Promise<Subject>;
}

const FAKE_IMAGE: PulledImage = {
  reference: 'example.test/contract:1', digest: `sha256:${'1'.repeat(64)}`, platform: { os: 'linux', architecture: 'amd64' },
  config: {}, configDigest: `sha256:${'2'.repeat(64)}`, layers: [], credentialSource: 'anonymous',
};

const runcSkip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed');
if (runcSkip) console.log(`# skipping the runc half of the runtime contract: ${runcSkip}`);

const implementations: Implementation[] = [
  {
    name: 'fake (test double)',
    async open() {
      const fake = new FakeRuntime();
      return { runtime: fake, image: FAKE_IMAGE, exitWith: async (t, code) => fake.exit(t.name, code, undefined, t.groupId), close: async () => undefined };
    },
  },
  {
    name: 'runc',
    ...(runcSkip ? { skip: runcSkip } : {}),
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'berth-contract-'));
      const work = await imageWorkDir();
      const base: BuiltLayer = await busyboxLayer(work);
      const rt = new RuncRuntime({ dataDir: join(dir, 'runtime') });
      // The process waits for a file holding its exit code; exec writes it.
      const image = pulledImage([base], { cmd: ['sh', '-c', 'while [ ! -e /exit-code ]; do sleep 0.05; done; exit "$(cat /exit-code)"'] });
      return {
        runtime: rt,
        image,
        async exitWith(t, code) {
          const sink = new PassThrough().resume();
          const r = await rt.exec(t, ['sh', '-c', `echo ${code} > /exit-code.tmp && mv /exit-code.tmp /exit-code`], { stdout: sink, stderr: sink });
          assert.equal(r.exitCode, 0, 'writing the exit code inside the container');
        },
        async close() {
          await rt.close();
          await rm(dir, { recursive: true, force: true });
          await rm(work, { recursive: true, force: true });
        },
      };
    },
  },
];

/** A wait() that fails the test instead of hanging it when the task never exits. */
function bounded<T>(what: string, p: Promise<T>, ms = 30_000): Promise<T> {
  return Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer in ${ms / 1000} s`)), ms).unref())]);
}

for (const impl of implementations) {
  describe(`runtime contract: ${impl.name}`, { skip: impl.skip, timeout: 300_000 }, () => {
    let s: Subject;
    const groups = new Set<string>();
    const spec = (name: string): ContainerSpec => ({ name, image: s.image, env: [] });
    async function sandboxFor(groupId: string, ports: number[] = []) {
      groups.add(groupId);
      return s.runtime.createSandbox({ groupId, ports: ports.map((port) => ({ port, protocol: 'TCP' as const })) });
    }
    async function running(groupId: string, name: string): Promise<Task> {
      const sb = await sandboxFor(groupId);
      const t = await s.runtime.create(sb, spec(name));
      await s.runtime.start(t);
      return t;
    }

    before(async () => { s = await impl.open(); });
    after(async () => {
      if (!s) return;
      for (const g of groups) await s.runtime.deleteSandbox(g).catch((e: Error) => console.log(`# cleanup of ${g}: ${e.message}`));
      await s.close();
    });

    test('a sandbox publishes every port it was given and is named by its group', async () => {
      const sb = await sandboxFor('c-ports', [8081, 8082]);
      assert.equal(sb.groupId, 'c-ports');
      assert.ok(sb.ip, 'a host address');
      assert.deepEqual(Object.keys(sb.hostPorts).map(Number).sort(), [8081, 8082]);
      for (const p of Object.values(sb.hostPorts)) assert.ok(Number.isInteger(p) && p > 0 && p < 65536, `host port ${p}`);
    });

    test('status follows a task: none before create, created, running, stopped; wait gives the exit twice', async () => {
      const sb = await sandboxFor('c-life');
      const probe: Task = { groupId: 'c-life', name: 'app', logPath: '' };
      assert.equal(await s.runtime.status(probe), undefined, 'no task before create');
      const t = await s.runtime.create(sb, spec('app'));
      assert.equal(t.groupId, 'c-life');
      assert.equal(t.name, 'app');
      assert.equal(await s.runtime.status(t), 'created');
      await s.runtime.start(t);
      assert.equal(await s.runtime.status(t), 'running');
      const listed = (await s.runtime.list()).find((g) => g.groupId === 'c-life');
      assert.deepEqual(listed?.containers.map((c) => [c.name, c.status]), [['app', 'running']]);
      await s.exitWith(t, 0);
      const exit = await bounded('wait', s.runtime.wait(t));
      assert.equal(exit.exitCode, 0);
      assert.equal(exit.reason, 'Completed');
      assert.ok(exit.finishedAt instanceof Date);
      assert.equal(await s.runtime.status(t), 'stopped');
      assert.deepEqual(await s.runtime.wait(t), exit, 'wait() after the exit gives the same answer');
    });

    test('a non-zero exit is an Error with its code', async () => {
      const t = await running('c-fail', 'app');
      await s.exitWith(t, 3);
      const exit = await bounded('wait', s.runtime.wait(t));
      assert.equal(exit.exitCode, 3);
      assert.equal(exit.reason, 'Error');
    });

    test('SIGKILL ends a task as Killed with 137', async () => {
      const t = await running('c-kill', 'app');
      await s.runtime.kill(t, 'SIGKILL');
      const exit = await bounded('wait after kill', s.runtime.wait(t));
      assert.equal(exit.exitCode, 137);
      assert.equal(exit.reason, 'Killed');
      assert.equal(await s.runtime.status(t), 'stopped');
    });

    test('exec answers with the command\'s exit code', async () => {
      const t = await running('c-exec', 'app');
      const sink = new PassThrough().resume();
      assert.equal((await s.runtime.exec(t, ['true'], { stdout: sink, stderr: sink })).exitCode, 0);
      assert.notEqual((await s.runtime.exec(t, ['false'], { stdout: sink, stderr: sink })).exitCode, 0);
      assert.equal(await s.runtime.status(t), 'running', 'exec does not disturb the task');
    });

    test('createSandbox on an existing group adopts it: its tasks keep running, its ports stay', async () => {
      const first = await sandboxFor('c-adopt', [8083]);
      const t = await s.runtime.create(first, spec('app'));
      await s.runtime.start(t);
      const again = await sandboxFor('c-adopt', [8083]);
      assert.deepEqual(again.hostPorts, first.hostPorts);
      assert.equal(await s.runtime.status(t), 'running');
    });

    test('delete removes a task and is idempotent', async () => {
      const t = await running('c-del', 'app');
      await s.runtime.kill(t, 'SIGKILL');
      await bounded('wait after kill', s.runtime.wait(t));
      await s.runtime.delete(t);
      assert.equal(await s.runtime.status(t), undefined);
      await s.runtime.delete(t);
      const listed = (await s.runtime.list()).find((g) => g.groupId === 'c-del');
      assert.deepEqual(listed?.containers ?? [], []);
    });

    test('deleteSandbox takes the group\'s running tasks with it and is idempotent', async () => {
      const t = await running('c-gone', 'app');
      await s.runtime.deleteSandbox('c-gone');
      assert.equal(await s.runtime.status(t), undefined);
      assert.equal((await s.runtime.list()).find((g) => g.groupId === 'c-gone'), undefined);
      await s.runtime.deleteSandbox('c-gone');
      groups.delete('c-gone');
    });
  });
}
