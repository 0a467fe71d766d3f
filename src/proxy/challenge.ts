// The answer to a gated request without a valid grant (SPEC §5): a 403 JSON challenge for scripts
// and API clients, a 303 to the verify page for browser navigations, an HTML page for form posts.
// Every variant carries X-Stepgate-Challenge: 1 and Cache-Control: no-store, and names a
// single-use ticket bound to the user and session of the challenged request: sealed
// (stepup/ticket.ts), so a challenge writes nothing to the store.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayContext } from '../context.js';
import type { FactorType } from '../config/types.js';
import type { RuleMatch } from '../rules/match.js';
import { verifyPage } from '../stepup/pages.js';
import { safeReturnTo } from '../stepup/return-to.js';
import { fromPublicOrigin, STASH_MAX_BYTES, stashSubmission } from '../stepup/stash.js';
import { inspectBody, type InspectedBody } from './body.js';
import { sendHtml } from '../stepup/http.js';

export interface ChallengeInput {
  requestId: string;
  user: string;
  sessionKey: string;
  match: RuleMatch;
  /** Canonical path + raw query of the challenged request: where the user returns after verifying. */
  target: string;
  enrolled: FactorType[];
  /** The body, if the pipeline already read it (conditions, `_method`). */
  body: InspectedBody | null;
  /** Extra headers (a fresh gateway session cookie). */
  headers: Record<string, string>;
}

type Kind = 'navigate' | 'form' | 'json';

/** Does the Accept header rank text/html at least as high as anything else it lists? */
function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = -1;
  let best = -1;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.find((p) => p.trim().startsWith('q='));
    const q = qParam ? Number(qParam.trim().slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type.trim() === 'text/html') html = Math.max(html, q);
    else best = Math.max(best, q);
  }
  return html > 0 && html >= best;
}

/** Navigation destinations that display what they get (a page can be shown there). */
const DISPLAYED = new Set(['document', 'iframe', 'frame', 'embed', 'object']);

function requestKind(req: IncomingMessage): Kind {
  const mode = req.headers['sec-fetch-mode'];
  const navigation = mode !== undefined ? mode === 'navigate' : prefersHtml(req.headers.accept);
  if (!navigation) return 'json';
  // A navigation that is not displayed (`<a download>`: Sec-Fetch-Dest: empty) saves whatever it
  // gets as a file: a 303 would save the verify page. The 403 makes the browser report a failed
  // download instead (docs/drop-in.md).
  const dest = req.headers['sec-fetch-dest'];
  if (dest !== undefined && !DISPLAYED.has(dest)) return 'json';
  if (req.method === 'GET' || req.method === 'HEAD') return 'navigate';
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return req.method === 'POST' && (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') ? 'form' : 'json';
}

/**
 * A classic form post: the verify page itself (403), naming the action. A same-origin submission
 * of at most 1 MiB is stashed and replayed once after verifying; a cross-site one never is, and a
 * larger one gets a page asking to submit again afterwards.
 */
async function sendFormChallenge(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, c: ChallengeInput, ticket: string, headers: Record<string, string>): Promise<void> {
  let stash: string | null = null;
  let notice: string | null = null;
  if (fromPublicOrigin(req, ctx.cfg.publicOrigin)) {
    const body = c.body ?? (await inspectBody(req, { maxBytes: STASH_MAX_BYTES, timeoutMs: 10_000 }));
    if (body.failure === null && body.bytes.length <= STASH_MAX_BYTES) stash = await stashSubmission(ctx, req, c.target, body, c.user, c.sessionKey);
    else notice = 'This form is too large to be kept while you verify: submit it again afterwards.';
  } else {
    notice = 'This form came from another site, so it is not sent on your behalf: after verifying, submit it again from the application.';
  }
  const referer = req.headers.referer;
  const unused = await ctx.store.countUnusedRecoveryCodes(c.user);
  sendHtml(res, 403, verifyPage({
    theme: ctx.cfg.theme,
    prefix: ctx.cfg.prefix,
    publicOrigin: ctx.cfg.publicOrigin,
    rule: c.match.name,
    ticket,
    // Back to the page that held the form once verified (when nothing is replayed).
    returnTo: safeReturnTo(referer ? refererPath(referer, ctx.cfg.publicOrigin) : '/', ctx.cfg.publicOrigin),
    factors: c.match.factors,
    enrolled: c.enrolled,
    hasRecoveryCodes: unused > 0,
    error: null,
    maxAgeMs: c.match.maxAgeMs,
    once: c.match.once,
    stash,
    action: { method: req.method ?? 'POST', path: c.target.split('?')[0] ?? '/' },
    notice,
  }), c.requestId, headers);
}

function refererPath(referer: string, publicOrigin: string): string {
  try {
    const url = new URL(referer);
    return url.origin === publicOrigin ? url.pathname + url.search : '/';
  } catch {
    return '/';
  }
}

export async function sendChallenge(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, c: ChallengeInput): Promise<void> {
  const ticket = ctx.tickets.issue({ user: c.user, sessionKey: c.sessionKey, rule: c.match.name });
  const prefix = ctx.cfg.prefix;
  const verifyUrl = `${prefix}/verify?rule=${encodeURIComponent(c.match.name)}&ticket=${ticket}&return_to=${encodeURIComponent(c.target)}`;
  const maxAge = Math.floor(c.match.maxAgeMs / 1000);
  const headers: Record<string, string> = { ...c.headers, 'x-stepgate-challenge': '1', 'cache-control': 'no-store', 'x-request-id': c.requestId };
  const kind = requestKind(req);
  if (kind === 'navigate') {
    // Built from public_origin, never from Host or X-Forwarded-*.
    res.writeHead(303, { ...headers, location: ctx.cfg.publicOrigin + verifyUrl, 'content-length': 0 });
    res.end();
    return;
  }
  if (kind === 'form') {
    await sendFormChallenge(ctx, req, res, c, ticket, headers);
    return;
  }
  const enrollUrl = c.enrolled.length === 0 ? { enrollUrl: `${prefix}/settings` } : {};
  const body = JSON.stringify({
    code: 'STEP_UP_REQUIRED',
    message: 'This action needs a fresh verification.',
    requestId: c.requestId,
    rule: c.match.name,
    maxAge,
    factors: c.match.factors,
    enrolled: c.enrolled,
    verifyUrl,
    ...enrollUrl,
  });
  if (/^bearer\s/i.test(req.headers.authorization ?? '')) {
    // RFC 9470 §3: the step-up challenge for OAuth-style bearer clients.
    headers['www-authenticate'] = `Bearer error="insufficient_user_authentication", error_description="step-up required", max_age=${maxAge}`;
  }
  res.writeHead(403, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
