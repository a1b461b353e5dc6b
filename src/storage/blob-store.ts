// Content-addressed blob storage. A digest becomes visible only after its bytes were verified and
// atomically moved into place; upload sessions are staged apart from committed content.
import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import { CodedError, type StorageErrorCode } from '../lib/errors.js';

export interface BlobInfo {
  size: number;
  /** When the blob was committed (ms since epoch); GC keeps young blobs. */
  modifiedAt: number;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface BlobStore {
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Streams the blob, or a byte range of it. The caller has checked that it exists. */
  open(digest: Digest, range?: ByteRange): Readable;
  /**
   * Optional: writes the blob, or a byte range of it, to `out` (not ending it), reusing its buffers, where
   * open() hands out a fresh buffer per chunk. So `out` must be done with a chunk when its write callback
   * runs (a socket or an HTTP response is; a PassThrough whose reader keeps chunks is not). Resolves
   * when `out` has every byte or has closed. The caller has checked that the blob exists.
   */
  sendTo?(digest: Digest, out: Writable, range?: ByteRange): Promise<void>;
  delete(digest: Digest): Promise<void>;
  /** Every committed digest (for garbage collection). */
  list(): AsyncIterable<Digest>;

  /** Starts a new, empty upload session. Throws StorageFullError when the data disk is at its reserve. */
  startUpload(id: string): Promise<void>;
  /** Bytes received so far by an upload session, or undefined if no such session exists. */
  uploadSize(id: string): Promise<number | undefined>;
  /**
   * Appends a stream at `offset`, which must equal the session's current size. Returns the new size.
   * Bytes already written stay if the stream fails midway, so a client may resume from uploadSize().
   * When the data would cross the disk's reserve, or the disk is full, the session's bytes are removed
   * and StorageFullError is thrown (the caller ends the session).
   */
  appendUpload(id: string, offset: number, body: Readable, maxBytes?: number): Promise<number>;
  /**
   * Verifies that the session's bytes hash to `digest` and moves them into place. Throws
   * DigestMismatchError (and keeps nothing) when they do not, StorageFullError (and keeps nothing)
   * when the disk is full.
   */
  commitUpload(id: string, digest: Digest): Promise<BlobInfo>;
  abortUpload(id: string): Promise<void>;
  /** Upload sessions on disk with their last-modified time, to expire abandoned ones. */
  listUploads(): AsyncIterable<{ id: string; modifiedAt: number }>;
}

export class DigestMismatchError extends CodedError<StorageErrorCode> {
  constructor(readonly expected: Digest, readonly actual: Digest) {
    super('DigestMismatch', `content does not match digest ${expected} (computed ${actual})`);
  }
}

export class UploadOffsetError extends CodedError<StorageErrorCode> {
  constructor(readonly expected: number, readonly got: number) {
    super('UploadOffset', `upload is at offset ${expected}, not ${got}`);
  }
}

export class UploadTooLargeError extends CodedError<StorageErrorCode> {
  constructor(message: string) { super('UploadTooLarge', message); }
}

export { StorageFullError } from './disk-space.js';
