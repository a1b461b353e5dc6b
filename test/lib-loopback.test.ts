// The one "is this registry host on this machine" rule (src/lib/loopback.ts) that the pull client, the
// push client, the managed-identity keychain and the CLI's registry calls share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost } from '../src/lib/loopback.js';

test('localhost, names under .localhost, 127/8 and ::1, with or without a port, are loopback; nothing else is', () => {
  for (const h of ['localhost', 'localhost:5000', 'LOCALHOST:443', 'kv1.vault.localhost:8080', '127.0.0.1', '127.3.2.1:80', '[::1]:5000', '::1']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['myreg.azurecr.io', 'localhost.example.com', '128.0.0.1', '10.0.0.1:5000', '[::2]:5000', 'notlocalhost']) assert.ok(!isLoopbackHost(h), h);
});
