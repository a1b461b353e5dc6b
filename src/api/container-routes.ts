// ACI's management surface (Microsoft.ContainerInstance/containerGroups) over the container-groups
// core: PUT/GET/PATCH/DELETE, lists, restart/stop/start, logs, exec, and the long-running operations
// the ARM way (201 + Azure-AsyncOperation, a status URL to poll).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { checkSub, requirePermission } from './common.js';
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

export function registerContainerRoutes(app: FastifyInstance, d: ApiDeps, sockets: ContainerSockets): void {
  const cg = d.containerGroups;
  const sub = d.identity.ids.subscriptionId;
  const base = '/subscriptions/:sub/resourcegroups/:rg/providers/Microsoft.ContainerInstance/containerGroups';
  const scope = (rg: string, name: string) => cg.armId(rg, name);
  const params = (req: FastifyRequest, action: string) => {
    const p = req.params as { sub: string; rg: string; name: string; container?: string };
    checkSub(d, p.sub);
    requirePermission(d, req, action, scope(p.rg, p.name));
    return p;
  };
  // Retry-After: without it, ARM pollers (az, the Python SDK) wait 30 s between polls; a group here is
  // usually up within a second or two.
  const asyncHeader = (req: FastifyRequest, reply: FastifyReply, location: string, op: Operation) =>
    reply.header('Retry-After', String(POLL_SECONDS)).header('Azure-AsyncOperation', `${origin(req)}/subscriptions/${sub}/providers/Microsoft.ContainerInstance/locations/${encodeURIComponent(location)}/operations/${op.id}?api-version=2018-06-01`);

  const readable = (req: FastifyRequest) => (g: { resourceGroup: string; name: string }) => d.identity.can(req.principal!, A.read, scope(g.resourceGroup, g.name));
  app.get('/subscriptions/:sub/providers/Microsoft.ContainerInstance/containerGroups', async (req) => {
    checkSub(d, (req.params as { sub: string }).sub);
    return { value: cg.list().filter(readable(req)).map((g) => cg.resource(g, false)) };
  });
  app.get(base, async (req) => {
    const { sub: s, rg } = req.params as { sub: string; rg: string };
    checkSub(d, s);
    return { value: cg.list(rg).filter(readable(req)).map((g) => cg.resource(g, false)) };
  });

  app.put(`${base}/:name`, async (req, reply) => {
    const { rg, name } = params(req, A.write);
    const { group, created, operation } = await cg.createOrUpdate(rg, name, req.body ?? {},
      { canReadSecret: (secretScope) => d.identity.can(req.principal!, 'Microsoft.KeyVault/vaults/secrets/getSecret/action', secretScope, true) });
    asyncHeader(req, reply, group.location, operation);
    return reply.status(created ? 201 : 200).send(cg.resource(group));
  });
  app.get(`${base}/:name`, async (req) => {
    const { rg, name } = params(req, A.read);
    return cg.resource(cg.get(rg, name));
  });
  app.patch(`${base}/:name`, async (req) => {
    const { rg, name } = params(req, A.write);
    const body = (req.body ?? {}) as { tags?: unknown };
    const g = cg.get(rg, name);
    if (body.tags !== undefined && (typeof body.tags !== 'object' || body.tags === null || Array.isArray(body.tags))) throw invalid('InvalidRequestContent', 'tags must be an object of strings.');
    const tags = Object.fromEntries(Object.entries((body.tags ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    return cg.resource(cg.store.save({ ...g, spec: { ...g.spec, tags } }));
  });
  app.delete(`${base}/:name`, async (req, reply) => {
    const { rg, name } = params(req, A.delete);
    d.groups.get(rg);
    const g = cg.store.find(rg, name);
    if (!g) return reply.status(204).send();
    const shown = cg.resource(g);
    await cg.delete(rg, name);
    return reply.status(200).send(shown);
  });

  app.post(`${base}/:name/restart`, async (req, reply) => {
    const { rg, name } = params(req, A.restart);
    const op = await cg.restart(rg, name);
    asyncHeader(req, reply, cg.get(rg, name).location, op);
    return reply.status(204).send();
  });
  app.post(`${base}/:name/stop`, async (req, reply) => {
    const { rg, name } = params(req, A.stop);
    await cg.stop(rg, name);
    return reply.status(204).send();
  });
  app.post(`${base}/:name/start`, async (req, reply) => {
    const { rg, name } = params(req, A.start);
    const op = await cg.start(rg, name);
    if (!op) return reply.status(204).send();
    asyncHeader(req, reply, cg.get(rg, name).location, op);
    return reply.status(202).send();
  });

  app.get(`${base}/:name/containers/:container/logs`, async (req) => {
    const { rg, name, container } = params(req, A.logs);
    const q = req.query as { tail?: string };
    let tail: number | undefined;
    if (q.tail !== undefined && q.tail !== '') {
      tail = Number(q.tail);
      if (!Number.isInteger(tail) || tail < 0) throw invalid('InvalidParameter', `tail '${q.tail}' must be a whole number of lines.`);
    }
    return { content: await cg.logs(rg, name, container!, tail) };
  });

  // Exec and attach answer a websocket on this listener (container-sockets.ts), ws:// or wss:// as the request came.
  const socketAnswer = (req: FastifyRequest, target: { rg: string; name: string; container: string; argv?: string[] }) => {
    cg.runningTask(target.rg, target.name, target.container);
    const s = sockets.open(target);
    return { webSocketUri: `${origin(req).replace(/^http/, 'ws')}${s.path}`, password: s.password };
  };
  app.post(`${base}/:name/containers/:container/exec`, async (req) => {
    const { rg, name, container } = params(req, A.exec);
    const body = (req.body ?? {}) as { command?: unknown };
    if (typeof body.command !== 'string' || body.command.trim() === '') throw invalid('InvalidRequestContent', "The request needs a 'command' string, e.g. {\"command\": \"/bin/sh\"}.");
    return socketAnswer(req, { rg, name, container: container!, argv: shlexSplit(body.command) });
  });
  // The container's output from now on (az's own attach command polls the logs instead).
  app.post(`${base}/:name/containers/:container/attach`, async (req) => {
    const { rg, name, container } = params(req, A.attach);
    return socketAnswer(req, { rg, name, container: container! });
  });

  app.get('/subscriptions/:sub/providers/Microsoft.ContainerInstance/locations/:loc/operations/:id', async (req, reply) => {
    const { sub: s, id } = req.params as { sub: string; loc: string; id: string };
    checkSub(d, s);
    const found = cg.operation(id);
    const known = found && cg.store.byId(found.groupId);
    if (!found) throw notFound('OperationNotFound', `The operation '${id}' was not found.`);
    const groupId = known ? cg.armId(known.resourceGroup, known.name) : undefined;
    if (known) requirePermission(d, req, A.read, groupId!);
    // Answered when the operation ends, or after at most POLL_HOLD_MS: see operationSettled.
    const op = (await cg.operationSettled(id, POLL_HOLD_MS)) ?? found;
    const g = cg.store.byId(op.groupId) ?? known;
    const events = g ? Object.values(g.state.containers).flatMap((c) => c.events) : [];
    if (op.status === 'InProgress') reply.header('Retry-After', String(POLL_SECONDS));
    return {
      ...(groupId ? { id: groupId } : {}), name: op.id, status: op.status, startTime: op.startTime, ...(op.endTime ? { endTime: op.endTime } : {}),
      properties: { events }, ...(op.error ? { error: op.error } : {}),
    };
  });
}
