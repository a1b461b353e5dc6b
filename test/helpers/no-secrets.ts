// Asserts that a keychain failure is a KeychainError with the expected message and that the message
// holds none of the secrets the test handed out.
import assert from 'node:assert/strict';
import { KeychainError } from '../../src/keychain/keychain.js';

export function assertNoSecret(text: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!text.includes(s), `leaks a secret: ${text}`);
}

export async function rejectsWithoutSecrets(p: Promise<unknown>, pattern: RegExp, secrets: string[]): Promise<KeychainError> {
  let err: unknown;
  await assert.rejects(p, (e: unknown) => { err = e; return true; });
  assert.ok(err instanceof KeychainError, `expected a KeychainError, got ${String(err)}`);
  assert.match(err.message, pattern);
  assertNoSecret(err.message, secrets);
  return err;
}
