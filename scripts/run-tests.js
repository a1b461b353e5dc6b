// Runs every compiled test file with node's test runner (Node 20's `node --test DIR` finds no files
// by itself), so CI reads node's own summary. With BERTH_NO_SKIPS=1 (.ci/run sets it) a run in which
// any test skipped fails: on CI every peer (runc, skopeo, podman, chromium, az, ...) is installed, so a
// skip means a test silently did not run.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const dir = join(import.meta.dirname, '..', 'dist', 'test');
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => join(dir, f));
if (files.length === 0) {
  console.error('no test files found in dist/test');
  process.exit(1);
}
// Every test gets a deadline (a regression must fail, not hang CI): 10 minutes unless it sets its own.
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=600000', ...files], { stdio: ['inherit', 'pipe', 'inherit'] });
let tail = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  tail = (tail + d.toString()).slice(-4096);
});
child.on('close', (code) => {
  const skipped = Number(/^# skipped (\d+)$/m.exec(tail)?.[1] ?? 0);
  if (process.env.BERTH_NO_SKIPS === '1' && skipped > 0) {
    console.error(`run-tests: ${skipped} test(s) skipped (see the "# skipping" lines above): on CI every peer is installed, so this run fails`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
