// What this machine allows a container runtime: the cgroup layout (v1, v2 or hybrid) and which
// resource controllers Berth can use through runc's cgroupfs driver, and the process's hard rlimits
// (a container's rlimits may not exceed them: on this project's build machine nofile is 20000).
import { access, readFile } from 'node:fs/promises';

export interface CgroupInfo {
  /** `v1` (controllers on separate hierarchies), `v2` (unified only) or `hybrid` (v1 controllers + a v2 mount). */
  version: 'v1' | 'v2' | 'hybrid';
  memory: boolean;
  cpu: boolean;
}

const exists = (p: string) => access(p).then(() => true, () => false);

export async function cgroupInfo(): Promise<CgroupInfo> {
  if (await exists('/sys/fs/cgroup/cgroup.controllers')) {
    const controllers = (await readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8')).split(/\s+/);
    return { version: 'v2', memory: controllers.includes('memory'), cpu: controllers.includes('cpu') };
  }
  const memory = await exists('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  const cpu = await exists('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');
  const unified = await exists('/sys/fs/cgroup/unified/cgroup.procs');
  return { version: unified ? 'hybrid' : 'v1', memory, cpu };
}

/** Hard limits of this process from /proc/self/limits, by resource name (`Max open files` → `nofile`). */
export async function hardLimits(): Promise<Record<string, number | 'unlimited'>> {
  const names: Record<string, string> = { 'Max open files': 'nofile', 'Max processes': 'nproc', 'Max locked memory': 'memlock' };
  const out: Record<string, number | 'unlimited'> = {};
  const text = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    for (const [label, key] of Object.entries(names)) {
      if (!line.startsWith(label)) continue;
      const hard = line.slice(label.length).trim().split(/\s+/)[1];
      out[key] = hard === 'unlimited' ? 'unlimited' : Number(hard);
    }
  }
  return out;
}

/** The OOM-kill count of a container's memory cgroup (v1 memory.oom_control, v2 memory.events). */
export async function oomKills(memoryCgroupDir: string): Promise<number> {
  for (const f of ['memory.events', 'memory.oom_control']) {
    const text = await readFile(`${memoryCgroupDir}/${f}`, 'utf8').catch(() => undefined);
    const m = text?.match(/^oom_kill (\d+)$/m);
    if (m) return Number(m[1]);
  }
  return 0;
}
