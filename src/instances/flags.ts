// `container create` flags → a GroupSpec, with az's defaults and checks (CLI-ACI custom.py: cpu 1,
// memory 1.5, restart policy Always, os type Linux, ports 80; --command-line split with shlex). Pure.
import { invalid } from '../lib/errors.js';
import { parseGroupSpec, specToBody, type GroupSpec } from './spec.js';

/** POSIX shlex.split as Python does it (quotes, backslash escapes, no comments). */
export function shlexSplit(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined; else cur += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && i + 1 < s.length && ['\\', '"', '$', '`', '\n'].includes(s[i + 1]!)) cur += s[++i];
      else cur += ch;
    } else if (/\s/.test(ch)) {
      if (inWord) { out.push(cur); cur = ''; inWord = false; }
    } else {
      inWord = true;
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === '\\') {
        if (i + 1 >= s.length) throw invalid('InvalidCommandLine', 'No escaped character');
        cur += s[++i];
      } else cur += ch;
    }
  }
  if (quote) throw invalid('InvalidCommandLine', 'No closing quotation');
  if (inWord) out.push(cur);
  return out;
}

export interface CreateFlags {
  name: string;
  image: string;
  location?: string;
  registryLoginServer?: string;
  registryUsername?: string;
  registryPassword?: string;
  assignIdentity?: string[];
  acrIdentity?: string;
  commandLine?: string;
  environmentVariables?: string[];
  secureEnvironmentVariables?: string[];
  ports?: string[];
  protocol?: string;
  ipAddress?: string;
  dnsNameLabel?: string;
  cpu?: string;
  memory?: string;
  restartPolicy?: string;
  osType?: string;
  sku?: string;
  tags?: Record<string, string>;
}

function keyValues(flag: string, list: string[] | undefined): Array<{ name: string; value: string }> {
  return (list ?? []).map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw invalid('InvalidArgumentValue', `${flag}: '${kv}' is not KEY=VALUE`);
    return { name: kv.slice(0, i), value: kv.slice(i + 1) };
  });
}

/** The registry host of an image reference, when the reference names one (`docker.io` otherwise). */
export function imageRegistry(image: string): string {
  const first = image.split('/')[0]!;
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

/** Builds the spec the flags describe; validated like a YAML file. */
export function specFromFlags(f: CreateFlags): GroupSpec {
  const ports = (f.ports ?? ['80']).map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw invalid('InvalidArgumentValue', `--ports: '${p}' is not a port number (1-65535)`);
    return n;
  });
  const protocol = (f.protocol ?? 'TCP').toUpperCase();
  const env = [
    ...keyValues('--environment-variables', f.environmentVariables).map((e) => ({ name: e.name, value: e.value })),
    ...keyValues('--secure-environment-variables', f.secureEnvironmentVariables).map((e) => ({ name: e.name, secureValue: e.value })),
  ];
  const publicIp = f.ipAddress !== undefined || f.dnsNameLabel !== undefined;
  if (f.ipAddress !== undefined && !/^(public|private)$/i.test(f.ipAddress)) throw invalid('InvalidArgumentValue', `--ip-address: '${f.ipAddress}' is not Public or Private`);

  let creds: Array<Record<string, string>> | undefined;
  if (f.acrIdentity) {
    creds = [{ server: f.registryLoginServer ?? imageRegistry(f.image), identity: f.acrIdentity }];
  } else if (f.registryLoginServer || f.registryUsername || f.registryPassword) {
    if (!f.registryUsername) throw invalid('InvalidArgumentValue', 'Please specify --registry-username in order to use custom image registry.');
    if (!f.registryPassword) throw invalid('InvalidArgumentValue', 'Please specify --registry-password in order to use custom image registry.');
    creds = [{ server: f.registryLoginServer ?? imageRegistry(f.image), username: f.registryUsername, password: f.registryPassword }];
  }

  let identity: Record<string, unknown> | undefined;
  if (f.assignIdentity) {
    const system = f.assignIdentity.length === 0 || f.assignIdentity.some((i) => i.toLowerCase() === '[system]');
    const user = f.assignIdentity.filter((i) => i.toLowerCase() !== '[system]');
    identity = { type: system && user.length ? 'SystemAssigned, UserAssigned' : system ? 'SystemAssigned' : 'UserAssigned',
      ...(user.length ? { userAssignedIdentities: Object.fromEntries(user.map((u) => [u, {}])) } : {}) };
  }
  if (f.acrIdentity && f.acrIdentity.toLowerCase() !== '[system]' && !f.assignIdentity?.some((i) => i.toLowerCase() === f.acrIdentity!.toLowerCase())) {
    // az adds the --acr-identity to the group's identities when it is not assigned explicitly.
    const ua = { ...((identity?.userAssignedIdentities as Record<string, unknown> | undefined) ?? {}), [f.acrIdentity]: {} };
    identity = { type: identity && String(identity.type).includes('SystemAssigned') ? 'SystemAssigned, UserAssigned' : 'UserAssigned', userAssignedIdentities: ua };
  }

  const doc = {
    name: f.name,
    ...(f.location ? { location: f.location } : {}),
    tags: f.tags ?? {},
    ...(identity ? { identity } : {}),
    properties: {
      containers: [{ name: f.name, properties: {
        image: f.image,
        ...(f.commandLine !== undefined ? { command: shlexSplit(f.commandLine) } : {}),
        // az omits the container's ports unless the group gets an IP address.
        ...(publicIp ? { ports: ports.map((port) => ({ protocol, port })) } : {}),
        environmentVariables: env,
        resources: { requests: { cpu: f.cpu ?? 1, memoryInGB: f.memory ?? 1.5 } },
      } }],
      ...(creds ? { imageRegistryCredentials: creds } : {}),
      restartPolicy: f.restartPolicy ?? 'Always',
      ...(publicIp ? { ipAddress: { ports: ports.map((port) => ({ protocol, port })), type: f.ipAddress ?? 'Public', ...(f.dnsNameLabel ? { dnsNameLabel: f.dnsNameLabel } : {}) } } : {}),
      osType: f.osType ?? 'Linux',
      ...(f.sku ? { sku: f.sku } : {}),
    },
  };
  return parseGroupSpec(doc);
}

export { specToBody };
