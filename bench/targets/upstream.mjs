// The bench upstream: the fastest app we can write in Node. Every path answers 200 with a fixed
// 100-byte body (keep-alive), except `/api/me`, which plays the app's identity endpoint for
// stepgate (`identity.source: upstream`): cookie `sid=bench` is user `bench`, `sid=bench2` is
// user `bench2`, anything else is 401.
//
// Usage: node bench/targets/upstream.mjs   (prints `READY {"url":...}` once listening; exits when
// stdin closes or on SIGTERM, so it never outlives the bench runner)
import { createServer } from 'node:http';
import { serveUntilStopped } from '../lib/serve.mjs';

const BODY = Buffer.from('x'.repeat(99) + '\n'); // 100 bytes
const USERS = new Map([
  ['bench', JSON.stringify({ id: 'bench', email: 'bench@example.com' })],
  ['bench2', JSON.stringify({ id: 'bench2', email: 'bench2@example.com' })],
]);

const server = createServer((req, res) => {
  if (req.url === '/api/me') {
    const sid = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const user = sid ? USERS.get(sid) : undefined;
    res.writeHead(user ? 200 : 401, { 'content-type': 'application/json' });
    res.end(user ?? '{"error":"unauthenticated"}');
    return;
  }
  // Drain any request body, then answer.
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
// Proxies keep their upstream connections for a long time; do not make them reconnect.
server.keepAliveTimeout = 60_000;

serveUntilStopped(server);
