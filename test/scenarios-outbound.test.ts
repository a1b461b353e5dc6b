// Acceptance scenario for the outbound network of container groups, through the real `berth` CLI
// against a real `berth serve` child process (which opens the runc runtime with outbound access, the
// default): a group holding a managed identity gets a Key Vault token from its IMDS endpoint and reads
// a secret from Berth's vault on the host (host.berth.internal), as the seeds' containers do with Azure
// Key Vault; a group without the identity reaches the vault too but gets no token, so no secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServeChild, stopServeChild } from './helpers/serve-child.js';
import { runCli } from './helpers/berth.js';
import { busyboxLayer, busyboxPath, imageWorkDir } from './helpers/runtime-images.js';
import { freeLoopbackPort } from '../src/net/listeners.js';
import { runcUnavailable } from '../src/runtime/runc/runc-runtime.js';

const slirpMissing = await promisify(execFile)('slirp4netns', ['--version']).then(() => undefined, () => 'slirp4netns is not installed (apt-get install slirp4netns)');
const skip = (await runcUnavailable()) ?? (busyboxPath() ? undefined : 'busybox-static is not installed') ?? slirpMissing;
if (skip) console.log(`# skipping outbound scenario: ${skip}`);

const RG = 'outrg';
let dataDir: string;
let work: string;
let server: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;
let image: string;
let creds: string[];

async function berth(...args: string[]): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The group's container log once it has terminated (a bounded wait for a process, not a timing assertion). */
async function logsWhenDone(name: string): Promise<string> {
  for (let i = 0; i < 150; i++) {
    const g = JSON.parse(await berth('container', 'show', '-g', RG, '-n', name)) as { containers: Array<{ instanceView?: { currentState?: { state?: string } } }> };
    if (g.containers[0]?.instanceView?.currentState?.state === 'Terminated') return berth('container', 'logs', '-g', RG, '-n', name);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not terminate`);
}

before(async () => {
  if (skip) return;
  dataDir = await mkdtemp(join(tmpdir(), 'berth-scen-out-'));
  work = await imageWorkDir();
  await busyboxLayer(work); // leaves the busybox root filesystem in work/busybox-rootfs
  const port = await freeLoopbackPort();
  env = { ...process.env, BERTH_SERVER: `http://127.0.0.1:${port}`, BERTH_DATA_DIR: dataDir, BERTH_CONFIG_DIR: join(dataDir, 'cli-config') };
  server = (await startServeChild(['--data-dir', dataDir, '--port', String(port)], env)).child;
  await berth('group', 'create', '-n', RG, '-l', 'westus');
  await berth('acr', 'create', '-n', 'outreg', '-g', RG, '--sku', 'Basic', '--admin-enabled', 'true');
  const login = await berth('acr', 'show', '--name', 'outreg', '--query', 'loginServer', '--output', 'tsv');
  const pw = await berth('acr', 'credential', 'show', '-n', 'outreg', '--query', 'passwords[0].value', '-o', 'tsv');
  image = `${login}/app:v1`;
  await berth('image', 'push', join(work, 'busybox-rootfs'), image);
  creds = ['--registry-login-server', login, '--registry-username', 'outreg', '--registry-password', pw];
});

after(async () => {
  if (skip) return;
  await stopServeChild(server, env);
  await rm(dataDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

test('a group with a managed identity reads a Key Vault secret from Berth on the host; a group without it gets no token', { skip }, async () => {
  await berth('identity', 'create', '-g', RG, '-n', 'reader');
  const id = await berth('identity', 'show', '-g', RG, '-n', 'reader', '--query', 'id', '-o', 'tsv');
  const principal = await berth('identity', 'show', '-g', RG, '-n', 'reader', '--query', 'principalId', '-o', 'tsv');
  await berth('keyvault', 'create', '-g', RG, '-n', 'outvault');
  const vaultId = await berth('keyvault', 'show', '-n', 'outvault', '--query', 'id', '-o', 'tsv');
  const vaultUri = new URL(await berth('keyvault', 'show', '-n', 'outvault', '--query', 'properties.vaultUri', '-o', 'tsv'));
  await berth('keyvault', 'secret', 'set', '--vault-name', 'outvault', '-n', 'greeting', '--value', 'hello-from-the-vault', '-o', 'none');
  await berth('role', 'assignment', 'create', '--assignee-object-id', principal, '--assignee-principal-type', 'ServicePrincipal',
    '--role', 'Key Vault Secrets User', '--scope', vaultId);

  // The vault's port serves plain HTTP too. A vaultUri by name (outvault.vault.localhost:<main port>)
  // resolves to the host in the group's /etc/hosts; one on a port of its own is on host.berth.internal.
  const byName = vaultUri.hostname.endsWith('.vault.localhost');
  const secretUrl = `http://${byName ? vaultUri.hostname : 'host.berth.internal'}:${vaultUri.port}/secrets/greeting?api-version=7.4`;
  const tokenUrl = 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net';
  const script = `T=$(wget -q -O - --header "Metadata: true" "${tokenUrl}" | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/'); ` +
    `echo "token: \${#T} chars"; wget -q -O - --header "Authorization: Bearer $T" "${secretUrl}" || echo "vault: refused"`;
  const cmd = `/bin/sh -c '${script.replace(/'/g, `'"'"'`)}'`;
  await berth('container', 'create', '-g', RG, '-n', 'kv-reader', '--image', image, '--restart-policy', 'Never', '--assign-identity', id,
    '--command-line', cmd, ...creds, '-o', 'none');
  const withId = await logsWhenDone('kv-reader');
  assert.match(withId, /"value":"hello-from-the-vault"/, withId);
  assert.doesNotMatch(withId, /token: 0 chars/);

  await berth('container', 'create', '-g', RG, '-n', 'kv-stranger', '--image', image, '--restart-policy', 'Never', '--command-line', cmd, ...creds, '-o', 'none');
  const without = await logsWhenDone('kv-stranger');
  assert.match(without, /token: 0 chars/, without);
  assert.match(without, /vault: refused/);
  assert.doesNotMatch(without, /hello-from-the-vault/);
});
