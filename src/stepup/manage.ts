// Managing a user's factors: enrolment of an authenticator app, listing and removing factors,
// regenerating recovery codes. Once a user has any factor, every change needs a verification no
// older than 5 minutes in this session; the very first factor needs an invite when
// `enrollment: invite` or after `users reset` (SPEC §8).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { FRESH_GRANT_MS, grantIsFresh } from '../grants/check.js';
import { newRecoveryCodes, recoveryCodeHash } from '../factors/recovery.js';
import { newTotpSecret, totpUri } from '../factors/totp.js';
import { inviteHashes } from '../factors/invite.js';
import type { FactorRecord } from '../store/store.js';
import { audit } from './audit.js';
import type { Caller } from './caller.js';
import { acceptTotp, assertCodeAttemptsAllowed } from './verify.js';

/** An unconfirmed authenticator-app secret is forgotten after this long. */
const PENDING_TOTP_MS = 15 * 60_000;
/**
 * May this caller change factors now? Returns the user's current factors. With factors: a fresh
 * grant of this session. Without: an invite when one is required (not consumed here).
 */
export async function authoriseChange(ctx: GatewayContext, caller: Caller, invite: unknown): Promise<FactorRecord[]> {
  const user = caller.identity.user;
  const factors = await ctx.store.listFactors(user);
  if (factors.length > 0) {
    const grant = await ctx.store.getGrant(caller.sessionKeys);
    if (!grantIsFresh(grant, user, ctx.clock.now())) {
      throw new GatewayError('STEP_UP_REQUIRED', `Changing your sign-in factors needs a verification from the last ${FRESH_GRANT_MS / 60_000} minutes.`);
    }
    return factors;
  }
  if (ctx.cfg.enrollment === 'invite' || (await ctx.store.needsInvite(user))) {
    const valid = typeof invite === 'string' && invite.length > 0 && (await ctx.store.inviteValid(user, inviteHashes(ctx.secrets, invite), ctx.clock.now()));
    if (!valid) throw new GatewayError('INVITE_REQUIRED');
  }
  return factors;
}

/** The invite that allowed a first factor is spent when that factor is created. */
export async function consumeInviteForFirstFactor(ctx: GatewayContext, caller: Caller, factors: FactorRecord[], invite: unknown): Promise<void> {
  const user = caller.identity.user;
  if (factors.length > 0 || !(ctx.cfg.enrollment === 'invite' || (await ctx.store.needsInvite(user)))) return;
  if (typeof invite !== 'string' || !(await ctx.store.consumeInvite(user, inviteHashes(ctx.secrets, invite), ctx.clock.now()))) {
    throw new GatewayError('INVITE_REQUIRED');
  }
}

export async function startTotpEnrolment(ctx: GatewayContext, caller: Caller, invite: unknown): Promise<{ secret: string; otpauthUri: string; qrSvg: string }> {
  const user = caller.identity.user;
  await authoriseChange(ctx, caller, invite);
  const secret = newTotpSecret();
  await ctx.store.setPendingTotp(user, ctx.secrets.encrypt(Buffer.from(secret), user), ctx.clock.now());
  const otpauthUri = totpUri(secret, caller.identity.name ?? user, ctx.cfg.theme.productName);
  // Loaded on first enrolment: most requests never need a QR encoder in memory.
  const { default: QRCode } = await import('qrcode');
  const qrSvg = await QRCode.toString(otpauthUri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
  return { secret, otpauthUri, qrSvg };
}

export async function confirmTotpEnrolment(
  ctx: GatewayContext,
  req: IncomingMessage,
  requestId: string,
  caller: Caller,
  code: unknown,
  invite: unknown,
): Promise<{ recoveryCodes?: string[] }> {
  const user = caller.identity.user;
  const factors = await authoriseChange(ctx, caller, invite);
  await assertCodeAttemptsAllowed(ctx, req, requestId, user, 'totp');
  const now = ctx.clock.now();
  const pending = await ctx.store.getPendingTotp(user, now - PENDING_TOTP_MS);
  if (!pending) throw new GatewayError('NO_CHALLENGE', 'Start setting up the authenticator app first.');
  const secret = ctx.secrets.decrypt(pending, user).toString('utf8');
  // The confirmation code is a TOTP use like any other: it advances the user's last step.
  await acceptTotp(ctx, req, requestId, user, secret, code, 'enroll');
  await consumeInviteForFirstFactor(ctx, caller, factors, invite);
  const confirmed = await ctx.store.confirmPendingTotp(user, randomUUID(), 'Authenticator app', now);
  if (!confirmed) throw new GatewayError('NO_CHALLENGE', 'Start setting up the authenticator app first.');
  ctx.factorTypes.forget(user);
  await audit(ctx, req, requestId, { user, event: 'factor.add', factor: 'totp', outcome: 'success' });
  if (!confirmed.first) return {};
  return { recoveryCodes: await issueRecoveryCodes(ctx, req, requestId, user) };
}

export async function issueRecoveryCodes(ctx: GatewayContext, req: IncomingMessage, requestId: string, user: string): Promise<string[]> {
  const codes = newRecoveryCodes();
  await ctx.store.replaceRecoveryCodes(user, codes.map((c) => recoveryCodeHash(ctx.secrets, user, c)), ctx.clock.now());
  await audit(ctx, req, requestId, { user, event: 'recovery.issue', factor: 'recovery', outcome: 'success' });
  return codes;
}

export async function regenerateRecoveryCodes(ctx: GatewayContext, req: IncomingMessage, requestId: string, caller: Caller): Promise<string[]> {
  const factors = await authoriseChange(ctx, caller, undefined);
  if (factors.length === 0) throw new GatewayError('NO_CHALLENGE', 'Set up a passkey or an authenticator app first.');
  return issueRecoveryCodes(ctx, req, requestId, caller.identity.user);
}

export async function removeFactor(ctx: GatewayContext, req: IncomingMessage, requestId: string, caller: Caller, id: string): Promise<void> {
  const user = caller.identity.user;
  const factors = await authoriseChange(ctx, caller, undefined);
  if (!factors.some((f) => f.id === id)) throw new GatewayError('NOT_FOUND', 'No such factor.');
  if (factors.length === 1 && ctx.cfg.unenrolled !== 'allow') throw new GatewayError('LAST_FACTOR');
  const removed = await ctx.store.deleteFactor(user, id);
  if (!removed) throw new GatewayError('NOT_FOUND', 'No such factor.');
  ctx.factorTypes.forget(user);
  // Recovery codes back up the other factors; with none left they would be a factor on their own.
  if (factors.length === 1) await ctx.store.replaceRecoveryCodes(user, [], ctx.clock.now());
  await audit(ctx, req, requestId, { user, event: 'factor.remove', factor: removed.type, outcome: 'success' });
}

