// Resource groups the principal can read, with what is in each.
import { list, type ArmResource } from '../api.js';
import { API } from '../api.js';
import { href } from '../router.js';
import { Show, useLoad } from '../ui.js';

export function ResourceGroups() {
  const groups = useLoad(() => list('/resourcegroups', API.resources), []);
  const resources = useLoad(() => list<unknown>('/resources', API.resources), []);
  const inGroup = (rg: string) => (resources.data ?? []).filter((r: ArmResource<unknown>) => r.id.toLowerCase().includes(`/resourcegroups/${rg.toLowerCase()}/`));
  const page = (type?: string) => (type?.toLowerCase() === 'microsoft.containerregistry/registries' ? 'registries'
    : type?.toLowerCase() === 'microsoft.containerinstance/containergroups' ? 'container-groups'
      : type?.toLowerCase() === 'microsoft.keyvault/vaults' ? 'vaults' : undefined);
  return (
    <section>
      <h1>Resource groups</h1>
      <Show what="resource groups" loaded={groups} empty={(d) => d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Name</th><th>Location</th><th>Resources</th></tr></thead>
            <tbody>
              {d.map((g) => (
                <tr key={g.id}>
                  <td>{g.name}</td><td>{g.location}</td>
                  <td>{inGroup(g.name).map((r) => {
                    const p = page(r.type);
                    return <span class="chip" key={r.id}>{p ? <a href={href(p, g.name, r.name)}>{r.name}</a> : r.name} <small>{r.type?.split('/').pop()}</small></span>;
                  })}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}
