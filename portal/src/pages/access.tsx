// Access control at a scope (the subscription, a resource group or a resource): the role assignments
// that apply there, and adding and removing them, as `berth role assignment create|list|delete`.
import { useState } from 'preact/hooks';
import { API, arm, subscriptionId } from '../api.js';
import { go, href } from '../router.js';
import { ErrorBox, Show, useLoad } from '../ui.js';

interface Assignment { id: string; name: string; properties: { roleDefinitionId: string; principalId: string; principalType?: string; scope: string } }
interface RoleDefinition { id: string; name: string; properties: { roleName: string; description?: string } }

export function Access({ scope: given }: { scope?: string }) {
  const scope = useLoad(async () => given ?? `/subscriptions/${await subscriptionId()}`, [given]);
  const s = scope.data;
  const roles = useLoad(async () => (await arm<{ value: RoleDefinition[] }>('GET', `/subscriptions/${await subscriptionId()}/providers/Microsoft.Authorization/roleDefinitions`, API.authorization)).value, []);
  const assignments = useLoad(async () => (s ? (await arm<{ value: Assignment[] }>('GET', `${s}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()`, API.authorization)).value : undefined), [s]);
  const names = useLoad(async () => {
    const ids = [...new Set((assignments.data ?? []).map((a) => a.properties.principalId))];
    if (!ids.length) return {} as Record<string, string>;
    const r = await arm<{ value: Array<{ id: string; displayName: string }> }>('POST', '/v1.0/directoryObjects/getByIds', API.authorization, { ids });
    return Object.fromEntries(r.value.map((o) => [o.id, o.displayName]));
  }, [assignments.data]);
  const [principal, setPrincipal] = useState('');
  const [role, setRole] = useState('AcrPull');
  const [error, setError] = useState<Error>();
  const roleName = (id: string) => roles.data?.find((r) => id.toLowerCase().endsWith(r.name.toLowerCase()))?.properties.roleName ?? id.split('/').pop();

  const add = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const def = roles.data?.find((r) => r.properties.roleName === role);
      if (!def) throw new Error(`No role named ${role}.`);
      await arm('PUT', `${s}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, API.authorization,
        { properties: { roleDefinitionId: def.id, principalId: principal.trim() } });
      setPrincipal('');
      assignments.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  const remove = async (a: Assignment) => {
    if (!confirm(`Remove ${roleName(a.properties.roleDefinitionId)} from ${names.data?.[a.properties.principalId] ?? a.properties.principalId}?`)) return;
    try {
      await arm('DELETE', a.id, API.authorization);
      assignments.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <section>
      <h1>Access control</h1>
      <form class="row" onSubmit={(e) => { e.preventDefault(); const v = (e.currentTarget.elements.namedItem('scope') as HTMLInputElement).value.trim(); go('access', ...(v ? [v] : [])); }}>
        <label class="inline">Scope <input name="scope" size={80} value={s ?? ''} key={s} /></label>
        <button type="submit" class="small">Show</button>
      </form>
      {error ? <ErrorBox error={error} /> : null}
      <Show what="role assignments" loaded={assignments} empty={(d) => !d || d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Principal</th><th>Type</th><th>Role</th><th>Scope</th><th></th></tr></thead>
            <tbody>{(d ?? []).map((a) => (
              <tr key={a.id}>
                <td>{names.data?.[a.properties.principalId] ?? <code>{a.properties.principalId}</code>}</td>
                <td>{a.properties.principalType ?? ''}</td>
                <td>{roleName(a.properties.roleDefinitionId)}</td>
                <td>{a.properties.scope === s ? 'This scope' : <a href={href('access', a.properties.scope)}>{a.properties.scope}</a>}</td>
                <td><button type="button" class="small danger" onClick={() => void remove(a)}>Remove</button></td>
              </tr>))}
            </tbody>
          </table>
        )}
      </Show>
      <h2>Add a role assignment</h2>
      <form class="row" onSubmit={(e) => void add(e)}>
        <input aria-label="Principal ID" placeholder="principal (object) ID" size={40} required value={principal} onInput={(e) => setPrincipal(e.currentTarget.value)} />
        <select aria-label="Role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
          {(roles.data ?? []).map((r) => <option key={r.name} value={r.properties.roleName}>{r.properties.roleName}</option>)}
        </select>
        <button type="submit" disabled={!principal.trim() || !s}>Add</button>
      </form>
    </section>
  );
}
