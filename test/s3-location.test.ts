// The S3 blob store's pure parts: the --blob-store URL, and how an upload session's size is read from its
// objects whatever write was cut short (no S3 server needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseS3Location } from '../src/storage/s3-location.js';
import { PartBuffer, segmentName, sessionState } from '../src/storage/s3-segments.js';

test('s3:// locations: bucket, prefix, endpoint, region, path style', () => {
  assert.deepEqual(parseS3Location('s3://blobs-1/berth/prod/?endpoint=http://127.0.0.1:7480&region=eu-west-1', {}),
    { bucket: 'blobs-1', prefix: 'berth/prod/', endpoint: 'http://127.0.0.1:7480', region: 'eu-west-1', pathStyle: true });
  assert.deepEqual(parseS3Location('s3://my.bucket', { AWS_REGION: 'us-west-2' }),
    { bucket: 'my.bucket', prefix: '', region: 'us-west-2', pathStyle: false });
  assert.equal(parseS3Location('s3://abc?endpoint=https://s3.example&path-style=false', {}).pathStyle, false);
  assert.equal(parseS3Location('s3://abc', {}).region, 'us-east-1');
  assert.equal(parseS3Location('s3://abc/a/../b', {}).prefix, 'b/', 'dot segments are resolved, never kept');
});

test('s3:// locations: mistakes are named, and a secret in the URL is never echoed', () => {
  const bad: Array<[string, RegExp]> = [
    ['http://bucket', /expected s3:\/\/BUCKET/],
    ['s3://AKIA123:topsecret@bucket', /credentials do not belong in the URL/],
    ['s3://bucket?endpoint=http://u:topsecret@host', /credentials do not belong in the endpoint/],
    ['s3://Bad_Bucket', /bucket name/],
    ['s3://ab', /bucket name/],
    ['s3://bucket?endpoint=ftp://host', /http:\/\/ or https:\/\//],
    ['s3://bucket?endpoint=notaurl', /http:\/\/ or https:\/\//],
    ['s3://bucket?secret=topsecret', /unknown parameter "secret"/],
    ['s3://bucket?path-style=yes', /path-style must be true or false/],
  ];
  for (const [input, re] of bad) {
    assert.throws(() => parseS3Location(input, {}), (e: Error) => re.test(e.message) && !e.message.includes('topsecret'), input);
  }
});

const P = 'uploads/u1/';
const obj = (name: string, size: number, modifiedAt = 1) => ({ name, size, modifiedAt });

test('an upload session is its marker plus the chain of segments from offset 0', () => {
  assert.equal(sessionState(P, { objects: [] }), undefined, 'no marker: no session');
  assert.equal(sessionState(P, { objects: [obj(segmentName(0), 10)] }), undefined, 'segments without a marker are leftovers');
  assert.deepEqual(sessionState(P, { objects: [obj('session', 0, 5)] }), { size: 0, segments: [], modifiedAt: 5 });
  const s = sessionState(P, { objects: [obj('session', 0, 1), obj(segmentName(8), 3, 9), obj(segmentName(0), 8, 2)] })!;
  assert.equal(s.size, 11);
  assert.deepEqual(s.segments.map((x) => [x.key, x.offset, x.size]), [[`${P}${segmentName(0)}`, 0, 8], [`${P}${segmentName(8)}`, 8, 3]]);
  assert.equal(s.modifiedAt, 9);
  // A segment past a gap (a write that never landed before it) does not count.
  assert.equal(sessionState(P, { objects: [obj('session', 0), obj(segmentName(0), 8), obj(segmentName(20), 4)] })!.size, 8);
  assert.equal(segmentName(123), 'seg-0000000000000123');
});

test('appended bytes are cut into part-sized pieces; the rest is flushed at the end', async () => {
  const flushed: Array<[number, string]> = [];
  const b = new PartBuffer(100, 4, async (at, bytes) => { flushed.push([at, bytes.toString()]); });
  await b.add(Buffer.from('ab'));
  await b.add(Buffer.from('cdefghij'));
  assert.deepEqual(flushed, [[100, 'abcd'], [104, 'efgh']]);
  assert.equal(b.pending, 2);
  await b.end();
  assert.deepEqual(flushed.at(-1), [108, 'ij']);
  await b.end();
  assert.equal(flushed.length, 3, 'nothing more to flush');
});
