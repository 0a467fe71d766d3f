// Assembling a running gateway from validated config: secrets → store → upstream pool → identity
// → listeners. Used by `stepgate start`, the demo and the tests (which pass a clock and a logger).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminServer, type AdminState } from './admin.js';
import { systemClock, type Clock } from './clock.js';
import type { GatewayConfig, HostPort } from './config/types.js';
import type { GatewayContext, RouteTable } from './context.js';
import { loadSecrets } from './crypto/secrets.js';
import { GrantCache } from './grants/cache.js';
import { FactorTypesCache } from './grants/factor-types.js';
import { createIdentitySource } from './identity/index.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { UpstreamIdentitySource } from './identity/upstream.js';
import { addressSet } from './net/cidr.js';
import { Forwarder } from './proxy/forward.js';
import { createPublicServer } from './server.js';
import { TicketIssuer } from './stepup/ticket.js';
import { openStore } from './store/open.js';

const SWEEP_INTERVAL_MS = 60_000;
/** SIGTERM: in-flight requests get this long to finish before connections are cut. */
const DRAIN_TIMEOUT_MS = 10_000;

export interface GatewayOptions {
  cfg: GatewayConfig;
  routes: RouteTable;
  clock?: Clock;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface RunningGateway {
  ctx: GatewayContext;
  /** http://host:port of the public listener (the real port when 0 was asked for). */
  url: string;
  adminUrl: string | null;
  close(): Promise<void>;
}

function listen(server: Server, at: HostPort): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve(`http://${host}:${addr.port}`);
    });
  });
}

export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const { cfg } = opts;
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger();
  const secrets = loadSecrets(cfg.dataDir, env);
  const opened = await openStore(cfg, env, { exclusive: true, log });
  const store = opened.store;
  // With PostgreSQL every instance measures expiry on the database's clock (SPEC §10).
  const clock = opts.clock ?? opened.clock ?? systemClock;
  const metrics = new Metrics();
  const forwarder = new Forwarder(cfg.upstream, cfg.upstreamTimeoutMs, log, (startedAt) => metrics.upstreamAnswered(startedAt));
  const identity = await createIdentitySource(cfg, forwarder.dispatcher, clock, env);
  if (identity instanceof UpstreamIdentitySource) metrics.trackIdentityCache(identity.stats);
  const origin = new URL(cfg.publicOrigin);
  const ctx: GatewayContext = {
    cfg,
    routes: opts.routes,
    store,
    grants: new GrantCache(store, cfg.grantCacheTtlMs, clock),
    factorTypes: new FactorTypesCache(store, cfg.grantCacheTtlMs, clock),
    tickets: new TicketIssuer(secrets, clock),
    secrets,
    identity,
    forwarder,
    headerPolicy: {
      trustProxy: addressSet(cfg.trustProxy),
      identityHeader: cfg.identity.header.user,
      identityTrusted: addressSet(cfg.identity.source === 'header' ? cfg.identity.header.trustedProxies : []),
      forwardedProto: origin.protocol.slice(0, -1),
      forwardedHost: origin.host,
    },
    log,
    clock,
    metrics,
  };
  const adminState: AdminState = { shuttingDown: false };
  const { server, detached } = createPublicServer(ctx);
  const admin = cfg.adminListen ? createAdminServer(ctx, adminState) : null;
  let url: string;
  let adminUrl: string | null = null;
  try {
    url = await listen(server, cfg.listen);
    if (admin && cfg.adminListen) adminUrl = await listen(admin, cfg.adminListen);
  } catch (err) {
    server.close();
    await forwarder.close();
    await store.close();
    throw err;
  }
  const sweeper = setInterval(() => {
    store.sweep(clock.now()).catch((err: Error) => log.warn({ err: err.message }, 'store sweep failed'));
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      adminState.shuttingDown = true;
      clearInterval(sweeper);
      // Stop accepting; idle keep-alive connections go now, busy ones when their request ends.
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      // WebSockets are not requests that finish: tell them goodbye now (close frame 1001).
      forwarder.closeWebSockets();
      // A connection busy now turns idle (keep-alive) when its request ends: close those as they come.
      const idleCloser = setInterval(() => server.closeIdleConnections(), 100);
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of detached) socket.destroy();
      }, DRAIN_TIMEOUT_MS);
      await drained;
      clearInterval(idleCloser);
      clearTimeout(timer);
      if (admin) await new Promise<void>((resolve) => admin.close(() => resolve()));
      await forwarder.close();
      await store.close();
    })());
  log.info({ url, adminUrl, upstream: cfg.upstream, rules: opts.routes.rules.ruleCount, store: cfg.store === 'postgres' ? `postgres ${opened.where}` : 'sqlite' }, 'stepgate listening');
  return { ctx, url, adminUrl, close };
}
