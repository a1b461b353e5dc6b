// A stand-in for a `berth serve` process in runtime restart tests: creates one group with a published
// port, a metadata endpoint and two containers, prints "started" and waits to be killed with -9.
import { RuncRuntime } from '../../src/runtime/runc/runc-runtime.js';
import type { BuiltLayer } from '../../src/image/layer.js';
import { pulledImage } from './runtime-images.js';

const { dataDir, layer } = JSON.parse(process.argv[2]!) as { dataDir: string; layer: BuiltLayer };
const rt = new RuncRuntime({ dataDir });
const sb = await rt.createSandbox({
  groupId: 'g-killed',
  ports: [{ port: 80, protocol: 'TCP' }],
  identityEndpoint: async () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"access_token":"from-the-dead-server"}' }),
});
const image = pulledImage([layer], {});
const web = await rt.create(sb, { name: 'web', image, env: [], command: ['httpd', '-f', '-p', '80', '-h', '/www'] });
await rt.start(web);
const url = 'http://169.254.169.254/metadata/identity/oauth2/token?resource=x';
const client = await rt.create(sb, { name: 'client', image, env: [], command: ['sh', '-c', `echo before; while [ ! -e /go ]; do sleep 0.1; done; wget -q -O - --header 'Metadata: true' '${url}'`] });
await rt.start(client);
process.stdout.write(`started ${JSON.stringify(sb)}\n`);
setInterval(() => undefined, 1 << 30);
