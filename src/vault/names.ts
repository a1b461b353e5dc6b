// Name rules Azure Key Vault enforces for vaults and secrets; each violation gets its own message.
import { invalid } from '../lib/errors.js';

/** Vault names: 3-24 characters, letters, digits and hyphens, start with a letter, end with a letter or digit, no "--". */
export function checkVaultName(name: string): void {
  const bad = (why: string) => invalid('VaultNameNotValid',
    `The vault name '${name}' is invalid: ${why}. A vault name must be 3-24 characters long, contain only letters, digits and hyphens, begin with a letter, end with a letter or digit, and not contain consecutive hyphens.`);
  if (name.length < 3 || name.length > 24) throw bad(`it is ${name.length} characters long`);
  const other = /[^a-zA-Z0-9-]/.exec(name);
  if (other) throw bad(`it contains '${other[0]}'`);
  if (!/^[a-zA-Z]/.test(name)) throw bad('it does not begin with a letter');
  if (!/[a-zA-Z0-9]$/.test(name)) throw bad('it does not end with a letter or digit');
  if (name.includes('--')) throw bad('it contains consecutive hyphens');
}

/** Secret names: 1-127 characters, letters, digits and hyphens (the REST spec's ^[0-9a-zA-Z-]+$). */
export function checkSecretName(name: string): void {
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) {
    throw invalid('BadParameter',
      `The request URI contains an invalid name: ${name}. Secret names must be 1-127 characters long and contain only 0-9, a-z, A-Z, and -.`);
  }
}

/** Version ids: 32 lowercase hex characters. */
export function isVersionId(v: string): boolean {
  return /^[0-9a-fA-F]{32}$/.test(v);
}
