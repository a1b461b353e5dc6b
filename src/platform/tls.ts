// Berth's local certificate authority and the server certificate it issues. The CA is created once in
// the data directory and kept across restarts (clients trust it once); the server certificate is issued
// again whenever it is missing, expires within REISSUE_BEFORE_MS, does not cover the names Berth answers
// to, or was not issued by the current CA. node-forge builds the certificates (Node 20's crypto can
// parse certificates but not create them; forge signs with RSA only, so the keys are RSA 2048).
import { X509Certificate, createPrivateKey, generateKeyPair, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { writeFileAtomic } from './fs-atomic.js';

const DAY_MS = 24 * 3600 * 1000;
const CA_VALIDITY_DAYS = 3650;
const SERVER_VALIDITY_DAYS = 397;
const REISSUE_BEFORE_MS = 30 * DAY_MS;

export interface TlsPaths {
  ca: string;
  caKey: string;
  cert: string;
  key: string;
}

/** What a listener needs to speak TLS: the server certificate (PEM) and its key, plus the CA. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string;
  caPath: string;
  /** The DNS names and IP addresses the server certificate covers. */
  names: string[];
}

/** Names every Berth server certificate covers, plus the configured domain (if any). */
export function serverNames(domain?: string): string[] {
  const names = ['localhost', '127.0.0.1', '::1'];
  if (domain) {
    const d = domain.trim().toLowerCase();
    if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(d) && !isIP(d)) {
      throw new Error(`--domain '${domain}' is not a valid host name or IP address (example: berth.example.internal)`);
    }
    if (!names.includes(d)) names.push(d);
  }
  return names;
}

/** Loads the CA and a valid server certificate for `names`, creating or re-issuing what is needed. */
export async function ensureTls(paths: TlsPaths, names: string[], log?: (msg: string, fields: Record<string, unknown>) => void): Promise<TlsMaterial> {
  const ca = await ensureCa(paths);
  const have = existsSync(paths.cert) && existsSync(paths.key)
    ? { cert: await readFile(paths.cert, 'utf8'), key: await readFile(paths.key, 'utf8') } : undefined;
  const why = have ? whyReissue(have.cert, ca.cert, names) ?? (keyMatches(have.cert, have.key) ? undefined : 'its key does not match') : 'missing';
  if (!why) return { ...have!, ca: ca.cert, caPath: paths.ca, names };
  const issued = await issueServerCert(ca, names);
  // Key first: a crash between the two writes leaves a certificate that does not match its key, which
  // the next start detects and repairs by issuing again.
  await writeFileAtomic(paths.key, issued.key, 0o600);
  await writeFileAtomic(paths.cert, issued.cert, 0o644);
  log?.('server certificate issued', { reason: why, names: names.join(', '), path: paths.cert });
  return { ...issued, ca: ca.cert, caPath: paths.ca, names };
}

async function ensureCa(paths: TlsPaths): Promise<{ cert: string; key: string }> {
  if (existsSync(paths.ca) && existsSync(paths.caKey)) {
    const cert = await readFile(paths.ca, 'utf8');
    const key = await readFile(paths.caKey, 'utf8');
    let x: X509Certificate;
    try {
      x = new X509Certificate(cert);
    } catch (e) {
      throw new Error(`${paths.ca} is not a readable certificate (${(e as Error).message}). Move it and ${paths.caKey} away to create a new CA (clients must then trust the new one).`);
    }
    if (!keyMatches(cert, key)) throw new Error(`${paths.caKey} is not the key of ${paths.ca}. Restore the pair, or move both away to create a new CA.`);
    if (Date.parse(x.validTo) <= Date.now()) throw new Error(`Berth's CA ${paths.ca} expired on ${x.validTo}. Move it and ${paths.caKey} away to create a new one, then trust it again (berth ca).`);
    return { cert, key };
  }
  if (existsSync(paths.ca)) {
    throw new Error(`${paths.caKey} is missing, so Berth cannot issue certificates from ${paths.ca}. Restore the key, or move ${paths.ca} away to create a new CA (clients must then trust the new one).`);
  }
  // A key without its certificate is what a crash between the two writes below leaves: no client can
  // trust a CA whose certificate was never written, so a new CA replaces it.
  const keys = await rsaKeyPair();
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
  c.serialNumber = serial();
  const now = Date.now();
  c.validity.notBefore = new Date(now - 3600_000);
  c.validity.notAfter = new Date(now + CA_VALIDITY_DAYS * DAY_MS);
  const subject = [{ name: 'commonName', value: `Berth local CA ${randomBytes(4).toString('hex')}` }, { name: 'organizationName', value: 'Berth' }];
  c.setSubject(subject);
  c.setIssuer(subject);
  c.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  c.sign(forge.pki.privateKeyFromPem(keys.privateKey), forge.md.sha256.create());
  const cert = forge.pki.certificateToPem(c);
  await writeFileAtomic(paths.caKey, keys.privateKey, 0o600);
  await writeFileAtomic(paths.ca, cert, 0o644);
  return { cert, key: keys.privateKey };
}

/** Why the certificate must be issued again, or undefined when it is fine. */
export function whyReissue(certPem: string, caPem: string, names: string[], now = Date.now()): string | undefined {
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch {
    return 'unreadable';
  }
  if (!x.checkIssued(new X509Certificate(caPem)) || !x.verify(new X509Certificate(caPem).publicKey)) return 'not issued by the current CA';
  if (Date.parse(x.validTo) - now < REISSUE_BEFORE_MS) return `expires ${x.validTo}`;
  if (Date.parse(x.validFrom) > now) return `not valid before ${x.validFrom}`;
  const missing = names.filter((n) => (isIP(n) ? !x.checkIP(n) : !x.checkHost(n, { wildcards: false })));
  if (missing.length) return `does not cover ${missing.join(', ')}`;
  return undefined;
}

async function issueServerCert(ca: { cert: string; key: string }, names: string[]): Promise<{ cert: string; key: string }> {
  const keys = await rsaKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
  c.serialNumber = serial();
  const now = Date.now();
  c.validity.notBefore = new Date(now - 3600_000);
  c.validity.notAfter = new Date(now + SERVER_VALIDITY_DAYS * DAY_MS);
  c.setSubject([{ name: 'commonName', value: names.find((n) => !isIP(n) && n !== 'localhost') ?? 'localhost' }, { name: 'organizationName', value: 'Berth' }]);
  c.setIssuer(caCert.subject.attributes);
  c.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  c.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(c), key: keys.privateKey };
}

function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

async function rsaKeyPair(): Promise<{ publicKey: string; privateKey: string }> {
  return promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    // PKCS#1 ("RSA PRIVATE KEY"): what forge reads, and Node and Go read it too.
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
}

/** A random positive serial number (20 bytes at most, high bit clear), as hex. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}
