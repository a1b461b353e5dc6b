// A `berth serve` that dies with kill -9 after starting a group, for the runtime's restart tests: runs
// ./runtime-child.ts (group g-killed with a published port 80, a metadata endpoint, containers `web` and
// `client`) on the data directory, waits until it has started the group, kills it and returns the sandbox.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { BuiltLayer } from '../../src/image/layer.js';
import type { Sandbox } from '../../src/runtime/runtime.js';

export async function killedServerGroup(dataDir: string, layer: BuiltLayer): Promise<Sandbox> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'runtime-child.js'), JSON.stringify({ dataDir, layer })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((res, rej) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) res(buf);
    });
    child.once('exit', (code) => rej(new Error(`the child exited with ${code} before starting its group`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return JSON.parse(line.slice('started '.length)) as Sandbox;
}
