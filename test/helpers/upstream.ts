// A recording upstream: a real HTTP server on an ephemeral loopback port that remembers every
// request it saw (method, exact target, headers, body), so tests can assert what the app did
// and — for attacks — did NOT receive. It also plays a tiny app: `/api/me` answers from a token
// table (cookie `sid` or `Authorization: Bearer`), and a WebSocket echo on any upgrade.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface RecordingUpstream {
  url: string;
  seen: SeenRequest[];
  /** session id or bearer token → user */
  sessions: Map<string, { id: string; email: string }>;
  /** Requests other than identity look-ups. */
  appRequests(): SeenRequest[];
  close(): Promise<void>;
  server: Server;
}

export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const seen: SeenRequest[] = [];
  const sessions = new Map<string, { id: string; email: string }>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.url === '/api/me') {
        const sid = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        const user = (sid && sessions.get(sid)) || (bearer && sessions.get(bearer));
        res.writeHead(user ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify(user ? { id: user.id, email: user.email } : { error: 'unauthenticated' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'upstream-set-this' });
      res.end(JSON.stringify({ ok: true, method: req.method, url: req.url }));
    });
  });
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: '' });
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    sessions,
    server,
    appRequests: () => seen.filter((r) => r.url !== '/api/me'),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
