// Authentication and authorization for a registry's data plane: Basic credentials, Berth-issued bearer
// tokens, the token endpoint (/oauth2/token) and ACR's exchange (/oauth2/exchange).
import type { Principal } from '../identity/principals.js';
import { ARM_AUDIENCE, type IdentityService } from '../identity/service.js';
import type { TokenService } from '../identity/token-service.js';
import type { RegistryRecord, Registries } from './registries.js';
import { RBAC_ACTION_FOR, type AccessRequest } from './access.js';
import { armId } from './registries.js';
import { SCOPE_ACTION_FOR, scopeMapAllows, type ScopeMapsAndTokens } from './scope-maps.js';
import { VerifiedTokens } from './token-cache.js';

export const NULL_GUID = '00000000-0000-0000-0000-000000000000';
const ISSUER = 'Berth Container Registry';
export const ACCESS_TOKEN_TTL = 3600;
export const REFRESH_TOKEN_TTL = 3 * 3600;
/** The built-in role that grants each data-plane action, for DENIED messages. */
const ROLE_FOR: Record<string, string> = { pull: 'AcrPull', metadataRead: 'AcrPull', push: 'AcrPush', metadataWrite: 'AcrPush', delete: 'AcrDelete' };

export type AuthResult =
  | { ok: true; principal: Principal; /** Set for bearer tokens: what the token grants. */ granted?: AccessRequest[] }
  | { ok: false; reason: string; /** No credentials at all. */ anonymous?: boolean };

export class RegistryAuth {
  private readonly verified = new VerifiedTokens();

  constructor(private readonly registries: Registries, private readonly identity: IdentityService,
    private readonly tokens: TokenService, private readonly repoTokens: ScopeMapsAndTokens) {}

  private audience(r: RegistryRecord): string {
    return this.registries.loginServer(r);
  }

  /** Checks a username/password pair against every credential kind this registry accepts. */
  async checkPassword(r: RegistryRecord, username: string, password: string): Promise<AuthResult> {
    if (username === NULL_GUID) {
      const p = await this.verifyRefreshToken(r, password);
      return p ? { ok: true, principal: p } : { ok: false, reason: 'the refresh token is invalid or expired; get a new one with /oauth2/exchange (berth acr login)' };
    }
    if (username.toLowerCase() === r.name.toLowerCase()) {
      const res = await this.registries.checkAdmin(r, username, password);
      if (res === 'ok') return { ok: true, principal: { kind: 'registryAdmin', id: r.id, displayName: r.name, registryId: r.id } };
      if (res === 'disabled') return { ok: false, reason: `the admin user of registry ${r.name} is disabled` };
      return { ok: false, reason: `incorrect password for the admin user ${r.name}` };
    }
    const t = await this.repoTokens.checkPassword(r, username, password);
    if (t) {
      if (!t.ok) return { ok: false, reason: t.reason };
      return { ok: true, principal: { kind: 'registryToken', id: t.token.id, displayName: t.token.name, registryId: r.id } };
    }
    if (/^[0-9a-f-]{36}$/i.test(username)) {
      const res = await this.identity.authenticateClient(username, password);
      if ('principal' in res) return { ok: true, principal: res.principal };
      return { ok: false, reason: res.error };
    }
    return { ok: false, reason: `unknown user '${username.slice(0, 100)}' for registry ${r.name}` };
  }

  /** Authenticates a request's Authorization header. */
  async authenticate(r: RegistryRecord, authorization: string | undefined): Promise<AuthResult> {
    if (!authorization) return { ok: false, reason: 'authentication required', anonymous: true };
    const sp = authorization.indexOf(' ');
    const scheme = authorization.slice(0, sp).toLowerCase();
    const value = authorization.slice(sp + 1).trim();
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { ok: false, reason: 'malformed Basic credentials' };
      return this.checkPassword(r, decoded.slice(0, colon), decoded.slice(colon + 1));
    }
    if (scheme === 'bearer') {
      const audience = this.audience(r);
      let payload = this.verified.get(audience, value);
      if (!payload) {
        payload = await this.tokens.verify(value, { issuer: ISSUER, audience });
        if (!payload || payload.token_type !== 'access' || typeof payload.sub !== 'string') {
          return { ok: false, reason: 'the access token is invalid or expired' };
        }
        this.verified.put(audience, value, payload);
      }
      const principal = await this.principalFromClaims(r, payload as Record<string, unknown>);
      if (!principal) return { ok: false, reason: 'the access token names a principal that no longer exists' };
      return { ok: true, principal, granted: (payload.access as AccessRequest[] | undefined) ?? [] };
    }
    return { ok: false, reason: `unsupported authorization scheme '${scheme.slice(0, 20)}'` };
  }

  private async principalFromClaims(r: RegistryRecord, p: Record<string, unknown>): Promise<Principal | undefined> {
    const kind = p.pkind;
    // Registry-local principals are looked up again on every request, so that disabling the admin user
    // or a token takes effect at once, not when its access tokens expire.
    if (kind === 'registryAdmin') {
      const now = await this.registries.byId(r.id);
      return p.sub === r.id && now?.adminUserEnabled ? { kind: 'registryAdmin', id: r.id, displayName: r.name, registryId: r.id } : undefined;
    }
    if (kind === 'registryToken') {
      const t = await this.repoTokens.tokenSummary(String(p.sub));
      return t && t.registryId === r.id && t.status === 'enabled' ? { kind: 'registryToken', id: t.id, displayName: t.name, registryId: r.id } : undefined;
    }
    return this.identity.principalById(String(p.sub));
  }

  /**
   * What `principal` may do for each requested access, right now. Deny by default: an action is
   * granted only when a rule grants it.
   */
  async authorize(r: RegistryRecord, principal: Principal, requests: AccessRequest[]): Promise<AccessRequest[]> {
    const allows = await this.rules(r, principal);
    const out: AccessRequest[] = [];
    for (const req of requests) {
      const actions = req.actions.flatMap((a) => (a === '*' && req.type === 'repository' ? ['pull', 'push', 'delete', 'metadataRead', 'metadataWrite'] : [a]));
      const allowed = actions.filter((a) => allows(req, a));
      if (allowed.length) out.push({ type: req.type, name: req.name, actions: [...new Set(allowed)] });
    }
    return out;
  }

  /** What `principal` may do on `r` as it stands now: a token and its scope map are read once per call. */
  private async rules(r: RegistryRecord, principal: Principal): Promise<(req: AccessRequest, action: string) => boolean> {
    if (principal.kind === 'registryAdmin') return () => principal.registryId === r.id && r.adminUserEnabled;
    if (principal.kind === 'registryToken') {
      const t = await this.repoTokens.tokenSummary(principal.id);
      if (!t || t.registryId !== r.id || t.status !== 'enabled') return () => false;
      const acts = await this.repoTokens.tokenActions(r, t);
      return (req, action) => {
        if (req.type === 'registry') return req.name === 'catalog' && scopeMapAllows(acts, '*', 'metadata/read') && acts.some((a) => a.startsWith('repositories/*/'));
        const need = SCOPE_ACTION_FOR[action];
        return need !== undefined && scopeMapAllows(acts, req.name, need);
      };
    }
    if (principal.kind === 'servicePrincipal' || principal.kind === 'managedIdentity') {
      // An identity's role assignments are read once for all the requested actions.
      const may = await this.identity.permissions(principal);
      return (req, action) => {
        const rbac = req.type === 'registry' ? (req.name === 'catalog' ? RBAC_ACTION_FOR.catalog : undefined) : RBAC_ACTION_FOR[action];
        return rbac !== undefined && may(rbac, armId(r));
      };
    }
    return () => false;
  }

  /**
   * What a principal lacks for an action, for DENIED answers: the reason (what is missing, and for an
   * identity the roles it does hold and where) and the command that grants it.
   */
  async missing(r: RegistryRecord, principal: Principal, req: AccessRequest, action: string): Promise<{ reason: string; fix?: string }> {
    if (principal.kind === 'registryAdmin') return { reason: `the admin user of registry ${r.name} is disabled`, fix: `berth acr update -n ${r.name} --admin-enabled true` };
    if (principal.kind === 'registryToken') {
      const t = await this.repoTokens.tokenSummary(principal.id);
      if (!t || t.status !== 'enabled') return { reason: `token ${principal.displayName} is disabled or deleted` };
      if (req.type === 'registry') return { reason: `token ${t.name} (scope map ${t.scopeMap}) may not list the catalog; that needs repositories/*/metadata/read` };
      const need = SCOPE_ACTION_FOR[action] ?? action;
      return { reason: `token ${t.name} (scope map ${t.scopeMap}) has no '${need}' action for repository ${req.name} (needed to ${action} it)`,
        fix: `berth acr scope-map update -r ${r.name} -n ${t.scopeMap} --add-repository ${req.name} ${need}` };
    }
    const rbac = req.type === 'registry' ? RBAC_ACTION_FOR.catalog : RBAC_ACTION_FOR[action];
    const role = req.type === 'registry' ? 'Reader' : ROLE_FOR[action] ?? 'AcrPull';
    const holds = (await this.identity.assignmentsOf(principal.id)).map(({ assignment, role: held }) => `${held.roleName} at ${assignment.scope}`);
    return {
      reason: `${principal.displayName} (${principal.appId ?? principal.id}) has no role assignment granting '${rbac}' on ${armId(r)} (needed to ${action} ${req.type === 'registry' ? 'the catalog' : `repository ${req.name}`}); ` +
        `${holds.length ? `the roles it holds: ${holds.slice(0, 10).join(', ')}${holds.length > 10 ? `, … (${holds.length} in all)` : ''}` : 'it holds no role assignment'}; assign ${role} there`,
      fix: `berth role assignment create --assignee ${principal.appId ?? principal.id} --role ${role} --scope ${armId(r)}`,
    };
  }

  async issueAccessToken(r: RegistryRecord, principal: Principal, requests: AccessRequest[]): Promise<{ token: string; expiresIn: number }> {
    const access = await this.authorize(r, principal, requests);
    const token = await this.tokens.sign({ token_type: 'access', pkind: principal.kind, access },
      { issuer: ISSUER, audience: this.audience(r), subject: principal.id, ttlSeconds: ACCESS_TOKEN_TTL });
    return { token, expiresIn: ACCESS_TOKEN_TTL };
  }

  async issueRefreshToken(r: RegistryRecord, principal: Principal): Promise<string> {
    return this.tokens.sign({ token_type: 'refresh', pkind: principal.kind, grant_type: 'access_token', tenant: this.identity.ids.tenantId, version: '1.0' },
      { issuer: ISSUER, audience: this.audience(r), subject: principal.id, ttlSeconds: REFRESH_TOKEN_TTL });
  }

  async verifyRefreshToken(r: RegistryRecord, token: string): Promise<Principal | undefined> {
    const p = await this.tokens.verify(token, { issuer: ISSUER, audience: this.audience(r) });
    if (!p || p.token_type !== 'refresh') return undefined;
    return this.principalFromClaims(r, p as Record<string, unknown>);
  }

  /** ACR's exchange: an Entra access token (ARM audience) for a registry refresh token. */
  async exchange(r: RegistryRecord, aadAccessToken: string): Promise<string | undefined> {
    const principal = await this.identity.verifyAccessToken(aadAccessToken, [ARM_AUDIENCE, ARM_AUDIENCE.replace(/\/$/, ''), 'https://management.azure.com', 'https://management.azure.com/', 'https://containerregistry.azure.net']);
    if (!principal) return undefined;
    return this.issueRefreshToken(r, principal);
  }
}
