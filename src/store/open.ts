// Opens the store gateway.yaml selects (SPEC §1, §10): SQLite in data_dir (one instance), or the
// shared PostgreSQL database named by STEPGATE_STORE (several instances), created or upgraded to
// this version's schema. Used by `stepgate start`, `migrate`, `users` and `audit`.
import type { Clock } from '../clock.js';
import type { GatewayConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { DatabaseClock } from './db-clock.js';
import { PostgresStore, describeError, type PostgresStoreOptions } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import { SchemaTooNewError, StoreUnavailableError, type Store } from './store.js';

export interface OpenStoreOptions {
  /** SQLite: refuse a second gateway on the same data_dir (CLI commands pass false). */
  exclusive: boolean;
  log?: Logger;
  /** Tests: a shorter per-call budget than the 5 s of SPEC §10. */
  postgres?: Pick<PostgresStoreOptions, 'timeoutMs' | 'maxConnections'>;
}

export interface OpenedStore {
  store: Store;
  /** With PostgreSQL, the database's clock (SPEC §10: expiry is measured on it); null = this host's. */
  clock: Clock | null;
  /** Where the data lives, for messages: the data_dir, or host:port/database (never credentials). */
  where: string;
}

/** A clock offset beyond this gets a warning: the host's time is wrong, though stepgate copes. */
const CLOCK_WARN_MS = 2_000;

export async function openStore(cfg: GatewayConfig, env: NodeJS.ProcessEnv, opts: OpenStoreOptions): Promise<OpenedStore> {
  if (cfg.store !== 'postgres') {
    return { store: SqliteStore.open(cfg.dataDir, { exclusive: opts.exclusive }), clock: null, where: cfg.dataDir };
  }
  const url = env.STEPGATE_STORE;
  // The config loader already refused this; a programmatic caller may not have used it.
  if (!url) throw new Error('store: postgres needs the STEPGATE_STORE environment variable (the PostgreSQL URL)');
  const where = describeStoreUrl(url);
  const scrub = scrubber(url);
  const log = opts.log;
  let store: PostgresStore;
  try {
    store = await PostgresStore.open(url, {
      ...opts.postgres,
      onPoolError: (err) => log?.warn({ err: scrub(describeError(err).message), store: where }, 'store connection lost; the pool reconnects on demand'),
    });
  } catch (err) {
    throw startupError(err, where, scrub);
  }
  try {
    const clock = await DatabaseClock.start(() => store.databaseNow(), {
      onError: (err) => log?.warn({ err: scrub(err.message), store: where }, 'database clock refresh failed; keeping the last offset'),
      onSample: (offsetMs, rttMs) => {
        if (Math.abs(offsetMs) > CLOCK_WARN_MS) log?.warn({ offsetMs, rttMs }, "this host's clock differs from the database's; stepgate uses the database's");
        else log?.debug({ offsetMs, rttMs }, 'database clock offset measured');
      },
    });
    store.onClose(() => clock.stop());
    return { store, clock, where };
  } catch (err) {
    await store.close();
    throw startupError(err, where, scrub);
  }
}

/** host:port/database of a PostgreSQL URL — never the user name or password. */
export function describeStoreUrl(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${host}${u.port ? `:${u.port}` : ''}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** Removes the URL and its password from a message, whatever a driver or the server put in it. */
function scrubber(url: string): (message: string) => string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    /* unparsable: nothing more to hide than the URL itself */
  }
  return (message) => {
    let out = message.split(url).join('STEPGATE_STORE');
    if (password.length > 0) out = out.split(password).join('***');
    return out;
  };
}

function startupError(err: unknown, where: string, scrub: (m: string) => string): Error {
  if (err instanceof SchemaTooNewError) return new SchemaTooNewError(`the PostgreSQL store at ${where}: ${scrub(err.message)}`);
  const cause = err instanceof StoreUnavailableError && err.cause !== undefined ? err.cause : err;
  const message = scrub(describeError(cause).message);
  if (err instanceof StoreUnavailableError) return new Error(`cannot reach the PostgreSQL store at ${where} (STEPGATE_STORE): ${message}`);
  return new Error(`the PostgreSQL store at ${where} (STEPGATE_STORE): ${message}`);
}
