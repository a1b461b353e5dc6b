// ARM routes for a registry's scope maps and tokens, and generateCredentials.
import type { FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { route, SCOPE, type RouteDef } from './route-table.js';
import { armId, type RegistryRecord } from '../registry/registries.js';
import type { RegistryToken, ScopeMap, TokenStatus } from '../registry/scope-maps.js';
import { invalid } from '../lib/errors.js';

const REG = '/subscriptions/:sub/resourcegroups/:rg/providers/Microsoft.ContainerRegistry/registries/:name';
const T = 'Microsoft.ContainerRegistry/registries';

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

export function registryAccessRoutes(d: ApiDeps): RouteDef[] {
  // The registry is looked up before the permission check (a missing one answers 404).
  const scope = SCOPE.lookup('registry', async (p) => armId(await d.registries.get(p.rg!, p.name!)));
  const registry = (p: { rg: string; name: string }): Promise<RegistryRecord> => d.registries.get(p.rg, p.name);
  const mapName = (scopeMapId: string | undefined): string | undefined => scopeMapId?.split('/').pop();

  const putMap = async (req: FastifyRequest, p: { rg: string; name: string; map: string }, patch: boolean) => {
    const r = await registry(p);
    const body = (req.body ?? {}) as { properties?: { actions?: unknown; description?: unknown } };
    let actions = body.properties?.actions;
    if (patch && actions === undefined) actions = (await d.repoTokens.getScopeMap(r, p.map)).actions;
    if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) throw invalid('InvalidRequestContent', 'properties.actions must be an array of strings.');
    const description = typeof body.properties?.description === 'string' ? body.properties.description : undefined;
    return { r, ...(await d.repoTokens.createOrUpdateScopeMap(r, p.map, actions as string[], description)) };
  };
  const putToken = async (req: FastifyRequest, p: { rg: string; name: string; token: string }) => {
    const r = await registry(p);
    const body = (req.body ?? {}) as { properties?: { scopeMapId?: unknown; status?: unknown } };
    for (const k of ['scopeMapId', 'status'] as const) {
      const v = body.properties?.[k];
      if (v !== undefined && v !== null && typeof v !== 'string') throw invalid('InvalidRequestContent', `properties.${k} must be a string.`);
    }
    const map = mapName(body.properties?.scopeMapId as string | undefined);
    return { r, ...(await d.repoTokens.createOrUpdateToken(r, p.token, {
      ...(map ? { scopeMap: map } : {}), ...(body.properties?.status ? { status: body.properties.status as TokenStatus } : {}) })) };
  };

  return [
    // scope maps
    route({ method: 'GET', path: `${REG}/scopeMaps`, action: `${T}/scopeMaps/read`, scope, handler: async (c) => {
      const r = await registry(c.params);
      return { value: (await d.repoTokens.listScopeMaps(r)).map((m) => scopeMapResource(r, m)) };
    } }),
    route({ method: 'GET', path: `${REG}/scopeMaps/:map`, action: `${T}/scopeMaps/read`, scope, handler: async (c) => {
      const r = await registry(c.params);
      return scopeMapResource(r, await d.repoTokens.getScopeMap(r, c.params.map));
    } }),
    route({ method: 'PUT', path: `${REG}/scopeMaps/:map`, action: `${T}/scopeMaps/write`, scope, handler: async (c) => {
      const { r, map, created } = await putMap(c.req, c.params, false);
      return c.reply.status(created ? 201 : 200).send(scopeMapResource(r, map));
    } }),
    route({ method: 'PATCH', path: `${REG}/scopeMaps/:map`, action: `${T}/scopeMaps/write`, scope, handler: async (c) => {
      const { r, map } = await putMap(c.req, c.params, true);
      return scopeMapResource(r, map);
    } }),
    route({ method: 'DELETE', path: `${REG}/scopeMaps/:map`, action: `${T}/scopeMaps/delete`, scope, handler: async (c) => {
      await d.repoTokens.deleteScopeMap(await registry(c.params), c.params.map);
      return c.reply.status(200).send();
    } }),

    // tokens
    route({ method: 'GET', path: `${REG}/tokens`, action: `${T}/tokens/read`, scope, handler: async (c) => {
      const r = await registry(c.params);
      return { value: (await d.repoTokens.listTokens(r)).map((t) => tokenResource(r, t)) };
    } }),
    route({ method: 'GET', path: `${REG}/tokens/:token`, action: `${T}/tokens/read`, scope, handler: async (c) => {
      const r = await registry(c.params);
      return tokenResource(r, await d.repoTokens.getToken(r, c.params.token));
    } }),
    route({ method: 'PUT', path: `${REG}/tokens/:token`, action: `${T}/tokens/write`, scope, handler: async (c) => {
      const { r, token, created } = await putToken(c.req, c.params);
      return c.reply.status(created ? 201 : 200).send(tokenResource(r, token));
    } }),
    route({ method: 'PATCH', path: `${REG}/tokens/:token`, action: `${T}/tokens/write`, scope, handler: async (c) => {
      const { r, token } = await putToken(c.req, c.params);
      return tokenResource(r, token);
    } }),
    route({ method: 'DELETE', path: `${REG}/tokens/:token`, action: `${T}/tokens/delete`, scope, handler: async (c) => {
      await d.repoTokens.deleteToken(await registry(c.params), c.params.token);
      return c.reply.status(200).send();
    } }),
    route({ method: 'POST', path: `${REG}/generateCredentials`, action: `${T}/generateCredentials/action`, scope, handler: async (c) => {
      const body = (c.req.body ?? {}) as { tokenId?: string; expiry?: string; name?: string };
      const token = mapName(body.tokenId);
      if (!token) throw invalid('InvalidRequestContent', 'tokenId is required: the ARM id of the token.');
      return d.repoTokens.generateCredentials(await registry(c.params), token, { ...(body.name ? { name: body.name } : {}), ...(body.expiry ? { expiry: body.expiry } : {}) });
    } }),
  ];
}
