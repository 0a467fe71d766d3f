// Baseline: the smallest correct reverse proxy built on an undici Pool (the same forwarding
// primitive stepgate uses): stream the request to the upstream, stream the answer back, drop
// hop-by-hop headers. No canonicalisation, no rules, no logging. This is what "a Node proxy costs"
// before stepgate adds anything.
//
// With SPEC_HEADERS=1 it also sends the four headers SPEC §6 requires on every forwarded request
// (X-Forwarded-For from the peer, X-Forwarded-Proto and -Host, a random X-Request-Id): the same
// work on the wire as stepgate's not-gated path, for bench/instructions.mjs.
//
// Usage: UPSTREAM=http://127.0.0.1:PORT [SPEC_HEADERS=1] node bench/targets/undici-proxy.mjs
import { randomUUID } from 'node:crypto';
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

const requestHeaders =
  process.env.SPEC_HEADERS === '1'
    ? (req) => {
        const out = strip(req.headers);
        out['x-forwarded-for'] = req.socket.remoteAddress;
        out['x-forwarded-proto'] = 'http';
        out['x-forwarded-host'] = 'localhost:8080';
        out['x-request-id'] = randomUUID();
        return out;
      }
    : (req) => strip(req.headers);

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { method: req.method, path: req.url, headers: requestHeaders(req), body: hasBody ? req : null },
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
