// Image references parse and normalise as docker's do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, formatReference } from '../src/oci/reference.js';

const D = 'sha256:' + 'a'.repeat(64);

test('short names normalise to Docker Hub library images', () => {
  assert.deepEqual(parseReference('busybox', { defaultTag: 'latest' }), { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
  assert.equal(formatReference(parseReference('busybox', { defaultTag: 'latest' })), 'docker.io/library/busybox:latest');
  assert.deepEqual(parseReference('org/app:1.2'), { registry: 'docker.io', repository: 'org/app', tag: '1.2' });
  assert.deepEqual(parseReference('index.docker.io/library/nginx'), { registry: 'docker.io', repository: 'library/nginx' });
});

test('hosts are recognised by a dot, a port or localhost', () => {
  assert.deepEqual(parseReference('localhost:5001/a/b@' + D), { registry: 'localhost:5001', repository: 'a/b', digest: D });
  assert.deepEqual(parseReference('myreg.azurecr.io/samples/nginx:v1'), { registry: 'myreg.azurecr.io', repository: 'samples/nginx', tag: 'v1' });
  assert.deepEqual(parseReference('localhost/app'), { registry: 'localhost', repository: 'app' });
  assert.deepEqual(parseReference('127.0.0.1:5000/x:y@' + D), { registry: '127.0.0.1:5000', repository: 'x', tag: 'y', digest: D });
  assert.deepEqual(parseReference('[::1]:5000/x'), { registry: '[::1]:5000', repository: 'x' });
});

test('each malformed form gets its own message', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /it is empty/],
    ['Busybox', /repository name must be lowercase/],
    ['a b', /white space/],
    ['https://host/x', /leave out the scheme/],
    ['host:5000/x:', /tag "" must be/],
    ['x:-bad', /tag "-bad" must be/],
    ['x@sha256:abc', /sha256 needs 64/],
    ['x@md5:' + 'a'.repeat(32), /unsupported algorithm "md5"/],
    ['host.io//x', /empty component/],
    ['host.io/x__-y', /path component "x__-y"/],
    ['host.io:99999/x', /port 99999 is out of range/],
    ['a/'.repeat(130) + 'b', /longer than 255/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseReference(input), re, input);
});
