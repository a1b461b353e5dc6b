// `az container export`: a container group as the YAML document `container create --file` reads back.
// As az does: the resource as ARM returns it, without what only a GET has (instanceView,
// provisioningState, id, sku at the top, Berth's hostPort), the identity as its type and user-assigned ids only, plus
// apiVersion. A GET never returns secure environment values or registry passwords, so the document
// cannot hold them either: `omitted` names what the user must add back before creating from it.

export interface ExportedGroup {
  document: Record<string, unknown>;
  /** What the file lacks because no GET returns it. */
  omitted: { secureEnvironmentVariables: string[]; registryPasswords: string[] };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function exportGroup(resource: Obj, apiVersion: string): ExportedGroup {
  const { id: _id, sku: _sku, plan: _p, kind: _k, managedBy: _m, systemData: _s, identity, properties, ...rest } = resource;
  const props: Obj = { ...(isObj(properties) ? properties : {}) };
  delete props.instanceView;
  delete props.provisioningState;
  // Berth's own read-only hostPort (where a port was published on another host port) is not ACI's.
  if (isObj(props.ipAddress) && Array.isArray(props.ipAddress.ports)) {
    props.ipAddress = { ...props.ipAddress, ports: (props.ipAddress.ports as Obj[]).map(({ hostPort: _h, ...p }) => p) };
  }
  const secure: string[] = [];
  props.containers = (Array.isArray(props.containers) ? props.containers : []).map((c: Obj) => {
    const cp: Obj = { ...(isObj(c.properties) ? c.properties : {}) };
    delete cp.instanceView;
    for (const e of (Array.isArray(cp.environmentVariables) ? cp.environmentVariables : []) as Obj[]) {
      if (e.value === undefined && e.secureValue === undefined) secure.push(`${String(e.name)} (container ${String(c.name)})`);
    }
    return { ...c, properties: cp };
  });
  const passwords = ((Array.isArray(props.imageRegistryCredentials) ? props.imageRegistryCredentials : []) as Obj[])
    .filter((r) => r.username !== undefined && r.password === undefined && r.identity === undefined).map((r) => String(r.server));
  const doc: Obj = { ...rest, properties: props, apiVersion };
  if (isObj(identity) && typeof identity.type === 'string' && identity.type !== 'None') {
    const uai = isObj(identity.userAssignedIdentities) ? Object.keys(identity.userAssignedIdentities) : [];
    doc.identity = { type: identity.type, ...(uai.length ? { userAssignedIdentities: Object.fromEntries(uai.map((k) => [k, {}])) } : {}) };
  }
  return { document: doc, omitted: { secureEnvironmentVariables: secure, registryPasswords: passwords } };
}
