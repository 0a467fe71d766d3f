// Baseline: the smallest reverse proxy built on http-proxy-3 (the maintained successor of
// node-http-proxy, what many Node gateways use), with a keep-alive agent towards the upstream so
// it is not penalised for reconnecting.
//
// Usage: UPSTREAM=http://127.0.0.1:PORT node bench/targets/http-proxy3.mjs
import { Agent, createServer } from 'node:http';
import { createProxyServer } from 'http-proxy-3';
import { serveUntilStopped } from '../lib/serve.mjs';

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

serveUntilStopped(server);
