// The gateway's own UI and API under `prefix` (SPEC §8). Never forwarded to the app.
// Handlers throw GatewayError; the pipeline writes it as {"code","message","requestId"}.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FactorType } from '../config/types.js';
import { ALL_FACTORS } from '../config/types.js';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { resolveCaller, type Caller } from './caller.js';
import { assertSameOrigin, readBody, readJsonObject, sendHtml, sendJson } from './http.js';
import { confirmTotpEnrolment, regenerateRecoveryCodes, removeFactor, startTotpEnrolment } from './manage.js';
import { serveAsset } from './assets.js';
import { escapeHtml, messagePage, settingsPage, verifyPage, type VerifyPageModel } from './pages.js';
import { safeReturnTo } from './return-to.js';
import { passkeyAuthenticationOptions, passkeyRegistrationOptions, registerPasskey, verifyPasskey } from './passkey.js';
import { verifyRecovery, verifyTotp } from './verify.js';
import { replayStash } from './stash.js';

type Handler = (ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string, sub: string) => Promise<void>;

const iso = (ms: number) => new Date(ms).toISOString();

/** JSON endpoints that change state: same-origin JSON only. */
function jsonPost(fn: (ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string, body: Record<string, unknown>) => Promise<unknown>): Handler {
  return async (ctx, req, res, requestId) => {
    assertSameOrigin(req, ctx.cfg.publicOrigin);
    const body = await readJsonObject(req);
    sendJson(res, 200, await fn(ctx, req, res, requestId, body), requestId);
  };
}

const status: Handler = async (ctx, req, res, requestId) => {
  const caller = await resolveCaller(ctx, req, res);
  const user = caller.identity.user;
  const [factors, grant] = await Promise.all([ctx.store.listFactors(user), ctx.store.getGrant(caller.sessionKeys)]);
  const current = grant && grant.user === user && ctx.clock.now() - grant.verifiedAt < ctx.routes.cfg.defaults.maxAgeMs ? grant : null;
  sendJson(res, 200, {
    user,
    name: caller.identity.name,
    enrolled: enrolledTypes(factors.map((f) => f.type)),
    grant: current ? { factor: current.factor, verifiedAt: iso(current.verifiedAt), expiresAt: iso(current.verifiedAt + ctx.routes.cfg.defaults.maxAgeMs) } : null,
  }, requestId);
};

export function enrolledTypes(types: readonly string[]): FactorType[] {
  return ALL_FACTORS.filter((f) => f !== 'recovery' && types.includes(f));
}

const listFactors: Handler = async (ctx, req, res, requestId) => {
  const caller = await resolveCaller(ctx, req, res);
  const factors = await ctx.store.listFactors(caller.identity.user);
  sendJson(res, 200, {
    factors: factors.map((f) => ({ id: f.id, type: f.type, name: f.name, createdAt: iso(f.createdAt), lastUsedAt: f.lastUsedAt === null ? null : iso(f.lastUsedAt) })),
  }, requestId);
};

const deleteFactor: Handler = async (ctx, req, res, requestId, sub) => {
  assertSameOrigin(req, ctx.cfg.publicOrigin);
  const caller = await resolveCaller(ctx, req, res);
  await removeFactor(ctx, req, requestId, caller, decodeURIComponent(sub.slice('/api/factors/'.length)));
  sendJson(res, 200, {}, requestId);
};

const API: Record<string, Record<string, Handler>> = {
  '/api/status': { GET: status },
  '/api/factors': { GET: listFactors },
  '/api/verify/totp': {
    POST: jsonPost(async (ctx, req, res, requestId, body) => verifyTotp(ctx, req, requestId, await resolveCaller(ctx, req, res, body.ticket), body.code)),
  },
  '/api/verify/recovery': {
    POST: jsonPost(async (ctx, req, res, requestId, body) => verifyRecovery(ctx, req, requestId, await resolveCaller(ctx, req, res, body.ticket), body.code)),
  },
  '/api/verify/passkey/options': {
    POST: jsonPost(async (ctx, req, res, _id, body) => passkeyAuthenticationOptions(ctx, await resolveCaller(ctx, req, res, body.ticket))),
  },
  '/api/verify/passkey': {
    POST: jsonPost(async (ctx, req, res, requestId, body) => verifyPasskey(ctx, req, requestId, await resolveCaller(ctx, req, res, body.ticket), body)),
  },
  '/api/enroll/passkey/options': {
    POST: jsonPost(async (ctx, req, res, _id, body) => passkeyRegistrationOptions(ctx, await resolveCaller(ctx, req, res), body.invite)),
  },
  '/api/enroll/passkey': {
    POST: jsonPost(async (ctx, req, res, requestId, body) => registerPasskey(ctx, req, requestId, await resolveCaller(ctx, req, res), body)),
  },
  '/api/enroll/totp': {
    POST: jsonPost(async (ctx, req, res, _id, body) => startTotpEnrolment(ctx, await resolveCaller(ctx, req, res), body.invite)),
  },
  '/api/enroll/totp/confirm': {
    POST: jsonPost(async (ctx, req, res, requestId, body) => confirmTotpEnrolment(ctx, req, requestId, await resolveCaller(ctx, req, res), body.code, body.invite)),
  },
  '/api/recovery/regenerate': {
    POST: jsonPost(async (ctx, req, res, requestId) => ({ recoveryCodes: await regenerateRecoveryCodes(ctx, req, requestId, await resolveCaller(ctx, req, res)) })),
  },
  '/api/grant/end': {
    POST: jsonPost(async (ctx, req, res, requestId) => {
      const caller = await resolveCaller(ctx, req, res);
      await ctx.store.deleteGrant(caller.sessionKeys);
      ctx.grants.forget(caller.sessionKeys);
      return {};
    }),
  },
  '/verify': { GET: verifyGet, POST: verifyPost },
  '/settings': { GET: settingsGet },
};

function factorsOfRule(ctx: GatewayContext, rule: string | null): readonly FactorType[] {
  if (!rule) return ctx.routes.cfg.defaults.factors;
  const names = rule.split(',');
  const rules = ctx.routes.cfg.rules.filter((r) => names.includes(r.name));
  if (rules.length === 0) return ctx.routes.cfg.defaults.factors;
  return ALL_FACTORS.filter((f) => rules.every((r) => r.factors.includes(f)));
}

function param(url: URL, name: string): string | null {
  const v = url.searchParams.get(name);
  return v && v.length <= 4096 ? v : null;
}

/** The rule(s)' window, so the verify page can say how long the verification lasts. */
function ruleWindow(ctx: GatewayContext, rule: string | null): { maxAgeMs: number | null; once: boolean } {
  const names = rule ? rule.split(',') : [];
  const rules = ctx.routes.cfg.rules.filter((r) => names.includes(r.name));
  if (rules.length === 0) return { maxAgeMs: null, once: false };
  return { maxAgeMs: Math.min(...rules.map((r) => r.maxAgeMs)), once: rules.some((r) => r.once) };
}

/**
 * Who a page is for. A ticket that expired or was spent does not strand the user: the page falls
 * back to the browser's own session (and drops the ticket). Null when nobody is signed in.
 */
async function pageCaller(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, ticket: string | null): Promise<{ caller: Caller; ticket: string | null } | null> {
  if (ticket) {
    try {
      return { caller: await resolveCaller(ctx, req, res, ticket), ticket };
    } catch (err) {
      if (!(err instanceof GatewayError) || (err.code !== 'AUTH_REQUIRED' && err.code !== 'BAD_REQUEST')) throw err;
    }
  }
  try {
    return { caller: await resolveCaller(ctx, req, res), ticket: null };
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'AUTH_REQUIRED') return null;
    throw err;
  }
}

/** The user's authenticators, and whether any recovery code is left, for the verify page. */
async function factorSummary(ctx: GatewayContext, user: string): Promise<{ enrolled: FactorType[]; hasRecoveryCodes: boolean }> {
  const [factors, unused] = await Promise.all([ctx.store.listFactors(user), ctx.store.countUnusedRecoveryCodes(user)]);
  return { enrolled: enrolledTypes(factors.map((f) => f.type)), hasRecoveryCodes: unused > 0 };
}

/** HTML pages answer errors as HTML (the JSON error shape is for the API). */
function sendPageError(ctx: GatewayContext, res: ServerResponse, requestId: string, err: GatewayError, embed = false): void {
  const signIn = err.code === 'AUTH_REQUIRED';
  const title = signIn ? 'Sign in first' : 'Something went wrong';
  const html = signIn
    ? `<p>Sign in to the application, then try again.</p><p><a class="btn btn-primary" href="/">Go to the application</a></p>`
    : `<p>${escapeHtml(err.message)}</p><p><a class="btn btn-secondary" href="/">Back to the application</a></p>`;
  sendHtml(res, err.status, messagePage(ctx.cfg.theme, title, html, { prefix: ctx.cfg.prefix, embed }), requestId, err.headers);
}

async function verifyGet(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const url = new URL(req.url ?? '/', ctx.cfg.publicOrigin);
  const rule = param(url, 'rule');
  const embed = url.searchParams.get('embed') === '1';
  let who;
  try {
    who = await pageCaller(ctx, req, res, param(url, 'ticket'));
    if (!who) throw new GatewayError('AUTH_REQUIRED');
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    sendPageError(ctx, res, requestId, err, embed);
    return;
  }
  sendHtml(res, 200, verifyPage({
    theme: ctx.cfg.theme,
    prefix: ctx.cfg.prefix,
    publicOrigin: ctx.cfg.publicOrigin,
    rule,
    ticket: who.ticket,
    returnTo: safeReturnTo(param(url, 'return_to'), ctx.cfg.publicOrigin),
    factors: factorsOfRule(ctx, rule),
    ...(await factorSummary(ctx, who.caller.identity.user)),
    ...ruleWindow(ctx, rule),
    embed,
    use: param(url, 'use'),
    stash: param(url, 'stash'),
    error: null,
  }), requestId);
}

/** Replays the caller's stash with the session's current grant; false when there was nothing to send. */
async function replayWithGrant(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string, caller: Caller, stash: string): Promise<boolean> {
  const grant = await ctx.store.getGrant(caller.sessionKeys);
  return grant !== null && (await replayStash(ctx, req, res, requestId, caller, stash, grant));
}

/** A stash that could not be replayed after the user had verified: it was sent already, or expired. */
function sendNotSentAgain(ctx: GatewayContext, res: ServerResponse, requestId: string, returnTo: string): void {
  const html = `<p>This form was already sent once after you confirmed it’s you, or it has expired, so it was not sent again.</p>
<p>If it still needs sending, submit it again from the application.</p>
<p><a class="btn btn-primary" id="sg-return" href="${escapeHtml(returnTo)}">Back to the application</a></p>`;
  sendHtml(res, 409, messagePage(ctx.cfg.theme, 'Nothing was sent again', html, { prefix: ctx.cfg.prefix }), requestId);
}

/**
 * The verify form's POST: the no-JavaScript path (`code` + ticket, return_to, then 303 back to the
 * action), and the replay of a stashed form post (SPEC §5), which also answers the page's own post
 * of the stash alone after a passkey verification.
 */
async function verifyPost(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  assertSameOrigin(req, ctx.cfg.publicOrigin);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'Send the verify form.');
  const form = new URLSearchParams((await readBody(req)).toString('utf8'));
  const rule = form.get('rule');
  const ticket = form.get('ticket');
  const returnTo = safeReturnTo(form.get('return_to'), ctx.cfg.publicOrigin);
  const factors = factorsOfRule(ctx, rule);
  const code = (form.get('code') ?? '').replace(/\s+/g, '');
  const factor: FactorType = /^\d{6}$/.test(code) ? 'totp' : 'recovery';
  const stash = form.get('stash');
  let caller: Caller | null = null;
  // The ticket the re-rendered page carries (dropped once it is known to be spent).
  let pageTicket = ticket;
  const page = async (error: string, retryAfter: string | undefined): Promise<string> => {
    const model: VerifyPageModel = {
      theme: ctx.cfg.theme,
      prefix: ctx.cfg.prefix,
      publicOrigin: ctx.cfg.publicOrigin,
      rule,
      ticket: pageTicket,
      returnTo,
      factors,
      error,
      ...ruleWindow(ctx, rule),
      use: factor,
      stash: form.get('stash'),
      retryAfter: retryAfter ? Number(retryAfter) : null,
    };
    return verifyPage(caller ? { ...model, ...(await factorSummary(ctx, caller.identity.user)) } : model);
  };
  if (stash) {
    // A verification spends the ticket. So the page's own post of the stash alone (after a passkey)
    // and a reload of a finished submission (its ticket spent) are decided by this browser's session
    // and its grant: what is still kept is sent once, and nothing is ever sent twice.
    const who = await pageCaller(ctx, req, res, ticket);
    if (!who) {
      sendPageError(ctx, res, requestId, new GatewayError('AUTH_REQUIRED'));
      return;
    }
    if (code === '' || (ticket && who.ticket === null)) {
      caller = who.caller;
      pageTicket = who.ticket;
      if (await replayWithGrant(ctx, req, res, requestId, caller, stash)) return;
      if (code !== '' || (await ctx.store.getGrant(caller.sessionKeys))) {
        sendNotSentAgain(ctx, res, requestId, returnTo);
        return;
      }
      sendHtml(res, 409, await page('Verify first; then your form is sent.', undefined), requestId);
      return;
    }
  }
  if (!factors.includes(factor)) {
    sendHtml(res, 400, await page(factor === 'totp' ? 'This action does not accept authenticator-app codes.' : 'This action does not accept recovery codes.', undefined), requestId);
    return;
  }
  try {
    caller = await resolveCaller(ctx, req, res, ticket);
    await (factor === 'totp' ? verifyTotp(ctx, req, requestId, caller, code) : verifyRecovery(ctx, req, requestId, caller, code));
  } catch (err) {
    if (!(err instanceof GatewayError) || err.status >= 500) throw err;
    sendHtml(res, err.status, await page(err.message, err.headers?.['retry-after']), requestId, err.headers);
    return;
  }
  // SPEC §5: the stashed submission goes to the app once, and the user sees the app's answer.
  if (stash && (await replayWithGrant(ctx, req, res, requestId, caller, stash))) return;
  res.writeHead(303, { location: new URL(returnTo, ctx.cfg.publicOrigin).href, 'cache-control': 'no-store', 'x-request-id': requestId });
  res.end();
}

async function settingsGet(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const url = new URL(req.url ?? '/', ctx.cfg.publicOrigin);
  let caller: Caller;
  try {
    caller = await resolveCaller(ctx, req, res);
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    sendPageError(ctx, res, requestId, err);
    return;
  }
  const user = caller.identity.user;
  const [factors, recoveryLeft] = await Promise.all([ctx.store.listFactors(user), ctx.store.countUnusedRecoveryCodes(user)]);
  const returnTo = param(url, 'return_to');
  const then = param(url, 'then');
  const invite = param(url, 'invite');
  const inviteMissing = factors.length === 0 && !invite && (ctx.cfg.enrollment === 'invite' || (await ctx.store.needsInvite(user)));
  sendHtml(res, 200, settingsPage({
    theme: ctx.cfg.theme,
    prefix: ctx.cfg.prefix,
    user,
    name: caller.identity.name,
    factors,
    recoveryLeft,
    invite,
    inviteMissing,
    returnTo: returnTo ? safeReturnTo(returnTo, ctx.cfg.publicOrigin) : null,
    then: then && /^[a-z-]{1,32}(:[\w-]{1,64})?$/.test(then) ? then : null,
  }), requestId);
}

const assets: Record<string, Handler> = {
  GET: async (_ctx, req, res, requestId, sub) => serveAsset(req, res, requestId, sub),
};

/** The drop-in client keeps a stable URL (apps and the injected tag name it): ui/client.ts. */
const clientScript: Record<string, Handler> = {
  GET: async (_ctx, req, res, requestId) => serveAsset(req, res, requestId, '/assets/client.js'),
};

/** Entry point for every request whose canonical path is under `prefix`. */
export async function handleStepup(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string, path: string): Promise<void> {
  const sub = path.slice(ctx.cfg.prefix.length) || '/';
  const table = sub.startsWith('/api/factors/') ? { DELETE: deleteFactor } : sub.startsWith('/assets/') ? assets : sub === '/client.js' ? clientScript : API[sub];
  if (!table) throw new GatewayError('NOT_FOUND');
  const handler = table[req.method === 'HEAD' ? 'GET' : req.method ?? ''];
  if (!handler) throw new GatewayError('METHOD_NOT_ALLOWED', undefined, { allow: Object.keys(table).join(', ') });
  await handler(ctx, req, res, requestId, sub);
}

