// One BlobStore contract (test/helpers/blob-store-contract.ts), run against every implementation: the
// filesystem store, and the S3 store against a real radosgw (scripts/start-s3.sh) with a 5 MiB part size
// so that uploads span several parts. Without Ceph's packages the S3 cases skip and say why.
import { before, after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobStoreContract, type ContractBackend } from './helpers/blob-store-contract.js';
import { startTestS3, type TestS3 } from './helpers/s3.js';
import { FsBlobStore } from '../src/storage/fs-blob-store.js';
import { S3BlobStore } from '../src/storage/s3-blob-store.js';
import { parseS3Location } from '../src/storage/s3-location.js';

let fsDir = '';
let fsBackend: ContractBackend | undefined;
let s3: TestS3 | undefined;
let s3Backend: ContractBackend | string | undefined;
let bucket = '';
const s3Stores: S3BlobStore[] = [];

before(async () => {
  fsDir = await mkdtemp(join(tmpdir(), 'berth-contract-fs-'));
  const fsStore = new FsBlobStore(fsDir);
  await fsStore.init();
  fsBackend = {
    store: fsStore,
    replica: async () => { const r = new FsBlobStore(fsDir); await r.init(); return r; },
  };

  const started = await startTestS3();
  if (typeof started === 'string') {
    s3Backend = started;
    console.log(`# skipping the S3 blob store's contract: ${started}`);
    return;
  }
  s3 = started;
  Object.assign(process.env, s3.env);
  bucket = s3.bucketName();
  const location = parseS3Location(`s3://${bucket}/contract?endpoint=${encodeURIComponent(s3.endpoint)}`);
  const partSize = 5 * 1024 * 1024;
  const make = async () => {
    const s = new S3BlobStore(location, { partSize });
    s3Stores.push(s);
    await s.init();
    return s;
  };
  s3Backend = { store: await make(), replica: make, partSize };
});

after(async () => {
  for (const s of s3Stores) s.close();
  if (bucket) await s3?.removeBucket(bucket);
  await s3?.stop();
  if (fsDir) await rm(fsDir, { recursive: true, force: true });
});

blobStoreContract('fs', () => fsBackend);
blobStoreContract('s3', () => s3Backend);
