// The portal's shell: sign-in, navigation and the hash routes.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { SIGNED_OUT } from './api.js';
import { currentSession, signOut, type Session } from './session.js';
import { href, useRoute } from './router.js';
import { SignIn } from './pages/sign-in.js';
import { ResourceGroups } from './pages/resource-groups.js';
import { Registries, Registry, Repository } from './pages/registries.js';
import { RunInstance } from './pages/run-instance.js';
import { ContainerGroup, ContainerGroups } from './pages/container-groups.js';
import { SecretPage, VaultPage, Vaults } from './pages/vaults.js';
import { Identities } from './pages/identities.js';
import { Access } from './pages/access.js';
import './style.css';

function Page({ route }: { route: string[] }) {
  const [section, a, b, c, d] = route;
  switch (section) {
    case 'registries':
      if (a && b && c === 'repositories' && d) return <Repository rg={a} name={b} repo={route.slice(4).join('/')} />;
      if (a && b) return <Registry rg={a} name={b} />;
      return <Registries />;
    case 'run':
      if (a && b && c && route.length >= 5) return <RunInstance rg={a} registry={b} repo={route.slice(3, -1).join('/')} ref={route[route.length - 1]!} />;
      break;
    case 'container-groups':
      if (a && b) return <ContainerGroup rg={a} name={b} />;
      return <ContainerGroups />;
    case 'vaults':
      if (a && b && c === 'secrets' && d) return <SecretPage rg={a} vault={b} name={d} />;
      if (a && b) return <VaultPage rg={a} name={b} />;
      return <Vaults />;
    case 'identities':
      return <Identities />;
    case 'access':
      return <Access {...(a ? { scope: a } : {})} />;
    case undefined:
    case 'resource-groups':
      return <ResourceGroups />;
  }
  return <p class="empty">Nothing lives at this address. <a href={href()}>Go to the start page.</a></p>;
}

function App() {
  const [session, setSession] = useState<Session | undefined>(currentSession);
  const [ended, setEnded] = useState(false);
  const route = useRoute();
  useEffect(() => {
    const on = () => { setSession(undefined); setEnded(true); };
    addEventListener(SIGNED_OUT, on);
    return () => removeEventListener(SIGNED_OUT, on);
  }, []);
  if (!session || route[0] === 'sign-in') {
    return <SignIn notice={ended ? 'Your session has ended (a sign-in lasts an hour, or the server was restarted with new keys). Sign in again.' : undefined}
      onSignedIn={(s) => { setSession(s); setEnded(false); if (route[0] === 'sign-in') location.replace('#/'); }} />;
  }
  return (
    <>
      <header>
        <a class="brand" href={href()}>Berth</a>
        <nav>
          <a href={href('resource-groups')} class={!route[0] || route[0] === 'resource-groups' ? 'active' : ''}>Resource groups</a>
          <a href={href('registries')} class={route[0] === 'registries' || route[0] === 'run' ? 'active' : ''}>Registries</a>
          <a href={href('container-groups')} class={route[0] === 'container-groups' ? 'active' : ''}>Container groups</a>
          <a href={href('vaults')} class={route[0] === 'vaults' ? 'active' : ''}>Key vaults</a>
          <a href={href('identities')} class={route[0] === 'identities' ? 'active' : ''}>Identities</a>
          <a href={href('access')} class={route[0] === 'access' ? 'active' : ''}>Access control</a>
        </nav>
        <span class="who" title={session.principal.id}>{session.principal.displayName}</span>
        <button type="button" class="small" onClick={() => { signOut(); setSession(undefined); setEnded(false); }}>Sign out</button>
      </header>
      <main><Page route={route} /></main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
