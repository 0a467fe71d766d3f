// Everything a request handler needs, built once at start-up. `routes` is swapped whole on reload
// (SPEC §9.10: a bad file never half-applies), so a request reads it once and uses that snapshot.
import type { GatewayConfig, RoutesConfig } from './config/types.js';
import type { Clock } from './clock.js';
import type { Secrets } from './crypto/secrets.js';
import type { GrantCache } from './grants/cache.js';
import type { FactorTypesCache } from './grants/factor-types.js';
import type { IdentitySource } from './identity/types.js';
import type { TicketIssuer } from './stepup/ticket.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Forwarder } from './proxy/forward.js';
import type { HeaderPolicy } from './proxy/headers.js';
import type { CompiledRules } from './rules/match.js';
import type { Store } from './store/store.js';

export interface RouteTable {
  cfg: RoutesConfig;
  rules: CompiledRules;
  /** Every method some rule names, plus POST: what a `_method` we could not read might have said. */
  possibleMethods: readonly string[];
}

export interface GatewayContext {
  cfg: GatewayConfig;
  routes: RouteTable;
  store: Store;
  /** The hot path's grant reads (see grants/cache.ts for what a cached grant may decide). */
  grants: GrantCache;
  /** The factor types a challenge offers (see grants/factor-types.ts). */
  factorTypes: FactorTypesCache;
  /** Challenge tickets (sealed; a session's unspent one is reissued for a few seconds). */
  tickets: TicketIssuer;
  secrets: Secrets;
  identity: IdentitySource;
  forwarder: Forwarder;
  headerPolicy: HeaderPolicy;
  log: Logger;
  clock: Clock;
  metrics: Metrics;
}
