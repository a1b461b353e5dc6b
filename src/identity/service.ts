// Principals, their secrets, role assignments and Entra-style access tokens.
import { randomUUID } from 'node:crypto';
import type { Sql, SqlQueries } from '../storage/sql/sql.js';
import { nowIso } from '../lib/time.js';
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
const ASSIGNMENT_COLUMNS = 'id, principal_id, role_definition_id, scope, principal_type, created_at';
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
  constructor(private readonly db: Sql, private readonly tokens: TokenService, readonly ids: PlatformIds,
    private readonly issuerBase: () => string, private readonly otherIssuerBases: () => string[] = () => []) {}

  /** The tenant and subscription ids, made on first start; replicas starting together agree on the first written. */
  static async platformIds(db: Sql): Promise<PlatformIds> {
    const read = async (key: string) => (await db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
    const id = async (key: string) => {
      const had = await read(key);
      if (had) return had;
      await db.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, randomUUID()]);
      return (await read(key))!;
    };
    return { tenantId: await id('tenantId'), subscriptionId: await id('subscriptionId') };
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
    let owner = await this.db.get<{ id: string; app_id: string }>(
      `SELECT id, app_id FROM principals WHERE kind = 'servicePrincipal' AND ${this.db.dialect.jsonFlag('props', 'localOwner')} = 1`);
    if (!owner) {
      const id = randomUUID();
      const appId = randomUUID();
      await this.db.transaction(async (tx) => {
        await tx.run('INSERT INTO principals (id, kind, display_name, app_id, created_at, props) VALUES (?, ?, ?, ?, ?, ?)',
          [id, 'servicePrincipal', 'berth-local-owner', appId, nowIso(), JSON.stringify({ localOwner: 1 })]);
        await this.insertAssignment(tx, { id: randomUUID(), principalId: id, roleDefinitionId: BUILT_IN_ROLES[0]!.id, scope: this.subscriptionScope, principalType: 'ServicePrincipal', createdAt: nowIso() });
      });
      owner = { id, app_id: appId };
    } else if (haveCredentialFile) {
      return undefined;
    }
    const secret = generateSecret();
    const hash = await hashSecret(secret);
    const ownerId = owner.id;
    // The old secrets go with the new one's arrival, in one transaction.
    await this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM principal_secrets WHERE principal_id = ?', [ownerId]);
      await this.insertSecret(tx, ownerId, hash, secret, undefined);
    });
    return { tenantId: this.ids.tenantId, subscriptionId: this.ids.subscriptionId, clientId: owner.app_id, clientSecret: secret };
  }

  async addSecret(principalId: string, secret: string, expiresAt?: string): Promise<string> {
    return this.insertSecret(this.db, principalId, await hashSecret(secret), secret, expiresAt);
  }

  private async insertSecret(q: SqlQueries, principalId: string, hash: string, secret: string, expiresAt: string | undefined): Promise<string> {
    const id = randomUUID();
    await q.run('INSERT INTO principal_secrets (id, principal_id, hash, hint, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      [id, principalId, hash, secret.slice(0, 3), expiresAt ?? null, nowIso()]);
    return id;
  }

  async principalByAppId(appId: string): Promise<Principal | undefined> {
    // An application without its service principal cannot sign in (Entra behaves the same).
    const r = await this.db.get<{ id: string; kind: string; display_name: string; app_id: string }>(
      `SELECT id, kind, display_name, app_id FROM principals WHERE app_id = ? AND coalesce(${this.db.dialect.jsonFlag('props', 'hasServicePrincipal')}, 1) != 0`, [appId.toLowerCase()]);
    return r && { kind: r.kind as Principal['kind'], id: r.id, displayName: r.display_name, appId: r.app_id };
  }

  async principalById(id: string): Promise<Principal | undefined> {
    const r = await this.db.get<{ id: string; kind: string; display_name: string; app_id: string | null }>('SELECT id, kind, display_name, app_id FROM principals WHERE id = ?', [id]);
    return r && { kind: r.kind as Principal['kind'], id: r.id, displayName: r.display_name, ...(r.app_id ? { appId: r.app_id } : {}) };
  }

  /** Client-credentials check. Returns the principal, or a reason for the refusal (never the secret). */
  async authenticateClient(appId: string, secret: string): Promise<{ principal: Principal } | { error: string }> {
    const p = await this.principalByAppId(appId);
    if (!p) return { error: `no application with identifier '${appId}' exists in tenant ${this.ids.tenantId}` };
    const rows = await this.db.all<{ hash: string; expires_at: string | null }>('SELECT hash, expires_at FROM principal_secrets WHERE principal_id = ?', [p.id]);
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

  /** Inserts a role assignment; false when the principal already holds the role at that scope (nothing written). */
  private async insertAssignment(q: SqlQueries, ra: RoleAssignment): Promise<boolean> {
    const res = await q.run(
      `INSERT INTO role_assignments (id, principal_id, role_definition_id, scope, scope_lower, principal_type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (principal_id, role_definition_id, scope_lower) DO NOTHING`,
      [ra.id, ra.principalId, ra.roleDefinitionId, ra.scope, ra.scope.toLowerCase(), ra.principalType, ra.createdAt]);
    return res.changes > 0;
  }

  /** The principal type role assignments record for a principal (as ARM names it). */
  principalType(p: Principal): string {
    return p.kind === 'managedIdentity' || p.kind === 'servicePrincipal' ? 'ServicePrincipal' : 'Unknown';
  }

  /**
   * Creates a role assignment after checking the principal exists. A second identical assignment is a
   * conflict, as in ARM.
   */
  async assignRole(principalId: string, role: RoleDefinition, scope: string, name?: string, principalType?: string): Promise<RoleAssignment> {
    const p = await this.principalById(principalId.toLowerCase());
    if (!p) throw invalid('PrincipalNotFound', `Principal ${principalId} does not exist in the directory ${this.ids.tenantId}. Check that you have the correct principal ID.`);
    // ARM checks a stated principal type against the directory (az sends it with --assignee-principal-type).
    if (principalType && principalType.toLowerCase() !== this.principalType(p).toLowerCase()) {
      throw invalid('UnmatchedPrincipalType', `The PrincipalId '${p.id}' has type '${this.principalType(p)}' , which is different from specified PrincipalType '${principalType}'.`);
    }
    const ra: RoleAssignment = { id: name ?? randomUUID(), principalId: p.id, roleDefinitionId: role.id, scope: scope.replace(/\/+$/, ''), principalType: this.principalType(p), createdAt: nowIso() };
    const exists = () => conflict('RoleAssignmentExists', 'The role assignment already exists.');
    if (await this.db.get('SELECT id FROM role_assignments WHERE principal_id = ? AND role_definition_id = ? AND scope_lower = ?', [p.id, role.id, ra.scope.toLowerCase()])) throw exists();
    // The unique key on (principal, role, scope) also answers for a duplicate another replica writes at the same moment.
    if (!await this.insertAssignment(this.db, ra)) throw exists();
    return ra;
  }

  /** Whether `principalId` holds any role assignment (it sees the subscription and may read the directory). */
  async hasAnyAssignment(principalId: string): Promise<boolean> {
    return await this.db.get('SELECT 1 AS one FROM role_assignments WHERE principal_id = ? LIMIT 1', [principalId]) !== undefined;
  }

  async listAssignments(): Promise<RoleAssignment[]> {
    return (await this.db.all<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM role_assignments ORDER BY created_at`)).map(toAssignment);
  }

  async getAssignment(id: string): Promise<RoleAssignment | undefined> {
    const r = await this.db.get<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM role_assignments WHERE id = ?`, [id.toLowerCase()]);
    return r && toAssignment(r);
  }

  async deleteAssignment(id: string): Promise<RoleAssignment | undefined> {
    const ra = await this.getAssignment(id);
    if (ra) await this.db.run('DELETE FROM role_assignments WHERE id = ?', [ra.id]);
    return ra;
  }

  /** Removes every role assignment at `scope` or below it (a deleted resource group's), returning how many. */
  async deleteAssignmentsUnder(scope: string): Promise<number> {
    const s = scope.replace(/\/+$/, '').toLowerCase();
    return (await this.db.run('DELETE FROM role_assignments WHERE scope_lower = ? OR substr(scope_lower, 1, ?) = ?', [s, s.length + 1, `${s}/`])).changes;
  }

  /** Every role assignment of `principalId` with its (built-in) role. */
  async assignmentsOf(principalId: string): Promise<Array<{ assignment: RoleAssignment; role: RoleDefinition }>> {
    const rows = await this.db.all<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM role_assignments WHERE principal_id = ? ORDER BY created_at`, [principalId]);
    const out: Array<{ assignment: RoleAssignment; role: RoleDefinition }> = [];
    for (const r of rows) {
      const role = BUILT_IN_ROLES.find((d) => d.id === r.role_definition_id);
      if (role) out.push({ assignment: toAssignment(r), role });
    }
    return out;
  }

  /** Role assignments of `principalId` whose scope covers `scope`. */
  async assignmentsCovering(principalId: string, scope: string): Promise<Array<{ assignment: RoleAssignment; role: RoleDefinition }>> {
    return (await this.assignmentsOf(principalId)).filter(({ assignment }) => scopeContains(assignment.scope, scope));
  }

  /**
   * Whether `principal` may perform an action at a scope, as a check over its role assignments read
   * once: for many checks (a list's items) with one statement.
   */
  async permissions(principal: Principal, data = false): Promise<(action: string, scope: string) => boolean> {
    const held = await this.assignmentsOf(principal.id);
    return (action, scope) => held.some(({ assignment, role }) => roleAllows(role, action, data) && scopeContains(assignment.scope, scope));
  }

  /** Whether `principal` may perform `action` at `scope` through any role assignment. */
  async can(principal: Principal, action: string, scope: string, data = false): Promise<boolean> {
    return (await this.permissions(principal, data))(action, scope);
  }
}
