// Docker config.json pull credentials, end to end (SPEC S8, seed 001): the real CLI against a real
// `berth serve` child on runc, images in password-protected reference registries (docker-registry with
// htpasswd). A server started with `--docker-config FILE` (and no other docker config anywhere in its
// environment) pulls with that file's `auths`; a group whose imageRegistryCredentials entry references
// a Key Vault secret holding a config.json (as a Kubernetes imagePullSecret holds one) pulls with that;
// a missing or malformed --docker-config stops the server at start, saying which and what.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';
import { runCli, runProcess, BERTH_BIN } from './helpers/berth.js';
import { startServeChild, stopServeChild } from './helpers/serve-child.js';
import { busyboxLayer, busyboxPath, imageWorkDir } from './helpers/runtime-images.js';
import { haveReferenceRegistry, startReferenceRegistry, type ReferenceRegistry } from './helpers/reference-registry.js';
import type { ChildProcess } from 'node:child_process';

const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed') ?? haveReferenceRegistry();
if (skip) console.log(`# skipping docker-config credential tests: ${skip}`);

let work: string;
let dataDir: string;
let server: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;
let serverOutput = '';
/** The server's credentials (in --docker-config) and a group's (in a vault secret only). */
let serverReg: ReferenceRegistry;
let groupReg: ReferenceRegistry;

/** An environment with no docker or podman credentials anywhere: only what a test gives counts. */
function bareEnv(home: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const k of ['DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'XDG_RUNTIME_DIR', 'BERTH_SERVER', 'BERTH_DATA_DIR']) delete e[k];
  return e;
}

const configFor = (r: ReferenceRegistry) => JSON.stringify({ auths: { [`https://${r.host}`]: { auth: Buffer.from(`${r.username}:${r.password}`).toString('base64') } } });

async function ok(args: string[], input?: string): Promise<any> {
  const r = await runCli([...args, '-o', 'json'], env, input);
  assert.equal(r.code, 0, `berth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
}

async function eventually<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    const v = await f();
    if (v !== undefined) return v;
  }
  throw new Error(`${what} did not happen within ${ms / 1000} s`);
}

/** Waits for the group's container to terminate; its exit code and log. */
async function finished(name: string): Promise<{ exitCode: number; log: string; events: Array<{ name: string; message: string }> }> {
  const g = await eventually(`${name} terminated`, async () => {
    const x = await ok(['container', 'show', '-g', 'demo', '-n', name]);
    return x.containers[0].instanceView?.currentState?.state === 'Terminated' ? x : undefined;
  });
  const log = (await runCli(['container', 'logs', '-g', 'demo', '-n', name], env)).stdout.trim();
  return { exitCode: g.containers[0].instanceView.currentState.exitCode, log, events: g.containers[0].instanceView.events };
}

before(async () => {
  if (skip) return;
  work = await imageWorkDir();
  dataDir = await mkdtemp(join(tmpdir(), 'berth-dockercfg-'));
  await busyboxLayer(work); // leaves the root filesystem in work/busybox-rootfs
  [serverReg, groupReg] = await Promise.all([startReferenceRegistry(), startReferenceRegistry()]);
  await mkdir(join(work, 'home'));
  await writeFile(join(work, 'server-config.json'), configFor(serverReg), { mode: 0o600 });
  const started = await startServeChild(['--data-dir', dataDir, '--port', '0', '--docker-config', join(work, 'server-config.json')], bareEnv(join(work, 'home')),
    (text) => (serverOutput += text));
  server = started.child;
  env = { ...bareEnv(join(work, 'home')), BERTH_SERVER: started.url, BERTH_DATA_DIR: dataDir };
  const rootfs = join(work, 'busybox-rootfs');
  for (const r of [serverReg, groupReg]) await ok(['image', 'push', rootfs, `${r.host}/tools/app:v1`, '-u', r.username, '--password-stdin'], r.password);
  await ok(['group', 'create', '-n', 'demo', '-l', 'westus']);
});

after(async () => {
  if (skip) return;
  await stopServeChild(server, env);
  await Promise.all([serverReg?.stop(), groupReg?.stop()]);
  for (const d of [dataDir, work]) if (d) await rm(d, { recursive: true, force: true });
});

const job = (name: string, image: string, extra: string[] = []) => runCli(['container', 'create', '-g', 'demo', '-n', name, '--image', image,
  '--restart-policy', 'Never', '--command-line', `/bin/sh -c "echo ${name}-ok"`, '--cpu', '0.5', '--memory', '0.25', ...extra], env);

test('berth serve --docker-config FILE: a group pulls from a password-protected registry with only that file\'s auths', { skip }, async () => {
  const r = await job('fromflag', `${serverReg.host}/tools/app:v1`);
  assert.equal(r.code, 0, r.stderr);
  const done = await finished('fromflag');
  assert.equal(done.exitCode, 0);
  assert.equal(done.log, 'fromflag-ok');
  // The other registry's credentials are nowhere the server looks: its image is refused.
  const denied = await job('notconfigured', `${groupReg.host}/tools/app:v1`);
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /InaccessibleImage/);
  assert.match(denied.stderr, /unauthorized|authentication required/i);
});

test('a group\'s imageRegistryCredentials entry referencing a Key Vault secret that holds a Docker config.json', { skip }, async () => {
  const vault = await ok(['keyvault', 'create', '-g', 'demo', '-n', 'pullcfg-kv', '-l', 'westus']);
  await writeFile(join(work, 'group-config.json'), configFor(groupReg), { mode: 0o600 });
  await ok(['keyvault', 'secret', 'set', '--vault-name', 'pullcfg-kv', '--name', 'docker-conf', '--file', join(work, 'group-config.json')]);
  const yaml = (name: string, secretName: string) => `apiVersion: '2021-09-01'
location: westus
name: ${name}
properties:
  osType: Linux
  restartPolicy: Never
  imageRegistryCredentials:
    - server: ${groupReg.host}
      password:
        reference:
          keyVault: { id: '${vault.id}' }
          secretName: ${secretName}
  containers:
    - name: app
      properties:
        image: ${groupReg.host}/tools/app:v1
        command: ["/bin/sh", "-c", "echo ${name}-ok"]
        resources: { requests: { cpu: 0.5, memoryInGB: 0.25 } }
`;
  const r = await runCli(['container', 'create', '-g', 'demo', '--file', '-'], env, yaml('fromsecret', 'docker-conf'));
  assert.equal(r.code, 0, r.stderr);
  const done = await finished('fromsecret');
  assert.equal(done.exitCode, 0);
  assert.equal(done.log, 'fromsecret-ok');
  const shown = (await runCli(['container', 'show', '-g', 'demo', '-n', 'fromsecret', '-o', 'json'], env)).stdout;
  assert.ok(!shown.includes(groupReg.password), 'the group shows no password');

  // A config.json without an entry for the server: the error names the secret, the server and the entries it has, no value.
  await ok(['keyvault', 'secret', 'set', '--vault-name', 'pullcfg-kv', '--name', 'other-conf', '--value', configFor(serverReg)]);
  const wrong = await runCli(['container', 'create', '-g', 'demo', '--file', '-'], env, yaml('wrongsecret', 'other-conf'));
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, new RegExp(`secret other-conf in vault pullcfg-kv holds a Docker config\\.json with no "auths" entry for ${groupReg.host.replace(/\./g, '\\.')} \\(its entries: "https://${serverReg.host.replace(/\./g, '\\.')}"\\)`));
  for (const secret of [serverReg.password, groupReg.password]) {
    assert.ok(!wrong.stderr.includes(secret), 'no password in the error');
    assert.ok(!serverOutput.includes(secret), 'no password in the server\'s output');
  }
});

test('berth serve --docker-config: a missing or malformed file stops the server at start, naming it', { skip }, async () => {
  const bad = join(work, 'bad-config.json');
  await writeFile(bad, '{"auths": {"x.example": {"auth": "c2VjcmV0LXZhbHVl"}');
  for (const [file, why] of [[join(work, 'missing.json'), /does not exist/], [bad, /is malformed: not valid JSON/]] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'berth-dockercfg-bad-'));
    try {
      const r = await runProcess(process.execPath, [BERTH_BIN, 'serve', '--data-dir', dir, '--port', '0', '--docker-config', file], { env: bareEnv(join(work, 'home')), timeoutMs: 30_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--docker-config: docker config \S+ /);
      assert.ok(r.stderr.includes(file), r.stderr);
      assert.match(r.stderr, why);
      assert.ok(!r.stderr.includes('c2VjcmV0LXZhbHVl') && !r.stderr.includes('secret-value'), 'no value from the file');
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});
