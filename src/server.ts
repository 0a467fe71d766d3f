// The public listener. 'request', 'upgrade' and 'connect' all enter the same pipeline; malformed
// requests that Node's parser refuses (CL+TE, obs-fold, bad chunking) get a JSON 400 and the
// connection closes.
import { randomUUID } from 'node:crypto';
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { GatewayContext } from './context.js';
import { errorBody } from './errors.js';
import { handleRequest } from './pipeline.js';

export interface PublicServer {
  server: Server;
  /**
   * Sockets taken over by an upgrade or CONNECT: Node no longer manages them, and server.close()
   * waits for them, so shutdown must end them itself.
   */
  detached: Set<Duplex>;
}

export function createPublicServer(ctx: GatewayContext): PublicServer {
  const detached = new Set<Duplex>();
  const server = createServer({
    // Slowloris: a client gets 30 s to send its headers, and a request 5 minutes in all.
    headersTimeout: 30_000,
    requestTimeout: 300_000,
    keepAliveTimeout: 5_000,
    maxHeaderSize: 32 * 1024,
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handleRequest(ctx, req, res);
  });
  /** Answers (challenges, errors) that are not a proxied 101 go through an ordinary response on the socket. */
  const responseOn = (req: IncomingMessage, socket: Duplex): ServerResponse => {
    detached.add(socket);
    socket.once('close', () => detached.delete(socket));
    socket.on('error', () => socket.destroy());
    const res = new ServerResponse(req);
    res.assignSocket(socket as Socket);
    res.shouldKeepAlive = false;
    res.on('finish', () => socket.end());
    return res;
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const res = responseOn(req, socket);
    const isWebSocket = (req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket' && req.method === 'GET';
    // h2c and other upgrades are not proxied: the request is handled as plain HTTP without them.
    handleRequest(ctx, req, res, isWebSocket ? { socket, head } : undefined);
  });
  // Without this listener Node drops CONNECT silently; the pipeline answers 405 (SPEC §6).
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    handleRequest(ctx, req, responseOn(req, socket));
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
  return { server, detached };
}
