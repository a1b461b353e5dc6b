// "Run instance" on a tag (seed 003): a container group from this image, created with the same PUT
// (and long-running operation) as `berth container create`. A failed image check shows Berth's diagnosis.
import { useState } from 'preact/hooks';
import { API, arm, list, subPath, type ArmResource } from '../api.js';
import { go, href } from '../router.js';
import { ErrorBox, Show, useLoad } from '../ui.js';

interface EnvRow { name: string; value: string; secure: boolean }
type Credential = 'admin' | 'token' | 'identity' | 'vault' | 'none';

export function RunInstance({ rg, registry, repo, ref }: { rg: string; registry: string; repo: string; ref: string }) {
  const reg = useLoad(async () => arm<ArmResource<{ loginServer: string; adminUserEnabled: boolean }>>('GET',
    await subPath(`/resourceGroups/${rg}/providers/Microsoft.ContainerRegistry/registries/${registry}`), API.registries), [rg, registry]);
  const groups = useLoad(() => list<unknown>('/resourcegroups', API.resources), []);
  const identities = useLoad(() => list<{ clientId: string }>('/providers/Microsoft.ManagedIdentity/userAssignedIdentities', API.msi), []);
  const vaults = useLoad(() => list<unknown>('/providers/Microsoft.KeyVault/vaults', API.vaults), []);
  const [name, setName] = useState(repo.split('/').pop()!.replace(/[^a-z0-9-]/gi, '-').toLowerCase().slice(0, 50));
  const [group, setGroup] = useState(rg);
  const [cpu, setCpu] = useState('1');
  const [memory, setMemory] = useState('1.5');
  const [ports, setPorts] = useState('80');
  const [restart, setRestart] = useState('Always');
  const [command, setCommand] = useState('');
  const [env, setEnv] = useState<EnvRow[]>([]);
  const [credential, setCredential] = useState<Credential>('admin');
  const [identity, setIdentity] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [vault, setVault] = useState('');
  const [secretName, setSecretName] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const setValue = (i: number, value: string) => setEnv(env.map((x, j) => (j === i ? { ...x, value } : x)));

  return (
    <section>
      <p class="crumbs"><a href={href('registries', rg, registry, 'repositories', repo)}>{repo}</a> / Run instance</p>
      <h1>Run instance</h1>
      <Show what="the registry" loaded={reg}>
        {(r) => {
          // The admin user is the default where the registry has it on.
          const cred: Credential = credential === 'admin' && !r.properties.adminUserEnabled ? 'none' : credential;
          const image = `${r.properties.loginServer}/${repo}${ref.startsWith('sha256:') ? `@${ref}` : `:${ref}`}`;
          const submit = async (e: Event) => {
            e.preventDefault();
            setBusy(true);
            setError(undefined);
            try {
              const portList = ports.split(/[\s,]+/).filter(Boolean).map((p) => {
                const n = Number(p);
                if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`Port "${p}" is not a number from 1 to 65535.`);
                return n;
              });
              const credentials = [];
              if (cred === 'admin') {
                const c = await arm<{ username: string; passwords: Array<{ value: string }> }>('POST', `${r.id}/listCredentials`, API.registries);
                credentials.push({ server: r.properties.loginServer, username: c.username, password: c.passwords[0]!.value });
              } else if (cred === 'token') {
                if (!username.trim() || !password) throw new Error('Give the token\'s name (the username) and one of its passwords.');
                credentials.push({ server: r.properties.loginServer, username: username.trim(), password });
              } else if (cred === 'identity') {
                if (!identity) throw new Error('Choose the managed identity that pulls the image (it needs AcrPull on the registry).');
                credentials.push({ server: r.properties.loginServer, identity });
              } else if (cred === 'vault') {
                if (!vault || !secretName.trim()) throw new Error('Choose the vault and name the secret that holds the password (or a {"username","password"} JSON with no username given).');
                credentials.push({ server: r.properties.loginServer, ...(username.trim() ? { username: username.trim() } : {}),
                  password: { reference: { keyVault: { id: vault }, secretName: secretName.trim() } } });
              }
              const location = (groups.data?.find((g) => g.name.toLowerCase() === group.toLowerCase())?.location) ?? 'westus';
              const body = {
                location,
                ...(cred === 'identity' ? { identity: { type: 'UserAssigned', userAssignedIdentities: { [identity]: {} } } } : {}),
                properties: {
                  osType: 'Linux',
                  restartPolicy: restart,
                  containers: [{
                    name,
                    properties: {
                      image,
                      resources: { requests: { cpu: Number(cpu), memoryInGB: Number(memory) } },
                      ports: portList.map((port) => ({ port, protocol: 'TCP' })),
                      environmentVariables: env.filter((v) => v.name).map((v) => (v.secure ? { name: v.name, secureValue: v.value } : { name: v.name, value: v.value })),
                      ...(command.trim() ? { command: ['/bin/sh', '-c', command.trim()] } : {}),
                    },
                  }],
                  ...(portList.length ? { ipAddress: { type: 'Public', ports: portList.map((port) => ({ port, protocol: 'TCP' })) } } : {}),
                  ...(credentials.length ? { imageRegistryCredentials: credentials } : {}),
                },
              };
              await arm('PUT', await subPath(`/resourceGroups/${group}/providers/Microsoft.ContainerInstance/containerGroups/${name}`), API.groups, body);
              go('container-groups', group, name);
            } catch (err) {
              setError((err as Error).message);
            } finally {
              setBusy(false);
            }
          };
          return (
            <form class="wide" onSubmit={(e) => void submit(e)}>
              {error ? <ErrorBox error={error} /> : null}
              <p>Image <code>{image}</code></p>
              <label>Container group name <input name="name" required pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
              <label>Resource group
                <select name="resourceGroup" value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
                  {(groups.data ?? [{ name: rg }]).map((g) => <option key={g.name} value={g.name}>{g.name}</option>)}
                </select>
              </label>
              <label>CPU cores <input name="cpu" type="number" min="0.1" max="4" step="0.1" value={cpu} onInput={(e) => setCpu(e.currentTarget.value)} /></label>
              <label>Memory (GB) <input name="memory" type="number" min="0.1" max="16" step="0.1" value={memory} onInput={(e) => setMemory(e.currentTarget.value)} /></label>
              <label>Ports (comma-separated) <input name="ports" value={ports} onInput={(e) => setPorts(e.currentTarget.value)} /></label>
              <label>Restart policy
                <select name="restartPolicy" value={restart} onChange={(e) => setRestart(e.currentTarget.value)}>
                  <option>Always</option><option>OnFailure</option><option>Never</option>
                </select>
              </label>
              <label>Command line (optional; runs with /bin/sh -c) <input name="command" value={command} onInput={(e) => setCommand(e.currentTarget.value)} /></label>
              <fieldset>
                <legend>Environment variables</legend>
                {env.map((v, i) => (
                  <div class="row" key={i}>
                    <input aria-label="Name" placeholder="NAME" value={v.name} onInput={(e) => setEnv(env.map((x, j) => (j === i ? { ...x, name: e.currentTarget.value } : x)))} />
                    {v.secure
                      ? <input aria-label="Value" placeholder="value" type="password" value={v.value} autocomplete="off" onInput={(e) => setValue(i, e.currentTarget.value)} />
                      : <input aria-label="Value" placeholder="value" type="text" value={v.value} autocomplete="off" onInput={(e) => setValue(i, e.currentTarget.value)} />}
                    <label class="inline"><input type="checkbox" checked={v.secure} onChange={(e) => setEnv(env.map((x, j) => (j === i ? { ...x, secure: e.currentTarget.checked } : x)))} /> secure</label>
                    <button type="button" class="small" onClick={() => setEnv(env.filter((_, j) => j !== i))}>Remove</button>
                  </div>
                ))}
                <button type="button" class="small" onClick={() => setEnv([...env, { name: '', value: '', secure: false }])}>Add variable</button>
              </fieldset>
              <fieldset>
                <legend>Pull credential</legend>
                <label class="inline"><input type="radio" name="credential" checked={cred === 'admin'} disabled={!r.properties.adminUserEnabled} onChange={() => setCredential('admin')} /> Admin user{r.properties.adminUserEnabled ? '' : ' (disabled on this registry)'}</label>
                <label class="inline"><input type="radio" name="credential" checked={cred === 'token'} onChange={() => setCredential('token')} /> Token or username/password</label>
                <label class="inline"><input type="radio" name="credential" checked={cred === 'identity'} onChange={() => setCredential('identity')} /> Managed identity</label>
                <label class="inline"><input type="radio" name="credential" checked={cred === 'vault'} onChange={() => setCredential('vault')} /> Password in a key vault</label>
                <label class="inline"><input type="radio" name="credential" checked={cred === 'none'} onChange={() => setCredential('none')} /> None (anonymous pull)</label>
                {cred === 'token' || cred === 'vault' ? (
                  <label>Username{cred === 'vault' ? ' (optional)' : ''} <input name="username" value={username} autocomplete="off" onInput={(e) => setUsername(e.currentTarget.value)} /></label>
                ) : null}
                {cred === 'token' ? (
                  <label>Password <input name="password" type="password" value={password} autocomplete="new-password" onInput={(e) => setPassword(e.currentTarget.value)} /></label>
                ) : null}
                {cred === 'vault' ? (
                  <>
                    <label>Key vault
                      <select name="vault" aria-label="Key vault" value={vault} onChange={(e) => setVault(e.currentTarget.value)}>
                        <option value="">Choose a vault…</option>
                        {(vaults.data ?? []).map((v) => <option key={v.id} value={v.id}>{v.name}</option>)}
                      </select>
                    </label>
                    <label>Secret name <input name="secretName" value={secretName} onInput={(e) => setSecretName(e.currentTarget.value)} /></label>
                  </>
                ) : null}
                {cred === 'identity' ? (
                  <select name="identity" value={identity} onChange={(e) => setIdentity(e.currentTarget.value)}>
                    <option value="">Choose an identity…</option>
                    {(identities.data ?? []).map((i) => <option key={i.id} value={i.id}>{i.name}</option>)}
                  </select>
                ) : null}
              </fieldset>
              <button type="submit" disabled={busy}>{busy ? 'Creating…' : 'Create'}</button>
            </form>
          );
        }}
      </Show>
    </section>
  );
}
