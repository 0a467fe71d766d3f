// SQLite store (better-sqlite3, WAL) for a single gateway instance. better-sqlite3 is synchronous;
// each method runs one statement or one transaction and wraps "cannot answer" failures (busy past
// the 5 s timeout, read-only, I/O errors) in StoreUnavailableError so callers fail closed with 503.
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { FactorType } from '../config/types.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
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
  type FactorRecord,
  type GrantRecord,
  type ChallengePurpose,
  type LockoutState,
  type NewPasskey,
  type PasskeyRecord,
  type StashRecord,
  type Store,
  type TotpRecord,
} from './store.js';
import { processAlive } from '../util/process.js';

/**
 * SQLite's own busy wait sleeps inside the (only) JavaScript thread, stalling every request of the
 * gateway, free paths included. So it waits only briefly; longer waits are async retries below.
 */
const BUSY_SPIN_MS = 10;
const BUSY_RETRY_MS = 25;


export interface SqliteStoreOptions {
  /** Refuse a second gateway on the same data_dir (CLI commands pass false and work alongside). */
  exclusive: boolean;
}

type Row = Record<string, unknown>;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly lockFile: string | null;

  private constructor(db: Database.Database, lockFile: string | null) {
    this.db = db;
    this.lockFile = lockFile;
  }

  static open(dataDir: string, opts: SqliteStoreOptions): SqliteStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const lockFile = opts.exclusive ? acquireLock(join(dataDir, 'gateway.lock')) : null;
    try {
      const db = new Database(join(dataDir, 'stepgate.db'), { timeout: BUSY_SPIN_MS });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      // Opening may wait for another process (a CLI command) to finish migrating: nothing is served yet.
      db.pragma(`busy_timeout = ${STORE_TIMEOUT_MS}`);
      migrate(db);
      db.pragma(`busy_timeout = ${BUSY_SPIN_MS}`);
      return new SqliteStore(db, lockFile);
    } catch (err) {
      if (lockFile) unlinkSync(lockFile);
      throw err;
    }
  }

  /** Runs `fn` and turns the errors that mean "cannot answer now" into StoreUnavailableError. */
  /**
   * Runs `fn` (one statement or one transaction: a failed attempt changed nothing, so it can be
   * retried). A busy database is retried asynchronously until 5 s have passed; then, like any
   * "cannot answer now" error, it becomes StoreUnavailableError.
   */
  private async run<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + STORE_TIMEOUT_MS;
    for (;;) {
      try {
        return fn();
      } catch (err) {
        if (isBusy(err) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS));
          continue;
        }
        throw isUnavailable(err) ? new StoreUnavailableError(err) : err;
      }
    }
  }

  ping(): Promise<void> {
    return this.run(() => {
      this.db.prepare('SELECT 1').get();
    });
  }

  listFactors(user: string): Promise<FactorRecord[]> {
    return this.run(() =>
      (this.stmt('SELECT id, user, type, name, created_at, last_used_at FROM factors WHERE user = ? ORDER BY created_at, id').all(user) as Row[]).map(toFactor),
    );
  }

  getTotp(user: string): Promise<TotpRecord | null> {
    return this.run(() => {
      const row = this.stmt("SELECT * FROM factors WHERE user = ? AND type = 'totp'").get(user) as Row | undefined;
      return row ? { ...toFactor(row), type: 'totp', secretEnc: row.secret_enc as Buffer } : null;
    });
  }

  setPendingTotp(user: string, secretEnc: Buffer, now: number): Promise<void> {
    return this.run(() => {
      this.stmt('INSERT INTO pending_totp (user, secret_enc, created_at) VALUES (?, ?, ?) ON CONFLICT (user) DO UPDATE SET secret_enc = excluded.secret_enc, created_at = excluded.created_at').run(user, secretEnc, now);
    });
  }

  getPendingTotp(user: string, notBefore: number): Promise<Buffer | null> {
    return this.run(() => {
      const row = this.stmt('SELECT secret_enc FROM pending_totp WHERE user = ? AND created_at >= ?').get(user, notBefore) as Row | undefined;
      return row ? (row.secret_enc as Buffer) : null;
    });
  }

  confirmPendingTotp(user: string, id: string, name: string, now: number): Promise<{ first: boolean } | null> {
    return this.run(() =>
      this.db.transaction(() => {
        const pending = this.stmt('DELETE FROM pending_totp WHERE user = ? RETURNING secret_enc').get(user) as Row | undefined;
        if (!pending) return null;
        const first = (this.stmt('SELECT count(*) AS n FROM factors WHERE user = ?').get(user) as { n: number }).n === 0;
        this.stmt("DELETE FROM factors WHERE user = ? AND type = 'totp'").run(user);
        this.stmt("INSERT INTO factors (id, user, type, name, secret_enc, created_at) VALUES (?, ?, 'totp', ?, ?, ?)").run(id, user, name, pending.secret_enc, now);
        this.stmt('DELETE FROM invite_only_users WHERE user = ?').run(user);
        return { first };
      })(),
    );
  }

  deleteFactor(user: string, id: string): Promise<FactorRecord | null> {
    return this.run(() => {
      const row = this.stmt('DELETE FROM factors WHERE user = ? AND id = ? RETURNING id, user, type, name, created_at, last_used_at').get(user, id) as Row | undefined;
      return row ? toFactor(row) : null;
    });
  }

  touchFactor(id: string, now: number): Promise<void> {
    return this.run(() => {
      this.stmt('UPDATE factors SET last_used_at = ? WHERE id = ?').run(now, id);
    });
  }

  listPasskeys(user: string): Promise<PasskeyRecord[]> {
    return this.run(() =>
      (this.stmt("SELECT * FROM factors WHERE user = ? AND type = 'passkey' ORDER BY created_at, id").all(user) as Row[]).map((row) => ({
        ...toFactor(row),
        type: 'passkey',
        credentialId: row.credential_id as string,
        publicKey: row.public_key as Buffer,
        counter: row.counter as number,
        transports: JSON.parse((row.transports as string | null) ?? '[]') as string[],
        backedUp: row.backed_up === 1,
        deviceType: row.device_type as string,
      })),
    );
  }

  addPasskey(user: string, p: NewPasskey, now: number): Promise<{ first: boolean }> {
    return this.run(() =>
      this.db.transaction(() => {
        const first = (this.stmt('SELECT count(*) AS n FROM factors WHERE user = ?').get(user) as { n: number }).n === 0;
        this.stmt("INSERT INTO factors (id, user, type, name, created_at, credential_id, public_key, counter, transports, backed_up, device_type) VALUES (?, ?, 'passkey', ?, ?, ?, ?, ?, ?, ?, ?)").run(
          p.id, user, p.name, now, p.credentialId, p.publicKey, p.counter, JSON.stringify(p.transports), p.backedUp ? 1 : 0, p.deviceType,
        );
        this.stmt('DELETE FROM invite_only_users WHERE user = ?').run(user);
        return { first };
      })(),
    );
  }

  updatePasskeyCounter(id: string, newCounter: number, now: number): Promise<boolean> {
    return this.run(() => {
      // Synced passkeys always report 0: accepted while both are 0; otherwise it must grow.
      const info = this.stmt("UPDATE factors SET counter = @counter, last_used_at = @now WHERE id = @id AND type = 'passkey' AND ((@counter = 0 AND counter = 0) OR @counter > counter)").run({ counter: newCounter, now, id });
      return info.changes === 1;
    });
  }

  webauthnUserHandle(user: string, create: () => string): Promise<string> {
    return this.run(() => {
      this.stmt('INSERT OR IGNORE INTO webauthn_user_handles (user, handle) VALUES (?, ?)').run(user, create());
      return (this.stmt('SELECT handle FROM webauthn_user_handles WHERE user = ?').get(user) as { handle: string }).handle;
    });
  }

  createWebauthnChallenge(challenge: string, user: string, sessionKey: string, purpose: ChallengePurpose, expiresAt: number): Promise<void> {
    return this.run(() => {
      this.stmt('INSERT INTO webauthn_challenges (challenge, user, session_key, purpose, expires_at) VALUES (?, ?, ?, ?, ?)').run(challenge, user, sessionKey, purpose, expiresAt);
    });
  }

  consumeWebauthnChallenge(challenge: string, user: string, sessionKeys: string[], purpose: ChallengePurpose, now: number): Promise<boolean> {
    return this.run(() => {
      const use = this.stmt('DELETE FROM webauthn_challenges WHERE challenge = ? AND user = ? AND session_key = ? AND purpose = ? AND expires_at > ?');
      return sessionKeys.some((key) => use.run(challenge, user, key, purpose, now).changes === 1);
    });
  }

  advanceTotpStep(user: string, step: number): Promise<boolean> {
    return this.run(() => {
      const info = this.stmt('INSERT INTO totp_steps (user, last_step) VALUES (?, ?) ON CONFLICT (user) DO UPDATE SET last_step = excluded.last_step WHERE excluded.last_step > totp_steps.last_step').run(user, step);
      return info.changes === 1;
    });
  }

  replaceRecoveryCodes(user: string, hashes: string[], now: number): Promise<void> {
    return this.run(() =>
      this.db.transaction(() => {
        this.stmt('DELETE FROM recovery_codes WHERE user = ?').run(user);
        const insert = this.stmt('INSERT INTO recovery_codes (user, code_hash, created_at) VALUES (?, ?, ?)');
        for (const h of hashes) insert.run(user, h, now);
      })(),
    );
  }

  useRecoveryCode(user: string, candidateHashes: string[], now: number): Promise<boolean> {
    return this.run(() => {
      const use = this.stmt('UPDATE recovery_codes SET used_at = ? WHERE user = ? AND code_hash = ? AND used_at IS NULL');
      return this.db.transaction(() => candidateHashes.some((h) => use.run(now, user, h).changes === 1))();
    });
  }

  countUnusedRecoveryCodes(user: string): Promise<number> {
    return this.run(() => (this.stmt('SELECT count(*) AS n FROM recovery_codes WHERE user = ? AND used_at IS NULL').get(user) as { n: number }).n);
  }

  getLockout(user: string, now: number): Promise<LockoutState> {
    return this.run(() => this.lockoutOf(user, now));
  }

  private lockoutOf(user: string, now: number): LockoutState {
    const row = this.stmt('SELECT locked_until, consecutive FROM lockouts WHERE user = ?').get(user) as Row | undefined;
    if (!row) return { lockedUntil: null, disabled: false };
    const until = row.locked_until as number | null;
    return { lockedUntil: until !== null && until > now ? until : null, disabled: (row.consecutive as number) >= DISABLE_THRESHOLD };
  }

  recordFailure(user: string, now: number): Promise<LockoutState> {
    return this.run(() =>
      this.db.transaction(() => {
        this.stmt('DELETE FROM failures WHERE user = ? AND at <= ?').run(user, now - LOCKOUT_WINDOW_MS);
        this.stmt('INSERT INTO failures (user, at) VALUES (?, ?)').run(user, now);
        this.stmt('INSERT INTO lockouts (user, consecutive) VALUES (?, 1) ON CONFLICT (user) DO UPDATE SET consecutive = consecutive + 1').run(user);
        const recent = (this.stmt('SELECT count(*) AS n FROM failures WHERE user = ?').get(user) as { n: number }).n;
        if (recent >= LOCKOUT_THRESHOLD) {
          // Locked until 15 minutes after this (the 5th) failure; the window starts afresh afterwards.
          this.stmt('UPDATE lockouts SET locked_until = ? WHERE user = ?').run(now + LOCKOUT_WINDOW_MS, user);
          this.stmt('DELETE FROM failures WHERE user = ?').run(user);
        }
        return this.lockoutOf(user, now);
      })(),
    );
  }

  recordSuccess(user: string, factor: FactorType): Promise<void> {
    return this.run(() => {
      // A passkey proves the owner is present: it lifts the hard disable and the temporary lock.
      // A TOTP/recovery success can only happen while not locked; it ends the failure streak.
      if (factor === 'passkey') this.stmt('DELETE FROM lockouts WHERE user = ?').run(user);
      else this.stmt('UPDATE lockouts SET consecutive = 0 WHERE user = ?').run(user);
      this.stmt('DELETE FROM failures WHERE user = ?').run(user);
    });
  }

  listGrants(user: string): Promise<GrantRecord[]> {
    return this.run(() =>
      (this.stmt('SELECT user, factor, verified_at, once_consumed FROM grants WHERE user = ? ORDER BY verified_at DESC').all(user) as Row[]).map(toGrant),
    );
  }

  getGrant(sessionKeys: string[]): Promise<GrantRecord | null> {
    return this.run(() => {
      const get = this.stmt('SELECT user, factor, verified_at, once_consumed FROM grants WHERE session_key = ?');
      for (const key of sessionKeys) {
        const row = get.get(key) as Row | undefined;
        if (row) return toGrant(row);
      }
      return null;
    });
  }

  putGrant(sessionKey: string, grant: GrantRecord, staleKeys: string[]): Promise<void> {
    return this.run(() =>
      this.db.transaction(() => {
        const del = this.stmt('DELETE FROM grants WHERE session_key = ?');
        for (const key of staleKeys) del.run(key);
        this.stmt('INSERT INTO grants (session_key, user, factor, verified_at, once_consumed) VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_key) DO UPDATE SET user = excluded.user, factor = excluded.factor, verified_at = excluded.verified_at, once_consumed = excluded.once_consumed').run(sessionKey, grant.user, grant.factor, grant.verifiedAt, grant.onceConsumed ? 1 : 0);
      })(),
    );
  }

  consumeOnce(sessionKeys: string[], verifiedAt: number): Promise<boolean> {
    return this.run(() => {
      const use = this.stmt('UPDATE grants SET once_consumed = 1 WHERE session_key = ? AND verified_at = ? AND once_consumed = 0');
      return sessionKeys.some((key) => use.run(key, verifiedAt).changes === 1);
    });
  }

  deleteGrant(sessionKeys: string[]): Promise<void> {
    return this.run(() => {
      const del = this.stmt('DELETE FROM grants WHERE session_key = ?');
      for (const key of sessionKeys) del.run(key);
    });
  }

  isTicketSpent(idHash: string): Promise<boolean> {
    return this.run(() => this.stmt('SELECT 1 FROM spent_tickets WHERE id_hash = ?').get(idHash) !== undefined);
  }

  spendTicket(idHash: string, expiresAt: number, now: number): Promise<boolean> {
    return this.run(() => {
      // An expired ticket inserts nothing (and SQLite needs that WHERE to parse the ON CONFLICT of an INSERT … SELECT).
      const spend = this.stmt('INSERT INTO spent_tickets (id_hash, expires_at) SELECT @idHash, @expiresAt WHERE @expiresAt > @now ON CONFLICT (id_hash) DO NOTHING');
      return spend.run({ idHash, expiresAt, now }).changes === 1;
    });
  }

  createStash(idHash: string, s: StashRecord): Promise<void> {
    return this.run(() => {
      this.stmt('INSERT INTO stashes (id_hash, user, session_key, payload_enc, expires_at) VALUES (?, ?, ?, ?, ?)').run(idHash, s.user, s.sessionKey, s.payloadEnc, s.expiresAt);
    });
  }

  takeStash(idHashes: string[], user: string, sessionKeys: string[], now: number): Promise<StashRecord | null> {
    return this.run(() => {
      const take = this.stmt('DELETE FROM stashes WHERE id_hash = ? AND user = ? AND session_key = ? AND expires_at > ? RETURNING user, session_key, payload_enc, expires_at');
      for (const h of idHashes) {
        for (const key of sessionKeys) {
          const row = take.get(h, user, key, now) as Row | undefined;
          if (row) return { user: row.user as string, sessionKey: row.session_key as string, payloadEnc: row.payload_enc as Buffer, expiresAt: row.expires_at as number };
        }
      }
      return null;
    });
  }

  createInvite(user: string, codeHash: string, expiresAt: number): Promise<void> {
    return this.run(() => {
      this.stmt('INSERT INTO invites (code_hash, user, expires_at) VALUES (?, ?, ?)').run(codeHash, user, expiresAt);
    });
  }

  inviteValid(user: string, codeHashes: string[], now: number): Promise<boolean> {
    return this.run(() => {
      const get = this.stmt('SELECT 1 FROM invites WHERE code_hash = ? AND user = ? AND used_at IS NULL AND expires_at > ?');
      return codeHashes.some((h) => get.get(h, user, now) !== undefined);
    });
  }

  consumeInvite(user: string, codeHashes: string[], now: number): Promise<boolean> {
    return this.run(() => {
      const use = this.stmt('UPDATE invites SET used_at = ? WHERE code_hash = ? AND user = ? AND used_at IS NULL AND expires_at > ?');
      return codeHashes.some((h) => use.run(now, h, user, now).changes === 1);
    });
  }

  needsInvite(user: string): Promise<boolean> {
    return this.run(() => this.stmt('SELECT 1 FROM invite_only_users WHERE user = ?').get(user) !== undefined);
  }

  resetUser(user: string): Promise<void> {
    return this.run(() =>
      this.db.transaction(() => {
        for (const table of ['factors', 'pending_totp', 'recovery_codes', 'failures', 'lockouts', 'grants', 'webauthn_challenges', 'stashes']) {
          this.db.prepare(`DELETE FROM ${table} WHERE user = ?`).run(user);
        }
        this.stmt('INSERT OR IGNORE INTO invite_only_users (user) VALUES (?)').run(user);
      })(),
    );
  }

  audit(e: AuditEvent): Promise<void> {
    return this.run(() => {
      this.stmt('INSERT INTO audit (at, user, event, factor, outcome, ip, user_agent, request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(e.at, e.user, e.event, e.factor, e.outcome, e.ip, e.userAgent, e.requestId, e.detail ?? null);
    });
  }

  listAudit(q: AuditQuery): Promise<AuditEvent[]> {
    return this.run(() => {
      const rows = this.stmt('SELECT * FROM audit WHERE (@user IS NULL OR user = @user) AND at >= @since ORDER BY at, id LIMIT @limit').all({ user: q.user ?? null, since: q.since ?? 0, limit: q.limit ?? 10_000 }) as Row[];
      return rows.map((r) => auditEventOf(r, r.user));
    });
  }

  sweep(now: number): Promise<void> {
    return this.run(() => {
      this.stmt('DELETE FROM spent_tickets WHERE expires_at <= ?').run(now);
      this.stmt('DELETE FROM failures WHERE at <= ?').run(now - LOCKOUT_WINDOW_MS);
      this.stmt('DELETE FROM invites WHERE expires_at <= ?').run(now);
      this.stmt('DELETE FROM webauthn_challenges WHERE expires_at <= ?').run(now);
      this.stmt('DELETE FROM stashes WHERE expires_at <= ?').run(now);
    });
  }

  close(): Promise<void> {
    this.db.close();
    if (this.lockFile) unlinkSync(this.lockFile);
    return Promise.resolve();
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared once, reused: preparing costs more than running. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

function toFactor(row: Row): FactorRecord {
  return factorOf(row, row.user);
}

function toGrant(row: Row): GrantRecord {
  return { user: row.user as string, factor: row.factor as FactorType, verifiedAt: row.verified_at as number, onceConsumed: row.once_consumed === 1 };
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SQLITE_MIGRATIONS.length) {
    throw new SchemaTooNewError(`the store's schema is version ${current}, newer than this stepgate (${SQLITE_MIGRATIONS.length}); upgrade stepgate`);
  }
  // IMMEDIATE: a CLI command and the gateway starting together must not both migrate.
  db.transaction(() => {
    const now = db.pragma('user_version', { simple: true }) as number;
    for (let v = now; v < SQLITE_MIGRATIONS.length; v++) db.exec(SQLITE_MIGRATIONS[v]!);
    db.pragma(`user_version = ${SQLITE_MIGRATIONS.length}`);
  }).immediate();
}

const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|READONLY|IOERR|CANTOPEN|FULL|CORRUPT|NOTADB|PROTOCOL)/;

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || (typeof code === 'string' && code.startsWith('SQLITE_BUSY_'));
}

function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) || (err instanceof TypeError && /database connection is not open/.test(err.message));
}

/** A lock file holding our PID; a stale one (its process gone) is taken over. */
function acquireLock(file: string): string {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new Error(`another stepgate (pid ${pid}) already uses this data_dir (${file}); use store: postgres to run several instances`);
      }
      unlinkSync(file);
    }
  }
  throw new Error(`could not take the lock ${file}`);
}
