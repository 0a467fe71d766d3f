// SPEC §9.8: every verification attempt, factor change, reset and replay is an audit event, in the
// store and as a log line. Never with a code, secret or credential in it.
import type { IncomingMessage } from 'node:http';
import type { FactorType } from '../config/types.js';
import type { GatewayContext } from '../context.js';
import { clientAddress } from '../proxy/headers.js';
import type { AuditEvent } from '../store/store.js';
import { userAgentOf } from './http.js';

export interface AuditFacts {
  user: string | null;
  event: string;
  factor: FactorType | null;
  outcome: AuditEvent['outcome'];
  detail?: string;
}

export async function audit(ctx: GatewayContext, req: IncomingMessage | null, requestId: string | null, facts: AuditFacts): Promise<void> {
  const event: AuditEvent = {
    at: ctx.clock.now(),
    user: facts.user,
    event: facts.event,
    factor: facts.factor,
    outcome: facts.outcome,
    ip: req ? (clientAddress(req, ctx.headerPolicy.trustProxy) ?? null) : null,
    userAgent: req ? userAgentOf(req) : null,
    requestId,
    detail: facts.detail ?? null,
  };
  if (facts.event === 'verify' && facts.factor && facts.outcome !== 'info') ctx.metrics.verification(facts.factor, facts.outcome);
  if (facts.event === 'lockout') ctx.metrics.lockout();
  ctx.log.info({ audit: true, ...event, at: new Date(event.at).toISOString() }, `audit ${facts.event} ${facts.outcome}`);
  await ctx.store.audit(event);
}

