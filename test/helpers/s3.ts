// radosgw for tests: scripts/start-s3.sh on a data directory of the test run's own, with a deadline. A
// machine without Ceph's packages gets the reason instead (the test then skips and prints it).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { REPO_ROOT } from './berth.js';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'scripts', 'start-s3.sh');

export interface TestS3 {
  endpoint: string;
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; AWS_REGION: string };
  /** A fresh bucket name for one test file. */
  bucketName(): string;
  /** Removes a bucket and everything in it (radosgw-admin), so test runs do not pile up data. */
  removeBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** Kept across test files of one machine (a second start finds it running or restarts it on its data). */
const DIR = process.env.BERTH_TEST_S3_DIR ?? join(tmpdir(), 'berth-test-s3');
const ENV = { BERTH_S3_DIR: DIR, BERTH_S3_PORT: process.env.BERTH_TEST_S3_PORT ?? '17490', BERTH_S3_MON_PORT: process.env.BERTH_TEST_S3_MON_PORT ?? '16790' };

export async function startTestS3(): Promise<TestS3 | string> {
  try {
    await run('sh', ['-c', 'command -v radosgw && command -v ceph-mon && command -v ceph-osd']);
  } catch {
    return 'radosgw, ceph-mon or ceph-osd is not installed (apt-get install ceph-mon ceph-osd radosgw, or scripts/install.sh)';
  }
  let out: string;
  try {
    ({ stdout: out } = await run('bash', [SCRIPT], { env: { ...process.env, ...ENV, BERTH_S3_START_TIMEOUT: '180' }, timeout: 240_000 }));
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`scripts/start-s3.sh failed: ${err.stderr?.trim() || err.message}`);
  }
  const vars = Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  for (const k of ['BERTH_S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
    if (!vars[k]) throw new Error(`scripts/start-s3.sh printed no ${k}`);
  }
  return {
    endpoint: vars.BERTH_S3_ENDPOINT!,
    env: { AWS_ACCESS_KEY_ID: vars.AWS_ACCESS_KEY_ID!, AWS_SECRET_ACCESS_KEY: vars.AWS_SECRET_ACCESS_KEY!, AWS_REGION: vars.AWS_REGION ?? 'us-east-1' },
    bucketName: () => `berth-test-${randomBytes(5).toString('hex')}`,
    removeBucket: async (name: string) => {
      await run('radosgw-admin', ['-c', join(DIR, 'ceph.conf'), 'bucket', 'rm', `--bucket=${name}`, '--purge-objects'], { timeout: 60_000 })
        .catch(() => undefined);
    },
    stop: async () => { await run('bash', [SCRIPT, 'stop'], { env: { ...process.env, ...ENV }, timeout: 60_000 }); },
  };
}
