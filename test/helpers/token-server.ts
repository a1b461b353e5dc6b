// A small Docker token server (the distribution "token authentication" spec) on loopback, for the
// reference registry's `auth: token`: GET /token with Basic credentials (or none: an anonymous token
// that grants what `anonymous` allows, by default nothing), `offline_token=true` for a refresh token, POST /token with grant_type password
// or refresh_token. Tokens are RS256 JWTs with the signing certificate in `x5c`; the certificate is
// self-signed and is the registry's rootcertbundle. Claims as distribution 2.8 checks them: iss, aud
// (a plain string), exp/nbf, access [{type, name, actions}].
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { generateKeyPairSync, randomBytes, randomUUID, createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import forge from 'node-forge';

export interface TokenUser {
  username: string;
  password: string;
  /** The actions the user may have on a repository (the server grants the intersection with the request). */
  actions(repository: string): string[];
}

export interface TokenServer {
  realm: string;
  service: string;
  certificatePem: string;
  /** Token requests answered, by kind, for tests that count them. */
  counts: { basic: number; anonymous: number; refresh: number; password: number; refused: number };
  stop(): Promise<void>;
}

interface Access { type: string; name: string; actions: string[] }

export interface TokenServerOptions {
  service: string;
  issuer: string;
  users: TokenUser[];
  /** What a request without credentials may do on a repository (default nothing): public repositories. */
  anonymous?: (repository: string) => string[];
  ttlSeconds?: number;
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const certificatePem = selfSignedCertificate(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const x5c = forge.util.encode64(forge.asn1.toDer(forge.pki.certificateToAsn1(forge.pki.certificateFromPem(certificatePem))).getBytes());
  const signingKey = createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const refreshTokens = new Map<string, string>();
  const counts = { basic: 0, anonymous: 0, refresh: 0, password: 0, refused: 0 };
  const ttl = opts.ttlSeconds ?? 300;

  const grant = (user: TokenUser | undefined, scopes: string[]): Access[] => {
    const may = user ? (repo: string) => user.actions(repo) : opts.anonymous ?? (() => []);
    return scopes.flatMap((s) => {
      const parts = s.split(':');
      if (parts.length < 3) return [];
      const type = parts[0]!;
      const actions = parts[parts.length - 1]!.split(',');
      const name = parts.slice(1, -1).join(':');
      if (type !== 'repository') return [];
      const allowed = actions.filter((a) => may(name).includes(a));
      return allowed.length ? [{ type, name, actions: allowed }] : [];
    });
  };

  const sign = (subject: string, access: Access[]) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ access })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', x5c: [x5c] })
      .setIssuer(opts.issuer).setSubject(subject).setAudience(opts.service)
      .setIssuedAt(now).setNotBefore(now - 1).setExpirationTime(now + ttl).setJti(randomUUID())
      .sign(signingKey);
  };

  const check = (username: string, password: string) => opts.users.find((u) => u.username === username && u.password === password);

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const refuse = (res: ServerResponse, message: string) => {
    counts.refused++;
    reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message }] });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/token') return reply(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
    let user: TokenUser | undefined;
    let scopes: string[];
    let offline = false;
    if (req.method === 'GET') {
      if (url.searchParams.get('service') !== opts.service) return reply(res, 400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service '${url.searchParams.get('service')}'` }] });
      scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      offline = url.searchParams.get('offline_token') === 'true';
      const auth = req.headers.authorization;
      if (auth?.toLowerCase().startsWith('basic ')) {
        const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        user = check(decoded.slice(0, colon), decoded.slice(colon + 1));
        if (!user) return refuse(res, 'authentication failed: wrong username or password');
        counts.basic++;
      } else {
        counts.anonymous++;
      }
    } else if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      if (form.get('service') !== opts.service) return reply(res, 400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service '${form.get('service')}'` }] });
      scopes = form.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const grantType = form.get('grant_type');
      if (grantType === 'refresh_token') {
        const name = refreshTokens.get(form.get('refresh_token') ?? '');
        user = opts.users.find((u) => u.username === name);
        if (!user) return refuse(res, 'the refresh token is invalid');
        counts.refresh++;
      } else if (grantType === 'password') {
        user = check(form.get('username') ?? '', form.get('password') ?? '');
        if (!user) return refuse(res, 'authentication failed: wrong username or password');
        counts.password++;
        offline = form.get('access_type') === 'offline';
      } else {
        return reply(res, 400, { errors: [{ code: 'UNSUPPORTED', message: `unsupported grant_type '${grantType}'` }] });
      }
    } else {
      return reply(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'use GET or POST' }] });
    }
    const token = await sign(user?.username ?? '', grant(user, scopes));
    let refresh: string | undefined;
    if (offline && user) {
      refresh = randomBytes(24).toString('base64url');
      refreshTokens.set(refresh, user.username);
    }
    reply(res, 200, { token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString(), ...(refresh ? { refresh_token: refresh } : {}) });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => reply(res, 500, { errors: [{ code: 'UNKNOWN', message: String((e as Error).message) }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service: opts.service,
    certificatePem,
    counts,
    stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function selfSignedCertificate(privatePem: string, publicPem: string): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = '01' + randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const attrs = [{ name: 'commonName', value: 'berth test token signer' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', digitalSignature: true, keyCertSign: true }]);
  cert.sign(forge.pki.privateKeyFromPem(privatePem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}
