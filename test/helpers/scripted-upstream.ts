// An upstream whose behaviour each test scripts (slow, resetting, a broken `/api/me`...), still
// recording what it saw like the recording upstream, plus the gateway.yaml that points a test
// gateway at it: `startTestGateway({ gatewayYaml: gatewayYamlFor(upstream.url) })`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SeenRequest } from './upstream.js';

export interface ScriptedUpstream {
  url: string;
  seen: SeenRequest[];
  /** Requests other than identity look-ups. */
  appRequests(): SeenRequest[];
  close(): Promise<void>;
}

/**
 * `handle` runs once the request line and headers arrived (the request is recorded then, with
 * whatever body arrives later appended), so a handler can hang, reset or answer slowly.
 */
export async function startScriptedUpstream(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<ScriptedUpstream> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const record: SeenRequest = { method: req.method!, url: req.url!, headers: req.headers, body: '' };
    seen.push(record);
    req.on('data', (c: Buffer) => (record.body += c.toString('utf8')));
    req.on('error', () => {});
    res.on('error', () => {});
    handle(req, res);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    appRequests: () => seen.filter((r) => !r.url.startsWith('/api/me')),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A JSON answer like the recording upstream's. */
export function answerJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The test gateway.yaml (as in helpers/gateway.ts) pointing at `upstreamUrl`, with a chosen upstream_timeout. */
export function gatewayYamlFor(upstreamUrl: string, upstreamTimeout = '2s') {
  return (_recordingUpstreamUrl: string, dataDir: string) => `listen: 127.0.0.1:0
upstream: ${upstreamUrl}
public_origin: http://localhost:8080
data_dir: ${dataDir}
admin_listen: 127.0.0.1:0
upstream_timeout: ${upstreamTimeout}
identity:
  source: upstream
  session_cookies: [sid]
  upstream: { path: /api/me, user_field: id, name_field: email, cache_ttl: 30s }
  credential_params: [access_token]
`;
}

/**
 * The recording upstream never closes the upstream side of an upgraded connection, and
 * `server.close()` waits for it. This makes each one close when the gateway closes it, and
 * returns a function that destroys any still open (call it before closing the gateway).
 */
export function closeUpgradesWithPeer(server: Server): () => void {
  const sockets = new Set<Duplex>();
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    sockets.add(socket);
    socket.on('end', () => socket.end());
    socket.on('close', () => sockets.delete(socket));
  });
  return () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
}
