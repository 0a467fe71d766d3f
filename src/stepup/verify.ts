// Verifying a code (TOTP or recovery) and turning a success into the session's grant.
// Order matters: lockout first (a locked user's guesses are not even evaluated), then the code,
// then the conditional update that makes it single-use, then the grant. Every outcome is audited.
import type { IncomingMessage } from 'node:http';
import type { FactorType } from '../config/types.js';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { normaliseCode, totpStepOf } from '../factors/totp.js';
import { normaliseRecoveryCode, recoveryCodeHashes } from '../factors/recovery.js';
import { audit } from './audit.js';
import type { Caller } from './caller.js';

export interface VerifiedGrant {
  ok: true;
  factor: FactorType;
  verifiedAt: string;
  expiresAt: string;
}

/** SPEC §9.4: locked → 429 with Retry-After; disabled after 100 failures → 403 FACTOR_DISABLED. */
export async function assertCodeAttemptsAllowed(ctx: GatewayContext, req: IncomingMessage, requestId: string, user: string, factor: FactorType): Promise<void> {
  const now = ctx.clock.now();
  const lock = await ctx.store.getLockout(user, now);
  if (lock.disabled) {
    await audit(ctx, req, requestId, { user, event: 'verify', factor, outcome: 'failure', detail: 'factor disabled' });
    throw new GatewayError('FACTOR_DISABLED');
  }
  if (lock.lockedUntil !== null) {
    await audit(ctx, req, requestId, { user, event: 'verify', factor, outcome: 'failure', detail: 'rate limited' });
    const seconds = Math.max(1, Math.ceil((lock.lockedUntil - now) / 1000));
    throw new GatewayError('RATE_LIMITED', undefined, { 'retry-after': String(seconds) });
  }
}

/** Records a refused code (it counts towards the lockout) and throws INVALID_CODE. */
export async function refuseCode(ctx: GatewayContext, req: IncomingMessage, requestId: string, user: string, event: string, factor: FactorType, detail: string): Promise<never> {
  const state = await ctx.store.recordFailure(user, ctx.clock.now());
  await audit(ctx, req, requestId, { user, event, factor, outcome: 'failure', detail });
  if (state.lockedUntil !== null) await audit(ctx, req, requestId, { user, event: 'lockout', factor, outcome: 'info', detail: 'too many failed attempts' });
  throw new GatewayError('INVALID_CODE');
}

/**
 * Checks a TOTP code for `user` against `secret`: valid within ±1 step AND a later step than the
 * last one accepted for that user (RFC 6238 §5.2), else a counted failure.
 */
export async function acceptTotp(ctx: GatewayContext, req: IncomingMessage, requestId: string, user: string, secret: string, rawCode: unknown, event: string): Promise<void> {
  const code = normaliseCode(rawCode);
  const step = code === null ? null : totpStepOf(secret, code, ctx.clock.now());
  if (step === null) await refuseCode(ctx, req, requestId, user, event, 'totp', 'wrong code');
  else if (!(await ctx.store.advanceTotpStep(user, step))) await refuseCode(ctx, req, requestId, user, event, 'totp', 'replayed or older code');
}

export async function verifyTotp(ctx: GatewayContext, req: IncomingMessage, requestId: string, caller: Caller, rawCode: unknown): Promise<VerifiedGrant> {
  const user = caller.identity.user;
  await assertCodeAttemptsAllowed(ctx, req, requestId, user, 'totp');
  const factor = await ctx.store.getTotp(user);
  if (!factor) return refuseCode(ctx, req, requestId, user, 'verify', 'totp', 'no authenticator app enrolled');
  const secret = ctx.secrets.decrypt(factor.secretEnc, user).toString('utf8');
  await acceptTotp(ctx, req, requestId, user, secret, rawCode, 'verify');
  await ctx.store.touchFactor(factor.id, ctx.clock.now());
  return grant(ctx, req, requestId, caller, 'totp');
}

export async function verifyRecovery(ctx: GatewayContext, req: IncomingMessage, requestId: string, caller: Caller, rawCode: unknown): Promise<VerifiedGrant> {
  const user = caller.identity.user;
  await assertCodeAttemptsAllowed(ctx, req, requestId, user, 'recovery');
  const code = typeof rawCode === 'string' ? normaliseRecoveryCode(rawCode) : null;
  const used = code !== null && (await ctx.store.useRecoveryCode(user, recoveryCodeHashes(ctx.secrets, user, code), ctx.clock.now()));
  if (!used) return refuseCode(ctx, req, requestId, user, 'verify', 'recovery', 'wrong or spent recovery code');
  return grant(ctx, req, requestId, caller, 'recovery');
}

/** The session's one grant becomes this verification (re-arming `once` rules), and the ticket is spent. */
export async function grant(ctx: GatewayContext, req: IncomingMessage, requestId: string, caller: Caller, factor: FactorType): Promise<VerifiedGrant> {
  const now = ctx.clock.now();
  const user = caller.identity.user;
  if (caller.ticket && !(await ctx.store.spendTicket(caller.ticket.idHash, caller.ticket.expiresAt, now))) {
    // Another request spent the ticket between our lookup and now (or it expired meanwhile).
    throw new GatewayError('AUTH_REQUIRED', 'The verification link was already used. Retry the action.');
  }
  if (caller.ticket) ctx.tickets.spent(caller.ticket);
  const [primary, ...stale] = caller.sessionKeys;
  await ctx.store.putGrant(primary!, { user, factor, verifiedAt: now, onceConsumed: false }, stale);
  ctx.grants.forget(caller.sessionKeys);
  await ctx.store.recordSuccess(user, factor);
  await audit(ctx, req, requestId, { user, event: 'verify', factor, outcome: 'success' });
  return {
    ok: true,
    factor,
    verifiedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ctx.routes.cfg.defaults.maxAgeMs).toISOString(),
  };
}
