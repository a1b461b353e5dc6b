// Registry access requests (the Docker token spec's scopes) and what each principal may do. Pure.

export type RepoAction = 'pull' | 'push' | 'delete' | 'metadataRead' | 'metadataWrite';
export const REPO_ACTIONS: RepoAction[] = ['pull', 'push', 'delete', 'metadataRead', 'metadataWrite'];

export interface AccessRequest {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

/** Spellings clients use for the same action (the ACR docs use both). */
const ACTION_ALIASES: Record<string, string> = { metadata_read: 'metadataRead', metadata_write: 'metadataWrite' };

/** Parses `repository:name:pull,push` (several may be joined by spaces). Invalid parts are ignored. */
export function parseScopes(scopes: string[]): AccessRequest[] {
  const out: AccessRequest[] = [];
  for (const s of scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first <= 0 || last === first) continue;
    let type = s.slice(0, first);
    if (type === 'artifact-repository') type = 'repository';
    if (type !== 'repository' && type !== 'registry') continue;
    const name = s.slice(first + 1, last);
    const actions = s.slice(last + 1).split(',').filter(Boolean).map((a) => ACTION_ALIASES[a] ?? a);
    out.push({ type, name, actions });
  }
  return out;
}

export function formatScope(a: AccessRequest): string {
  return `${a.type}:${a.name}:${a.actions.join(',')}`;
}

/** The permission each data-plane action needs, as an Azure RBAC action on the registry resource. */
export const RBAC_ACTION_FOR: Record<string, string> = {
  pull: 'Microsoft.ContainerRegistry/registries/pull/read',
  metadataRead: 'Microsoft.ContainerRegistry/registries/pull/read',
  push: 'Microsoft.ContainerRegistry/registries/push/write',
  metadataWrite: 'Microsoft.ContainerRegistry/registries/push/write',
  delete: 'Microsoft.ContainerRegistry/registries/artifacts/delete',
  catalog: 'Microsoft.ContainerRegistry/registries/read',
};
