// The authorization matrix: every kind of principal × every data-plane action × a repository inside and
// outside the principal's scope, each cell asserted allow or deny against a live Berth registry through
// the real token flow, and printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestBerth, adminRegistry, type TestBerth } from './helpers/berth.js';
import { RegistryClient, type RegistryCredential } from '../src/client/registry-client.js';
import { findRole } from '../src/identity/roles.js';
import { armId } from '../src/registry/registries.js';

type Action = 'pull' | 'push' | 'delete' | 'listTags' | 'catalog' | 'referrers';
const ACTIONS: Action[] = ['pull', 'push', 'delete', 'listTags', 'catalog', 'referrers'];
const INSIDE = 'inside/app';
const OUTSIDE = 'outside/app';

let b: TestBerth;
let reg: Awaited<ReturnType<typeof adminRegistry>>;
const admin = () => new RegistryClient(reg.loginServer, { kind: 'basic', username: reg.username, password: reg.password });
const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
const CONFIG = '{}';
let seq = 0;

/** Pushes a small unique manifest with the admin user; returns its digest and body. */
async function seed(repo: string, tag?: string): Promise<{ digest: string; body: string }> {
  const rc = admin();
  const scope = `repository:${repo}:pull,push`;
  const post = await rc.send('POST', `/v2/${repo}/blobs/uploads/?digest=${sha(CONFIG)}`, scope, { body: CONFIG, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(post.status, 201);
  await post.body.dump();
  const body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(CONFIG), size: 2 }, layers: [], annotations: { n: String(seq++) } });
  const put = await rc.send('PUT', `/v2/${repo}/manifests/${tag ?? sha(body)}`, scope, { body, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(put.status, 201);
  await put.body.dump();
  return { digest: sha(body), body };
}

async function attempt(cred: RegistryCredential, action: Action, repo: string): Promise<boolean> {
  const rc = new RegistryClient(reg.loginServer, cred);
  let res;
  switch (action) {
    case 'pull': res = await rc.send('GET', `/v2/${repo}/manifests/v1`, `repository:${repo}:pull`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } }); break;
    case 'push': {
      const m = await seed(repo);
      res = await rc.send('PUT', `/v2/${repo}/manifests/pushed-${seq}`, `repository:${repo}:pull,push`, { body: m.body, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
      break;
    }
    case 'delete': {
      const m = await seed(repo);
      res = await rc.send('DELETE', `/v2/${repo}/manifests/${m.digest}`, `repository:${repo}:delete`);
      break;
    }
    case 'listTags': res = await rc.send('GET', `/acr/v1/${repo}/_tags`, `repository:${repo}:metadata_read`); break;
    case 'catalog': res = await rc.send('GET', '/v2/_catalog', 'registry:catalog:*'); break;
    case 'referrers': res = await rc.send('GET', `/v2/${repo}/referrers/${(await seed(repo)).digest}`, `repository:${repo}:pull`); break;
  }
  await res.body.dump();
  if (res.status >= 200 && res.status < 300) return true;
  assert.ok([401, 403].includes(res.status), `${action} on ${repo} answered ${res.status}, expected success or 401/403`);
  return false;
}

// The registry actions each built-in role allows, from its real permissions (pull/read, push/write, artifacts/delete, */read, *).
const SP_ROLES: Array<[string, Action[]]> = [
  ['AcrPull', ['pull', 'listTags', 'referrers']],
  ['AcrPush', ['pull', 'push', 'listTags', 'referrers']],
  ['AcrDelete', ['delete']],
  ['Reader', ['pull', 'listTags', 'catalog', 'referrers']],
  ['Contributor', [...ACTIONS]],
  ['Owner', [...ACTIONS]],
];

interface Row { name: string; cred: () => Promise<RegistryCredential>; allow: { inside: Action[]; outside: Action[] } }
const both = (a: Action[]) => ({ inside: a, outside: a });

before(async () => {
  b = await startTestBerth();
  reg = await adminRegistry(b, 'matrixreg01');
  await seed(INSIDE, 'v1');
  await seed(OUTSIDE, 'v1');
});
after(async () => b?.cleanup());

test('authorization matrix: principal × action × repository in and out of scope', async () => {
  const r = await b.registries.get('rg', 'matrixreg01');
  const regScope = armId(r);
  const rgScope = `/subscriptions/${r.subscription}/resourceGroups/rg`;
  const subScope = `/subscriptions/${r.subscription}`;
  const tokenCred = async (name: string, map: string): Promise<RegistryCredential> => {
    await b.repoTokens.createOrUpdateToken(r, name, { scopeMap: map });
    const c = await b.repoTokens.generateCredentials(r, name, { name: 'password1' });
    return { kind: 'basic', username: name, password: c.passwords[0]!.value };
  };
  const spCred = async (role: string | undefined, scope: string): Promise<RegistryCredential> => {
    const app = await b.applications.createApplication(`sp-${role ?? 'none'}-${seq++}`);
    await b.applications.createServicePrincipal(app.appId);
    const pw = await b.applications.addPassword(app.id, {});
    if (role) await b.identity.assignRole(app.id, findRole(role)!, scope);
    return { kind: 'basic', username: app.appId, password: pw.secretText };
  };
  const miCred = async (role: string | undefined): Promise<RegistryCredential> => {
    const { identity } = await b.managedIdentities.createOrUpdate('rg', `mi-${role ?? 'none'}-${seq++}`, {});
    if (role) await b.identity.assignRole(identity.principalId, findRole(role)!, regScope);
    const binding = b.workloads.bind(`group-${seq}`, [identity.principalId]);
    const tok = await fetch(`${b.url}/msi/token?api-version=2019-08-01&resource=${encodeURIComponent('https://management.azure.com/')}`, { headers: { 'X-IDENTITY-HEADER': binding.secret } });
    assert.equal(tok.status, 200);
    const access = ((await tok.json()) as { access_token: string }).access_token;
    const ex = await fetch(`${reg.base}/oauth2/exchange`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'access_token', service: reg.loginServer, tenant: b.identity.ids.tenantId, access_token: access }) });
    assert.equal(ex.status, 200);
    return { kind: 'refreshToken', refreshToken: ((await ex.json()) as { refresh_token: string }).refresh_token };
  };
  await b.repoTokens.createOrUpdateScopeMap(r, 'inside-only', [`repositories/${INSIDE}/content/read`, `repositories/${INSIDE}/metadata/read`]);

  const all: Action[] = [...ACTIONS];
  const rows: Row[] = [
    { name: 'admin user', cred: async () => ({ kind: 'basic', username: reg.username, password: reg.password }), allow: both(all) },
    { name: 'token _repositories_pull', cred: () => tokenCred('tokpull', '_repositories_pull'), allow: both(['pull', 'referrers']) },
    { name: 'token _repositories_pull_metadata_read', cred: () => tokenCred('tokpullmeta', '_repositories_pull_metadata_read'), allow: both(['pull', 'listTags', 'catalog', 'referrers']) },
    { name: 'token _repositories_push', cred: () => tokenCred('tokpush', '_repositories_push'), allow: both(['pull', 'push', 'referrers']) },
    { name: 'token _repositories_push_metadata_write', cred: () => tokenCred('tokpushmeta', '_repositories_push_metadata_write'), allow: both(['pull', 'push', 'listTags', 'catalog', 'referrers']) },
    { name: 'token _repositories_admin', cred: () => tokenCred('tokadmin', '_repositories_admin'), allow: both(all) },
    { name: 'token custom (inside/app read)', cred: () => tokenCred('tokinside', 'inside-only'), allow: { inside: ['pull', 'listTags', 'referrers'], outside: [] } },
    // every registry-relevant built-in role at every scope level: scopes inherit downwards
    ...SP_ROLES.flatMap(([role, allowed]) => ([['registry', regScope], ['group', rgScope], ['subscription', subScope]] as const)
      .map(([level, scope]): Row => ({ name: `SP ${role} @${level}`, cred: () => spCred(role, scope), allow: both(allowed) }))),
    { name: 'SP Key Vault Secrets User @reg', cred: () => spCred('Key Vault Secrets User', regScope), allow: both([]) },
    { name: 'SP Key Vault Secrets Officer @reg', cred: () => spCred('Key Vault Secrets Officer', regScope), allow: both([]) },
    { name: 'SP no role', cred: () => spCred(undefined, regScope), allow: both([]) },
    { name: 'SP AcrPull @other group', cred: async () => { await b.groups.createOrUpdate('elsewhere', 'westus'); return spCred('AcrPull', `/subscriptions/${r.subscription}/resourceGroups/elsewhere`); }, allow: both([]) },
    { name: 'managed identity AcrPull', cred: () => miCred('AcrPull'), allow: both(['pull', 'listTags', 'referrers']) },
    { name: 'managed identity no role', cred: () => miCred(undefined), allow: both([]) },
  ];

  const lines: string[] = [];
  const header = ['principal'.padEnd(40), ...ACTIONS.flatMap((a) => [`${a}:in`, `${a}:out`])].join(' ');
  lines.push(header);
  const failures: string[] = [];
  for (const row of rows) {
    const cred = await row.cred();
    const cells: string[] = [];
    for (const action of ACTIONS) {
      for (const [where, repo] of [['inside', INSIDE], ['outside', OUTSIDE]] as const) {
        const got = await attempt(cred, action, repo);
        const want = row.allow[where].includes(action);
        cells.push(`${got ? 'allow' : 'deny'}${got === want ? '' : '!'}`.padEnd(`${action}:${where === 'inside' ? 'in' : 'out'}`.length));
        if (got !== want) failures.push(`${row.name}: ${action} on ${repo} was ${got ? 'allowed' : 'denied'}, expected ${want ? 'allow' : 'deny'}`);
      }
    }
    lines.push([row.name.padEnd(40), ...cells].join(' '));
  }
  console.log(lines.join('\n'));
  assert.deepEqual(failures, []);
});

test('denials name the missing permission; a disabled token and the disabled admin user are refused at once', async () => {
  const r = await b.registries.get('rg', 'matrixreg01');
  await b.repoTokens.createOrUpdateToken(r, 'tokgone', { scopeMap: '_repositories_pull' });
  const pw = (await b.repoTokens.generateCredentials(r, 'tokgone', { name: 'password1' })).passwords[0]!.value;
  const rc = new RegistryClient(reg.loginServer, { kind: 'basic', username: 'tokgone', password: pw });
  const ok = await rc.send('GET', `/v2/${INSIDE}/manifests/v1`, `repository:${INSIDE}:pull`);
  assert.equal(ok.status, 200);
  await ok.body.dump();
  const denied = await rc.send('PUT', `/v2/${INSIDE}/manifests/x`, `repository:${INSIDE}:pull,push`, { body: '{}', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  const text = await denied.body.text();
  assert.ok([401, 403].includes(denied.status));
  assert.match(text, /DENIED|UNAUTHORIZED/);
  assert.match(text, /token tokgone \(scope map _repositories_pull\) has no 'content\/write' action for repository inside\/app/);
  // the bearer token rc holds stays valid for an hour, but disabling the token refuses it now
  await b.repoTokens.createOrUpdateToken(r, 'tokgone', { status: 'disabled' });
  // (the registry answers 401 to the old bearer token; the client asks for a new one and is refused)
  await assert.rejects(rc.send('GET', `/v2/${INSIDE}/manifests/v1`, `repository:${INSIDE}:pull`), /token tokgone is disabled/);
  const basic = await fetch(`${reg.base}/v2/`, { headers: { Authorization: 'Basic ' + Buffer.from(`tokgone:${pw}`).toString('base64') } });
  assert.equal(basic.status, 401);
  assert.match(await basic.text(), /token tokgone is disabled/);
  // an expired password says it expired and when
  await b.repoTokens.createOrUpdateToken(r, 'tokgone', { status: 'enabled' });
  const soon = new Date(Date.now() + 1500).toISOString();
  const pw2 = (await b.repoTokens.generateCredentials(r, 'tokgone', { name: 'password2', expiry: soon })).passwords[0]!.value;
  await new Promise((res) => setTimeout(res, 1600));
  const expired = await fetch(`${reg.base}/v2/`, { headers: { Authorization: 'Basic ' + Buffer.from(`tokgone:${pw2}`).toString('base64') } });
  assert.equal(expired.status, 401);
  assert.match(await expired.text(), new RegExp(`password2 of token tokgone expired at ${soon.replace(/\./g, '\\.')}`));
  // admin user: a bearer token issued before disabling stops working at once
  const a = admin();
  const first = await a.send('GET', `/v2/${INSIDE}/manifests/v1`, `repository:${INSIDE}:pull`);
  await first.body.dump();
  assert.equal(first.status, 200);
  await b.registries.update('rg', 'matrixreg01', { adminUserEnabled: false });
  try {
    await assert.rejects(a.send('GET', `/v2/${INSIDE}/manifests/v1`, `repository:${INSIDE}:pull`), /admin user of registry matrixreg01 is disabled/);
  } finally {
    await b.registries.update('rg', 'matrixreg01', { adminUserEnabled: true });
  }
});

test('the managed-identity endpoint gives a workload tokens for its own identities only', async () => {
  const { identity: mine } = await b.managedIdentities.createOrUpdate('rg', 'mine', {});
  const { identity: theirs } = await b.managedIdentities.createOrUpdate('rg', 'theirs', {});
  const binding = b.workloads.bind('group-a', [mine.principalId]);
  const url = (q: string) => `${b.url}/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net&${q}`;
  const ok = await fetch(url(`client_id=${mine.clientId}`), { headers: { 'X-IDENTITY-HEADER': binding.secret } });
  assert.equal(ok.status, 200);
  const body = (await ok.json()) as Record<string, string>;
  assert.equal(body.client_id, mine.clientId);
  assert.equal(typeof body.expires_in, 'string', 'IMDS returns numbers as strings');
  const other = await fetch(url(`client_id=${theirs.clientId}`), { headers: { 'X-IDENTITY-HEADER': binding.secret } });
  assert.equal(other.status, 400);
  assert.match(((await other.json()) as { error_description: string }).error_description, /does not hold the identity/);
  const none = await fetch(url(''), { headers: { 'X-IDENTITY-HEADER': 'not-a-workload' } });
  assert.equal(none.status, 401);
  const imds = await fetch(`${b.url}/metadata/identity/oauth2/token?resource=x`, { headers: { 'X-IDENTITY-HEADER': binding.secret } });
  assert.equal(imds.status, 400);
  assert.match(await imds.text(), /Required metadata header not specified/);
  b.workloads.unbind('group-a');
  const gone = await fetch(url(''), { headers: { 'X-IDENTITY-HEADER': binding.secret } });
  assert.equal(gone.status, 401);
});

test('Basic auth straight on the data plane works for every principal kind, with the same allow/deny', async () => {
  const r = await b.registries.get('rg', 'matrixreg01');
  const manifest = await seed(INSIDE, 'basic-src');
  const basicFor = async (kind: string): Promise<{ user: string; pass: string; canPush: boolean; canPull: boolean }> => {
    switch (kind) {
      case 'admin user': return { user: reg.username, pass: reg.password, canPull: true, canPush: true };
      case 'token _repositories_pull': {
        await b.repoTokens.createOrUpdateToken(r, 'tokbasic', { scopeMap: '_repositories_pull' });
        return { user: 'tokbasic', pass: (await b.repoTokens.generateCredentials(r, 'tokbasic', { name: 'password1' })).passwords[0]!.value, canPull: true, canPush: false };
      }
      case 'SP AcrPush': case 'SP AcrPull': case 'SP no role': {
        const app = await b.applications.createApplication(`basic-${kind.replace(/ /g, '-')}`);
        await b.applications.createServicePrincipal(app.appId);
        const pass = (await b.applications.addPassword(app.id, {})).secretText;
        const role = kind.split(' ')[1]!;
        if (role !== 'no') await b.identity.assignRole(app.id, findRole(role)!, armId(r));
        return { user: app.appId, pass, canPull: role !== 'no', canPush: role === 'AcrPush' };
      }
      default: { // managed identity AcrPull: ACR exchange's refresh token as the password of the null GUID
        const { identity } = await b.managedIdentities.createOrUpdate('rg', 'mi-basic', {});
        await b.identity.assignRole(identity.principalId, findRole('AcrPull')!, armId(r));
        const binding = b.workloads.bind('group-basic', [identity.principalId]);
        const tok = await fetch(`${b.url}/msi/token?api-version=2019-08-01&resource=${encodeURIComponent('https://management.azure.com/')}`, { headers: { 'X-IDENTITY-HEADER': binding.secret } });
        const access = ((await tok.json()) as { access_token: string }).access_token;
        const ex = await fetch(`${reg.base}/oauth2/exchange`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'access_token', service: reg.loginServer, tenant: b.identity.ids.tenantId, access_token: access }) });
        b.workloads.unbind('group-basic');
        return { user: '00000000-0000-0000-0000-000000000000', pass: ((await ex.json()) as { refresh_token: string }).refresh_token, canPull: true, canPush: false };
      }
    }
  };
  const lines: string[] = [];
  for (const kind of ['admin user', 'token _repositories_pull', 'SP AcrPush', 'SP AcrPull', 'SP no role', 'managed identity AcrPull']) {
    const c = await basicFor(kind);
    const auth = 'Basic ' + Buffer.from(`${c.user}:${c.pass}`).toString('base64');
    const ping = await fetch(`${reg.base}/v2/`, { headers: { authorization: auth } });
    await ping.body?.cancel();
    assert.equal(ping.status, 200, `${kind}: /v2/ with Basic`);
    const pull = await fetch(`${reg.base}/v2/${INSIDE}/manifests/basic-src`, { headers: { authorization: auth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const pullBody = await pull.text();
    assert.equal(pull.status, c.canPull ? 200 : 403, `${kind}: pull with Basic: ${pullBody}`);
    const push = await fetch(`${reg.base}/v2/${INSIDE}/manifests/basic-${seq++}`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest.body });
    const pushBody = await push.text();
    assert.equal(push.status, c.canPush ? 201 : 403, `${kind}: push with Basic: ${pushBody}`);
    if (!c.canPush) assert.match(pushBody, /"DENIED".*(content\/write|push\/write)/, `${kind}: the denial names the missing permission`);
    const wrong = await fetch(`${reg.base}/v2/`, { headers: { authorization: 'Basic ' + Buffer.from(`${c.user}:not-${c.pass.slice(0, 3)}`).toString('base64') } });
    await wrong.body?.cancel();
    assert.equal(wrong.status, 401, `${kind}: a wrong password is refused`);
    lines.push(`${kind.padEnd(26)} ping ${ping.status}  pull ${pull.status}  push ${push.status}  wrong password ${wrong.status}`);
  }
  console.log(lines.join('\n'));
});
