// Picks the identity source named by `identity.source`.
import type { Dispatcher } from 'undici';
import type { GatewayConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { HeaderIdentitySource } from './header.js';
import { JwtIdentitySource } from './jwt.js';
import type { IdentitySource } from './types.js';
import { UpstreamIdentitySource } from './upstream.js';

export async function createIdentitySource(cfg: GatewayConfig, upstream: Dispatcher, clock: Clock, env: NodeJS.ProcessEnv): Promise<IdentitySource> {
  switch (cfg.identity.source) {
    case 'upstream':
      return new UpstreamIdentitySource(cfg.identity.upstream, cfg.identity.sessionCookies, upstream, clock);
    case 'header':
      return new HeaderIdentitySource(cfg.identity.header);
    case 'jwt':
      return JwtIdentitySource.create(cfg.identity.jwt, env, clock);
  }
}
