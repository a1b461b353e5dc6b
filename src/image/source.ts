// What `berth image push` reads from: an image with a root descriptor (manifest or index) and a way
// to open every blob and manifest below it. Three kinds of input build one of these.
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/manifest.js';
import { CodedError, type ImageErrorCode } from '../lib/errors.js';

export type ImageSourceKind = 'rootfs' | 'oci-layout' | 'oci-archive' | 'docker-archive';

export interface ImageSource {
  kind: ImageSourceKind;
  /** The manifest or index to push under the target tag. */
  root: Descriptor;
  /** Reads a manifest or index (small) by descriptor. */
  readManifest(d: Descriptor): Promise<Buffer>;
  /** Streams a blob's bytes. */
  openBlob(d: Descriptor): Readable;
  /** Removes any temporary files the source made. */
  close(): Promise<void>;
}

export class ImageSourceError extends CodedError<ImageErrorCode> {
  constructor(message: string) { super('InvalidImageSource', message); }
}
