// A container's OCI bundle: its rootfs (overlay of the cached layers, or a copy), config.json built
// from the image and the group's spec, its /etc/hosts, task.json (which image it uses) and an empty log.
// The image is held against garbage collection from the start of the create until task.json names it.
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveInRoot } from '../../lib/root-path.js';
import type { LayerCache } from '../rootfs/layer-cache.js';
import { buildRootfs, unmountAll, type RootfsMode } from '../rootfs/rootfs.js';
import type { UnpackLimits } from '../rootfs/unpack-bound.js';
import { ImageGoneError, type ContainerSpec, type Sandbox, type Task } from '../runtime.js';
import type { CgroupInfo } from './host.js';
import { imageRecord, type ImageRecord, type ImageUse, type TaskRecord } from './image-refs.js';
import { exists, replaceFile, type RuntimeLayout } from './layout.js';
import { writeContainerHosts } from './outbound.js';
import { buildOciSpec } from './spec.js';
import type { Tasks } from './tasks.js';
import { resolveUser } from './user.js';

export interface BundleContext {
  layout: RuntimeLayout;
  cache: LayerCache;
  unpackLimits: UnpackLimits;
  images: ImageUse;
  tasks: Tasks;
  info(): Promise<{ rootfs: RootfsMode; cgroups: CgroupInfo; nofile: number }>;
}

/** Prepares the container's bundle (rootfs, config, records); the process is not started. */
export async function createContainer(ctx: BundleContext, sandbox: Sandbox, spec: ContainerSpec): Promise<Task> {
  // The image is held against garbage collection until task.json names it.
  const image = imageRecord(spec.image);
  ctx.images.creating.add(image);
  const release = ctx.cache.pin(image.layers.map((l) => l.digest));
  try {
    await ctx.images.touch(image);
    return await createBundle(ctx, sandbox, spec, image);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && image.layers.some((l) => l.path === err.path)) {
      throw new ImageGoneError(`the layer blob ${err.path} of image ${image.reference} is gone (removed by garbage collection?); pull the image again`);
    }
    throw e;
  } finally {
    release();
    ctx.images.creating.delete(image);
  }
}

async function createBundle(ctx: BundleContext, sandbox: Sandbox, spec: ContainerSpec, image: ImageRecord): Promise<Task> {
  const info = await ctx.info();
  const gdir = ctx.layout.groupDir(sandbox.groupId);
  if (!(await exists(join(gdir, 'sandbox.json')))) throw new Error(`group ${sandbox.groupId} has no sandbox: create it first`);
  const task: Task = { groupId: sandbox.groupId, name: spec.name, logPath: ctx.layout.logPath(sandbox.groupId, spec.name) };
  const bundle = ctx.layout.bundleDir(task);
  if (await exists(bundle)) {
    if ((await ctx.tasks.status(task)) === 'running') throw new Error(`container ${spec.name} of group ${sandbox.groupId} is running: delete it first`);
    await ctx.tasks.delete(task);
  }
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  try {
    const rootfs = await buildRootfs(info.rootfs, ctx.cache, spec.image.layers, bundle, undefined, ctx.unpackLimits);
    const user = await resolveUser(rootfs, spec.image.config.user);
    const cwd = spec.image.config.workingDir || '/';
    await mkdir(await resolveInRoot(rootfs, cwd, { followFinal: true }), { recursive: true });
    const rec: TaskRecord = { groupId: sandbox.groupId, name: spec.name, runcId: ctx.layout.runcId(sandbox.groupId, spec.name), image };
    const config = buildOciSpec({
      image: spec.image.config,
      container: spec,
      user,
      hostname: spec.name,
      netnsPath: join(gdir, 'netns'),
      hostsPath: await writeContainerHosts(gdir, bundle, spec.name),
      resolvConfPath: join(gdir, 'resolv.conf'),
      cgroupsPath: rec.runcId,
      limits: { nofile: info.nofile, memory: info.cgroups.memory, cpu: info.cgroups.cpu },
    });
    // config.json holds the environment, secure values included: owner-only.
    await replaceFile(join(bundle, 'config.json'), JSON.stringify(config, null, 1), 0o600);
    await replaceFile(join(bundle, 'task.json'), JSON.stringify(rec), 0o600);
    await (await open(task.logPath, 'a', 0o640)).close();
  } catch (e) {
    await unmountAll(bundle).catch(() => undefined);
    await rm(bundle, { recursive: true, force: true });
    throw e;
  }
  return task;
}
