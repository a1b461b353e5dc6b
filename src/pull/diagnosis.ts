// The one place a failed pull becomes words for a person: who said what (a registry's answer, or a DNS
// lookup, a refused connection, a TLS handshake, Key Vault, a credential helper, Berth's digest check),
// Berth's diagnosis, and a fix that exists where the pull ran (`berth pull` flags, or `berth serve`
// options and container-group spec fields). Used by `berth pull` and by container groups. Pure.
import { PullError, type PullErrorCode, type PullErrorSource, type PullRemedy } from './types.js';

export interface DiagnosisContext {
  /** `pull`: the `berth pull` command (its flags). `group`: a container group pulled by `berth serve`. */
  caller: 'pull' | 'group';
  /** What the caller knows besides the error (the group's identities, an earlier pull), one sentence each. */
  hints?: string[];
  /** Replaces the fix the registry named (when the caller knows that fix cannot be followed). */
  fix?: string;
  /** Replaces Berth's diagnosis (when the caller knows more, e.g. that a missing repository existed before). */
  diagnosis?: string;
}

const LABEL: Record<PullErrorSource, string> = {
  'registry': 'The registry answered:',
  'token-server': 'The token server answered:',
  'dns': 'DNS lookup failed:',
  'refused': 'Connection refused:',
  'connection': 'Connection lost:',
  'tls': 'TLS handshake failed:',
  'timeout': 'Timed out:',
  'vault': 'Key Vault:',
  'helper': 'Credential helper:',
  'identity': 'Managed identity:',
  'keychain': 'Credential source:',
  'digest': 'Digest check:',
  'image': 'Image check:',
  'disk': 'Disk space:',
};

const SOURCE_OF_CODE: Partial<Record<PullErrorCode, PullErrorSource>> = {
  NO_SUCH_HOST: 'dns', CONNECTION_REFUSED: 'refused', TLS: 'tls', TIMEOUT: 'timeout', DIGEST_MISMATCH: 'digest',
  CREDENTIAL_SOURCE: 'keychain', PLATFORM_NOT_FOUND: 'image', INVALID_REFERENCE: 'image', UNSUPPORTED: 'image', STORAGE_FULL: 'disk',
};

/** Who said the words of `e`: its own `source`, else what its code implies (a registry, by default). */
export function pullErrorSource(e: PullError): PullErrorSource {
  return e.opts.source ?? SOURCE_OF_CODE[e.code] ?? 'registry';
}

/** The fix as the caller can follow it: only flags and options that exist there. */
function remedy(r: PullRemedy, caller: DiagnosisContext['caller']): string {
  switch (r.kind) {
    case 'ca':
      return caller === 'pull'
        ? `Give berth pull the registry's CA certificate with --ca-file FILE (PEM).`
        : `Start berth serve with --registry-ca FILE (PEM; repeat it for more CAs) naming the CA certificate of ${r.host}: container groups trust the CAs it names.`;
    case 'plain-http':
      return caller === 'pull'
        ? `Use --insecure to pull over plain HTTP from a registry you trust, or point at its TLS port.`
        : `Container groups reach registries that are not on loopback over HTTPS only: serve ${r.host} over TLS (with its CA given to berth serve --registry-ca FILE), or use its TLS port.`;
    case 'platform':
      return caller === 'pull'
        ? r.available.length ? `Pull it with --platform ${r.available.join(' or --platform ')} if that is what you want to run.` : 'The image names no platform it can run on.'
        : `Container groups on this server run ${r.wanted} images: push a ${r.wanted} build of the image (or a multi-platform index that includes one).`;
    case 'credentials':
      return caller === 'pull'
        ? `Pass --creds USER:PASS (or --registry-config FILE) to berth pull.`
        : `Give the group credentials for ${r.registry}: --registry-login-server ${r.registry} with --registry-username and --registry-password, or --acr-identity ID (imageRegistryCredentials in a spec file).`;
    case 'disk':
      return caller === 'pull'
        ? 'Free space on the disk that holds the content store, then pull again: what was downloaded so far stays and is not fetched again.'
        : 'Free space on the data directory\'s disk: berth container prune-images removes images no container uses, berth acr gc -n REGISTRY the blobs no image names; or start berth serve with a smaller --storage-reserve. The group pulls again by itself.';
  }
}

const sentence = (s: string) => (/[.!?]$/.test(s) ? s : `${s}.`);

/** Berth's diagnosis of a failed pull, after ACI's sentence: who said what, the source, the fix. */
export function diagnosePull(e: unknown, ctx: DiagnosisContext): string {
  if (!(e instanceof PullError)) return [`Pulling failed: ${sentence(e instanceof Error ? e.message : String(e))}`, ...(ctx.hints ?? [])].join(' ');
  const parts = [`${LABEL[pullErrorSource(e)]} ${e.registryMessage} (${e.code}).`];
  const diagnosis = ctx.diagnosis ?? e.diagnosis;
  if (e.opts.credentialSource && !diagnosis.includes(e.opts.credentialSource)) parts.push(`Credential used: ${e.opts.credentialSource}.`);
  if (diagnosis) parts.push(sentence(diagnosis));
  if (e.opts.remedy) parts.push(remedy(e.opts.remedy, ctx.caller));
  const fix = ctx.fix ?? e.opts.fix;
  if (fix) parts.push(`Fix: ${sentence(fix)}`);
  if (e.opts.existingTags?.length && !diagnosis.includes(e.opts.existingTags[0]!)) parts.push(`Tags that exist: ${e.opts.existingTags.slice(0, 20).join(', ')}.`);
  parts.push(...(ctx.hints ?? []).map(sentence));
  return parts.join(' ');
}
