// The managed-identity token endpoint for workloads. A workload (a container group) is bound to the
// identities it holds; it proves who it is either by the listener it reaches (IMDS at
// 169.254.169.254 inside its own network namespace) or by the secret header of the IDENTITY_ENDPOINT /
// IDENTITY_HEADER convention. It gets tokens for its own identities and no others.
import { randomBytes } from 'node:crypto';
import { safeEqual } from './secrets.js';
import type { IdentityService } from './service.js';
import type { ManagedIdentities } from './managed-identities.js';

export interface WorkloadBinding {
  workload: string;
  /** Principal ids of the identities the workload holds; the system-assigned one (if any) first. */
  principalIds: string[];
  systemAssigned?: string;
  secret: string;
}

export interface TokenReply {
  status: number;
  body: Record<string, unknown>;
}

const MAX_TTL = 24 * 3600;

export class WorkloadIdentities {
  private readonly bindings = new Map<string, WorkloadBinding>();

  constructor(private readonly identity: IdentityService, private readonly mis: ManagedIdentities) {}

  /** Binds (or re-binds) a workload to its identities; returns the binding with its header secret. */
  bind(workload: string, principalIds: string[], systemAssigned?: string): WorkloadBinding {
    const b: WorkloadBinding = { workload, principalIds: [...new Set(principalIds)], ...(systemAssigned ? { systemAssigned } : {}), secret: randomBytes(24).toString('hex') };
    this.bindings.set(workload, b);
    return b;
  }

  unbind(workload: string): void {
    this.bindings.delete(workload);
  }

  get(workload: string): WorkloadBinding | undefined {
    return this.bindings.get(workload);
  }

  bySecret(secret: string): WorkloadBinding | undefined {
    for (const b of this.bindings.values()) if (safeEqual(b.secret, secret)) return b;
    return undefined;
  }

  /**
   * Answers a token request from `binding` (undefined: the caller is no known workload). `query` holds
   * resource and at most one of client_id, object_id, principal_id, msi_res_id, mi_res_id.
   */
  async token(binding: WorkloadBinding | undefined, query: Record<string, string | undefined>): Promise<TokenReply> {
    const bad = (status: number, error: string, description: string): TokenReply => ({ status, body: { error, error_description: description } });
    if (!binding) return bad(401, 'unauthorized', 'This caller holds no managed identity. Managed-identity tokens are only given to the container groups that hold the identity.');
    const resource = query.resource;
    if (!resource) return bad(400, 'invalid_request', "Required query variable 'resource' is missing");
    const want = query.client_id ?? query.object_id ?? query.principal_id ?? query.msi_res_id ?? query.mi_res_id;
    let principalId: string | undefined;
    if (want) {
      const k = want.toLowerCase();
      const ua = await this.mis.resolve(k);
      for (const id of binding.principalIds) {
        if (id === k || id === ua?.principalId || (await this.identity.principalById(id))?.appId === k) { principalId = id; break; }
      }
      if (!principalId) return bad(400, 'invalid_request', `Identity not found: this container group does not hold the identity '${want}'. Assign it to the group (identity.userAssignedIdentities) first.`);
    } else if (binding.systemAssigned) {
      principalId = binding.systemAssigned;
    } else if (binding.principalIds.length === 1) {
      principalId = binding.principalIds[0];
    } else if (binding.principalIds.length === 0) {
      return bad(400, 'invalid_request', 'Identity not found: this container group has no managed identity.');
    } else {
      return bad(400, 'invalid_request', 'Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request');
    }
    const p = await this.identity.principalById(principalId!);
    if (!p) return bad(400, 'invalid_request', 'Identity not found: the identity was deleted.');
    const audience = resource.replace(/\/\.default$/, '');
    const ttl = MAX_TTL;
    const token = await this.identity.issueAccessToken(p, audience, ttl);
    const now = Math.floor(Date.now() / 1000);
    // IMDS returns the numbers as strings.
    return { status: 200, body: { access_token: token, refresh_token: '', expires_in: String(ttl), expires_on: String(now + ttl), ext_expires_in: String(ttl),
      not_before: String(now), resource, token_type: 'Bearer', client_id: p.appId ?? '' } };
  }
}
