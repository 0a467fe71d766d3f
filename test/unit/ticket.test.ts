// Sealed challenge tickets (src/stepup/ticket.ts): what opens (its own claims, under any configured
// key, until 5 minutes pass) and what never does (any other key, any changed character, another
// spelling of the same bytes, another blob the gateway encrypted).
import { describe, expect, it } from 'vitest';
import { Secrets } from '../../src/crypto/secrets.js';
import { openTicket, sealTicket, TicketIssuer, TICKET_MAX_CHARS, TICKET_TTL_MS } from '../../src/stepup/ticket.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const KEY = Buffer.alloc(32, 1);
const OLD_KEY = Buffer.alloc(32, 2);
const secrets = new Secrets([KEY]);
const claims = { user: 'alice', sessionKey: 'k'.repeat(43), rule: 'billing' };
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('sealed tickets', () => {
  it('opens to its claims until 5 minutes have passed, with a hash that is not the ticket', () => {
    const ticket = sealTicket(secrets, claims, T0);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]+$/);
    const opened = openTicket(secrets, ticket, T0 + TICKET_TTL_MS - 1);
    expect(opened).toMatchObject({ ...claims, expiresAt: T0 + 5 * 60_000 });
    expect(opened!.idHash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(opened!.idHash).not.toBe(ticket);
    expect(openTicket(secrets, ticket, T0 + TICKET_TTL_MS)).toBeNull();
    // Two challenges of the same session are two tickets, spent separately.
    const other = sealTicket(secrets, claims, T0);
    expect(other).not.toBe(ticket);
    expect(openTicket(secrets, other, T0)!.idHash).not.toBe(opened!.idHash);
    // The plaintext is not readable from the ticket.
    expect(Buffer.from(ticket, 'base64url').toString('latin1')).not.toContain('alice');
  });

  it('opens under any configured key (rotation), never under a key that is not configured', () => {
    const sealedByOld = sealTicket(new Secrets([OLD_KEY]), claims, T0);
    expect(openTicket(new Secrets([KEY, OLD_KEY]), sealedByOld, T0)).toMatchObject(claims);
    expect(openTicket(secrets, sealedByOld, T0)).toBeNull();
  });

  it('refuses every one-character change', () => {
    const ticket = sealTicket(secrets, claims, T0);
    for (let i = 0; i < ticket.length; i++) {
      const c = ticket[i]!;
      const flipped = ALPHABET[(ALPHABET.indexOf(c) + 1) % 64]!;
      expect(openTicket(secrets, ticket.slice(0, i) + flipped + ticket.slice(i + 1), T0), `position ${i}`).toBeNull();
    }
    expect(openTicket(secrets, ticket.slice(0, -1), T0)).toBeNull();
    expect(openTicket(secrets, ticket + 'A', T0)).toBeNull();
  });

  it('refuses another spelling of the same bytes (the spare bits of the last character)', () => {
    // A blob whose length is not a multiple of 3 leaves bits of the last character unused.
    let user = 'alice';
    let ticket = sealTicket(secrets, { ...claims, user }, T0);
    while (Buffer.from(ticket, 'base64url').length % 3 === 0) ticket = sealTicket(secrets, { ...claims, user: (user += 'x') }, T0);
    const last = ALPHABET.indexOf(ticket.at(-1)!);
    const respelled = ticket.slice(0, -1) + ALPHABET[last ^ 1]!;
    expect(Buffer.from(respelled, 'base64url')).toEqual(Buffer.from(ticket, 'base64url'));
    expect(openTicket(secrets, ticket, T0)).not.toBeNull();
    expect(openTicket(secrets, respelled, T0)).toBeNull();
  });

  it('refuses a blob the gateway encrypted for another purpose', () => {
    const stash = secrets.encrypt(Buffer.from(JSON.stringify({ u: 'alice', s: claims.sessionKey, r: 'billing', e: T0 + 60_000 })), 'alice');
    expect(openTicket(secrets, stash.toString('base64url'), T0)).toBeNull();
  });

  it('fits the API bound for a 254-character e-mail address and a 64-character rule name', () => {
    const ticket = sealTicket(secrets, { ...claims, user: `${'a'.repeat(242)}@example.com`, rule: 'r'.repeat(64) }, T0);
    expect(ticket.length).toBeLessThanOrEqual(TICKET_MAX_CHARS);
  });
});

describe('Secrets.encrypt IVs (drawn from the CSPRNG in blocks)', () => {
  it('never repeats an IV across block boundaries, and every blob still decrypts', () => {
    const own = new Secrets([KEY]);
    const ivs = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const blob = own.encrypt(Buffer.from(`plain ${i}`), 'aad');
      ivs.add(blob.subarray(5, 17).toString('hex')); // layout: version(1) keyId(4) iv(12) tag ct
      expect(own.decrypt(blob, 'aad').toString()).toBe(`plain ${i}`);
    }
    expect(ivs.size).toBe(1_000);
  });
});

describe('TicketIssuer', () => {
  it("reissues a session's unspent ticket for the same rule for 5 s, and never once spent here", () => {
    const clock = { t: T0, now: () => clock.t };
    const issuer = new TicketIssuer(secrets, clock);
    const first = issuer.issue(claims);
    clock.t += 4_999;
    expect(issuer.issue(claims)).toBe(first);
    // Another rule, session or user never gets it.
    expect(issuer.issue({ ...claims, rule: 'invites' })).not.toBe(first);
    expect(issuer.issue({ ...claims, sessionKey: 'z'.repeat(43) })).not.toBe(first);
    expect(issuer.issue({ ...claims, user: 'mallory' })).not.toBe(first);
    clock.t += 1;
    const second = issuer.issue(claims);
    expect(second).not.toBe(first);
    // A reissued ticket keeps its own expiry: 5 minutes from when it was sealed.
    expect(openTicket(secrets, second, clock.t)!.expiresAt).toBe(T0 + 5_000 + TICKET_TTL_MS);
    issuer.spent(openTicket(secrets, second, clock.t)!);
    expect(issuer.issue(claims)).not.toBe(second);
  });
});
