// Who is calling the gateway's own API, and which session a verification belongs to: the
// browser's own credentials, or a challenge `ticket` naming the session of the challenged request
// (for apps that keep a bearer token in script memory, SPEC §5; sealed, see ticket.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { gatewayCookieHeader, sessionBinding } from '../grants/session-key.js';
import type { Identity } from '../identity/types.js';
import { resolveIdentity } from '../identity/resolve.js';
import { openTicket, TICKET_MAX_CHARS, type OpenedTicket } from './ticket.js';

export interface Caller {
  identity: Identity;
  /** Session-key HMACs, primary first. */
  sessionKeys: string[];
  /** Set when the caller was named by a ticket (to spend it on success). */
  ticket: OpenedTicket | null;
}

function validTicketShape(t: unknown): t is string {
  return typeof t === 'string' && t.length <= TICKET_MAX_CHARS && /^[A-Za-z0-9_-]{20,}$/.test(t);
}

/**
 * The caller of an API request. With a ticket, the ticket's user and session; otherwise the
 * identity source's answer for the request (401 when anonymous). A gateway cookie minted for a
 * session without one is set on `res`.
 */
export async function resolveCaller(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, ticket?: unknown): Promise<Caller> {
  if (ticket !== undefined && ticket !== null && ticket !== '') {
    if (!validTicketShape(ticket)) throw new GatewayError('BAD_REQUEST', 'The ticket is malformed.');
    const opened = openTicket(ctx.secrets, ticket, ctx.clock.now());
    if (!opened || (await ctx.store.isTicketSpent(opened.idHash))) {
      throw new GatewayError('AUTH_REQUIRED', 'The verification link expired. Retry the action to get a new one.');
    }
    return { identity: { user: opened.user, name: null, sessionId: null }, sessionKeys: [opened.sessionKey], ticket: opened };
  }
  const identity = await resolveIdentity(ctx, req);
  if (!identity) throw new GatewayError('AUTH_REQUIRED');
  const binding = sessionBinding(req.headers, identity, ctx.cfg.identity, ctx.cfg.publicOrigin, ctx.secrets);
  if (binding.newGatewayCookie) res.setHeader('set-cookie', gatewayCookieHeader(ctx.cfg.publicOrigin, binding.newGatewayCookie));
  return { identity, sessionKeys: binding.keys, ticket: null };
}
