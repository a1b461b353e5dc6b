// Container groups: the list (state, IP and ports) and one group's page: state, containers with their
// restart counts, events refreshed every two seconds, logs streamed live, and stop/start/restart/delete.
import { useEffect, useRef, useState } from 'preact/hooks';
import { API, arm, list, rgOf, subPath, type ApiError, type ArmResource } from '../api.js';
import { go, href } from '../router.js';
import { ErrorBox, Show, useLoad, when } from '../ui.js';
import { Console } from './console.js';

interface Port { port: number; protocol: string; hostPort?: number }
interface Event { count: number; firstTimestamp: string; lastTimestamp: string; name: string; message: string; type: string }
interface ContainerProps {
  image: string;
  ports?: Port[];
  resources: { requests: { cpu: number; memoryInGB: number } };
  instanceView?: { restartCount: number; currentState?: { state: string; startTime?: string; detailStatus?: string; exitCode?: number }; events: Event[] };
}
interface GroupProps {
  provisioningState: string;
  restartPolicy: string;
  containers: Array<{ name: string; properties: ContainerProps }>;
  ipAddress?: { ip?: string; ports: Port[]; fqdn?: string };
  instanceView?: { state: string; events: Event[] };
}
type Group = ArmResource<GroupProps>;
const CG = '/providers/Microsoft.ContainerInstance/containerGroups';

function Endpoints({ ip }: { ip?: GroupProps['ipAddress'] }) {
  if (!ip?.ip || !ip.ports.length) return <span class="muted">none</span>;
  return <>{ip.ports.map((p) => {
    const port = p.hostPort ?? p.port;
    return <a key={p.port} class="chip" href={`http://${ip.ip}:${port}/`} target="_blank" rel="noopener noreferrer">{ip.ip}:{port}{p.hostPort ? ` → ${p.port}` : ''}</a>;
  })}</>;
}

/** A group's state: list items carry none (as ACI's list), so each row reads its group. */
function GroupState({ id, provisioning }: { id: string; provisioning: string }) {
  const g = useLoad(() => arm<Group>('GET', id, API.groups), [id], 5000);
  return <>{g.data?.properties.instanceView?.state ?? provisioning}</>;
}

export function ContainerGroups() {
  const groups = useLoad(() => list<GroupProps>(CG, API.groups), [], 5000);
  return (
    <section>
      <h1>Container groups</h1>
      <Show what="container groups" loaded={groups} empty={(d) => d.length === 0}>
        {(d) => (
          <table>
            <thead><tr><th>Name</th><th>Resource group</th><th>State</th><th>Image</th><th>Endpoints</th></tr></thead>
            <tbody>{d.map((g) => (
              <tr key={g.id}>
                <td><a href={href('container-groups', rgOf(g.id), g.name)}>{g.name}</a></td><td>{rgOf(g.id)}</td>
                <td><GroupState id={g.id} provisioning={g.properties.provisioningState} /></td>
                <td><code>{g.properties.containers[0]?.properties.image}</code></td>
                <td><Endpoints ip={g.properties.ipAddress} /></td>
              </tr>))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}

function Events({ events }: { events: Event[] }) {
  if (!events.length) return <p class="empty">No events yet.</p>;
  return (
    <table class="events">
      <thead><tr><th>Type</th><th>Name</th><th>Count</th><th>First</th><th>Last</th><th>Message</th></tr></thead>
      <tbody>{events.map((e, i) => <tr key={i} class={e.type === 'Warning' ? 'warning' : ''}><td>{e.type}</td><td>{e.name}</td><td>{e.count}</td><td>{when(e.firstTimestamp)}</td><td>{when(e.lastTimestamp)}</td><td>{e.message}</td></tr>)}</tbody>
    </table>
  );
}

/** The container's log so far, then its output as it comes, over the attach websocket. */
function Logs({ path, container, running }: { path: string; container: string; running: boolean }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<Error>();
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    let ws: WebSocket | undefined;
    let poll: ReturnType<typeof setInterval> | undefined;
    let live = true;
    const read = async () => {
      const r = await arm<{ content: string }>('GET', `${path}/containers/${container}/logs`, API.groups);
      if (live) setText(r.content ?? '');
    };
    const start = async () => {
      try {
        await read();
        if (!live || !running) return;
        let a: { webSocketUri: string; password: string };
        try {
          a = await arm<{ webSocketUri: string; password: string }>('POST', `${path}/containers/${container}/attach`, API.groups, {});
        } catch (e) {
          // A principal that may read logs but not attach (a Reader) gets them every two seconds instead.
          if ((e as ApiError).status !== 403) throw e;
          poll = setInterval(() => void read().catch((err: Error) => live && setError(err)), 2000);
          return;
        }
        if (!live) return;
        ws = new WebSocket(a.webSocketUri);
        ws.onopen = () => ws!.send(a.password);
        ws.onmessage = (m) => setText((t) => t + (typeof m.data === 'string' ? m.data : ''));
      } catch (e) {
        if (live) setError(e as Error);
      }
    };
    void start();
    return () => { live = false; ws?.close(); if (poll) clearInterval(poll); };
  }, [path, container, running]);
  useEffect(() => { if (pre.current) pre.current.scrollTop = pre.current.scrollHeight; }, [text]);
  return (
    <>
      {error ? <ErrorBox error={error} /> : null}
      <pre class="logs" ref={pre} data-container={container}>{text || (running ? 'Waiting for output…' : 'No output.')}</pre>
    </>
  );
}

export function ContainerGroup({ rg, name }: { rg: string; name: string }) {
  const group = useLoad(async () => arm<Group>('GET', await subPath(`/resourceGroups/${rg}${CG}/${name}`), API.groups), [rg, name], 2000);
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState<string>();
  const act = async (what: 'restart' | 'stop' | 'start' | 'delete') => {
    if (what === 'delete' && !confirm(`Delete container group ${name}?`)) return;
    setBusy(what);
    setError(undefined);
    try {
      const path = await subPath(`/resourceGroups/${rg}${CG}/${name}`);
      if (what === 'delete') {
        await arm('DELETE', path, API.groups);
        go('container-groups');
        return;
      }
      await arm('POST', `${path}/${what}`, API.groups, {});
      group.reload();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(undefined);
    }
  };
  return (
    <section>
      <p class="crumbs"><a href={href('container-groups')}>Container groups</a> / {name}</p>
      <h1>{name}</h1>
      {error ? <ErrorBox error={error} /> : null}
      <Show what="the container group" loaded={group}>
        {(g) => {
          const state = g.properties.instanceView?.state ?? g.properties.provisioningState;
          return (
            <>
              <div class="toolbar">
                {(['restart', 'stop', 'start'] as const).map((a) => <button key={a} type="button" disabled={busy !== undefined} onClick={() => void act(a)}>{a[0]!.toUpperCase() + a.slice(1)}</button>)}
                <button type="button" class="danger" disabled={busy !== undefined} onClick={() => void act('delete')}>Delete</button>
                <a href={href('access', g.id)}>Access control</a>
              </div>
              <dl>
                <dt>State</dt><dd data-testid="group-state">{state}</dd>
                <dt>Provisioning</dt><dd>{g.properties.provisioningState}</dd>
                <dt>Restart policy</dt><dd>{g.properties.restartPolicy}</dd>
                <dt>Endpoints</dt><dd><Endpoints ip={g.properties.ipAddress} /></dd>
                {g.properties.ipAddress?.fqdn ? <><dt>FQDN</dt><dd><code>{g.properties.ipAddress.fqdn}</code></dd></> : null}
              </dl>
              {g.properties.instanceView?.events.length ? <><h2>Group events</h2><Events events={g.properties.instanceView.events} /></> : null}
              {g.properties.containers.map((c) => {
                const iv = c.properties.instanceView;
                const cs = iv?.currentState;
                return (
                  <article class="card" key={c.name}>
                    <h2>{c.name}</h2>
                    <dl>
                      <dt>Image</dt><dd><code>{c.properties.image}</code></dd>
                      <dt>State</dt><dd>{cs?.state ?? 'Waiting'}{cs?.detailStatus ? ` (${cs.detailStatus})` : ''}{cs?.exitCode !== undefined ? `, exit code ${cs.exitCode}` : ''}</dd>
                      <dt>Restarts</dt><dd>{iv?.restartCount ?? 0}</dd>
                      <dt>Requests</dt><dd>{c.properties.resources.requests.cpu} CPU, {c.properties.resources.requests.memoryInGB} GB</dd>
                    </dl>
                    <h3>Events</h3>
                    <Events events={iv?.events ?? []} />
                    <h3>Logs</h3>
                    <Logs path={g.id} container={c.name} running={cs?.state === 'Running'} />
                    {cs?.state === 'Running' ? <><h3>Console</h3><Console path={g.id} container={c.name} /></> : null}
                  </article>
                );
              })}
            </>
          );
        }}
      </Show>
    </section>
  );
}
