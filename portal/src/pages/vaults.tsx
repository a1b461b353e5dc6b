// Key vaults: the list, one vault (its properties and secret names with their attributes) and one
// secret (its versions). A value is fetched only when asked for, shown until hidden, never stored.
import { useState } from 'preact/hooks';
import { API, arm, list, rgOf, subPath, type ArmResource } from '../api.js';
import { href } from '../router.js';
import { ErrorBox, Show, useLoad } from '../ui.js';
import { listSecrets, listVersions, secretName, secretValue, secretVersion, type SecretItem } from '../vault.js';

interface VaultProps { vaultUri: string; enableRbacAuthorization?: boolean; enableSoftDelete?: boolean; sku?: { name: string }; accessPolicies?: unknown[] }
type Vault = ArmResource<VaultProps>;
const KV = '/providers/Microsoft.KeyVault/vaults';
const date = (s?: number) => (s ? new Date(s * 1000).toLocaleString() : '');

export function Vaults() {
  const vaults = useLoad(() => list<VaultProps>(KV, API.vaults), []);
  return (
    <section>
      <h1>Key vaults</h1>
      <Show what="key vaults" loaded={vaults} empty={(d) => d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Name</th><th>Resource group</th><th>Vault URI</th><th>Permission model</th></tr></thead>
            <tbody>{d.map((v) => (
              <tr key={v.id}>
                <td><a href={href('vaults', rgOf(v.id), v.name)}>{v.name}</a></td><td>{rgOf(v.id)}</td>
                <td><code>{v.properties.vaultUri}</code></td><td>{v.properties.enableRbacAuthorization === false ? 'Access policies' : 'Azure RBAC'}</td>
              </tr>))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}

function useVault(rg: string, name: string) {
  return useLoad(async () => arm<Vault>('GET', await subPath(`/resourceGroups/${rg}${KV}/${name}`), API.vaults), [rg, name]);
}

export function VaultPage({ rg, name }: { rg: string; name: string }) {
  const vault = useVault(rg, name);
  const uri = vault.data?.properties.vaultUri;
  const secrets = useLoad(async () => (uri ? listSecrets(uri) : undefined), [uri]);
  return (
    <section>
      <p class="crumbs"><a href={href('vaults')}>Key vaults</a> / {name}</p>
      <h1>{name}</h1>
      <Show what="the vault" loaded={vault}>
        {(v) => (
          <>
            <dl>
              <dt>Vault URI</dt><dd><code>{v.properties.vaultUri}</code></dd>
              <dt>Resource group</dt><dd>{rg}</dd>
              <dt>Permission model</dt><dd>{v.properties.enableRbacAuthorization === false ? `Access policies (${v.properties.accessPolicies?.length ?? 0})` : 'Azure RBAC'}</dd>
            </dl>
            <p><a href={href('access', v.id)}>Access control</a></p>
            <h2>Secrets</h2>
            <Show what="secrets" loaded={secrets} empty={(d) => !d || d.length === 0}>
              {(d) => (
                <table>
                  <thead><tr><th>Name</th><th>Enabled</th><th>Content type</th><th>Updated</th><th>Expires</th></tr></thead>
                  <tbody>{(d ?? []).map((s: SecretItem) => (
                    <tr key={s.id}>
                      <td><a href={href('vaults', rg, name, 'secrets', secretName(s.id))}>{secretName(s.id)}</a></td>
                      <td>{s.attributes.enabled ? 'Yes' : 'No'}</td><td>{s.contentType ?? ''}</td><td>{date(s.attributes.updated)}</td><td>{date(s.attributes.exp)}</td>
                    </tr>))}
                  </tbody>
                </table>
              )}
            </Show>
          </>
        )}
      </Show>
    </section>
  );
}

function Value({ uri, name, version }: { uri: string; name: string; version: string }) {
  const [value, setValue] = useState<string>();
  const [error, setError] = useState<Error>();
  if (value !== undefined) {
    return <span class="copy"><code data-testid="secret-value">{value}</code><button type="button" class="small" onClick={() => setValue(undefined)}>Hide</button></span>;
  }
  return (
    <>
      {error ? <ErrorBox error={error} /> : null}
      <button type="button" class="small" onClick={() => { setError(undefined); void secretValue(uri, name, version).then(setValue, setError); }}>Show value</button>
    </>
  );
}

export function SecretPage({ rg, vault, name }: { rg: string; vault: string; name: string }) {
  const v = useVault(rg, vault);
  const uri = v.data?.properties.vaultUri;
  const versions = useLoad(async () => (uri ? listVersions(uri, name) : undefined), [uri, name]);
  return (
    <section>
      <p class="crumbs"><a href={href('vaults')}>Key vaults</a> / <a href={href('vaults', rg, vault)}>{vault}</a> / {name}</p>
      <h1>{name}</h1>
      {v.error ? <ErrorBox error={v.error} /> : null}
      <Show what="versions" loaded={versions} empty={(d) => !d || d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Version</th><th>Enabled</th><th>Created</th><th>Updated</th><th>Value</th></tr></thead>
            <tbody>{[...(d ?? [])].sort((a, b) => b.attributes.created - a.attributes.created).map((s) => (
              <tr key={s.id}>
                <td><code>{secretVersion(s.id)}</code></td><td>{s.attributes.enabled ? 'Yes' : 'No'}</td>
                <td>{date(s.attributes.created)}</td><td>{date(s.attributes.updated)}</td>
                <td>{uri ? <Value uri={uri} name={name} version={secretVersion(s.id)} /> : null}</td>
              </tr>))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}
