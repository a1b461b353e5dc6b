// The image's `User` (name, uid, `user:group`, `uid:gid`) resolved against the container's own
// /etc/passwd and /etc/group, read inside the root filesystem (never through a symlink out of it).
import { lstat, readFile } from 'node:fs/promises';
import { resolveInRoot } from '../../lib/root-path.js';
import { CodedError, type RuntimeErrorCode } from '../../lib/errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

export class UserError extends CodedError<RuntimeErrorCode> {
  constructor(message: string) { super('UnknownUser', message, 'UserError'); }
}

async function readInRoot(rootfs: string, path: string): Promise<string[][]> {
  const p = await resolveInRoot(rootfs, path, { followFinal: true });
  try {
    if (!(await lstat(p)).isFile()) return [];
    const text = await readFile(p, 'utf8');
    return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

const isId = (s: string) => /^\d+$/.test(s);

export async function resolveUser(rootfs: string, user: string | undefined): Promise<ResolvedUser> {
  const spec = (user ?? '').trim();
  const [u = '', g] = spec.split(':');
  const passwd = await readInRoot(rootfs, '/etc/passwd');
  const groups = await readInRoot(rootfs, '/etc/group');
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (u === '') {
    const root = passwd.find((f) => f[2] === '0');
    name = root?.[0] ?? 'root';
    home = root?.[5] || '/root';
  } else {
    const entry = passwd.find((f) => (isId(u) ? f[2] === u : f[0] === u));
    if (!entry && !isId(u)) throw new UserError(`the image's user "${u}" is not in the image's /etc/passwd`);
    uid = isId(u) ? Number(u) : Number(entry![2]);
    gid = entry ? Number(entry[3]) : 0;
    home = entry?.[5] || '/';
    name = entry?.[0];
  }
  if (g !== undefined && g !== '') {
    if (isId(g)) gid = Number(g);
    else {
      const ge = groups.find((f) => f[0] === g);
      if (!ge) throw new UserError(`the image's group "${g}" is not in the image's /etc/group`);
      gid = Number(ge[2]);
    }
  }
  const additionalGids = name && (g === undefined || g === '')
    ? groups.filter((f) => (f[3] ?? '').split(',').includes(name!)).map((f) => Number(f[2])).filter((n) => n !== gid)
    : [];
  return { uid, gid, additionalGids, home };
}
