// PostgreSQL store (pg.Pool) for several gateway instances sharing one truth (SPEC §10). Same
// semantics as the SQLite store (sqlite.ts), and the same rule: every "use once" is ONE conditional
// UPDATE/DELETE … RETURNING (or an upsert with a WHERE) whose row count says whether this caller
// won, so two instances racing for a once-grant, a ticket, a challenge, a recovery code, an invite
// or a TOTP step can never both succeed. Multi-row changes run in one transaction (or one statement
// with data-modifying CTEs); every method resolves only after its change is committed.
//
// Availability: a call unanswered within `timeoutMs` (5 s) rejects with StoreUnavailableError, and
// so does any connection-level failure (refused, reset, server shutting down, too many clients…).
// The pool replaces broken connections by itself, so the gateway recovers when the database does;
// the pool's 'error' event (an idle connection dying) is logged, never fatal.
import pg from 'pg';
import type { PoolClient, QueryResult, QueryResultRow } from 'pg';
import type { FactorType } from '../config/types.js';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';
import {
  DISABLE_THRESHOLD,
  LOCKOUT_THRESHOLD,
  LOCKOUT_WINDOW_MS,
  SchemaTooNewError,
  STORE_TIMEOUT_MS,
  StoreUnavailableError,
  auditEventOf,
  factorOf,
  type AuditEvent,
  type AuditQuery,
  type ChallengePurpose,
  type FactorRecord,
  type GrantRecord,
  type LockoutState,
  type NewPasskey,
  type PasskeyRecord,
  type StashRecord,
  type Store,
  type TotpRecord,
} from './store.js';

/** Schema changes are serialised across instances by this transaction-level advisory lock ("Stepgate"). */
const SCHEMA_LOCK_KEY = '6013542935891637349';
/** Migrations may legitimately take longer than a request; they get their own, generous budget. */
const MIGRATION_TIMEOUT_MS = 5 * 60_000;
const INT8_OID = 20;

export interface PostgresStoreOptions {
  /** Per call budget (default 5 s): past it the call rejects with StoreUnavailableError. */
  timeoutMs?: number;
  /** Pool size per instance (default 10). */
  maxConnections?: number;
  /** Told about connection errors the pool survives (an idle connection dropped by the server). */
  onPoolError?: (err: Error) => void;
}

type Row = Record<string, any>;

interface Queryable {
  query<R extends QueryResultRow = Row>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** BIGINT columns hold epoch milliseconds, counters and steps: all well inside 2^53, so plain numbers. */
const typeParsers = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export class PostgresStore implements Store {
  private closed = false;
  private readonly closers: (() => void)[] = [];

  private constructor(
    private readonly pool: pg.Pool,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Connects, creates or upgrades the schema (serialised by an advisory lock, so instances may start
   * together) and returns the store. Rejects with SchemaTooNewError when the database was migrated by
   * a newer stepgate, and with StoreUnavailableError when the database cannot be reached.
   */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const timeoutMs = opts.timeoutMs ?? STORE_TIMEOUT_MS;
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.maxConnections ?? 10,
      connectionTimeoutMillis: timeoutMs,
      // Client side (no answer at all) and server side (a statement stuck on a lock) budgets.
      query_timeout: timeoutMs,
      statement_timeout: timeoutMs,
      // A transaction left open by an instance that lost its connection must not hold row locks long.
      idle_in_transaction_session_timeout: 4 * timeoutMs,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'stepgate',
      types: typeParsers,
    });
    // An idle connection that dies (server restart, failover, network) is removed by the pool and
    // reported here; without a listener it would crash the process.
    pool.on('error', (err) => opts.onPoolError?.(err));
    const store = new PostgresStore(pool, timeoutMs);
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err instanceof SchemaTooNewError || err instanceof StoreUnavailableError ? err : classify(err);
    }
    return store;
  }

  private async migrate(): Promise<void> {
    const latest = POSTGRES_MIGRATIONS.length;
    await this.tx(async (client) => {
      await client.query(`SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
      const q = (text: string, values?: unknown[]) => client.query({ text, values, query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
      // Instances starting together queue here; the first one migrates, the others find it done.
      await q('SELECT pg_advisory_xact_lock($1::bigint)', [SCHEMA_LOCK_KEY]);
      await q('CREATE TABLE IF NOT EXISTS stepgate_schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const current = ((await q('SELECT coalesce(max(version), 0)::int AS v FROM stepgate_schema_migrations')).rows[0] as Row).v as number;
      if (current > latest) {
        throw new SchemaTooNewError(`the store's schema is version ${current}, newer than this stepgate (${latest}); upgrade stepgate`);
      }
      for (let v = current; v < latest; v++) {
        await q(POSTGRES_MIGRATIONS[v]!);
        await q('INSERT INTO stepgate_schema_migrations (version) VALUES ($1)', [v + 1]);
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Plumbing

  /** One call: bounded by the timeout, "cannot answer" failures turned into StoreUnavailableError. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const budgetMs = this.timeoutMs;
    if (this.closed) return Promise.reject(new StoreUnavailableError(new Error('the store is closed')));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreUnavailableError(new Error(`no answer from PostgreSQL within ${budgetMs} ms`))), budgetMs);
      fn().then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(classify(err));
        },
      );
    });
  }

  /** A single statement (autocommit: committed when it resolves). */
  private query<R extends QueryResultRow = Row>(text: string, values?: unknown[]): Promise<QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  /** BEGIN … COMMIT on one pooled connection; a connection that failed is destroyed, not reused. */
  private async tx<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client: PoolClient = await this.pool.connect();
    // A checked-out client whose connection dies emits 'error'; the query in flight fails with it.
    const onError = () => undefined;
    client.on('error', onError);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // After a connection-level failure the server rolls back when the connection closes; asking
      // it to would only wait for another timeout. A connection whose ROLLBACK fails is not reused.
      if (isUnavailable(err)) {
        broken = err as Error;
      } else {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** Serialises the "is this the user's first factor" decisions of one user across instances. */
  private static lockUser(client: Queryable, user: string): Promise<unknown> {
    return client.query("SELECT pg_advisory_xact_lock(hashtextextended('stepgate user:' || $1, 0))", [user]);
  }

  /** The database's wall clock in epoch ms (for DatabaseClock). */
  databaseNow(): Promise<number> {
    return this.run(async () => Number(((await this.query('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms')).rows[0] as Row).ms));
  }

  // -------------------------------------------------------------------------------------------
  // Store

  ping(): Promise<void> {
    return this.run(async () => {
      await this.query('SELECT 1');
    });
  }

  listFactors(user: string): Promise<FactorRecord[]> {
    return this.run(async () =>
      (await this.query('SELECT id, username, type, name, created_at, last_used_at FROM factors WHERE username = $1 ORDER BY created_at, id', [user])).rows.map(toFactor),
    );
  }

  getTotp(user: string): Promise<TotpRecord | null> {
    return this.run(async () => {
      const row = (await this.query("SELECT * FROM factors WHERE username = $1 AND type = 'totp'", [user])).rows[0];
      return row ? { ...toFactor(row), type: 'totp', secretEnc: row.secret_enc as Buffer } : null;
    });
  }

  setPendingTotp(user: string, secretEnc: Buffer, now: number): Promise<void> {
    return this.run(async () => {
      await this.query(
        'INSERT INTO pending_totp (username, secret_enc, created_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO UPDATE SET secret_enc = EXCLUDED.secret_enc, created_at = EXCLUDED.created_at',
        [user, secretEnc, now],
      );
    });
  }

  getPendingTotp(user: string, notBefore: number): Promise<Buffer | null> {
    return this.run(async () => {
      const row = (await this.query('SELECT secret_enc FROM pending_totp WHERE username = $1 AND created_at >= $2', [user, notBefore])).rows[0];
      return row ? (row.secret_enc as Buffer) : null;
    });
  }

  confirmPendingTotp(user: string, id: string, name: string, now: number): Promise<{ first: boolean } | null> {
    return this.run(() =>
      this.tx(async (client) => {
        await PostgresStore.lockUser(client, user);
        // Taking the pending secret is the conditional step: of two racing confirmations one wins.
        const pending = (await client.query('DELETE FROM pending_totp WHERE username = $1 RETURNING secret_enc', [user])).rows[0];
        if (!pending) return null;
        // The final SELECT sees the factors as they were before this statement's changes.
        const before = await client.query(
          `WITH old AS (DELETE FROM factors WHERE username = $1 AND type = 'totp'),
                ins AS (INSERT INTO factors (id, username, type, name, secret_enc, created_at) VALUES ($2, $1, 'totp', $3, $4, $5)),
                inv AS (DELETE FROM invite_only_users WHERE username = $1)
           SELECT count(*)::int AS n FROM factors WHERE username = $1`,
          [user, id, name, pending.secret_enc, now],
        );
        return { first: (before.rows[0] as Row).n === 0 };
      }),
    );
  }

  deleteFactor(user: string, id: string): Promise<FactorRecord | null> {
    return this.run(async () => {
      const row = (await this.query('DELETE FROM factors WHERE username = $1 AND id = $2 RETURNING id, username, type, name, created_at, last_used_at', [user, id])).rows[0];
      return row ? toFactor(row) : null;
    });
  }

  touchFactor(id: string, now: number): Promise<void> {
    return this.run(async () => {
      await this.query('UPDATE factors SET last_used_at = $1 WHERE id = $2', [now, id]);
    });
  }

  listPasskeys(user: string): Promise<PasskeyRecord[]> {
    return this.run(async () =>
      (await this.query("SELECT * FROM factors WHERE username = $1 AND type = 'passkey' ORDER BY created_at, id", [user])).rows.map((row) => ({
        ...toFactor(row),
        type: 'passkey',
        credentialId: row.credential_id as string,
        publicKey: row.public_key as Buffer,
        counter: row.counter as number,
        transports: (row.transports as string[] | null) ?? [],
        backedUp: row.backed_up === true,
        deviceType: row.device_type as string,
      })),
    );
  }

  addPasskey(user: string, p: NewPasskey, now: number): Promise<{ first: boolean }> {
    return this.run(() =>
      this.tx(async (client) => {
        await PostgresStore.lockUser(client, user);
        const before = await client.query(
          `WITH ins AS (INSERT INTO factors (id, username, type, name, created_at, credential_id, public_key, counter, transports, backed_up, device_type)
                        VALUES ($2, $1, 'passkey', $3, $4, $5, $6, $7, $8::text[], $9, $10)),
                inv AS (DELETE FROM invite_only_users WHERE username = $1)
           SELECT count(*)::int AS n FROM factors WHERE username = $1`,
          [user, p.id, p.name, now, p.credentialId, p.publicKey, p.counter, p.transports, p.backedUp, p.deviceType],
        );
        return { first: (before.rows[0] as Row).n === 0 };
      }),
    );
  }

  updatePasskeyCounter(id: string, newCounter: number, now: number): Promise<boolean> {
    return this.run(async () => {
      // Synced passkeys always report 0: accepted while both are 0; otherwise it must grow. The
      // row lock makes two instances racing with the same assertion see each other's counter.
      const res = await this.query(
        "UPDATE factors SET counter = $1, last_used_at = $2 WHERE id = $3 AND type = 'passkey' AND (($1::bigint = 0 AND counter = 0) OR $1::bigint > counter) RETURNING id",
        [newCounter, now, id],
      );
      return res.rowCount === 1;
    });
  }

  webauthnUserHandle(user: string, create: () => string): Promise<string> {
    return this.run(async () => {
      await this.query('INSERT INTO webauthn_user_handles (username, handle) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING', [user, create()]);
      // A separate statement, so a handle another instance committed meanwhile is seen.
      return ((await this.query('SELECT handle FROM webauthn_user_handles WHERE username = $1', [user])).rows[0] as Row).handle as string;
    });
  }

  createWebauthnChallenge(challenge: string, user: string, sessionKey: string, purpose: ChallengePurpose, expiresAt: number): Promise<void> {
    return this.run(async () => {
      await this.query('INSERT INTO webauthn_challenges (challenge, username, session_key, purpose, expires_at) VALUES ($1, $2, $3, $4, $5)', [challenge, user, sessionKey, purpose, expiresAt]);
    });
  }

  consumeWebauthnChallenge(challenge: string, user: string, sessionKeys: string[], purpose: ChallengePurpose, now: number): Promise<boolean> {
    return this.run(async () => {
      const res = await this.query(
        'DELETE FROM webauthn_challenges WHERE challenge = $1 AND username = $2 AND session_key = ANY($3::text[]) AND purpose = $4 AND expires_at > $5 RETURNING challenge',
        [challenge, user, sessionKeys, purpose, now],
      );
      return res.rowCount === 1;
    });
  }

  advanceTotpStep(user: string, step: number): Promise<boolean> {
    return this.run(async () => {
      // The upsert locks the row and re-checks the WHERE against the latest committed step.
      const res = await this.query(
        'INSERT INTO totp_steps (username, last_step) VALUES ($1, $2) ON CONFLICT (username) DO UPDATE SET last_step = EXCLUDED.last_step WHERE totp_steps.last_step < EXCLUDED.last_step RETURNING last_step',
        [user, step],
      );
      return res.rowCount === 1;
    });
  }

  replaceRecoveryCodes(user: string, hashes: string[], now: number): Promise<void> {
    return this.run(() =>
      this.tx(async (client) => {
        await client.query('DELETE FROM recovery_codes WHERE username = $1', [user]);
        await client.query('INSERT INTO recovery_codes (username, code_hash, created_at) SELECT $1, h, $3 FROM unnest($2::text[]) AS h', [user, hashes, now]);
      }),
    );
  }

  useRecoveryCode(user: string, candidateHashes: string[], now: number): Promise<boolean> {
    return this.run(async () => {
      // The candidates are one code's hashes under each configured key: at most one is stored.
      const res = await this.query(
        'UPDATE recovery_codes SET used_at = $1 WHERE username = $2 AND code_hash = ANY($3::text[]) AND used_at IS NULL RETURNING code_hash',
        [now, user, candidateHashes],
      );
      return (res.rowCount ?? 0) > 0;
    });
  }

  countUnusedRecoveryCodes(user: string): Promise<number> {
    return this.run(async () => ((await this.query('SELECT count(*)::int AS n FROM recovery_codes WHERE username = $1 AND used_at IS NULL', [user])).rows[0] as Row).n as number);
  }

  getLockout(user: string, now: number): Promise<LockoutState> {
    return this.run(async () => lockoutOf((await this.query('SELECT locked_until, consecutive FROM lockouts WHERE username = $1', [user])).rows[0], now));
  }

  recordFailure(user: string, now: number): Promise<LockoutState> {
    return this.run(() =>
      this.tx(async (client) => {
        // The atomic increment also takes the user's lockout row lock for the rest of the
        // transaction: failures recorded by several instances at once are counted one by one.
        let row = (
          await client.query(
            'INSERT INTO lockouts (username, consecutive) VALUES ($1, 1) ON CONFLICT (username) DO UPDATE SET consecutive = lockouts.consecutive + 1 RETURNING locked_until, consecutive',
            [user],
          )
        ).rows[0] as Row;
        const windowStart = now - LOCKOUT_WINDOW_MS;
        const recent = (
          await client.query(
            `WITH old AS (DELETE FROM failures WHERE username = $1 AND at <= $3),
                  ins AS (INSERT INTO failures (username, at) VALUES ($1, $2))
             SELECT count(*)::int + 1 AS n FROM failures WHERE username = $1 AND at > $3`,
            [user, now, windowStart],
          )
        ).rows[0] as Row;
        if ((recent.n as number) >= LOCKOUT_THRESHOLD) {
          // Locked until 15 minutes after this (the 5th) failure; the window starts afresh afterwards.
          row = (
            await client.query(
              'WITH clear AS (DELETE FROM failures WHERE username = $1) UPDATE lockouts SET locked_until = $2 WHERE username = $1 RETURNING locked_until, consecutive',
              [user, now + LOCKOUT_WINDOW_MS],
            )
          ).rows[0] as Row;
        }
        return lockoutOf(row, now);
      }),
    );
  }

  recordSuccess(user: string, factor: FactorType): Promise<void> {
    return this.run(async () => {
      // A passkey proves the owner is present: it lifts the hard disable and the temporary lock.
      // A TOTP/recovery success can only happen while not locked; it ends the failure streak.
      const lockouts = factor === 'passkey' ? 'DELETE FROM lockouts WHERE username = $1' : 'UPDATE lockouts SET consecutive = 0 WHERE username = $1';
      await this.query(`WITH l AS (${lockouts}) DELETE FROM failures WHERE username = $1`, [user]);
    });
  }

  listGrants(user: string): Promise<GrantRecord[]> {
    return this.run(async () =>
      (await this.query('SELECT username, factor, verified_at, once_consumed FROM grants WHERE username = $1 ORDER BY verified_at DESC', [user])).rows.map(toGrant),
    );
  }

  getGrant(sessionKeys: string[]): Promise<GrantRecord | null> {
    return this.run(async () => {
      const row = (
        await this.query(
          'SELECT username, factor, verified_at, once_consumed FROM grants WHERE session_key = ANY($1::text[]) ORDER BY array_position($1::text[], session_key) LIMIT 1',
          [sessionKeys],
        )
      ).rows[0];
      return row ? toGrant(row) : null;
    });
  }

  putGrant(sessionKey: string, grant: GrantRecord, staleKeys: string[]): Promise<void> {
    return this.run(async () => {
      await this.query(
        `WITH stale AS (DELETE FROM grants WHERE session_key = ANY($6::text[]) AND session_key <> $1)
         INSERT INTO grants (session_key, username, factor, verified_at, once_consumed) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (session_key) DO UPDATE SET username = EXCLUDED.username, factor = EXCLUDED.factor, verified_at = EXCLUDED.verified_at, once_consumed = EXCLUDED.once_consumed`,
        [sessionKey, grant.user, grant.factor, grant.verifiedAt, grant.onceConsumed, staleKeys],
      );
    });
  }

  consumeOnce(sessionKeys: string[], verifiedAt: number): Promise<boolean> {
    return this.run(async () => {
      const res = await this.query(
        'UPDATE grants SET once_consumed = true WHERE session_key = ANY($1::text[]) AND verified_at = $2 AND NOT once_consumed RETURNING session_key',
        [sessionKeys, verifiedAt],
      );
      return (res.rowCount ?? 0) > 0;
    });
  }

  deleteGrant(sessionKeys: string[]): Promise<void> {
    return this.run(async () => {
      await this.query('DELETE FROM grants WHERE session_key = ANY($1::text[])', [sessionKeys]);
    });
  }

  isTicketSpent(idHash: string): Promise<boolean> {
    return this.run(async () => (await this.query('SELECT 1 FROM spent_tickets WHERE id_hash = $1', [idHash])).rowCount === 1);
  }

  spendTicket(idHash: string, expiresAt: number, now: number): Promise<boolean> {
    return this.run(async () => {
      // Of two instances spending the same ticket, the second waits for the first's row, then inserts nothing.
      const res = await this.query(
        'INSERT INTO spent_tickets (id_hash, expires_at) SELECT $1::text, $2::bigint WHERE $2::bigint > $3::bigint ON CONFLICT (id_hash) DO NOTHING',
        [idHash, expiresAt, now],
      );
      return res.rowCount === 1;
    });
  }

  createStash(idHash: string, s: StashRecord): Promise<void> {
    return this.run(async () => {
      await this.query('INSERT INTO stashes (id_hash, username, session_key, payload_enc, expires_at) VALUES ($1, $2, $3, $4, $5)', [idHash, s.user, s.sessionKey, s.payloadEnc, s.expiresAt]);
    });
  }

  takeStash(idHashes: string[], user: string, sessionKeys: string[], now: number): Promise<StashRecord | null> {
    return this.run(async () => {
      // Taking is deleting: of two instances replaying the same stash, one gets the row.
      const row = (
        await this.query(
          'DELETE FROM stashes WHERE id_hash = ANY($1::text[]) AND username = $2 AND session_key = ANY($3::text[]) AND expires_at > $4 RETURNING username, session_key, payload_enc, expires_at',
          [idHashes, user, sessionKeys, now],
        )
      ).rows[0];
      return row ? { user: row.username as string, sessionKey: row.session_key as string, payloadEnc: row.payload_enc as Buffer, expiresAt: row.expires_at as number } : null;
    });
  }

  createInvite(user: string, codeHash: string, expiresAt: number): Promise<void> {
    return this.run(async () => {
      await this.query('INSERT INTO invites (code_hash, username, expires_at) VALUES ($1, $2, $3)', [codeHash, user, expiresAt]);
    });
  }

  inviteValid(user: string, codeHashes: string[], now: number): Promise<boolean> {
    return this.run(async () => {
      const res = await this.query('SELECT 1 FROM invites WHERE code_hash = ANY($1::text[]) AND username = $2 AND used_at IS NULL AND expires_at > $3 LIMIT 1', [codeHashes, user, now]);
      return res.rowCount === 1;
    });
  }

  consumeInvite(user: string, codeHashes: string[], now: number): Promise<boolean> {
    return this.run(async () => {
      const res = await this.query(
        'UPDATE invites SET used_at = $3 WHERE code_hash = ANY($1::text[]) AND username = $2 AND used_at IS NULL AND expires_at > $3 RETURNING code_hash',
        [codeHashes, user, now],
      );
      return (res.rowCount ?? 0) > 0;
    });
  }

  needsInvite(user: string): Promise<boolean> {
    return this.run(async () => (await this.query('SELECT 1 FROM invite_only_users WHERE username = $1', [user])).rowCount === 1);
  }

  resetUser(user: string): Promise<void> {
    return this.run(() =>
      this.tx(async (client) => {
        await PostgresStore.lockUser(client, user);
        await client.query(
          `WITH f AS (DELETE FROM factors WHERE username = $1),
                p AS (DELETE FROM pending_totp WHERE username = $1),
                r AS (DELETE FROM recovery_codes WHERE username = $1),
                fl AS (DELETE FROM failures WHERE username = $1),
                l AS (DELETE FROM lockouts WHERE username = $1),
                g AS (DELETE FROM grants WHERE username = $1),
                w AS (DELETE FROM webauthn_challenges WHERE username = $1),
                s AS (DELETE FROM stashes WHERE username = $1)
           INSERT INTO invite_only_users (username) VALUES ($1) ON CONFLICT (username) DO NOTHING`,
          [user],
        );
      }),
    );
  }

  audit(e: AuditEvent): Promise<void> {
    return this.run(async () => {
      await this.query(
        'INSERT INTO audit (at, username, event, factor, outcome, ip, user_agent, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [e.at, e.user, e.event, e.factor, e.outcome, e.ip, e.userAgent, e.requestId, e.detail ?? null],
      );
    });
  }

  listAudit(q: AuditQuery): Promise<AuditEvent[]> {
    return this.run(async () => {
      const rows = (
        await this.query('SELECT * FROM audit WHERE ($1::text IS NULL OR username = $1) AND at >= $2 ORDER BY at, id LIMIT $3', [q.user ?? null, q.since ?? 0, q.limit ?? 10_000])
      ).rows;
      return rows.map((r) => auditEventOf(r, r.username));
    });
  }

  sweep(now: number): Promise<void> {
    return this.run(async () => {
      await this.query(
        `WITH t AS (DELETE FROM spent_tickets WHERE expires_at <= $1),
              f AS (DELETE FROM failures WHERE at <= $2),
              i AS (DELETE FROM invites WHERE expires_at <= $1),
              s AS (DELETE FROM stashes WHERE expires_at <= $1)
         DELETE FROM webauthn_challenges WHERE expires_at <= $1`,
        [now, now - LOCKOUT_WINDOW_MS],
      );
    });
  }

  /** Runs `fn` when the store closes (stops what depends on it, e.g. its DatabaseClock). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.closers) fn();
    await this.pool.end();
  }
}

function toFactor(row: Row): FactorRecord {
  return factorOf(row, row.username);
}

function toGrant(row: Row): GrantRecord {
  return { user: row.username as string, factor: row.factor as FactorType, verifiedAt: row.verified_at as number, onceConsumed: row.once_consumed === true };
}

function lockoutOf(row: Row | undefined, now: number): LockoutState {
  if (!row) return { lockedUntil: null, disabled: false };
  const until = row.locked_until as number | null;
  return { lockedUntil: until !== null && until > now ? until : null, disabled: (row.consecutive as number) >= DISABLE_THRESHOLD };
}

/**
 * SQLSTATE classes that mean "the database cannot answer now" (SPEC §10 → 503): connection
 * exceptions (08), invalid authorization (28), database gone (3D000), serialization failure or
 * deadlock (40), insufficient resources such as too many connections (53), lock not available
 * (55P03), operator intervention (57: shutdown, statement timeout), system errors (58), and a
 * read-only transaction (25006: a standby after failover).
 */
const UNAVAILABLE_SQLSTATE = /^(08|28|3D|40|53|57|58)|^(55P03|25006)$/;
/** pg's own connection-level failures (they carry no SQLSTATE). */
const UNAVAILABLE_MESSAGE = /terminat|timeout|timed out|not queryable|connection|connect |Cannot use a pool|ECONN|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN/i;

export function isUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (/^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_SQLSTATE.test(code);
    // Node's system errors: ECONNREFUSED, ECONNRESET, ETIMEDOUT, EHOSTUNREACH, ENOTFOUND, EPIPE…
    // (not its ERR_* programming errors, which must surface as such).
    if (/^E(?!RR_)[A-Z]+$/.test(code)) return true;
  }
  return UNAVAILABLE_MESSAGE.test(err.message) || (err instanceof AggregateError && err.errors.some(isUnavailable));
}

function classify(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || err instanceof SchemaTooNewError) return err;
  return isUnavailable(err) ? new StoreUnavailableError(describeError(err)) : err;
}

/** Node reports a refused dual-stack connect as an AggregateError with an empty message. */
export function describeError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  if (err.message) return err;
  const code = (err as { code?: unknown }).code;
  const inner = err instanceof AggregateError ? err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).filter(Boolean) : [];
  return Object.assign(new Error(inner.length ? inner.join('; ') : typeof code === 'string' ? code : err.name), { code, cause: err });
}
