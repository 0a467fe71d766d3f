// Baseline: the smallest correct reverse proxy built on an undici Pool (the same forwarding
// primitive stepgate uses): stream the request to the upstream, stream the answer back, drop
// hop-by-hop headers. No canonicalisation, no rules, no logging. This is what "a Node proxy costs"
// before stepgate adds anything.
//
// Usage: UPSTREAM=http://127.0.0.1:PORT node bench/targets/undici-proxy.mjs
import { createServer } from 'node:http';
import { Pool } from 'undici';
import { serveUntilStopped } from '../lib/serve.mjs';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);
const pool = new Pool(process.env.UPSTREAM, { connections: 256, keepAliveTimeout: 10_000, bodyTimeout: 0 });

function strip(headers) {
  const out = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { method: req.method, path: req.url, headers: strip(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers));
      return res;
    },
    (err) => {
      if (err && !res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway\n');
      } else if (err) res.destroy();
    },
  );
});

serveUntilStopped(server, () => pool.destroy());
