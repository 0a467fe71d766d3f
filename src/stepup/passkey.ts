// Passkeys (WebAuthn) with @simplewebauthn/server: the phishing-resistant factor, offered first.
// rpID and the expected origin derive from public_origin. Challenges are kept server-side,
// single-use, bound to user and session, 2 minutes, several open at once (several tabs) — the
// library is handed a function that consumes the challenge it finds in clientDataJSON (SPEC §9.5).
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AuthenticationResponseJSON, AuthenticatorTransportFuture, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../errors.js';
import type { ChallengePurpose } from '../store/store.js';
import { audit } from './audit.js';
import type { Caller } from './caller.js';
import { authoriseChange, consumeInviteForFirstFactor, issueRecoveryCodes } from './manage.js';
import { grant, type VerifiedGrant } from './verify.js';

const CHALLENGE_TTL_MS = 2 * 60_000;

/**
 * Loaded on first use: the WebAuthn library and its ASN.1/CBOR stack cost ~15 MiB of RSS that a
 * gateway whose users never touch passkeys should not pay.
 */
const webauthn = () => import('@simplewebauthn/server');
const MAX_NAME_LENGTH = 64;

function relyingParty(ctx: GatewayContext): { rpID: string; origin: string } {
  return { rpID: new URL(ctx.cfg.publicOrigin).hostname, origin: ctx.cfg.publicOrigin };
}

async function rememberChallenge(ctx: GatewayContext, caller: Caller, challenge: string, purpose: ChallengePurpose): Promise<void> {
  await ctx.store.createWebauthnChallenge(challenge, caller.identity.user, caller.sessionKeys[0]!, purpose, ctx.clock.now() + CHALLENGE_TTL_MS);
}

function consumer(ctx: GatewayContext, caller: Caller, purpose: ChallengePurpose): (challenge: string) => Promise<boolean> {
  return (challenge) => ctx.store.consumeWebauthnChallenge(challenge, caller.identity.user, caller.sessionKeys, purpose, ctx.clock.now());
}

function asJsonObject<T>(value: unknown): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new GatewayError('BAD_REQUEST', 'Expected a WebAuthn response object.');
  return value as T;
}

export async function passkeyAuthenticationOptions(ctx: GatewayContext, caller: Caller) {
  const passkeys = await ctx.store.listPasskeys(caller.identity.user);
  if (passkeys.length === 0) throw new GatewayError('NO_CHALLENGE', 'No passkey is set up for this account.');
  const options = await (await webauthn()).generateAuthenticationOptions({
    rpID: relyingParty(ctx).rpID,
    allowCredentials: passkeys.map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransportFuture[] })),
    userVerification: 'required',
    timeout: CHALLENGE_TTL_MS,
  });
  await rememberChallenge(ctx, caller, options.challenge, 'authenticate');
  return options;
}

export async function verifyPasskey(ctx: GatewayContext, req: IncomingMessage, requestId: string, caller: Caller, body: unknown): Promise<VerifiedGrant> {
  const user = caller.identity.user;
  const response = asJsonObject<AuthenticationResponseJSON>(body);
  const reject = async (detail: string): Promise<never> => {
    await audit(ctx, req, requestId, { user, event: 'verify', factor: 'passkey', outcome: 'failure', detail });
    throw new GatewayError('PASSKEY_REJECTED');
  };
  // The credential must belong to the session's user: a passkey of another account proves nothing here.
  const passkey = (await ctx.store.listPasskeys(user)).find((p) => p.credentialId === response.id);
  if (!passkey) return reject('unknown credential for this user');
  const { rpID, origin } = relyingParty(ctx);
  let verification;
  try {
    verification = await (await webauthn()).verifyAuthenticationResponse({
      response,
      expectedChallenge: consumer(ctx, caller, 'authenticate'),
      expectedOrigin: origin,
      expectedRPID: rpID,
      credential: { id: passkey.credentialId, publicKey: new Uint8Array(passkey.publicKey), counter: passkey.counter, transports: passkey.transports as AuthenticatorTransportFuture[] },
      requireUserVerification: true,
    });
  } catch (err) {
    return reject((err as Error).message.slice(0, 200));
  }
  if (!verification.verified) return reject('signature not verified');
  if (!(await ctx.store.updatePasskeyCounter(passkey.id, verification.authenticationInfo.newCounter, ctx.clock.now()))) {
    return reject('signature counter did not increase (possible cloned authenticator)');
  }
  return grant(ctx, req, requestId, caller, 'passkey');
}

export async function passkeyRegistrationOptions(ctx: GatewayContext, caller: Caller, invite: unknown) {
  const user = caller.identity.user;
  await authoriseChange(ctx, caller, invite);
  // A random handle, not the app's user id: authenticators (and whoever reads them) never learn it.
  const handle = await ctx.store.webauthnUserHandle(user, () => randomBytes(32).toString('base64url'));
  const existing = await ctx.store.listPasskeys(user);
  const options = await (await webauthn()).generateRegistrationOptions({
    rpName: ctx.cfg.theme.productName,
    rpID: relyingParty(ctx).rpID,
    userName: caller.identity.name ?? user,
    userID: Buffer.from(handle, 'base64url'),
    attestationType: 'none',
    excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransportFuture[] })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    timeout: CHALLENGE_TTL_MS,
  });
  await rememberChallenge(ctx, caller, options.challenge, 'register');
  return options;
}

export async function registerPasskey(
  ctx: GatewayContext,
  req: IncomingMessage,
  requestId: string,
  caller: Caller,
  body: Record<string, unknown>,
): Promise<{ id: string; name: string; recoveryCodes?: string[] }> {
  const user = caller.identity.user;
  const factors = await authoriseChange(ctx, caller, body.invite);
  const response = asJsonObject<RegistrationResponseJSON>(body.response);
  const name = typeof body.name === 'string' && body.name.trim() ? body.name.trim().slice(0, MAX_NAME_LENGTH) : 'Passkey';
  const { rpID, origin } = relyingParty(ctx);
  let verification;
  try {
    verification = await (await webauthn()).verifyRegistrationResponse({
      response,
      expectedChallenge: consumer(ctx, caller, 'register'),
      expectedOrigin: origin,
      expectedRPID: rpID,
      requireUserVerification: true,
    });
  } catch (err) {
    await audit(ctx, req, requestId, { user, event: 'factor.add', factor: 'passkey', outcome: 'failure', detail: (err as Error).message.slice(0, 200) });
    throw new GatewayError('PASSKEY_REJECTED');
  }
  if (!verification.verified) throw new GatewayError('PASSKEY_REJECTED');
  await consumeInviteForFirstFactor(ctx, caller, factors, body.invite);
  const info = verification.registrationInfo;
  const id = randomUUID();
  const { first } = await ctx.store.addPasskey(user, {
    id,
    name,
    credentialId: info.credential.id,
    publicKey: Buffer.from(info.credential.publicKey),
    counter: info.credential.counter,
    transports: info.credential.transports ?? [],
    backedUp: info.credentialBackedUp,
    deviceType: info.credentialDeviceType,
  }, ctx.clock.now());
  ctx.factorTypes.forget(user);
  await audit(ctx, req, requestId, { user, event: 'factor.add', factor: 'passkey', outcome: 'success' });
  return first ? { id, name, recoveryCodes: await issueRecoveryCodes(ctx, req, requestId, user) } : { id, name };
}
