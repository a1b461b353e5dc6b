// A container group's DNS name, as ACI gives `<dnsNameLabel>.<location>.azurecontainer.io`: Berth's is
// `<label>.<location>.containers.localhost`. When Berth keeps the names in a hosts file (berth serve
// --hosts-file), a group with a label publishes its ports on a loopback address of its own, derived
// from its name, so two groups can both answer on port 80 and the name reaches the right one.
import { createHash } from 'node:crypto';

export const fqdnOf = (label: string, location: string) => `${label.toLowerCase()}.${location}.containers.localhost`;

/** The group's own address in 127.128.0.0/9 (all of 127/8 is local on Linux), the same on every start. */
export function labelAddress(label: string, location: string): string {
  const h = createHash('sha256').update(fqdnOf(label, location)).digest();
  return `127.${128 + (h[0]! % 128)}.${h[1]!}.${1 + (h[2]! % 254)}`;
}
