// ACI's management surface (Microsoft.ContainerInstance/containerGroups) over the container-groups
// core: PUT/GET/PATCH/DELETE, lists, restart/stop/start, logs, exec, and the long-running operations
// the ARM way (201 + Azure-AsyncOperation, a status URL to poll).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { route, SCOPE, type RouteDef } from './route-table.js';
import { invalid, notFound } from '../lib/errors.js';
import { GROUP_TYPE } from '../instances/spec.js';
import { shlexSplit } from '../instances/flags.js';
import type { Operation } from '../instances/store.js';
import type { ContainerSockets } from './container-sockets.js';

/** The polling interval long-running operations suggest (Retry-After, seconds). */
const POLL_SECONDS = 1;
/** How long a poll of an operation in progress waits for it to end before it answers InProgress. */
const POLL_HOLD_MS = 1000;

const A = {
  read: `${GROUP_TYPE}/read`, write: `${GROUP_TYPE}/write`, delete: `${GROUP_TYPE}/delete`,
  restart: `${GROUP_TYPE}/restart/action`, stop: `${GROUP_TYPE}/stop/action`, start: `${GROUP_TYPE}/start/action`,
  logs: `${GROUP_TYPE}/containers/logs/read`, exec: `${GROUP_TYPE}/containers/exec/action`, attach: `${GROUP_TYPE}/containers/attach/action`,
};

/** Base URL as the client reached us (so polling URLs work behind TLS or another host name). */
const origin = (req: FastifyRequest) => `${req.protocol}://${req.headers.host ?? req.hostname}`;

export function containerRoutes(d: ApiDeps, sockets: ContainerSockets): RouteDef[] {
  const cg = d.containerGroups;
  const sub = d.identity.ids.subscriptionId;
  const base = '/subscriptions/:sub/resourcegroups/:rg/providers/Microsoft.ContainerInstance/containerGroups' as const;
  const one = `${base}/:name` as const;
  const container = `${one}/containers/:container` as const;
  const scope = SCOPE.resource(GROUP_TYPE);
  // Retry-After: without it, ARM pollers (az, the Python SDK) wait 30 s between polls; a group here is
  // usually up within a second or two.
  const asyncHeader = (req: FastifyRequest, reply: FastifyReply, location: string, op: Operation) =>
    reply.header('Retry-After', String(POLL_SECONDS)).header('Azure-AsyncOperation', `${origin(req)}/subscriptions/${sub}/providers/Microsoft.ContainerInstance/locations/${encodeURIComponent(location)}/operations/${op.id}?api-version=2018-06-01`);
  const armIdOf = (g: { resourceGroup: string; name: string }) => cg.armId(g.resourceGroup, g.name);

  // Exec and attach answer a websocket on this listener (container-sockets.ts), ws:// or wss:// as the request came.
  const socketAnswer = async (req: FastifyRequest, target: { rg: string; name: string; container: string; argv?: string[] }) => {
    await cg.runningTask(target.rg, target.name, target.container);
    const s = sockets.open(target);
    return { webSocketUri: `${origin(req).replace(/^http/, 'ws')}${s.path}`, password: s.password };
  };

  return [
    route({ method: 'GET', path: '/subscriptions/:sub/providers/Microsoft.ContainerInstance/containerGroups', action: A.read, scope: SCOPE.each,
      handler: async (c) => ({ value: await Promise.all((await c.allowed(await cg.list(), armIdOf)).map((g) => cg.resource(g, false))) }) }),
    route({ method: 'GET', path: base, action: A.read, scope: SCOPE.each,
      handler: async (c) => ({ value: await Promise.all((await c.allowed(await cg.list(c.params.rg), armIdOf)).map((g) => cg.resource(g, false))) }) }),
    route({ method: 'PUT', path: one, action: A.write, scope, handler: async (c) => {
      const { group, created, operation } = await cg.createOrUpdate(c.params.rg, c.params.name, c.req.body ?? {},
        { canReadSecret: (secretScope) => d.identity.can(c.principal, 'Microsoft.KeyVault/vaults/secrets/getSecret/action', secretScope, true) });
      asyncHeader(c.req, c.reply, group.location, operation);
      return c.reply.status(created ? 201 : 200).send(await cg.resource(group));
    } }),
    route({ method: 'GET', path: one, action: A.read, scope, handler: async (c) => cg.resource(await cg.get(c.params.rg, c.params.name)) }),
    route({ method: 'PATCH', path: one, action: A.write, scope, handler: async (c) => {
      const body = (c.req.body ?? {}) as { tags?: unknown };
      await cg.get(c.params.rg, c.params.name);
      if (body.tags !== undefined && (typeof body.tags !== 'object' || body.tags === null || Array.isArray(body.tags))) throw invalid('InvalidRequestContent', 'tags must be an object of strings.');
      const tags = Object.fromEntries(Object.entries((body.tags ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      return cg.resource(await cg.setTags(c.params.rg, c.params.name, tags));
    } }),
    route({ method: 'DELETE', path: one, action: A.delete, scope, handler: async (c) => {
      await d.groups.get(c.params.rg);
      const g = await cg.find(c.params.rg, c.params.name);
      if (!g) return c.reply.status(204).send();
      const shown = await cg.resource(g);
      await cg.delete(c.params.rg, c.params.name);
      return c.reply.status(200).send(shown);
    } }),

    route({ method: 'POST', path: `${one}/restart`, action: A.restart, scope, handler: async (c) => {
      const op = await cg.restart(c.params.rg, c.params.name);
      asyncHeader(c.req, c.reply, (await cg.get(c.params.rg, c.params.name)).location, op);
      return c.reply.status(204).send();
    } }),
    route({ method: 'POST', path: `${one}/stop`, action: A.stop, scope, handler: async (c) => {
      await cg.stop(c.params.rg, c.params.name);
      return c.reply.status(204).send();
    } }),
    route({ method: 'POST', path: `${one}/start`, action: A.start, scope, handler: async (c) => {
      const op = await cg.start(c.params.rg, c.params.name);
      if (!op) return c.reply.status(204).send();
      asyncHeader(c.req, c.reply, (await cg.get(c.params.rg, c.params.name)).location, op);
      return c.reply.status(202).send();
    } }),

    route({ method: 'GET', path: `${container}/logs`, action: A.logs, scope, handler: async (c) => {
      const q = c.query.tail;
      let tail: number | undefined;
      if (q !== undefined && q !== '') {
        tail = Number(q);
        if (!Number.isInteger(tail) || tail < 0) throw invalid('InvalidParameter', `tail '${q}' must be a whole number of lines.`);
      }
      return { content: await cg.logs(c.params.rg, c.params.name, c.params.container, tail) };
    } }),
    route({ method: 'POST', path: `${container}/exec`, action: A.exec, scope, handler: (c) => {
      const body = (c.req.body ?? {}) as { command?: unknown };
      if (typeof body.command !== 'string' || body.command.trim() === '') throw invalid('InvalidRequestContent', "The request needs a 'command' string, e.g. {\"command\": \"/bin/sh\"}.");
      return socketAnswer(c.req, { rg: c.params.rg, name: c.params.name, container: c.params.container, argv: shlexSplit(body.command) });
    } }),
    // The container's output from now on (az's own attach command polls the logs instead).
    route({ method: 'POST', path: `${container}/attach`, action: A.attach, scope,
      handler: (c) => socketAnswer(c.req, { rg: c.params.rg, name: c.params.name, container: c.params.container }) }),

    route({ method: 'GET', path: '/subscriptions/:sub/providers/Microsoft.ContainerInstance/locations/:loc/operations/:id', action: A.read,
      scope: SCOPE.handler('the group the operation is about'), handler: async (c) => {
        const found = await cg.operation(c.params.id);
        const known = found && await cg.operationGroup(found);
        if (!found) throw notFound('OperationNotFound', `The operation '${c.params.id}' was not found.`);
        const groupId = known ? armIdOf(known) : undefined;
        if (groupId) await c.authorize(groupId);
        // Answered when the operation ends, or after at most POLL_HOLD_MS: see operationSettled.
        const op = (await cg.operationSettled(c.params.id, POLL_HOLD_MS)) ?? found;
        const g = (await cg.operationGroup(op)) ?? known;
        const events = g ? Object.values(g.state.containers).flatMap((x) => x.events) : [];
        if (op.status === 'InProgress') c.reply.header('Retry-After', String(POLL_SECONDS));
        return {
          ...(groupId ? { id: groupId } : {}), name: op.id, status: op.status, startTime: op.startTime, ...(op.endTime ? { endTime: op.endTime } : {}),
          properties: { events }, ...(op.error ? { error: op.error } : {}),
        };
      } }),
  ];
}
