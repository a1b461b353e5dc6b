// ARM routes for a registry's scope maps and tokens, and generateCredentials.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { checkSub, requirePermission } from './common.js';
import { armId, type RegistryRecord } from '../registry/registries.js';
import type { RegistryToken, ScopeMap, TokenStatus } from '../registry/scope-maps.js';
import { invalid } from '../lib/errors.js';

const REG = '/subscriptions/:sub/resourcegroups/:rg/providers/Microsoft.ContainerRegistry/registries/:name';

export function scopeMapResource(r: RegistryRecord, m: ScopeMap) {
  return {
    id: `${armId(r)}/scopeMaps/${m.name}`, name: m.name, type: 'Microsoft.ContainerRegistry/registries/scopeMaps',
    properties: { description: m.description, type: m.type, creationDate: m.createdAt, provisioningState: 'Succeeded', actions: m.actions },
  };
}

export function tokenResource(r: RegistryRecord, t: RegistryToken) {
  return {
    id: `${armId(r)}/tokens/${t.name}`, name: t.name, type: 'Microsoft.ContainerRegistry/registries/tokens',
    properties: {
      creationDate: t.createdAt, provisioningState: 'Succeeded', scopeMapId: `${armId(r)}/scopeMaps/${t.scopeMap}`, status: t.status,
      credentials: { certificates: [], passwords: t.passwords.map((p) => ({ name: p.name, creationTime: p.creationTime, expiry: p.expiry })) },
    },
  };
}

export function registerRegistryAccessRoutes(app: FastifyInstance, d: ApiDeps): void {
  const registry = (req: FastifyRequest, action: string): RegistryRecord => {
    const { sub, rg, name } = req.params as { sub: string; rg: string; name: string };
    checkSub(d, sub);
    const r = d.registries.get(rg, name);
    requirePermission(d, req, action, armId(r));
    return r;
  };
  const mapName = (scopeMapId: string | undefined): string | undefined => scopeMapId?.split('/').pop();

  // scope maps
  app.get(`${REG}/scopeMaps`, async (req) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/scopeMaps/read');
    return { value: d.repoTokens.listScopeMaps(r).map((m) => scopeMapResource(r, m)) };
  });
  app.get(`${REG}/scopeMaps/:map`, async (req) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/scopeMaps/read');
    return scopeMapResource(r, d.repoTokens.getScopeMap(r, (req.params as { map: string }).map));
  });
  const putMap = async (req: FastifyRequest, patch: boolean) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/scopeMaps/write');
    const name = (req.params as { map: string }).map;
    const body = (req.body ?? {}) as { properties?: { actions?: unknown; description?: unknown } };
    let actions = body.properties?.actions;
    if (patch && actions === undefined) actions = d.repoTokens.getScopeMap(r, name).actions;
    if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) throw invalid('InvalidRequestContent', 'properties.actions must be an array of strings.');
    const description = typeof body.properties?.description === 'string' ? body.properties.description : undefined;
    return { r, ...d.repoTokens.createOrUpdateScopeMap(r, name, actions as string[], description) };
  };
  app.put(`${REG}/scopeMaps/:map`, async (req, reply) => {
    const { r, map, created } = await putMap(req, false);
    return reply.status(created ? 201 : 200).send(scopeMapResource(r, map));
  });
  app.patch(`${REG}/scopeMaps/:map`, async (req) => {
    const { r, map } = await putMap(req, true);
    return scopeMapResource(r, map);
  });
  app.delete(`${REG}/scopeMaps/:map`, async (req, reply) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/scopeMaps/delete');
    d.repoTokens.deleteScopeMap(r, (req.params as { map: string }).map);
    return reply.status(200).send();
  });

  // tokens
  app.get(`${REG}/tokens`, async (req) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/tokens/read');
    return { value: d.repoTokens.listTokens(r).map((t) => tokenResource(r, t)) };
  });
  app.get(`${REG}/tokens/:token`, async (req) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/tokens/read');
    return tokenResource(r, d.repoTokens.getToken(r, (req.params as { token: string }).token));
  });
  const putToken = (req: FastifyRequest) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/tokens/write');
    const body = (req.body ?? {}) as { properties?: { scopeMapId?: unknown; status?: unknown } };
    for (const k of ['scopeMapId', 'status'] as const) {
      const v = body.properties?.[k];
      if (v !== undefined && v !== null && typeof v !== 'string') throw invalid('InvalidRequestContent', `properties.${k} must be a string.`);
    }
    const map = mapName(body.properties?.scopeMapId as string | undefined);
    return { r, ...d.repoTokens.createOrUpdateToken(r, (req.params as { token: string }).token, {
      ...(map ? { scopeMap: map } : {}), ...(body.properties?.status ? { status: body.properties.status as TokenStatus } : {}) }) };
  };
  app.put(`${REG}/tokens/:token`, async (req, reply) => {
    const { r, token, created } = putToken(req);
    return reply.status(created ? 201 : 200).send(tokenResource(r, token));
  });
  app.patch(`${REG}/tokens/:token`, async (req) => {
    const { r, token } = putToken(req);
    return tokenResource(r, token);
  });
  app.delete(`${REG}/tokens/:token`, async (req, reply) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/tokens/delete');
    d.repoTokens.deleteToken(r, (req.params as { token: string }).token);
    return reply.status(200).send();
  });
  app.post(`${REG}/generateCredentials`, async (req) => {
    const r = registry(req, 'Microsoft.ContainerRegistry/registries/generateCredentials/action');
    const body = (req.body ?? {}) as { tokenId?: string; expiry?: string; name?: string };
    const token = mapName(body.tokenId);
    if (!token) throw invalid('InvalidRequestContent', 'tokenId is required: the ARM id of the token.');
    return d.repoTokens.generateCredentials(r, token, { ...(body.name ? { name: body.name } : {}), ...(body.expiry ? { expiry: body.expiry } : {}) });
  });
}
