// Berth's local certificate authority and the server certificate it issues. The CA is created once in
// the data directory and kept across restarts (clients trust it once); the server certificate is issued
// again whenever it is missing, expires within REISSUE_BEFORE_MS, does not cover the names Berth answers
// to, or was not issued by the current CA. node-forge builds the certificates (Node 20's crypto can
// parse certificates but not create them; forge signs with RSA only, so forge lays out the certificate
// and Node's crypto signs it with an ECDSA P-256 key).
import { X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { writeFileAtomic } from '../lib/fs-atomic.js';

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
  const key = await ecKeyPair();
  const cn = `Berth local CA ${randomBytes(4).toString('hex')}`;
  const cert = buildCertificate({
    subject: [{ name: 'commonName', value: cn }, { name: 'organizationName', value: 'Berth' }],
    validityDays: CA_VALIDITY_DAYS,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ],
    publicKey: createPublicKey(key),
    issuer: undefined,
    signingKey: key,
  });
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFileAtomic(paths.caKey, keyPem, 0o600);
  await writeFileAtomic(paths.ca, cert, 0o644);
  return { cert, key: keyPem };
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
  const covers = (n: string) => (isIP(n) ? x.checkIP(n) !== undefined
    : n.startsWith('*.') ? x.checkHost(`berth-probe${n.slice(1)}`) !== undefined
      : x.checkHost(n, { wildcards: false }) !== undefined);
  const missing = names.filter((n) => !covers(n));
  if (missing.length) return `does not cover ${missing.join(', ')}`;
  return undefined;
}

async function issueServerCert(ca: { cert: string; key: string }, names: string[]): Promise<{ cert: string; key: string }> {
  const key = await ecKeyPair();
  const caX = new X509Certificate(ca.cert);
  const cert = buildCertificate({
    subject: [{ name: 'commonName', value: names.find((n) => !isIP(n) && n !== 'localhost') ?? 'localhost' }, { name: 'organizationName', value: 'Berth' }],
    validityDays: SERVER_VALIDITY_DAYS,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifier(caX.publicKey).toString('binary') },
    ],
    publicKey: createPublicKey(key),
    issuer: caX,
    signingKey: createPrivateKey(ca.key),
  });
  return { cert, key: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

const asn1 = forge.asn1;
// Both exist in node-forge 1.x; its type definitions lack the first and the options form of the second.
const getTBSCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;
const fromDer = asn1.fromDer as unknown as (der: string, options: { decodeBitStrings: boolean }) => forge.asn1.Asn1;
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/**
 * A certificate with an ECDSA P-256 key, signed with ECDSA-SHA256. node-forge lays out the
 * to-be-signed part (names, validity, extensions) but handles RSA keys only, so the subject's public
 * key, the algorithm identifiers and the issuer's name are put in as DER, and Node's crypto signs.
 */
function buildCertificate(o: {
  subject: forge.pki.CertificateField[];
  validityDays: number;
  extensions: object[];
  publicKey: KeyObject;
  /** The issuing CA; undefined for a self-signed certificate. */
  issuer: X509Certificate | undefined;
  signingKey: KeyObject;
}): string {
  const c = forge.pki.createCertificate();
  // Placeholders forge needs to lay the structure out; both are replaced below.
  c.publicKey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('1'), new forge.jsbn.BigInteger('3'));
  c.siginfo.algorithmOid = ECDSA_WITH_SHA256;
  c.generateSubjectKeyIdentifier = () => forge.util.createBuffer(keyIdentifier(o.publicKey).toString('binary'));
  c.serialNumber = serial();
  const now = Date.now();
  c.validity.notBefore = new Date(now - 3600_000);
  c.validity.notAfter = new Date(now + o.validityDays * DAY_MS);
  c.setSubject(o.subject);
  c.setIssuer(o.subject);
  c.setExtensions(o.extensions);
  const tbs = getTBSCertificate(c);
  // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, [3] extensions
  const fields = tbs.value as forge.asn1.Asn1[];
  fields[2] = algorithmId();
  if (o.issuer) fields[3] = subjectNameOf(o.issuer);
  fields[6] = fromDer(o.publicKey.export({ type: 'spki', format: 'der' }).toString('binary'), { decodeBitStrings: false });
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, o.signingKey); // DER ECDSA-Sig-Value, as X.509 wants it
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs, algorithmId(), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\0' + signature.toString('binary')),
  ]);
  const b64 = Buffer.from(asn1.toDer(certificate).getBytes(), 'binary').toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** AlgorithmIdentifier for ecdsa-with-SHA256: the OID alone, no parameters (RFC 5758). */
function algorithmId(): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(ECDSA_WITH_SHA256).getBytes()),
  ]);
}

/** The issuer's subject Name exactly as encoded in its certificate (so chains match byte for byte). */
function subjectNameOf(issuer: X509Certificate): forge.asn1.Asn1 {
  const cert = fromDer(issuer.raw.toString('binary'), { decodeBitStrings: false });
  const tbs = (cert.value as forge.asn1.Asn1[])[0]!;
  return (tbs.value as forge.asn1.Asn1[])[5]!;
}

/** RFC 5280 key identifier: SHA-1 of the subjectPublicKey bits (for EC keys: the uncompressed point). */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'EC') throw new Error('Berth issues certificates for EC keys only');
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return createHash('sha1').update(point).digest();
}

function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

async function ecKeyPair(): Promise<KeyObject> {
  const { privateKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
  return privateKey;
}

/** A random positive serial number (20 bytes at most, high bit clear), as hex. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}
