// A throw-away CA, a server certificate it signs for 127.0.0.1, and an unrelated second CA (openssl),
// for tests of registries behind TLS.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const run = promisify(execFile);

export interface TestCerts {
  /** PEM file of the CA that signed `cert`. */
  ca: string;
  /** PEM file of a CA that signed nothing here. */
  otherCa: string;
  /** The server's key and certificate (PEM text), for 127.0.0.1. */
  key: string;
  cert: string;
  /** The same key and certificate as files. */
  keyFile: string;
  certFile: string;
}

export async function makeCerts(dir: string): Promise<TestCerts> {
  const ossl = (...a: string[]) => run('openssl', a, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=berth-test-ca');
  await ossl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.pem', '-days', '1', '-subj', '/CN=other-ca');
  await ossl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'ext.cnf');
  return { ca: join(dir, 'ca.pem'), otherCa: join(dir, 'other.pem'), key: await readFile(join(dir, 'srv.key'), 'utf8'), cert: await readFile(join(dir, 'srv.pem'), 'utf8'),
    keyFile: join(dir, 'srv.key'), certFile: join(dir, 'srv.pem') };
}
