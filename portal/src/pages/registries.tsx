// Registries: the list, one registry (login server, SKU, admin user, credentials on request,
// repositories) and one repository (its images and tags, with pull commands and "Run instance").
import { useState } from 'preact/hooks';
import { API, arm, list, rgOf, subPath, type ArmResource } from '../api.js';
import { deleteTag, manifests, repositories } from '../registry.js';
import { go, href } from '../router.js';
import { Copy, ErrorBox, Show, size, useLoad, when } from '../ui.js';

interface RegistryProps { loginServer: string; adminUserEnabled: boolean; provisioningState?: string; creationDate?: string }
type Registry = ArmResource<RegistryProps> & { sku: { name: string } };
const REG = '/providers/Microsoft.ContainerRegistry/registries';

export function Registries() {
  const regs = useLoad(() => list<RegistryProps>(REG, API.registries) as Promise<Registry[]>, []);
  return (
    <section>
      <h1>Container registries</h1>
      <Show what="registries" loaded={regs} empty={(d) => d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Name</th><th>Resource group</th><th>Login server</th><th>SKU</th><th>Admin user</th></tr></thead>
            <tbody>{d.map((r) => (
              <tr key={r.id}>
                <td><a href={href('registries', rgOf(r.id), r.name)}>{r.name}</a></td><td>{rgOf(r.id)}</td>
                <td><code>{r.properties.loginServer}</code></td><td>{r.sku.name}</td><td>{r.properties.adminUserEnabled ? 'Enabled' : 'Disabled'}</td>
              </tr>))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}

function Credentials({ path }: { path: string }) {
  const [creds, setCreds] = useState<{ username: string; passwords: Array<{ name: string; value: string }> }>();
  const [error, setError] = useState<Error>();
  if (creds) {
    return (
      <div class="card">
        <p>Username <Copy text={creds.username} /></p>
        {creds.passwords.map((p) => <p key={p.name}>{p.name} <Copy text={p.value} /></p>)}
        <button type="button" onClick={() => setCreds(undefined)}>Hide</button>
      </div>
    );
  }
  return (
    <>
      {error ? <ErrorBox error={error} /> : null}
      <button type="button" onClick={() => void arm<typeof creds>('POST', `${path}/listCredentials`, API.registries).then(setCreds, setError)}>Show admin credentials</button>
    </>
  );
}

export function Registry({ rg, name }: { rg: string; name: string }) {
  const reg = useLoad(async () => arm<Registry>('GET', await subPath(`/resourceGroups/${rg}${REG}/${name}`), API.registries), [rg, name]);
  const [error, setError] = useState<Error>();
  const setAdmin = async (r: Registry, on: boolean) => {
    setError(undefined);
    try {
      await arm('PATCH', r.id, API.registries, { properties: { adminUserEnabled: on } });
      reg.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <section>
      <p class="crumbs"><a href={href('registries')}>Registries</a> / {name}</p>
      <h1>{name}</h1>
      <Show what="the registry" loaded={reg}>
        {(r) => (
          <>
            <dl>
              <dt>Login server</dt><dd><code>{r.properties.loginServer}</code></dd>
              <dt>SKU</dt><dd>{r.sku.name}</dd>
              <dt>Resource group</dt><dd>{rg}</dd>
              <dt>Admin user</dt><dd>{r.properties.adminUserEnabled ? 'Enabled' : 'Disabled'}{' '}
                <button type="button" class="small" onClick={() => void setAdmin(r, !r.properties.adminUserEnabled)}>{r.properties.adminUserEnabled ? 'Disable' : 'Enable'}</button></dd>
            </dl>
            {error ? <ErrorBox error={error} /> : null}
            <p><a href={href('access', r.id)}>Access control</a></p>
            {r.properties.adminUserEnabled ? <Credentials path={r.id} /> : null}
            <h2>Repositories</h2>
            <RepositoryList rg={rg} name={name} loginServer={r.properties.loginServer} />
          </>
        )}
      </Show>
    </section>
  );
}

function RepositoryList({ rg, name, loginServer }: { rg: string; name: string; loginServer: string }) {
  const repos = useLoad(() => repositories(loginServer), [loginServer]);
  return (
    <Show what="repositories" loaded={repos} empty={(d) => d.length === 0}>
      {(d) => <ul class="list">{d.map((repo) => <li key={repo}><a href={href('registries', rg, name, 'repositories', repo)}>{repo}</a></li>)}</ul>}
    </Show>
  );
}

export function Repository({ rg, name, repo }: { rg: string; name: string; repo: string }) {
  const reg = useLoad(async () => arm<Registry>('GET', await subPath(`/resourceGroups/${rg}${REG}/${name}`), API.registries), [rg, name]);
  const loginServer = reg.data?.properties.loginServer;
  const images = useLoad(async () => (loginServer ? manifests(loginServer, repo) : undefined), [loginServer, repo]);
  const [error, setError] = useState<Error>();
  const remove = async (tag: string) => {
    if (!loginServer || !confirm(`Delete tag ${tag}? Its image stays if other tags name it.`)) return;
    try {
      await deleteTag(loginServer, repo, tag);
      images.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const platforms = (m: { os?: string; architecture?: string; references?: Array<{ os?: string; architecture?: string }> }) =>
    m.references?.length ? m.references.map((x) => `${x.os}/${x.architecture}`).join(', ') : m.os ? `${m.os}/${m.architecture}` : '';
  return (
    <section>
      <p class="crumbs"><a href={href('registries')}>Registries</a> / <a href={href('registries', rg, name)}>{name}</a> / {repo}</p>
      <h1>{repo}</h1>
      {reg.error ? <ErrorBox error={reg.error} /> : null}
      {error ? <ErrorBox error={error} /> : null}
      <Show what="images" loaded={images} empty={(d) => !d || d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Tag</th><th>Digest</th><th>Size</th><th>Platform</th><th>Created</th><th>Pull command</th><th></th></tr></thead>
            <tbody>{(d ?? []).flatMap((m) => (m.tags.length ? m.tags : ['']).map((tag) => (
              <tr key={`${m.digest}:${tag}`} data-tag={tag}>
                <td>{tag || <span class="muted">untagged</span>}</td>
                <td><code title={m.digest}>{m.digest.slice(0, 19)}…</code></td>
                <td>{size(m.imageSize)}</td><td>{platforms(m)}</td><td>{when(m.createdTime)}</td>
                <td><Copy text={`podman pull ${loginServer}/${repo}${tag ? `:${tag}` : `@${m.digest}`}`} /></td>
                <td><div class="actions">
                  <button type="button" onClick={() => go('run', rg, name, repo, tag || m.digest)}>Run instance</button>
                  {tag ? <button type="button" class="danger" onClick={() => void remove(tag)}>Delete tag</button> : null}
                </div></td>
              </tr>)))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}
