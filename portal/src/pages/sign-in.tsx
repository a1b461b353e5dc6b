// Sign-in: the one-time code `berth portal` prints (in the URL's #fragment, which no server sees), or a
// service principal's appId and client secret.
import { useEffect, useState } from 'preact/hooks';
import { signInWithCode, signInWithSecret, type Session } from '../session.js';
import { ErrorBox } from '../ui.js';

export function SignIn({ onSignedIn, notice }: { onSignedIn: (s: Session) => void; notice?: string }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [code, setCode] = useState('');
  const [appId, setAppId] = useState('');
  const [secret, setSecret] = useState('');
  const [tenant, setTenant] = useState('');

  const attempt = async (f: () => Promise<Session>) => {
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await f());
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  // `berth portal` opens #/sign-in/<code>: take it out of the address bar and its history entry at
  // once (location.replace also tells the router), then redeem it.
  useEffect(() => {
    const m = /^#\/sign-in\/([A-Za-z0-9_-]+)/.exec(location.hash);
    if (m) {
      location.replace('#/');
      void attempt(() => signInWithCode(m[1]!));
    }
  }, []);

  return (
    <main class="sign-in">
      <h1>Berth</h1>
      {notice && !error ? <p class="notice" role="status">{notice}</p> : null}
      {error ? <ErrorBox error={error} /> : null}
      <section class="card">
        <h2>Local owner</h2>
        <p>Run <code>berth portal</code> on the server's machine: it prints a sign-in link (good for 5 minutes, once). Or paste its code:</p>
        <form onSubmit={(e) => { e.preventDefault(); void attempt(() => signInWithCode(code.trim())); }}>
          <label>Sign-in code <input name="code" value={code} onInput={(e) => setCode(e.currentTarget.value)} autocomplete="off" /></label>
          <button type="submit" disabled={busy || !code.trim()}>Sign in</button>
        </form>
      </section>
      <section class="card">
        <h2>Service principal</h2>
        <form onSubmit={(e) => { e.preventDefault(); void attempt(() => signInWithSecret(tenant, appId, secret)); setSecret(''); }}>
          <label>Application (client) ID <input name="appId" value={appId} onInput={(e) => setAppId(e.currentTarget.value)} autocomplete="username" /></label>
          <label>Client secret <input name="secret" type="password" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} autocomplete="current-password" /></label>
          <label>Tenant (optional) <input name="tenant" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} /></label>
          <button type="submit" disabled={busy || !appId.trim() || !secret}>Sign in</button>
        </form>
      </section>
    </main>
  );
}
