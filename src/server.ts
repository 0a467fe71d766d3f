// The listeners. 'request' and 'upgrade' both enter the same pipeline; malformed requests that
// Node's parser refuses (CL+TE, obs-fold, bad chunking) get a JSON 400 and the connection closes.
import { randomUUID } from 'node:crypto';
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayContext } from './context.js';
import { errorBody } from './errors.js';
import { handleRequest } from './pipeline.js';

export function createPublicServer(ctx: GatewayContext): Server {
  const server = createServer({
    // Slowloris: a client gets 30 s to send its headers, and a request 5 minutes in all.
    headersTimeout: 30_000,
    requestTimeout: 300_000,
    keepAliveTimeout: 5_000,
    maxHeaderSize: 32 * 1024,
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handleRequest(ctx, req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    // Answers that are not a proxied 101 (challenges, errors) are written through an ordinary
    // response object on the upgrade's socket, then the connection closes.
    const res = new ServerResponse(req);
    res.assignSocket(socket as import('node:net').Socket);
    res.shouldKeepAlive = false;
    res.on('finish', () => socket.end());
    const isWebSocket = (req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket' && req.method === 'GET';
    // h2c and other upgrades are not proxied: the request is handled as plain HTTP without them.
    void handleRequest(ctx, req, res, isWebSocket ? { socket, head } : undefined);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = errorBody('BAD_REQUEST', status === 431 ? 'Request headers too large.' : 'The request is malformed.', randomUUID());
    socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  return server;
}
