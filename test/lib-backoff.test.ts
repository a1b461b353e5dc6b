// The one back-off formula (src/lib/backoff.ts) that pull retries, registry requests and container
// restarts share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, jitteredDelay } from '../src/lib/backoff.js';
import { backoffDelay as restartDelay } from '../src/instances/state.js';

test('doubling from the base, capped, attempt 0 and 1 both wait the base', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, 200, 4000)), [200, 200, 400, 800, 1600, 3200, 4000, 4000]);
  assert.deepEqual([1, 2, 6, 7, 20].map((n) => restartDelay(n)), [10_000, 20_000, 300_000, 300_000, 300_000], "ACI's restart back-off: 10 s doubling to 5 min");
});

test('the jittered delay lies in the upper half of the plain one', () => {
  assert.equal(jitteredDelay(3, 100, 8000, () => 0), 200);
  assert.equal(jitteredDelay(3, 100, 8000, () => 1), 400);
  for (let i = 0; i < 100; i++) {
    const d = jitteredDelay(10, 100, 8000);
    assert.ok(d >= 4000 && d <= 8000, String(d));
  }
});
