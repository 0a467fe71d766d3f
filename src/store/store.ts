// The store interface: everything the gateway remembers. Async from day one so that a shared
// PostgreSQL backend for several instances can slot in behind it (SPEC §10); the SQLite backend
// resolves synchronously underneath. Every "use once" operation is a single conditional update
// that reports whether *this* caller won, so two racing requests can never both succeed.
import type { FactorType } from '../config/types.js';

export type AuthenticatorType = Exclude<FactorType, 'recovery'>;

export interface FactorRecord {
  id: string;
  user: string;
  type: AuthenticatorType;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface TotpRecord extends FactorRecord {
  type: 'totp';
  /** AES-GCM blob (Secrets.encrypt) of the base32 secret, AAD = user. */
  secretEnc: Buffer;
}

export interface PasskeyRecord extends FactorRecord {
  type: 'passkey';
  /** base64url credential id, as the browser reports it. */
  credentialId: string;
  publicKey: Buffer;
  counter: number;
  transports: string[];
  backedUp: boolean;
  deviceType: string;
}

export type NewPasskey = Omit<PasskeyRecord, 'user' | 'type' | 'createdAt' | 'lastUsedAt'>;

export type ChallengePurpose = 'register' | 'authenticate';

export interface GrantRecord {
  user: string;
  factor: FactorType;
  verifiedAt: number;
  /** A `once` request already used this verification. */
  onceConsumed: boolean;
}

export interface StashRecord {
  user: string;
  sessionKey: string;
  /** AES-GCM blob (Secrets.encrypt, AAD = user) of the stashed submission. */
  payloadEnc: Buffer;
  expiresAt: number;
}

export interface LockoutState {
  /** Epoch ms until which TOTP and recovery attempts are refused with 429; null when not locked. */
  lockedUntil: number | null;
  /** Consecutive failures reached the hard limit: TOTP and recovery disabled until a passkey or a reset. */
  disabled: boolean;
}

export interface AuditEvent {
  at: number;
  user: string | null;
  event: string;
  factor: FactorType | null;
  outcome: 'success' | 'failure' | 'info';
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  /** A short reason ("replayed code", "locked out"); never a code, secret or credential. */
  detail?: string | null;
}

export interface AuditQuery {
  user?: string;
  since?: number;
  limit?: number;
}

/** SPEC §9.4: 5 failures within 15 minutes lock TOTP/recovery for 15 minutes; 100 in a row disable them. */
export const LOCKOUT_WINDOW_MS = 15 * 60_000;
export const LOCKOUT_THRESHOLD = 5;
export const DISABLE_THRESHOLD = 100;

/** SPEC §10: a store call unanswered after this long counts as unreachable. */
export const STORE_TIMEOUT_MS = 5_000;

/** The database was migrated by a newer stepgate: refuse to start rather than guess. */
export class SchemaTooNewError extends Error {}

/** Thrown for anything that means "the store cannot answer now" → 503 STORE_UNAVAILABLE. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`store unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface Store {
  /** Cheap round trip for /readyz. */
  ping(): Promise<void>;

  listFactors(user: string): Promise<FactorRecord[]>;
  getTotp(user: string): Promise<TotpRecord | null>;
  /** Replaces any pending (unconfirmed) authenticator-app secret of the user. */
  setPendingTotp(user: string, secretEnc: Buffer, now: number): Promise<void>;
  getPendingTotp(user: string, notBefore: number): Promise<Buffer | null>;
  /** Turns the pending secret into the user's authenticator app (replacing an older one). */
  confirmPendingTotp(user: string, id: string, name: string, now: number): Promise<{ first: boolean } | null>;
  deleteFactor(user: string, id: string): Promise<FactorRecord | null>;
  touchFactor(id: string, now: number): Promise<void>;

  listPasskeys(user: string): Promise<PasskeyRecord[]>;
  /** Adds a passkey factor; `first` when it is the user's first factor. */
  addPasskey(user: string, passkey: NewPasskey, now: number): Promise<{ first: boolean }>;
  /**
   * SPEC §9.5: stores the new signature counter after a successful assertion, unless a concurrent
   * one already moved it to or past this value (a non-zero counter must increase). False = refused.
   */
  updatePasskeyCounter(id: string, newCounter: number, now: number): Promise<boolean>;
  /** The random WebAuthn user handle of the user, created on first use. */
  webauthnUserHandle(user: string, create: () => string): Promise<string>;
  createWebauthnChallenge(challenge: string, user: string, sessionKey: string, purpose: ChallengePurpose, expiresAt: number): Promise<void>;
  /** Single use, bound to user and session: true for exactly one caller. */
  consumeWebauthnChallenge(challenge: string, user: string, sessionKeys: string[], purpose: ChallengePurpose, now: number): Promise<boolean>;

  /** RFC 6238 §5.2: records `step` and returns true only if it is later than the last accepted step. */
  advanceTotpStep(user: string, step: number): Promise<boolean>;

  replaceRecoveryCodes(user: string, hashes: string[], now: number): Promise<void>;
  /** Marks the first unused code among the candidate hashes used; false when none is unused. */
  useRecoveryCode(user: string, candidateHashes: string[], now: number): Promise<boolean>;
  countUnusedRecoveryCodes(user: string): Promise<number>;

  getLockout(user: string, now: number): Promise<LockoutState>;
  recordFailure(user: string, now: number): Promise<LockoutState>;
  /** Clears the failure streak; a passkey success also lifts the hard disable. */
  recordSuccess(user: string, factor: FactorType): Promise<void>;

  /** Every session grant of a user (for `users show`). */
  listGrants(user: string): Promise<GrantRecord[]>;
  /** Looks a session's grant up under any of its key hashes (one per configured secret). */
  getGrant(sessionKeys: string[]): Promise<GrantRecord | null>;
  /** The session's one grant is its latest verification (SPEC §4.6). */
  putGrant(sessionKey: string, grant: GrantRecord, staleKeys: string[]): Promise<void>;
  /** Consumes a `once` grant for this exact verification; true for exactly one caller. */
  consumeOnce(sessionKeys: string[], verifiedAt: number): Promise<boolean>;
  deleteGrant(sessionKeys: string[]): Promise<void>;

  /** Challenge tickets are sealed (stepup/ticket.ts), never stored: only spent ones are, by hash. */
  isTicketSpent(idHash: string): Promise<boolean>;
  /** Records the ticket as spent unless it already is or has expired: true for exactly one caller. */
  spendTicket(idHash: string, expiresAt: number, now: number): Promise<boolean>;

  createStash(idHash: string, stash: StashRecord): Promise<void>;
  /** Takes (and deletes) the stash if it belongs to this user and session and has not expired: one use. */
  takeStash(idHashes: string[], user: string, sessionKeys: string[], now: number): Promise<StashRecord | null>;

  createInvite(user: string, codeHash: string, expiresAt: number): Promise<void>;
  inviteValid(user: string, codeHashes: string[], now: number): Promise<boolean>;
  consumeInvite(user: string, codeHashes: string[], now: number): Promise<boolean>;
  /** After `users reset`, the first factor needs an invite whatever `enrollment` says. */
  needsInvite(user: string): Promise<boolean>;

  /** Removes every factor, recovery code, grant and lockout of the user; marks them invite-only. */
  resetUser(user: string): Promise<void>;

  audit(event: AuditEvent): Promise<void>;
  listAudit(query: AuditQuery): Promise<AuditEvent[]>;

  /** Removes what expired (spent tickets, invites, challenges, stashes) and old failure rows. */
  sweep(now: number): Promise<void>;
  close(): Promise<void>;
}

/** A factor row as both backends store it (they differ only in the user column's name). */
export function factorOf(row: Record<string, unknown>, user: unknown): FactorRecord {
  return {
    id: row.id as string,
    user: user as string,
    type: row.type as FactorRecord['type'],
    name: row.name as string,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null || row.last_used_at === undefined ? null : Number(row.last_used_at),
  };
}

/** An audit row as both backends store it (they differ only in the user column's name). */
export function auditEventOf(row: Record<string, unknown>, user: unknown): AuditEvent {
  return {
    at: Number(row.at),
    user: user as string | null,
    event: row.event as string,
    factor: row.factor as FactorType | null,
    outcome: row.outcome as AuditEvent['outcome'],
    ip: row.ip as string | null,
    userAgent: row.user_agent as string | null,
    requestId: row.request_id as string | null,
    detail: row.detail as string | null,
  };
}
