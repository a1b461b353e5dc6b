// `--blob-store s3://bucket[/prefix]?endpoint=URL&region=R`: where the S3 blob store keeps its objects.
// Pure: no I/O. Credentials never come from here (a command line shows in `ps`): the AWS SDK's standard
// chain finds them (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, instance roles).
import { CodedError, type StorageErrorCode } from '../lib/errors.js';

export interface S3Location {
  bucket: string;
  /** Key prefix, empty or ending in '/'. */
  prefix: string;
  /** An S3-compatible endpoint (radosgw, MinIO, ...); AWS itself when absent. */
  endpoint?: string;
  region: string;
  /** Path-style addressing (http://host/bucket/key): on for a custom endpoint. */
  pathStyle: boolean;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PARAMS = new Set(['endpoint', 'region', 'path-style']);

export class S3LocationError extends CodedError<StorageErrorCode> {
  constructor(message: string) { super('InvalidS3Location', message); }
}

export function parseS3Location(input: string, env: NodeJS.ProcessEnv = process.env): S3Location {
  const usage = 'expected s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION';
  if (!input.startsWith('s3://')) throw new S3LocationError(`--blob-store: ${usage}`);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new S3LocationError(`--blob-store: not a URL; ${usage}`);
  }
  // Nothing of the URL is echoed back here: it may hold a secret someone put in by mistake.
  if (url.username || url.password) {
    throw new S3LocationError('--blob-store: credentials do not belong in the URL (a command line is visible to every user); '
      + 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or use ~/.aws/credentials');
  }
  const bucket = url.hostname;
  if (!BUCKET.test(bucket)) throw new S3LocationError('--blob-store: the bucket name must be 3 to 63 lowercase letters, digits, dots or hyphens');
  for (const k of url.searchParams.keys()) {
    if (!PARAMS.has(k)) throw new S3LocationError(`--blob-store: unknown parameter "${k.slice(0, 40)}" (known: ${[...PARAMS].join(', ')})`);
  }
  const endpoint = url.searchParams.get('endpoint') ?? undefined;
  if (endpoint !== undefined) {
    let e: URL;
    try {
      e = new URL(endpoint);
    } catch {
      throw new S3LocationError('--blob-store: endpoint must be an http:// or https:// URL');
    }
    if (e.protocol !== 'http:' && e.protocol !== 'https:') throw new S3LocationError('--blob-store: endpoint must be an http:// or https:// URL');
    if (e.username || e.password) throw new S3LocationError('--blob-store: credentials do not belong in the endpoint URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  }
  const region = url.searchParams.get('region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const ps = url.searchParams.get('path-style');
  if (ps !== null && ps !== 'true' && ps !== 'false') throw new S3LocationError('--blob-store: path-style must be true or false');
  const path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  if (path.split('/').some((p) => p === '.' || p === '..')) throw new S3LocationError('--blob-store: the prefix may not contain . or .. segments');
  return {
    bucket,
    prefix: path ? `${path}/` : '',
    ...(endpoint !== undefined ? { endpoint } : {}),
    region,
    pathStyle: ps !== null ? ps === 'true' : endpoint !== undefined,
  };
}
