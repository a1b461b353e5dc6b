// Checks every management route shares: the subscription in the path, and RBAC on the caller.
import type { FastifyRequest } from 'fastify';
import { BerthError } from '../lib/errors.js';
import type { IdentityService } from '../identity/service.js';

export function requirePermission(d: { identity: IdentityService }, req: FastifyRequest, action: string, scope: string): void {
  const p = req.principal!;
  if (!d.identity.can(p, action, scope)) {
    throw new BerthError('forbidden', 'AuthorizationFailed',
      `The client '${p.appId ?? p.id}' with object id '${p.id}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid.`);
  }
}

export function checkSub(d: { identity: IdentityService }, sub: string): void {
  if (sub.toLowerCase() !== d.identity.ids.subscriptionId) {
    throw new BerthError('notFound', 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  }
}
