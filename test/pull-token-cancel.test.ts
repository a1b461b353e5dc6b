// The pull client's token cache shares one token fetch between pulls that want the same token. When
// the pull that started the fetch is cancelled (a container group halted mid-pull), the pulls waiting
// on it must not fail with its cancellation: they ask again themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { TokenCache } from '../src/client/auth.js';
import type { RegistryCredential } from '../src/keychain/keychain.js';

test('a cancelled pull does not fail the pulls that shared its token fetch', async () => {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    // The first answer comes late (the owner is cancelled meanwhile); the retry's at once.
    const delay = requests === 1 ? 300 : 0;
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: `tok-${requests}`, expires_in: 300 }));
    }, delay);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const agent = new Agent();
  try {
    const cache = new TokenCache(agent, { insecure: true });
    const challenge = { scheme: 'bearer', params: { realm: `http://127.0.0.1:${port}/token`, service: 'test' } };
    const cred: RegistryCredential = { kind: 'basic', username: 'u', password: 'p', source: 'test' };
    const owner = new AbortController();
    const first = cache.token('127.0.0.1', challenge, ['repository:a:pull'], cred, { registryIsPlainHttp: true, signal: owner.signal });
    const waiter = cache.token('127.0.0.1', challenge, ['repository:a:pull'], cred, { registryIsPlainHttp: true, signal: new AbortController().signal });
    setTimeout(() => owner.abort(), 50);
    await assert.rejects(first, 'the cancelled pull fails');
    assert.equal(await waiter, 'tok-2', 'the waiting pull gets a token of its own');
    assert.equal(requests, 2);
    assert.equal(await cache.token('127.0.0.1', challenge, ['repository:a:pull'], cred, { registryIsPlainHttp: true }), 'tok-2', 'and it is cached');
  } finally {
    await agent.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
