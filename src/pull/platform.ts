// Platforms as `os/arch[/variant]` and the choice of a manifest from an index, the way containerd's
// default matcher does it: same os and architecture, and the same variant after normalisation
// (arm64 = arm64/v8, arm = arm/v7 when unspecified). Pure: no I/O.
import type { Descriptor } from '../oci/manifest.js';
import { PullError } from './types.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export const DEFAULT_PLATFORM = 'linux/amd64';

export function parsePlatform(s: string): PlatformSpec {
  const parts = s.trim().toLowerCase().split('/');
  const [os, architecture, variant] = parts;
  if (parts.length > 3 || !os || !architecture || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new PullError('INVALID_REFERENCE', `invalid platform "${s}"`, 'Write the platform as os/arch[/variant], for example linux/amd64 or linux/arm64/v8.');
  }
  const arch = ({ x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm' } as Record<string, string>)[architecture] ?? architecture;
  return { os, architecture: arch, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: { os: string; architecture: string; variant?: string | undefined }): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function normVariant(arch: string, variant: string | undefined): string {
  if (variant) return variant;
  if (arch === 'arm64') return 'v8';
  if (arch === 'arm') return 'v7';
  return '';
}

export function platformMatches(want: PlatformSpec, have: { os?: string; architecture?: string; variant?: string | undefined }): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (!want.variant) return true;
  return normVariant(want.architecture, want.variant) === normVariant(have.architecture, have.variant);
}

/** The index entry for `want`; prefers an exact variant, then the entry without one. */
export function selectPlatform(entries: Descriptor[], want: PlatformSpec, where: string): Descriptor {
  const candidates = entries.filter((d) => d.platform && platformMatches(want, d.platform));
  const exact = candidates.find((d) => normVariant(d.platform!.architecture, d.platform!.variant) === normVariant(want.architecture, want.variant));
  const hit = exact ?? candidates[0];
  if (hit) return hit;
  const have = entries.filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => formatPlatform(d.platform!));
  throw new PullError('PLATFORM_NOT_FOUND', `no matching manifest for ${formatPlatform(want)} in the manifest list entries`,
    `${where} is published for ${have.length ? have.join(', ') : 'no platform'}`, { remedy: { kind: 'platform', wanted: formatPlatform(want), available: have } });
}
