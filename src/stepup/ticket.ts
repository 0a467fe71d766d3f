// Challenge tickets (SPEC §5): the `ticket` of a challenge names the challenged user, session and
// rule in a token sealed with AES-256-GCM under the gateway's secret, so a 403 writes nothing to the
// store (a database row per challenge cost a third of a 403's CPU, and let anyone holding a session
// grow the database). Single use is kept by the store, which records only the hashes of spent
// tickets until they expire.
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Secrets } from '../crypto/secrets.js';
import { ExpiringMap } from '../util/expiring-map.js';

export const TICKET_TTL_MS = 5 * 60_000;
/**
 * The longest ticket the API accepts: room for ~650 bytes of user id and rule name together (a
 * ticket is 4/3 × (116 bytes + both, as JSON)).
 */
export const TICKET_MAX_CHARS = 1024;
/** Binds a sealed blob to this use (and format): nothing else the gateway encrypts opens as a ticket. */
const AAD = 'stepgate-ticket-v1';

export interface TicketClaims {
  user: string;
  /** The primary session-key hash of the challenged request. */
  sessionKey: string;
  rule: string;
}

export interface OpenedTicket extends TicketClaims {
  expiresAt: number;
  /** What the store records once the ticket is spent: a hash, never the ticket itself. */
  idHash: string;
}

/** The sealed payload: short keys, since it travels in every verify URL. */
interface Sealed {
  u: string;
  s: string;
  r: string;
  e: number;
}

/** A URL-safe ticket (base64url) valid for TICKET_TTL_MS from `now`. */
export function sealTicket(secrets: Secrets, claims: TicketClaims, now: number): string {
  const sealed: Sealed = { u: claims.user, s: claims.sessionKey, r: claims.rule, e: now + TICKET_TTL_MS };
  return secrets.encrypt(Buffer.from(JSON.stringify(sealed)), AAD).toString('base64url');
}

/**
 * The claims of a ticket sealed under any configured key that has not expired; null for anything
 * else (forged, tampered, sealed under a removed key, expired). Whether it was spent is the store's.
 */
export function openTicket(secrets: Secrets, ticket: string, now: number): OpenedTicket | null {
  const blob = Buffer.from(ticket, 'base64url');
  // Decoding skips foreign characters and the spare bits of the last one: only the canonical
  // spelling opens, or one ticket could be spent again under another spelling (another idHash).
  if (blob.toString('base64url') !== ticket) return null;
  let sealed: Sealed;
  try {
    // Authenticated (GCM tag, AAD), so the payload is one we wrote in this format.
    sealed = JSON.parse(secrets.decrypt(blob, AAD).toString('utf8')) as Sealed;
  } catch {
    return null;
  }
  if (sealed.e <= now) return null;
  return { user: sealed.u, sessionKey: sealed.s, rule: sealed.r, expiresAt: sealed.e, idHash: createHash('sha256').update(ticket).digest('base64url') };
}

/**
 * How long a session's unspent ticket for a rule is handed out again: sealing is most of a 403's
 * own CPU, and a client retrying a gated call (or someone hammering it) gets the same ticket
 * instead of a new one per 403. Same user, session and rule, so nobody else can receive it; a
 * reissued ticket simply has a little less of its 5 minutes left.
 */
const REISSUE_MS = 5_000;

export class TicketIssuer {
  private readonly recent = new ExpiringMap<string>(10_000);

  constructor(
    private readonly secrets: Secrets,
    private readonly clock: Clock,
  ) {}

  issue(claims: TicketClaims): string {
    const now = this.clock.now();
    const key = issuedKey(claims);
    const reused = this.recent.get(key, now);
    if (reused !== undefined) return reused;
    const ticket = sealTicket(this.secrets, claims, now);
    this.recent.set(key, ticket, now + REISSUE_MS, now);
    return ticket;
  }

  /** The ticket was spent through this process: never hand it out again. */
  spent(ticket: OpenedTicket): void {
    this.recent.delete(issuedKey(ticket));
  }
}

function issuedKey(claims: TicketClaims): string {
  return `${claims.sessionKey}\0${claims.user}\0${claims.rule}`;
}
