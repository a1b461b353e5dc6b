// Shared pieces: loading/error/empty states and a hook that loads data and can reload it.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';

export interface Loaded<T> { data?: T; error?: Error; loading: boolean; reload: () => void }

export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  const reload = useCallback(() => setN((x) => x + 1), []);
  useEffect(() => {
    let live = true;
    const run = () => load().then((data) => live && setState({ data, loading: false }), (error: Error) => live && setState((s) => ({ ...s, error, loading: false })));
    void run();
    const t = everyMs ? setInterval(run, everyMs) : undefined;
    return () => { live = false; if (t) clearInterval(t); };
  }, [...deps, n]);
  return { ...state, reload };
}

export function Show<T>({ what, loaded, empty, children }: { what: string; loaded: Loaded<T>; empty?: (d: T) => boolean; children: (d: T) => ComponentChildren }) {
  if (loaded.error && loaded.data === undefined) return <ErrorBox error={loaded.error} />;
  if (loaded.data === undefined) return <p class="muted" role="status">Loading {what}…</p>;
  if (empty?.(loaded.data)) return <p class="empty">No {what} yet.</p>;
  return <>{loaded.error ? <ErrorBox error={loaded.error} /> : null}{children(loaded.data)}</>;
}

export function ErrorBox({ error }: { error: Error | string }) {
  const msg = typeof error === 'string' ? error : error.message;
  return <div class="error" role="alert">{msg}</div>;
}

export function Copy({ text }: { text: string }) {
  const [done, setDone] = useState(false);
  return (
    <span class="copy">
      <code>{text}</code>
      <button type="button" class="small" onClick={() => void navigator.clipboard?.writeText(text).then(() => { setDone(true); setTimeout(() => setDone(false), 1500); })}>{done ? 'Copied' : 'Copy'}</button>
    </span>
  );
}

export const when = (iso?: string) => (iso ? new Date(iso).toLocaleString() : '');
export function size(bytes?: number): string {
  if (bytes === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}
