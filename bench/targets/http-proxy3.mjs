// Baseline: the smallest reverse proxy built on http-proxy-3 (the maintained successor of
// node-http-proxy, what many Node gateways use), with a keep-alive agent towards the upstream so
// it is not penalised for reconnecting.
//
// Usage: UPSTREAM=http://127.0.0.1:PORT node bench/targets/http-proxy3.mjs
import { Agent, createServer } from 'node:http';
import { createProxyServer } from 'http-proxy-3';

const proxy = createProxyServer({
  target: process.env.UPSTREAM,
  agent: new Agent({ keepAlive: true, maxSockets: 256 }),
  xfwd: false,
});
proxy.on('error', (_err, _req, res) => {
  if (res && typeof res.writeHead === 'function' && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway\n');
  }
});

const server = createServer((req, res) => proxy.web(req, res));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`READY ${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
