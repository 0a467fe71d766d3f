// Form posts that met a challenge (SPEC §5): the submission is kept server-side — encrypted, one
// use, 5 minutes, at most 1 MiB, bound to user and session — and replayed to the app exactly once
// after the user verifies, so nothing they typed is lost. Only same-origin posts are stashed: a
// cross-site form must never be replayed with the user's fresh verification.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { GatewayContext } from '../context.js';
import type { InspectedBody } from '../proxy/body.js';
import { upstreamHeaders } from '../proxy/headers.js';
import type { Caller } from './caller.js';
import { canonicalise } from '../rules/canonical.js';
import { grantSatisfies, trustedHeaders } from '../grants/check.js';
import type { GrantRecord } from '../store/store.js';
import { audit } from './audit.js';

export const STASH_MAX_BYTES = 1024 * 1024;
const STASH_TTL_MS = 5 * 60_000;
const PURPOSE = 'stash';
/** Request headers the app may need to accept the replayed form as the original (CSRF checks, negotiation). */
const KEPT_HEADERS = ['content-type', 'origin', 'referer', 'accept', 'accept-language'] as const;

interface Submission {
  method: string;
  target: string;
  headers: Record<string, string>;
  body: string; // base64
}

/** Did the post come from a page of the public origin? Without either header we cannot tell: no. */
export function fromPublicOrigin(req: IncomingMessage, publicOrigin: string): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  return req.headers.origin === publicOrigin;
}

/** Stashes a complete form body; returns the stash id for the verify page. */
export async function stashSubmission(ctx: GatewayContext, req: IncomingMessage, target: string, body: InspectedBody, user: string, sessionKey: string): Promise<string> {
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const v = req.headers[name];
    if (typeof v === 'string') headers[name] = v;
  }
  const submission: Submission = { method: req.method ?? 'POST', target, headers, body: body.bytes.toString('base64') };
  const id = randomBytes(24).toString('base64url');
  await ctx.store.createStash(ctx.secrets.hmac(PURPOSE, id), {
    user,
    sessionKey,
    payloadEnc: ctx.secrets.encrypt(Buffer.from(JSON.stringify(submission)), user),
    expiresAt: ctx.clock.now() + STASH_TTL_MS,
  });
  return id;
}

/**
 * Takes the caller's stash (one use) and sends it to the app with the grant just made, streaming
 * the app's answer to `res`. False when there is nothing to replay (expired, already replayed,
 * another session's) or the grant does not satisfy the rules gating it (then nothing is sent).
 */
export async function replayStash(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  caller: Caller,
  stashId: string,
  grant: GrantRecord,
): Promise<boolean> {
  if (!/^[A-Za-z0-9_-]{20,64}$/.test(stashId)) return false;
  const user = caller.identity.user;
  const record = await ctx.store.takeStash(ctx.secrets.hmacAll(PURPOSE, stashId), user, caller.sessionKeys, ctx.clock.now());
  if (!record) return false;
  const submission = JSON.parse(ctx.secrets.decrypt(record.payloadEnc, user).toString('utf8')) as Submission;
  const body = Buffer.from(submission.body, 'base64');
  // SPEC §9.8: a replay is an audit event. The action is named by method and path (never the query).
  const action = `${submission.method} ${submission.target.split('?')[0] ?? '/'}`;
  const refused = async (why: string) => {
    await audit(ctx, req, requestId, { user, event: 'stash.replay', factor: grant.factor, outcome: 'failure', detail: `${action}: ${why}` });
    return false;
  };
  // The same decision the pipeline makes, against the rules in force now.
  const canon = canonicalise(submission.target, ctx.routes.cfg.encodedSlashes);
  if (!canon.ok) return refused('bad path');
  const match = ctx.routes.rules.match([submission.method], canon.matchPaths);
  if (match && !grantSatisfies(grant, user, match, ctx.clock.now())) return refused('verification does not satisfy the rule');
  if (match?.once && !(await ctx.store.consumeOnce(caller.sessionKeys, grant.verifiedAt))) return refused('one-shot verification already used');
  await audit(ctx, req, requestId, { user, event: 'stash.replay', factor: grant.factor, outcome: 'success', detail: action });
  // A rule change since the post may have ungated it: then it goes like any free request.
  const trusted = match ? trustedHeaders(grant, match.name) : undefined;
  // The verify request carries the session's own credentials (cookies); the body and its
  // description come from the stash.
  const headers = upstreamHeaders(req, ctx.headerPolicy, requestId, trusted);
  for (const name of ['content-type', 'content-length', 'content-encoding', 'origin', 'referer', 'accept', 'accept-language', 'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest']) delete headers[name];
  Object.assign(headers, submission.headers, { 'content-length': String(body.length) });
  ctx.forwarder.forward(req, res, {
    method: submission.method,
    target: submission.target,
    headers,
    body: Readable.from([body]),
    requestId,
    verifiedAnswer: true,
  });
  return true;
}
