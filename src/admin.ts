// The admin listener (never the public one): Prometheus metrics, liveness and readiness.
import { createServer, type Server } from 'node:http';
import type { GatewayContext } from './context.js';

export interface AdminState {
  /** Set once shutdown began: /readyz answers 503 so no new traffic is sent here. */
  shuttingDown: boolean;
}

export function createAdminServer(ctx: GatewayContext, state: AdminState): Server {
  return createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return reply(200, { status: 'ok' });
    if (path === '/metrics') {
      ctx.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType, 'cache-control': 'no-store' });
          res.end(text);
        },
        () => reply(500, { code: 'INTERNAL', message: 'metrics failed' }),
      );
      return;
    }
    if (path === '/readyz') {
      if (state.shuttingDown) return reply(503, { status: 'shutting down' });
      ctx.store.ping().then(
        () => reply(200, { status: 'ready', rules: ctx.routes.rules.ruleCount }),
        () => reply(503, { status: 'store unreachable' }),
      );
      return;
    }
    reply(404, { code: 'NOT_FOUND', message: 'Not found.' });
  });
}
