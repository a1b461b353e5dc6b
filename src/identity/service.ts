// Principals, their secrets, role assignments and Entra-style access tokens.
import { randomUUID } from 'node:crypto';
import type { Db } from '../storage/sqlite.js';
import { nowIso } from '../storage/sqlite.js';
import type { Principal } from './principals.js';
import { conflict, invalid } from '../lib/errors.js';
import { BUILT_IN_ROLES, roleAllows, scopeContains, type RoleDefinition } from './roles.js';
import { generateSecret, hashSecret, verifySecretCached } from './secrets.js';
import type { TokenService } from './token-service.js';

export interface PlatformIds {
  tenantId: string;
  subscriptionId: string;
}

export interface RoleAssignment {
  id: string;
  principalId: string;
  roleDefinitionId: string;
  scope: string;
  principalType: string;
  createdAt: string;
}

interface AssignmentRow { id: string; principal_id: string; role_definition_id: string; scope: string; principal_type: string; created_at: string }
const toAssignment = (r: AssignmentRow): RoleAssignment => ({ id: r.id, principalId: r.principal_id, roleDefinitionId: r.role_definition_id, scope: r.scope, principalType: r.principal_type, createdAt: r.created_at });

export interface OwnerCredential {
  tenantId: string;
  subscriptionId: string;
  clientId: string;
  clientSecret: string;
}

/** The resource that management-plane tokens are for (az's ARM audience). */
export const ARM_AUDIENCE = 'https://management.core.windows.net/';

export class IdentityService {
  /**
   * `issuerBase`: the canonical base URL of the identity endpoint; `otherIssuerBases`: the other base
   * URLs it answers on (https, localhost, ...). A token carries the base its client used, so that the
   * issuer in the token matches the discovery document that client reads.
   */
  constructor(private readonly db: Db, private readonly tokens: TokenService, readonly ids: PlatformIds,
    private readonly issuerBase: () => string, private readonly otherIssuerBases: () => string[] = () => []) {}

  static platformIds(db: Db): PlatformIds {
    const get = (k: string) => (db.prepare('SELECT value FROM settings WHERE key = ?').get(k) as { value: string } | undefined)?.value;
    const set = (k: string, v: string) => db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)').run(k, v);
    let tenantId = get('tenantId');
    let subscriptionId = get('subscriptionId');
    if (!tenantId) { tenantId = randomUUID(); set('tenantId', tenantId); }
    if (!subscriptionId) { subscriptionId = randomUUID(); set('subscriptionId', subscriptionId); }
    return { tenantId, subscriptionId };
  }

  get subscriptionScope(): string {
    return `/subscriptions/${this.ids.subscriptionId}`;
  }

  /** The issuer for clients that reach the identity endpoint at `base` (the canonical one when unknown). */
  issuer(base?: string): string {
    const b = base !== undefined && this.otherIssuerBases().includes(base) ? base : this.issuerBase();
    return `${b}/${this.ids.tenantId}/v2.0`;
  }

  /**
   * Makes sure the local owner principal exists with Owner on the subscription. Returns a fresh credential
   * when one must be (re)written to the data directory (first start, or the file was lost).
   */
  async ensureOwner(haveCredentialFile: boolean): Promise<OwnerCredential | undefined> {
    let owner = this.db.prepare(`SELECT id, app_id FROM principals WHERE kind = 'servicePrincipal' AND json_extract(props, '$.localOwner') = 1`)
      .get() as { id: string; app_id: string } | undefined;
    if (!owner) {
      const id = randomUUID();
      const appId = randomUUID();
      this.db.prepare('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)')
        .run(id, 'servicePrincipal', 'berth-local-owner', appId, nowIso(), JSON.stringify({ localOwner: 1 }));
      this.createRoleAssignment(id, 'ServicePrincipal', BUILT_IN_ROLES[0]!, this.subscriptionScope);
      owner = { id, app_id: appId };
    } else if (haveCredentialFile) {
      return undefined;
    }
    const secret = generateSecret();
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM principal_secrets WHERE principal_id = ?').run(owner!.id);
    })();
    await this.addSecret(owner.id, secret);
    return { tenantId: this.ids.tenantId, subscriptionId: this.ids.subscriptionId, clientId: owner.app_id, clientSecret: secret };
  }

  async addSecret(principalId: string, secret: string, expiresAt?: string): Promise<string> {
    const id = randomUUID();
    this.db.prepare('INSERT INTO principal_secrets (id, principal_id, hash, hint, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, principalId, await hashSecret(secret), secret.slice(0, 3), expiresAt ?? null, nowIso());
    return id;
  }

  principalByAppId(appId: string): Principal | undefined {
    // An application without its service principal cannot sign in (Entra behaves the same).
    const r = this.db.prepare(`SELECT id, kind, display_name, app_id FROM principals WHERE app_id = ? AND coalesce(json_extract(props, '$.hasServicePrincipal'), 1) != 0`).get(appId.toLowerCase()) as
      { id: string; kind: string; display_name: string; app_id: string } | undefined;
    return r && { kind: r.kind as Principal['kind'], id: r.id, displayName: r.display_name, appId: r.app_id };
  }

  principalById(id: string): Principal | undefined {
    const r = this.db.prepare('SELECT id, kind, display_name, app_id FROM principals WHERE id = ?').get(id) as
      { id: string; kind: string; display_name: string; app_id: string | null } | undefined;
    return r && { kind: r.kind as Principal['kind'], id: r.id, displayName: r.display_name, ...(r.app_id ? { appId: r.app_id } : {}) };
  }

  /** Client-credentials check. Returns the principal, or a reason for the refusal (never the secret). */
  async authenticateClient(appId: string, secret: string): Promise<{ principal: Principal } | { error: string }> {
    const p = this.principalByAppId(appId);
    if (!p) return { error: `no application with identifier '${appId}' exists in tenant ${this.ids.tenantId}` };
    const rows = this.db.prepare('SELECT hash, expires_at FROM principal_secrets WHERE principal_id = ?').all(p.id) as
      Array<{ hash: string; expires_at: string | null }>;
    let expired: string | undefined;
    for (const r of rows) {
      if (await verifySecretCached(secret, r.hash)) {
        if (r.expires_at && Date.parse(r.expires_at) <= Date.now()) { expired = r.expires_at; continue; }
        return { principal: p };
      }
    }
    if (expired) return { error: `the client secret for application '${appId}' expired at ${expired}; create a new one` };
    return { error: `invalid client secret provided for application '${appId}'` };
  }

  /** An Entra-style access token for `principal`, for `resource` (its audience). */
  async issueAccessToken(principal: Principal, resource: string, ttlSeconds = 3600, issuerBase?: string): Promise<string> {
    return this.tokens.sign(
      { tid: this.ids.tenantId, oid: principal.id, ...(principal.appId ? { appid: principal.appId, azp: principal.appId } : {}), idtyp: 'app', ver: '2.0' },
      { issuer: this.issuer(issuerBase), audience: resource, subject: principal.id, ttlSeconds },
    );
  }

  /** Verifies an Entra-style access token issued by Berth for one of `audiences`. */
  async verifyAccessToken(token: string, audiences: string[]): Promise<Principal | undefined> {
    const issuers = [this.issuerBase(), ...this.otherIssuerBases()].map((b) => `${b}/${this.ids.tenantId}/v2.0`);
    const payload = await this.tokens.verify(token, { issuer: issuers, audience: audiences });
    if (!payload || typeof payload.oid !== 'string') return undefined;
    return this.principalById(payload.oid);
  }

  createRoleAssignment(principalId: string, principalType: string, role: RoleDefinition, scope: string): RoleAssignment {
    const ra: RoleAssignment = { id: randomUUID(), principalId, roleDefinitionId: role.id, scope, principalType, createdAt: nowIso() };
    this.db.prepare(
      'INSERT INTO role_assignments (id, principal_id, role_definition_id, scope, scope_lower, principal_type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(ra.id, principalId, role.id, scope, scope.toLowerCase(), principalType, ra.createdAt);
    return ra;
  }

  /** The principal type role assignments record for a principal (as ARM names it). */
  principalType(p: Principal): string {
    return p.kind === 'managedIdentity' || p.kind === 'servicePrincipal' ? 'ServicePrincipal' : 'Unknown';
  }

  /**
   * Creates a role assignment after checking the principal exists. A second identical assignment is a
   * conflict, as in ARM.
   */
  assignRole(principalId: string, role: RoleDefinition, scope: string, name?: string, principalType?: string): RoleAssignment {
    const p = this.principalById(principalId.toLowerCase());
    if (!p) throw invalid('PrincipalNotFound', `Principal ${principalId} does not exist in the directory ${this.ids.tenantId}. Check that you have the correct principal ID.`);
    // ARM checks a stated principal type against the directory (az sends it with --assignee-principal-type).
    if (principalType && principalType.toLowerCase() !== this.principalType(p).toLowerCase()) {
      throw invalid('UnmatchedPrincipalType', `The PrincipalId '${p.id}' has type '${this.principalType(p)}' , which is different from specified PrincipalType '${principalType}'.`);
    }
    const dup = this.db.prepare('SELECT id FROM role_assignments WHERE principal_id = ? AND role_definition_id = ? AND scope_lower = ?')
      .get(p.id, role.id, scope.toLowerCase().replace(/\/+$/, ''));
    if (dup) throw conflict('RoleAssignmentExists', 'The role assignment already exists.');
    const ra: RoleAssignment = { id: name ?? randomUUID(), principalId: p.id, roleDefinitionId: role.id, scope: scope.replace(/\/+$/, ''), principalType: this.principalType(p), createdAt: nowIso() };
    this.db.prepare(
      'INSERT INTO role_assignments (id, principal_id, role_definition_id, scope, scope_lower, principal_type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(ra.id, ra.principalId, ra.roleDefinitionId, ra.scope, ra.scope.toLowerCase(), ra.principalType, ra.createdAt);
    return ra;
  }

  /** Whether `principalId` holds any role assignment (it sees the subscription and may read the directory). */
  hasAnyAssignment(principalId: string): boolean {
    return this.db.prepare('SELECT 1 FROM role_assignments WHERE principal_id = ? LIMIT 1').get(principalId) !== undefined;
  }

  listAssignments(): RoleAssignment[] {
    return (this.db.prepare('SELECT * FROM role_assignments ORDER BY created_at').all() as AssignmentRow[]).map(toAssignment);
  }

  getAssignment(id: string): RoleAssignment | undefined {
    const r = this.db.prepare('SELECT * FROM role_assignments WHERE id = ?').get(id.toLowerCase()) as AssignmentRow | undefined;
    return r && toAssignment(r);
  }

  deleteAssignment(id: string): RoleAssignment | undefined {
    const ra = this.getAssignment(id);
    if (ra) this.db.prepare('DELETE FROM role_assignments WHERE id = ?').run(ra.id);
    return ra;
  }

  /** Removes every role assignment at `scope` or below it (a deleted resource group's), returning how many. */
  deleteAssignmentsUnder(scope: string): number {
    const s = scope.replace(/\/+$/, '');
    return this.db.prepare('DELETE FROM role_assignments WHERE lower(scope) = lower(?) OR lower(substr(scope, 1, ?)) = lower(?)')
      .run(s, s.length + 1, `${s}/`).changes;
  }

  /** Every role assignment of `principalId` with its (built-in) role. */
  assignmentsOf(principalId: string): Array<{ assignment: RoleAssignment; role: RoleDefinition }> {
    const rows = this.db.prepare('SELECT * FROM role_assignments WHERE principal_id = ? ORDER BY created_at').all(principalId) as AssignmentRow[];
    const out: Array<{ assignment: RoleAssignment; role: RoleDefinition }> = [];
    for (const r of rows) {
      const role = BUILT_IN_ROLES.find((d) => d.id === r.role_definition_id);
      if (role) out.push({ assignment: toAssignment(r), role });
    }
    return out;
  }

  /** Role assignments of `principalId` whose scope covers `scope`. */
  assignmentsCovering(principalId: string, scope: string): Array<{ assignment: RoleAssignment; role: RoleDefinition }> {
    return this.assignmentsOf(principalId).filter(({ assignment }) => scopeContains(assignment.scope, scope));
  }

  /** Whether `principal` may perform `action` at `scope` through any role assignment. */
  can(principal: Principal, action: string, scope: string, data = false): boolean {
    return this.assignmentsCovering(principal.id, scope).some(({ role }) => roleAllows(role, action, data));
  }
}
