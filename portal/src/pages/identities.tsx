// User-assigned managed identities: list, create in a resource group, delete.
import { useState } from 'preact/hooks';
import { API, arm, list, rgOf, subPath } from '../api.js';
import { href } from '../router.js';
import { ErrorBox, Show, useLoad } from '../ui.js';

interface IdentityProps { clientId: string; principalId: string; tenantId: string }
const MI = '/providers/Microsoft.ManagedIdentity/userAssignedIdentities';

export function Identities() {
  const ids = useLoad(() => list<IdentityProps>(MI, API.msi), []);
  const groups = useLoad(() => list<unknown>('/resourcegroups', API.resources), []);
  const [name, setName] = useState('');
  const [rg, setRg] = useState('');
  const [error, setError] = useState<Error>();
  const group = rg || groups.data?.[0]?.name || '';
  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const location = groups.data?.find((g) => g.name === group)?.location ?? 'westus';
      await arm('PUT', await subPath(`/resourceGroups/${group}${MI}/${name.trim()}`), API.msi, { location });
      setName('');
      ids.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  const remove = async (id: string, n: string) => {
    if (!confirm(`Delete identity ${n}? Groups that use it lose it, and its role assignments go with it.`)) return;
    try {
      await arm('DELETE', id, API.msi);
      ids.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <section>
      <h1>Managed identities</h1>
      {error ? <ErrorBox error={error} /> : null}
      <Show what="managed identities" loaded={ids} empty={(d) => d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Name</th><th>Resource group</th><th>Client ID</th><th>Principal ID</th><th></th></tr></thead>
            <tbody>{d.map((i) => (
              <tr key={i.id}>
                <td>{i.name}</td><td>{rgOf(i.id)}</td><td><code>{i.properties.clientId}</code></td><td><code>{i.properties.principalId}</code></td>
                <td><div class="actions"><a href={href('access', i.id)}>Access control</a><button type="button" class="small danger" onClick={() => void remove(i.id, i.name)}>Delete</button></div></td>
              </tr>))}
            </tbody>
          </table>
        )}
      </Show>
      <h2>Create an identity</h2>
      <form class="row" onSubmit={(e) => void create(e)}>
        <input aria-label="Identity name" placeholder="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <select aria-label="Resource group" value={group} onChange={(e) => setRg(e.currentTarget.value)}>
          {(groups.data ?? []).map((g) => <option key={g.name} value={g.name}>{g.name}</option>)}
        </select>
        <button type="submit" disabled={!name.trim() || !group}>Create</button>
      </form>
    </section>
  );
}
