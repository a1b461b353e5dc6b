// A console into a running container: exec over ACI's websocket (as `az container exec` speaks it:
// the password first, then keystrokes; output comes back as text) in an xterm.js terminal. The
// terminal library is loaded only when a console is opened.
import { useEffect, useRef, useState } from 'preact/hooks';
import { API, arm } from '../api.js';
import { ErrorBox } from '../ui.js';

export function Console({ path, container }: { path: string; container: string }) {
  const [command, setCommand] = useState('/bin/sh');
  const [open, setOpen] = useState(false);
  const [status, setStatus] = useState<string>();
  const [error, setError] = useState<Error>();
  const host = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open || !host.current) return;
    let ws: WebSocket | undefined;
    let dispose = () => undefined as void;
    let live = true;
    void (async () => {
      try {
        const [{ Terminal }] = await Promise.all([import('@xterm/xterm'), import('@xterm/xterm/css/xterm.css')]);
        const term = new Terminal({ rows: 20, cols: 100, convertEol: false, fontSize: 13, cursorBlink: true });
        term.open(host.current!);
        dispose = () => term.dispose();
        const s = await arm<{ webSocketUri: string; password: string }>('POST', `${path}/containers/${container}/exec`, API.groups,
          { command, terminalSize: { rows: term.rows, cols: term.cols } });
        if (!live) return;
        ws = new WebSocket(s.webSocketUri);
        ws.onopen = () => { ws!.send(s.password); setStatus('Connected'); term.focus(); };
        ws.onmessage = (m) => { if (typeof m.data === 'string') term.write(m.data); };
        ws.onclose = (e) => { if (live) setStatus(e.reason ? `Ended: ${e.reason}` : `Ended (${e.code})`); };
        term.onData((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(d); });
      } catch (e) {
        if (live) { setError(e as Error); setOpen(false); }
      }
    })();
    return () => { live = false; ws?.close(); dispose(); };
  }, [open]);

  if (!open) {
    return (
      <form class="row" onSubmit={(e) => { e.preventDefault(); setError(undefined); setStatus(undefined); setOpen(true); }}>
        {error ? <ErrorBox error={error} /> : null}
        <label class="inline">Command <input name="command" value={command} onInput={(e) => setCommand(e.currentTarget.value)} /></label>
        <button type="submit">Connect</button>
      </form>
    );
  }
  return (
    <div class="console">
      <div class="row"><span class="muted" data-testid="console-status">{status ?? 'Connecting…'}</span><button type="button" class="small" onClick={() => setOpen(false)}>Close</button></div>
      <div ref={host} class="console-terminal" />
    </div>
  );
}
