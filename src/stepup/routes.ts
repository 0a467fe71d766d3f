// The gateway's own UI and API under `prefix` (SPEC §8). Never forwarded to the app.
// Handlers throw GatewayError; the pipeline writes it as {"code","message","requestId"}.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FactorType } from '../config/types.js';
import { ALL_FACTORS } from '../config/types.js';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { resolveCaller } from './caller.js';
import { assertSameOrigin, readBody, readJsonObject, sendHtml, sendJson } from './http.js';
import { confirmTotpEnrolment, regenerateRecoveryCodes, removeFactor, startTotpEnrolment } from './manage.js';
import { messagePage, verifyPage } from './pages.js';
import { safeReturnTo } from './return-to.js';
import { passkeyAuthenticationOptions, passkeyRegistrationOptions, registerPasskey, verifyPasskey } from './passkey.js';
import { verifyRecovery, verifyTotp } from './verify.js';

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

async function verifyGet(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const url = new URL(req.url ?? '/', ctx.cfg.publicOrigin);
  const rule = param(url, 'rule');
  sendHtml(res, 200, verifyPage({
    theme: ctx.cfg.theme,
    prefix: ctx.cfg.prefix,
    rule,
    ticket: param(url, 'ticket'),
    returnTo: safeReturnTo(param(url, 'return_to'), ctx.cfg.publicOrigin),
    factors: factorsOfRule(ctx, rule),
    error: null,
  }), requestId);
}

/** The no-JavaScript path: a form post of `code` (+ ticket, return_to), then 303 back to the action. */
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
  const page = (error: string) => verifyPage({ theme: ctx.cfg.theme, prefix: ctx.cfg.prefix, rule, ticket, returnTo, factors, error });
  if (!factors.includes(factor)) {
    sendHtml(res, 400, page(factor === 'totp' ? 'This action does not accept authenticator-app codes.' : 'This action does not accept recovery codes.'), requestId);
    return;
  }
  try {
    const caller = await resolveCaller(ctx, req, res, ticket);
    await (factor === 'totp' ? verifyTotp(ctx, req, requestId, caller, code) : verifyRecovery(ctx, req, requestId, caller, code));
  } catch (err) {
    if (!(err instanceof GatewayError) || err.status >= 500) throw err;
    sendHtml(res, err.status, page(err.message), requestId, err.headers);
    return;
  }
  res.writeHead(303, { location: new URL(returnTo, ctx.cfg.publicOrigin).href, 'cache-control': 'no-store', 'x-request-id': requestId });
  res.end();
}

async function settingsGet(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const caller = await resolveCaller(ctx, req, res);
  const factors = await ctx.store.listFactors(caller.identity.user);
  const list = factors.length ? `<ul>${factors.map((f) => `<li>${f.type}: ${f.name}</li>`).join('')}</ul>` : '<p>No factor is set up yet.</p>';
  sendHtml(res, 200, messagePage(ctx.cfg.theme, 'Sign-in security', `${list}<p>Set up an authenticator app with <code>POST ${ctx.cfg.prefix}/api/enroll/totp</code> (see docs/api-clients.md).</p>`), requestId);
}

/** Entry point for every request whose canonical path is under `prefix`. */
export async function handleStepup(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, requestId: string, path: string): Promise<void> {
  const sub = path.slice(ctx.cfg.prefix.length) || '/';
  const table = sub.startsWith('/api/factors/') ? { DELETE: deleteFactor } : API[sub];
  if (!table) throw new GatewayError('NOT_FOUND');
  const handler = table[req.method === 'HEAD' ? 'GET' : req.method ?? ''];
  if (!handler) throw new GatewayError('METHOD_NOT_ALLOWED', undefined, { allow: Object.keys(table).join(', ') });
  await handler(ctx, req, res, requestId, sub);
}

