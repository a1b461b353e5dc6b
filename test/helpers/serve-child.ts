// `berth serve` as a child process, for the scenario tests that run the real server and CLI: started
// with the given arguments and environment, resolved once it prints its "Berth is ready at URL" line.
import { spawn, type ChildProcess } from 'node:child_process';
import { BERTH_BIN, runCli } from './berth.js';

export interface ServeChild {
  child: ChildProcess;
  /** The management API's URL, as the server printed it. */
  url: string;
}

/** Starts `berth serve ARGS`; every chunk of its output also goes to `onOutput` (for secret checks and logs). */
export function startServeChild(args: string[], env: NodeJS.ProcessEnv, onOutput: (text: string, stream: 'stdout' | 'stderr') => void = () => undefined): Promise<ServeChild> {
  const child = spawn(process.execPath, [BERTH_BIN, 'serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise<ServeChild>((res, rej) => {
    child.stderr!.on('data', (d: Buffer) => {
      out += d;
      onOutput(d.toString(), 'stderr');
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      onOutput(d.toString(), 'stdout');
      const m = /Berth is ready at (\S+)\s/.exec(out); // the whole URL: something follows it
      if (m) res({ child, url: m[1]! });
    });
    child.once('exit', (code) => rej(new Error(`berth serve exited ${code}: ${out}`)));
  });
}

/**
 * Deletes every container group the server still has (their containers outlive the server) and stops
 * it with SIGTERM, waiting for it to exit. A server that already exited is left as it is.
 */
export async function stopServeChild(child: ChildProcess | undefined, env: NodeJS.ProcessEnv): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const left = await runCli(['container', 'list', '--query', '[].[resourceGroup, name]', '-o', 'tsv'], env).catch(() => undefined);
  for (const line of left?.stdout.split('\n').filter(Boolean) ?? []) {
    const [rg, name] = line.split('\t');
    await runCli(['container', 'delete', '-g', rg!, '-n', name!, '--yes'], env);
  }
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}
