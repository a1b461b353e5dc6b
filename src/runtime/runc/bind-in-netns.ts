// One-shot helper run inside a network namespace (`nsenter --net=<ns> node bind-in-netns.js ADDR PORT`):
// listens on ADDR:PORT there and hands the listening socket to its parent over the IPC channel, then
// exits. The socket stays in that namespace, so whoever holds it accepts connections made there.
import net from 'node:net';

const [address, port] = process.argv.slice(2);
const server = net.createServer();
server.once('error', (e) => {
  process.stderr.write(`cannot listen on ${address}:${port}: ${e.message}\n`);
  process.exit(1);
});
server.listen(Number(port), address, () => {
  process.send!('listening', server, () => process.exit(0));
});
