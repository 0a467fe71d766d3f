// The identity step of the pipeline, with its failures mapped to the SPEC §4.4 answers:
// source failing → 503 IDENTITY_UNAVAILABLE, two users on one request → 400 AMBIGUOUS_IDENTITY.
import type { IncomingMessage } from 'node:http';
import type { GatewayContext } from '../context.js';
import { GatewayError } from '../errors.js';
import { unmapIPv4 } from '../net/cidr.js';
import { AmbiguousIdentityError, IdentityUnavailableError, type Identity, type IdentityInput } from './types.js';

export function identityInput(req: IncomingMessage): IdentityInput {
  return { headers: req.headers, peer: req.socket.remoteAddress ? unmapIPv4(req.socket.remoteAddress) : undefined };
}

export async function resolveIdentity(ctx: GatewayContext, req: IncomingMessage): Promise<Identity | null> {
  try {
    return await ctx.identity.resolve(identityInput(req));
  } catch (err) {
    if (err instanceof AmbiguousIdentityError) throw new GatewayError('AMBIGUOUS_IDENTITY');
    if (err instanceof IdentityUnavailableError) {
      ctx.log.warn({ err: err.message }, 'identity source failed');
      throw new GatewayError('IDENTITY_UNAVAILABLE');
    }
    throw err;
  }
}
