// A BlobStore in an S3-compatible bucket (AWS S3, Ceph radosgw, ...), for several Berth replicas sharing
// one store. Committed blobs are objects <prefix>blobs/<alg>/<hex>; upload sessions are plain objects
// under <prefix>uploads/<id>/ (./s3-segments.ts), so an upload started on one replica continues and
// completes on another. Bytes are hashed as they stream in and held only one part (8 MiB by default) at a
// time; a commit checks the digest (re-reading the session's objects when this process did not see every
// byte), then assembles the blob under its digest with server-side copies: one CopyObject, or a multipart
// upload of UploadPartCopy parts for a blob of several segments. The object appears under its digest
// only when that copy completes, so no partial blob is ever visible.
import { PassThrough, Writable, finished, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Hash } from 'node:crypto';
import {
  S3Client, CopyObjectCommand, CreateMultipartUploadCommand, UploadPartCopyCommand, CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand,
  HeadBucketCommand, CreateBucketCommand, ListObjectsV2Command, PutObjectCommand,
} from '@aws-sdk/client-s3';
import { digestAlgorithm, digestHex, hasherDigest, newHasher, parseDigest, type Digest, type DigestAlgorithm } from '../oci/digest.js';
import {
  DigestMismatchError, UploadOffsetError, UploadTooLargeError,
  type BlobInfo, type BlobStore, type ByteRange,
} from './blob-store.js';
import type { S3Location } from './s3-location.js';
import { PartBuffer, segmentName, sessionState, type SessionState } from './s3-segments.js';

// The SDK warns on every start under Node 20 that releases after January 2027 will need Node 22; Berth
// targets Node 20 and pins a release that supports it (package.json), so the warning would only confuse.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last part of a multipart upload). */
const MIN_PART = 5 * MiB;
const UPLOAD_ID = /^[A-Za-z0-9_-]{8,64}$/;
/** Server-side part copies in flight during one commit. */
const COPY_CONCURRENCY = 4;

export interface S3BlobStoreOptions {
  /** Bytes per stored segment and per copied part: at least 5 MiB (S3's minimum part). Default 8 MiB. */
  partSize?: number;
  /** Create the bucket at init when it does not exist (default true). */
  createBucket?: boolean;
  /** A client to use instead of one built from the location (tests). */
  client?: S3Client;
}

interface HashState {
  hash: Hash;
  offset: number;
}

export class S3BlobStore implements BlobStore {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly createBucket: boolean;
  /** Running sha256 of the sessions this process appended to, so a commit need not re-read them. */
  private readonly hashes = new Map<string, HashState>();
  /** Serialises appends per session within this process. */
  private readonly busy = new Set<string>();

  constructor(private readonly location: S3Location, opts: S3BlobStoreOptions = {}) {
    this.partSize = opts.partSize ?? 8 * MiB;
    if (this.partSize < MIN_PART) throw new Error(`S3 part size must be at least ${MIN_PART} bytes`);
    this.bucket = location.bucket;
    this.prefix = location.prefix;
    this.createBucket = opts.createBucket ?? true;
    this.s3 = opts.client ?? new S3Client({
      region: location.region,
      ...(location.endpoint ? { endpoint: location.endpoint } : {}),
      forcePathStyle: location.pathStyle,
      // Berth checks every byte by its digest; S3-compatible servers differ in which of the SDK's newer
      // default checksums (CRC32 trailers) they accept.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** Where blobs go, for messages (no credentials in it). */
  describe(): string {
    return `s3://${this.bucket}/${this.prefix}${this.location.endpoint ? ` at ${this.location.endpoint}` : ''}`;
  }

  async init(): Promise<void> {
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (e) {
      if (!this.createBucket || httpStatus(e) !== 404) throw this.unreachable(e);
    }
    try {
      await this.s3.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      const name = (e as Error).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw this.unreachable(e);
    }
  }

  private unreachable(e: unknown): Error {
    const status = httpStatus(e);
    const why = status === 403 ? 'access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS credential chain)'
      : (e as Error).name === 'CredentialsProviderError' ? 'no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure ~/.aws'
        : status ? `${(e as Error).name} (HTTP ${status}): ${(e as Error).message}`
          : `cannot reach it (${(e as Error).message})`;
    return new Error(`blob store ${this.describe()}: ${why}`);
  }

  private blobKey(d: Digest): string {
    return `${this.prefix}blobs/${digestAlgorithm(d)}/${digestHex(d)}`;
  }

  private sessionPrefix(id: string): string {
    if (!UPLOAD_ID.test(id)) throw new Error('invalid upload id');
    return `${this.prefix}uploads/${id}/`;
  }

  async stat(d: Digest): Promise<BlobInfo | undefined> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(d) }));
      return { size: r.ContentLength ?? 0, modifiedAt: r.LastModified?.getTime() ?? Date.now() };
    } catch (e) {
      if (httpStatus(e) === 404) return undefined;
      throw e;
    }
  }

  open(d: Digest, range?: ByteRange): Readable {
    return this.readObject(this.blobKey(d), range);
  }

  /** Streams an object (or a range of it) through a PassThrough, so the caller gets a stream at once. */
  private readObject(key: string, range?: ByteRange): Readable {
    const out = new PassThrough({ highWaterMark: MiB });
    const abort = new AbortController();
    out.on('close', () => abort.abort());
    void (async () => {
      const r = await this.s3.send(new GetObjectCommand({
        Bucket: this.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
      }), { abortSignal: abort.signal });
      await pipeline(r.Body as Readable, out);
    })().catch((e: Error) => { if (!out.destroyed) out.destroy(e); });
    return out;
  }

  async delete(d: Digest): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.blobKey(d) }));
  }

  async *list(): AsyncIterable<Digest> {
    const base = `${this.prefix}blobs/`;
    for await (const o of this.objects(base)) {
      try {
        const [alg, hex] = o.key.slice(base.length).split('/');
        yield parseDigest(`${alg}:${hex}`);
      } catch {
        // Not a digest: GC leaves it alone.
      }
    }
  }

  private async *objects(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: number }> {
    let token: string | undefined;
    do {
      const r = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of r.Contents ?? []) {
        if (o.Key) yield { key: o.Key, size: o.Size ?? 0, modifiedAt: o.LastModified?.getTime() ?? 0 };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  private async session(id: string): Promise<SessionState | undefined> {
    const p = this.sessionPrefix(id);
    const objects: { name: string; size: number; modifiedAt: number }[] = [];
    for await (const o of this.objects(p)) objects.push({ name: o.key.slice(p.length), size: o.size, modifiedAt: o.modifiedAt });
    return sessionState(p, { objects });
  }

  async startUpload(id: string): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: `${this.sessionPrefix(id)}session`, Body: Buffer.alloc(0), ContentLength: 0 }));
    this.hashes.set(id, { hash: newHasher('sha256'), offset: 0 });
  }

  async uploadSize(id: string): Promise<number | undefined> {
    return (await this.session(id))?.size;
  }

  async appendUpload(id: string, offset: number, body: Readable, maxBytes = Number.MAX_SAFE_INTEGER): Promise<number> {
    if (this.busy.has(id)) throw new UploadOffsetError(-1, offset);
    this.busy.add(id);
    try {
      const state = await this.session(id);
      if (!state) throw Object.assign(new Error('upload unknown'), { code: 'ENOENT' });
      if (state.size !== offset) throw new UploadOffsetError(state.size, offset);
      let hs = this.hashes.get(id);
      if (!hs || hs.offset !== state.size) {
        hs = { hash: await this.hashSession(state, 'sha256'), offset: state.size };
        this.hashes.set(id, hs);
      }
      const prefix = this.sessionPrefix(id);
      const last = state.segments.at(-1);
      const continues = last !== undefined && last.size < this.partSize;
      const parts = new PartBuffer(continues ? last.offset : state.size, this.partSize, async (at, bytes) => {
        await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: prefix + segmentName(at), Body: bytes, ContentLength: bytes.length }));
      });
      // A short last segment is rewritten with the new bytes behind it (at most one part is held).
      if (continues) await parts.add(await this.readAll(last.key));
      let added = 0;
      /** Bytes handed to the part buffer (received whole), and its write still under way, if any. */
      let received = 0;
      let inflight: Promise<void> | undefined;
      const st = hs;
      const sink = new Writable({
        highWaterMark: MiB,
        write(chunk: Buffer, _enc, cb) {
          if (received + chunk.length > maxBytes) {
            cb(new UploadTooLargeError(`chunk exceeds ${maxBytes} bytes`));
            return;
          }
          received += chunk.length;
          inflight = parts.add(chunk).then(() => {
            added += chunk.length;
            st.hash.update(chunk);
            st.offset += chunk.length;
            cb();
          }, (e: Error) => { cb(e); });
        },
      });
      // Piped, not a pipeline: a refused chunk must not destroy the request (its connection carries the
      // answer); the caller drains what is left.
      const stopWatching = finished(body, (err) => { if (err) sink.destroy(err); });
      const writing = new Promise<void>((res, rej) => {
        sink.on('finish', res);
        sink.on('error', rej);
      });
      body.pipe(sink);
      try {
        await writing;
        if (added > 0) await parts.end();
      } catch (e) {
        // Whatever arrived whole is kept (resumable from uploadSize()): once a part write under way has
        // settled, the buffer holds exactly the received bytes not stored yet. The running hash may be
        // ahead of what is stored, so it is forgotten and rebuilt on next use.
        this.hashes.delete(id);
        await inflight;
        if (received > 0) await parts.end().catch(() => undefined);
        throw e;
      } finally {
        body.unpipe(sink);
        stopWatching();
      }
      return state.size + added;
    } finally {
      this.busy.delete(id);
    }
  }

  private async readAll(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.readObject(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** Hashes a session's stored bytes, streaming them back segment by segment. */
  private async hashSession(state: SessionState, alg: DigestAlgorithm): Promise<Hash> {
    const h = newHasher(alg);
    for (const s of state.segments) {
      for await (const c of this.readObject(s.key)) h.update(c as Buffer);
    }
    return h;
  }

  async commitUpload(id: string, digest: Digest): Promise<BlobInfo> {
    const state = await this.session(id);
    if (!state) throw Object.assign(new Error('upload unknown'), { code: 'ENOENT' });
    const alg = digestAlgorithm(digest);
    const hs = this.hashes.get(id);
    const actual = alg === 'sha256' && hs && hs.offset === state.size
      ? hasherDigest(hs.hash, 'sha256')
      : hasherDigest(await this.hashSession(state, alg), alg);
    this.hashes.delete(id);
    if (actual !== digest) {
      await this.abortUpload(id);
      throw new DigestMismatchError(digest, actual);
    }
    // Identical content is stored once: a blob already there is the same bytes.
    if (!(await this.stat(digest))) await this.assemble(state, this.blobKey(digest));
    await this.abortUpload(id);
    const info = await this.stat(digest);
    if (!info) throw new Error(`blob ${digest} vanished right after it was stored in ${this.describe()}`);
    return info;
  }

  /** Writes the session's segments as one object at `key`, server-side. */
  private async assemble(state: SessionState, key: string): Promise<void> {
    const source = (k: string) => `${this.bucket}/${k.split('/').map(encodeURIComponent).join('/')}`;
    if (state.segments.length === 0) {
      await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0 }));
      return;
    }
    if (state.segments.length === 1) {
      await this.s3.send(new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: source(state.segments[0]!.key) }));
      return;
    }
    const mp = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }));
    const uploadId = mp.UploadId!;
    try {
      const parts: { ETag: string; PartNumber: number }[] = new Array(state.segments.length);
      // A few copies at a time: the server copies the bytes, so a large blob's commit is bound by it.
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < state.segments.length; i = next++) {
          const r = await this.s3.send(new UploadPartCopyCommand({
            Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, CopySource: source(state.segments[i]!.key),
          }));
          parts[i] = { ETag: r.CopyPartResult!.ETag!, PartNumber: i + 1 };
        }
      };
      await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, state.segments.length) }, worker));
      await this.s3.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    } catch (e) {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      throw e;
    }
  }

  async abortUpload(id: string): Promise<void> {
    this.hashes.delete(id);
    const keys: string[] = [];
    for await (const o of this.objects(this.sessionPrefix(id))) keys.push(o.key);
    // The marker last: a session is gone only when nothing of it is left.
    keys.sort((a, b) => Number(a.endsWith('/session')) - Number(b.endsWith('/session')));
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (batch.length === 1) {
        await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: batch[0] }));
      } else {
        await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      }
    }
  }

  async *listUploads(): AsyncIterable<{ id: string; modifiedAt: number }> {
    const base = `${this.prefix}uploads/`;
    let current: { id: string; modifiedAt: number } | undefined;
    for await (const o of this.objects(base)) {
      const id = o.key.slice(base.length).split('/')[0]!;
      if (current && current.id !== id) yield current;
      if (!current || current.id !== id) current = { id, modifiedAt: 0 };
      current.modifiedAt = Math.max(current.modifiedAt, o.modifiedAt);
    }
    if (current) yield current;
  }

  close(): void {
    this.s3.destroy();
  }
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}
