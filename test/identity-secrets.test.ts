// Secret hashes (src/identity/secrets.ts): scrypt with a salt; the cached check, and that checks of one
// secret arriving together (50 clients authenticating at once on a cold cache) share one scrypt run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecret, hashSecret, verifySecret, verifySecretCached } from '../src/identity/secrets.js';

test('a hash verifies its secret only; the cached check agrees', async () => {
  const secret = generateSecret();
  const stored = await hashSecret(secret);
  assert.equal(await verifySecret(secret, stored), true);
  assert.equal(await verifySecret(`${secret}x`, stored), false);
  assert.equal(await verifySecretCached(secret, stored), true);
  assert.equal(await verifySecretCached(`${secret}x`, stored), false, 'a wrong secret is not let in by the cache');
  assert.equal(await verifySecretCached(secret, await hashSecret(generateSecret())), false, 'a rotated secret stops matching');
});

test('concurrent checks of the same secret share one scrypt run; a different secret gets its own', async () => {
  const secret = generateSecret();
  const stored = await hashSecret(secret);
  const checks = Array.from({ length: 50 }, () => verifySecretCached(secret, stored));
  assert.equal(new Set(checks).size, 1, 'one check in flight for all 50');
  const wrong = verifySecretCached('not-it', stored);
  assert.notEqual(wrong, checks[0]);
  assert.deepEqual(await Promise.all(checks), Array(50).fill(true));
  assert.equal(await wrong, false);
  // Failed checks are not remembered: the next wrong attempt runs scrypt again (a new check).
  const again = [verifySecretCached('not-it', stored), verifySecretCached('not-it', stored)];
  assert.equal(again[0], again[1]);
  assert.equal(await again[0], false);
});
