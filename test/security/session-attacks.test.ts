// Header and session attacks on grants and on the gateway's own UI/API (SPEC §5, §8, §9.2), beyond
// what test/integration/stepup-flow.test.ts already shows (another session or user has no grant,
// grant/end, a bearer client's ticket): confused cookies, a session that changes owner, logout,
// tickets presented by another user or twice, expired, tampered with or sealed under another
// secret (and a challenge that writes nothing to the store), open redirects through `return_to`,
// cross-origin (CSRF) calls to every JSON endpoint, the `text/plain` CSRF content type, and framing.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Secrets } from '../../src/crypto/secrets.js';
import { openTicket, sealTicket } from '../../src/stepup/ticket.js';
import { oathtool, signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ORIGIN = 'http://localhost:8080';
const MIN = 60_000;

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => {
  await t.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, any>;
  text: string;
}

async function api(path: string, opts: { cookie?: string; body?: unknown; method?: string; headers?: Record<string, string>; raw?: string } = {}): Promise<Answer> {
  const method = opts.method ?? (opts.body === undefined && opts.raw === undefined ? 'GET' : 'POST');
  const res = await request(t.url + '/__stepup' + path, {
    method: method as 'GET',
    headers: {
      ...(opts.cookie ? { cookie: opts.cookie } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
  });
  const text = await res.body.text();
  let body: Record<string, any> = {};
  try {
    body = JSON.parse(text) as Record<string, any>;
  } catch {
    /* an HTML page */
  }
  return { status: res.statusCode, headers: res.headers, body, text };
}

const status = async (cookie: string) => (await api('/api/status', { cookie })).body;
const billing = async (cookie: string, headers: Record<string, string> = {}) => {
  const res = await request(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: { ...(cookie ? { cookie } : {}), ...headers } });
  const body = await res.body.text();
  return { status: res.statusCode, body };
};

/** Enrols TOTP for a signed-in user; the clock moves one step on. */
async function enrol(cookie: string): Promise<{ secret: string; recoveryCodes: string[] }> {
  const start = await api('/api/enroll/totp', { cookie, body: {} });
  expect(start.status, start.text).toBe(200);
  const secret = start.body.secret as string;
  const confirm = await api('/api/enroll/totp/confirm', { cookie, body: { code: oathtool(secret, t.clock.now()) } });
  expect(confirm.status, confirm.text).toBe(200);
  t.clock.advance(30_000);
  return { secret, recoveryCodes: confirm.body.recoveryCodes as string[] };
}

/** A TOTP verification for this session (the clock moves one step on). */
async function verify(cookie: string, secret: string, extra: Record<string, unknown> = {}): Promise<Answer> {
  const res = await api('/api/verify/totp', { cookie, body: { code: oathtool(secret, t.clock.now()), ...extra } });
  t.clock.advance(30_000);
  return res;
}

/** The ticket of the challenge a gated request of this session gets. */
async function ticketFor(cookie: string): Promise<string> {
  const res = await billing(cookie);
  expect(res.status).toBe(403);
  const { verifyUrl } = JSON.parse(res.body) as { verifyUrl: string };
  return new URL(verifyUrl, ORIGIN).searchParams.get('ticket')!;
}

const appBillingCalls = () => t.upstream.appRequests().filter((r) => r.url === '/internal/org/acme/billing').length;

describe('grants are bound to user and session (SPEC §9.2)', () => {
  it('a grant of session A does not follow a cookie header that also names session B, in either order, nor a bearer token', async () => {
    const a = signIn(t, 'alice', 'sid-alice-A');
    signIn(t, 'alice', 'sid-alice-B');
    t.upstream.sessions.set('tok-alice', { id: 'alice', email: 'alice@example.com' });
    const { secret } = await enrol(a);
    expect((await verify(a, secret)).status).toBe(200);
    expect((await billing(a)).status).toBe(200);
    const before = appBillingCalls();
    for (const cookie of ['sid=sid-alice-B', 'sid=sid-alice-B; sid=sid-alice-A', 'sid=sid-alice-A; sid=sid-alice-B', 'sid=sid-alice-A; sid=sid-alice-A']) {
      expect((await billing(cookie)).status, cookie).toBe(403);
    }
    // The same user by bearer token is another session (SPEC §9.2).
    expect((await billing('', { authorization: 'Bearer tok-alice' })).status).toBe(403);
    expect(appBillingCalls()).toBe(before);
    expect((await billing(a)).status).toBe(200);
  });

  it("user A's grant does not follow A's cookie once the app says that cookie is user B's", async () => {
    const cookie = signIn(t, 'carol', 'sid-shared');
    const bob = signIn(t, 'bob2');
    const { secret } = await enrol(cookie);
    await enrol(bob);
    expect((await verify(cookie, secret)).status).toBe(200);
    expect((await billing(cookie)).status).toBe(200);
    // The app's session changes owner (account switch, session-id reuse); the identity cache expires.
    t.upstream.sessions.set('sid-shared', { id: 'bob2', email: 'bob2@example.com' });
    t.clock.advance(31_000);
    const before = appBillingCalls();
    const res = await billing(cookie);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'STEP_UP_REQUIRED' });
    expect((await status(cookie)).grant).toBeNull();
    expect(appBillingCalls()).toBe(before);
    // Back to its owner, the grant (still fresh) applies again: it was never B's.
    t.upstream.sessions.set('sid-shared', { id: 'carol', email: 'carol@example.com' });
    t.clock.advance(31_000);
    expect((await billing(cookie)).status).toBe(200);
  });

  it('after logout the old cookie is anonymous, and a new login starts without a grant', async () => {
    const old = signIn(t, 'dave', 'sid-dave-old');
    const { secret } = await enrol(old);
    expect((await verify(old, secret)).status).toBe(200);
    expect((await billing(old)).status).toBe(200);
    t.upstream.sessions.delete('sid-dave-old'); // logout
    t.clock.advance(31_000); // identity cache_ttl (docs/behaviour.md): the logout is seen after it
    expect((await billing(old)).status).toBe(401);
    const fresh = signIn(t, 'dave', 'sid-dave-new');
    expect((await billing(fresh)).status).toBe(403);
    expect((await status(fresh)).grant).toBeNull();
  });

  it("grant/end ends this session's grant only", async () => {
    const one = signIn(t, 'erin');
    const two = signIn(t, 'erin');
    const { secret } = await enrol(one);
    expect((await verify(one, secret)).status).toBe(200);
    expect((await verify(two, secret)).status).toBe(200);
    expect((await api('/api/grant/end', { cookie: one, body: {} })).status).toBe(200);
    expect((await billing(one)).status).toBe(403);
    expect((await billing(two)).status).toBe(200);
    // Another user's grant/end is a no-op for erin.
    const frank = signIn(t, 'frank');
    expect((await api('/api/grant/end', { cookie: frank, body: {} })).status).toBe(200);
    expect((await billing(two)).status).toBe(200);
  });
});

describe('challenge tickets (SPEC §5)', () => {
  let alice: string;
  let bob: string;
  let aliceSecret: string;
  let aliceRecovery: string[];
  let bobSecret: string;
  beforeAll(async () => {
    alice = signIn(t, 'ticket-alice');
    bob = signIn(t, 'ticket-bob');
    ({ secret: aliceSecret, recoveryCodes: aliceRecovery } = await enrol(alice));
    bobSecret = (await enrol(bob)).secret;
  });

  /** After a refused ticket: nobody holds a grant, and the app never saw the gated request. */
  async function expectNothingGranted(appCallsBefore: number): Promise<void> {
    expect((await status(alice)).grant).toBeNull();
    expect((await status(bob)).grant).toBeNull();
    expect((await billing(alice)).status).toBe(403);
    expect((await billing(bob)).status).toBe(403);
    expect(appBillingCalls()).toBe(appCallsBefore);
  }

  it("user B presenting A's ticket with B's own code: refused, no grant for anyone", async () => {
    const before = appBillingCalls();
    const ticket = await ticketFor(alice);
    const bobsCode = oathtool(bobSecret, t.clock.now());
    const res = await api('/api/verify/totp', { cookie: bob, body: { code: bobsCode, ticket } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_CODE');
    await expectNothingGranted(before);
    // Bob's step was not spent by that attempt (it was checked against Alice's secret).
    expect((await api('/api/verify/totp', { cookie: bob, body: { code: bobsCode } })).status).toBe(200);
    await api('/api/grant/end', { cookie: bob, body: {} });
    t.clock.advance(30_000);
  });

  it("user B presenting A's ticket with A's code: the grant goes to A's challenged session, never B's", async () => {
    const ticket = await ticketFor(alice);
    const res = await verify(bob, aliceSecret, { ticket });
    expect(res.status, res.text).toBe(200);
    expect((await status(bob)).grant).toBeNull();
    expect((await billing(bob)).status).toBe(403);
    expect((await billing(alice)).status).toBe(200);
    await api('/api/grant/end', { cookie: alice, body: {} });
  });

  it('a ticket is single-use: reused after success, through the API and the HTML form, it names no session', async () => {
    const ticket = await ticketFor(alice);
    expect((await verify('', aliceSecret, { ticket })).status).toBe(200);
    await api('/api/grant/end', { cookie: alice, body: {} });
    const before = appBillingCalls();
    const again = await verify('', aliceSecret, { ticket });
    expect(again.status).toBe(401);
    expect(again.body.code).toBe('AUTH_REQUIRED');
    const form = new URLSearchParams({ code: oathtool(aliceSecret, t.clock.now()), ticket, return_to: '/internal/org/acme/billing' });
    const page = await api('/verify', { raw: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN } });
    expect(page.status).toBe(401);
    expect(page.headers.location).toBeUndefined();
    t.clock.advance(30_000);
    await expectNothingGranted(before);
  });

  it('two verifications racing on one ticket: exactly one is granted', async () => {
    const ticket = await ticketFor(alice);
    // Two good recovery codes, so only the ticket can tell the two verifications apart.
    const answers = await Promise.all(aliceRecovery.splice(0, 2).map((code) => api('/api/verify/recovery', { body: { code, ticket } })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
    await api('/api/grant/end', { cookie: alice, body: {} });
  });

  it('a ticket expires after 5 minutes; a forged or malformed one names no session', async () => {
    const before = appBillingCalls();
    const ticket = await ticketFor(alice);
    t.clock.advance(5 * MIN);
    const expired = await verify('', aliceSecret, { ticket });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ code: 'AUTH_REQUIRED', message: 'The verification link expired. Retry the action to get a new one.' });
    expect((await verify('', aliceSecret, { ticket: 'A'.repeat(32) })).status).toBe(401);
    expect((await verify('', aliceSecret, { ticket: '../../etc' })).status).toBe(400);
    expect((await verify('', aliceSecret, { ticket: { $ne: null } })).status).toBe(400);
    expect((await verify('', aliceSecret, { ticket: 'A'.repeat(1025) })).status).toBe(400);
    await expectNothingGranted(before);
    // Just before the 5 minutes are up it still works.
    const fresh = await ticketFor(alice);
    t.clock.advance(5 * MIN - 1);
    expect((await verify('', aliceSecret, { ticket: fresh })).status).toBe(200);
    await api('/api/grant/end', { cookie: alice, body: {} });
  });

  it('a tampered ticket (any one character changed) names no session', async () => {
    const before = appBillingCalls();
    const ticket = await ticketFor(alice);
    const code = oathtool(aliceSecret, t.clock.now());
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    for (let i = 0; i < ticket.length; i++) {
      const tampered = ticket.slice(0, i) + flip(ticket[i]!) + ticket.slice(i + 1);
      const res = await api('/api/verify/totp', { body: { code, ticket: tampered } });
      expect(res.status, `position ${i}`).toBe(401);
      expect(res.body.code).toBe('AUTH_REQUIRED');
    }
    await expectNothingGranted(before);
    // The original was never spent by those attempts.
    expect((await api('/api/verify/totp', { body: { code, ticket } })).status).toBe(200);
    t.clock.advance(30_000);
    await api('/api/grant/end', { cookie: alice, body: {} });
  });

  it('a ticket sealed under another STEPGATE_SECRET names no session, even with the right claims', async () => {
    const before = appBillingCalls();
    const real = await ticketFor(alice);
    const claims = openTicket(t.gw.ctx.secrets, real, t.clock.now())!;
    expect(claims.user).toBe('ticket-alice');
    const forged = sealTicket(new Secrets([Buffer.alloc(32, 9)]), claims, t.clock.now());
    const res = await verify('', aliceSecret, { ticket: forged });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('AUTH_REQUIRED');
    await expectNothingGranted(before);
  });

  it('a challenge writes nothing to the store: row counts stay the same over 300 403s', async () => {
    const db = new Database(join(t.dataDir, 'stepgate.db'), { readonly: true, fileMustExist: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((r) => r.name);
      const counts = () => Object.fromEntries(tables.map((name) => [name, (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n]));
      const before = counts();
      const sessions = [alice, bob, signIn(t, 'ticket-carol')];
      for (let i = 0; i < 300; i++) {
        const cookie = sessions[i % sessions.length]!;
        expect((await billing(cookie)).status).toBe(403);
      }
      expect(counts()).toEqual(before);
      // This reader sees the gateway's writes: spending a ticket is one row.
      expect((await verify('', aliceSecret, { ticket: await ticketFor(alice) })).status).toBe(200);
      expect(counts().spent_tickets).toBe(before.spent_tickets! + 1);
      await api('/api/grant/end', { cookie: alice, body: {} });
    } finally {
      db.close();
    }
  });
});

describe('open redirects through return_to (SPEC §5: a same-origin relative path only)', () => {
  const PAYLOADS = [
    '//evil.example',
    '//evil.example/%2F..',
    '///evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/\\/evil.example',
    '/%2F%2Fevil.example',
    '/%2f/evil.example',
    '/%5Cevil.example',
    '/%5cevil.example',
    '/%252F%252Fevil.example',
    'https://evil.example',
    'HTTPS://evil.example/x',
    'http://localhost:8080@evil.example/',
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    '/%09/evil.example',
    '/%0A/evil.example',
    '/%0D%0A/evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    ' //evil.example',
    '/%20/evil.example',
    '/.//evil.example',
    '/./\\evil.example',
    '/x/..//evil.example',
    '/%2e//evil.example',
    '/..//evil.example',
    '/.%2F/evil.example',
  ];

  /** A value is safe when the browser resolving it against the public origin stays on it. */
  function expectSafe(value: string, payload: string): void {
    expect(value.startsWith('/'), `${JSON.stringify(payload)} → ${JSON.stringify(value)}`).toBe(true);
    expect(new URL(value, ORIGIN).origin, `${JSON.stringify(payload)} → ${JSON.stringify(value)}`).toBe(ORIGIN);
    expect(/^[/\\]{2}/.test(value), `${JSON.stringify(payload)} → ${JSON.stringify(value)}`).toBe(false);
  }

  const unescapeHtml = (s: string) => s.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');

  /** Every place a page hands return_to to the browser: the form field, the script data, back/continue links. */
  function returnToValues(html: string): string[] {
    const values: string[] = [];
    for (const m of html.matchAll(/<input[^>]*name="return_to"[^>]*value="([^"]*)"/g)) values.push(unescapeHtml(m[1]!));
    for (const m of html.matchAll(/<script type="application\/json"[^>]*>([\s\S]*?)<\/script>/g)) {
      const data = JSON.parse(m[1]!) as { returnTo?: unknown };
      if (typeof data.returnTo === 'string') values.push(data.returnTo);
    }
    for (const m of html.matchAll(/<a[^>]*id="sg-(?:back|continue-link)"[^>]*href="([^"]*)"|<a[^>]*href="([^"]*)"[^>]*id="sg-(?:back|continue-link)"/g)) values.push(unescapeHtml(m[1] ?? m[2]!));
    return values;
  }

  let cookie: string;
  let secret: string;
  beforeAll(async () => {
    cookie = signIn(t, 'redirect-user');
    secret = (await enrol(cookie)).secret;
  });

  it.each(PAYLOADS.map((p) => [JSON.stringify(p), p]))('GET /verify?return_to=%s: the page only ever hands out a same-origin path', async (_label, payload) => {
    const page = await api(`/verify?rule=billing&return_to=${encodeURIComponent(payload)}`, { cookie });
    expect(page.status).toBe(200);
    const values = returnToValues(page.text);
    expect(values.length).toBeGreaterThan(0);
    for (const v of values) expectSafe(v, payload);
  });

  it.each(PAYLOADS.map((p) => [JSON.stringify(p), p]))('GET /settings?return_to=%s: the back link stays on the public origin', async (_label, payload) => {
    const page = await api(`/settings?return_to=${encodeURIComponent(payload)}`, { cookie });
    expect(page.status).toBe(200);
    for (const v of returnToValues(page.text)) expectSafe(v, payload);
  });

  it.each(PAYLOADS.map((p) => [JSON.stringify(p), p]))('POST /verify return_to=%s: the 303 stays on public_origin', async (_label, payload) => {
    const form = new URLSearchParams({ code: oathtool(secret, t.clock.now()), return_to: payload, rule: 'billing' });
    const res = await api('/verify', { cookie, raw: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN } });
    t.clock.advance(30_000);
    expect(res.status, res.text.slice(0, 300)).toBe(303);
    const location = String(res.headers.location);
    expect(new URL(location).origin, `${JSON.stringify(payload)} → Location ${location}`).toBe(ORIGIN);
    expect(location.startsWith(ORIGIN + '/')).toBe(true);
    expect(location.slice(ORIGIN.length)).not.toMatch(/^[/\\]{2}/);
  });

  it('control: a legitimate return_to survives, query included', async () => {
    const form = new URLSearchParams({ code: oathtool(secret, t.clock.now()), return_to: '/internal/org/acme/billing?tab=plan&x=%2F' });
    const res = await api('/verify', { cookie, raw: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN } });
    t.clock.advance(30_000);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(ORIGIN + '/internal/org/acme/billing?tab=plan&x=%2F');
  });
});

describe('cross-origin requests to the JSON API and the verify form (SPEC §8): 403 CROSS_ORIGIN, no state change', () => {
  const ATTACKS: Array<[string, Record<string, string>]> = [
    ['Origin: https://evil.example', { origin: 'https://evil.example' }],
    ['Origin: null', { origin: 'null' }],
    ['Origin: a look-alike host', { origin: 'http://localhost:8080.evil.example' }],
    ['Origin: another port', { origin: 'http://localhost:8081' }],
    ['Origin: https of the same host', { origin: 'https://localhost:8080' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
    ['Sec-Fetch-Site: none', { 'sec-fetch-site': 'none' }],
    ['the public Origin with Sec-Fetch-Site: cross-site', { origin: ORIGIN, 'sec-fetch-site': 'cross-site' }],
  ];

  let cookie: string;
  let secret: string;
  let recoveryCodes: string[];
  let factorId: string;
  beforeAll(async () => {
    cookie = signIn(t, 'csrf-victim');
    ({ secret, recoveryCodes } = await enrol(cookie));
    // A fresh grant: every management endpoint would succeed for a same-origin caller.
    expect((await verify(cookie, secret)).status).toBe(200);
    factorId = (await api('/api/factors', { cookie })).body.factors[0].id as string;
  });

  /** The victim's observable state: grant, factors, a still-unused recovery code, the TOTP step. */
  async function snapshot() {
    const s = await status(cookie);
    const factors = (await api('/api/factors', { cookie })).body.factors as Array<{ id: string }>;
    return { grant: s.grant, factors: factors.map((f) => f.id) };
  }

  const ENDPOINTS: Array<[string, string, () => unknown]> = [
    ['POST', '/api/verify/totp', () => ({ code: oathtool(secret, t.clock.now()) })],
    ['POST', '/api/verify/recovery', () => ({ code: recoveryCodes[9] })],
    ['POST', '/api/verify/passkey/options', () => ({})],
    ['POST', '/api/verify/passkey', () => ({ id: 'x', rawId: 'x', type: 'public-key', response: {} })],
    ['POST', '/api/enroll/totp', () => ({})],
    ['POST', '/api/enroll/totp/confirm', () => ({ code: oathtool(secret, t.clock.now()) })],
    ['POST', '/api/enroll/passkey/options', () => ({})],
    ['POST', '/api/enroll/passkey', () => ({ response: {}, name: 'evil' })],
    ['POST', '/api/recovery/regenerate', () => ({})],
    ['POST', '/api/grant/end', () => ({})],
    ['DELETE', '/api/factors/{id}', () => undefined],
  ];

  it.each(ENDPOINTS.flatMap(([method, path, body]) => ATTACKS.map(([what, headers]) => [`${method} ${path} with ${what}`, method, path, body, headers] as const)))(
    '%s',
    async (_label, method, path, body, headers) => {
      const before = await snapshot();
      const payload = body();
      const res = await api(path.replace('{id}', factorId), { cookie, method, headers, ...(payload === undefined ? {} : { body: payload }) });
      expect(res.status, res.text).toBe(403);
      expect(res.body.code).toBe('CROSS_ORIGIN');
      expect(await snapshot()).toEqual(before);
    },
  );

  it('cross-origin reads are impossible: no CORS grant on any API answer, preflights included', async () => {
    const evil = { origin: 'https://evil.example' };
    const answers = [
      await api('/api/status', { cookie, headers: evil }),
      await api('/api/factors', { cookie, headers: evil }),
      await api('/api/verify/totp', { cookie, method: 'OPTIONS', headers: { ...evil, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } }),
    ];
    for (const res of answers) {
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });

  it('the verify form (POST /verify) refuses cross-origin posts too, without spending the code', async () => {
    await api('/api/grant/end', { cookie, body: {} });
    const code = oathtool(secret, t.clock.now());
    for (const [what, headers] of ATTACKS) {
      const form = new URLSearchParams({ code, return_to: '/x' });
      const res = await api('/verify', { cookie, raw: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
      expect(res.status, what).toBe(403);
      expect(res.headers.location, what).toBeUndefined();
    }
    expect((await status(cookie)).grant).toBeNull();
    // Nothing was spent or counted: the same code still works from the right origin, and so does
    // the recovery code the attacks above tried.
    expect((await api('/api/verify/totp', { cookie, body: { code }, headers: { origin: ORIGIN, 'sec-fetch-site': 'same-origin' } })).status).toBe(200);
    expect((await api('/api/verify/recovery', { cookie, body: { code: recoveryCodes[9] } })).status).toBe(200);
    // Enrolment was never started by the cross-origin calls.
    expect((await api('/api/enroll/totp/confirm', { cookie, body: { code: '123456' } })).body.code).toBe('NO_CHALLENGE');
    t.clock.advance(30_000);
  });
});

describe('JSON endpoints refuse the CSRF content types (415), with no state change', () => {
  let cookie: string;
  let secret: string;
  beforeAll(async () => {
    cookie = signIn(t, 'ct-victim');
    ({ secret } = await enrol(cookie));
  });

  const TYPES = ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json', ''];
  const PATHS = ['/api/verify/totp', '/api/verify/recovery', '/api/verify/passkey/options', '/api/verify/passkey', '/api/enroll/totp', '/api/enroll/totp/confirm', '/api/enroll/passkey/options', '/api/enroll/passkey', '/api/recovery/regenerate', '/api/grant/end'];

  it.each(PATHS.flatMap((p) => TYPES.map((type) => [`POST ${p} as ${JSON.stringify(type)}`, p, type] as const)))('%s → 415', async (_label, path, type) => {
    const res = await api(path, { cookie, raw: JSON.stringify({ code: oathtool(secret, t.clock.now()) }), headers: type ? { 'content-type': type } : {} });
    expect(res.status, res.text).toBe(415);
    expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('the code sent as text/plain was neither accepted nor spent', async () => {
    expect((await status(cookie)).grant).toBeNull();
    expect((await api('/api/verify/totp', { cookie, body: { code: oathtool(secret, t.clock.now()) } })).status).toBe(200);
    t.clock.advance(30_000);
  });
});

describe("the gateway's pages cannot be framed by another site (frame-ancestors 'self')", () => {
  let cookie: string;
  beforeAll(async () => {
    cookie = signIn(t, 'frame-user');
    await enrol(cookie);
  });

  const expectPageHeaders = (res: Answer, what: string) => {
    expect(String(res.headers['content-type']), what).toMatch(/^text\/html/);
    expect(String(res.headers['content-security-policy']), what).toMatch(/frame-ancestors 'self'(;|$)/);
    expect(String(res.headers['content-security-policy']), what).not.toMatch(/frame-ancestors[^;]*\*/);
    expect(res.headers['referrer-policy'], what).toBe('no-referrer');
    expect(res.headers['cache-control'], what).toBe('no-store');
  };

  it('verify page (plain and embed), settings page, the verify form answer and sign-in page all carry it', async () => {
    expectPageHeaders(await api('/verify?rule=billing&return_to=%2F', { cookie }), 'GET /verify');
    expectPageHeaders(await api('/verify?rule=billing&return_to=%2F&embed=1', { cookie }), 'GET /verify embed');
    expectPageHeaders(await api('/settings', { cookie }), 'GET /settings');
    expectPageHeaders(await api('/verify?rule=billing', {}), 'GET /verify signed out');
    expectPageHeaders(await api('/settings', {}), 'GET /settings signed out');
    const wrong = new URLSearchParams({ code: '000000', return_to: '/' });
    expectPageHeaders(await api('/verify', { cookie, raw: wrong.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN } }), 'POST /verify (wrong code)');
  });

  it('the challenge page for an HTML form post carries it too', async () => {
    const res = await request(t.url + '/internal/org/acme/billing/plan', {
      method: 'POST',
      headers: { cookie, 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin', accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      body: 'plan=pro',
    });
    const text = await res.body.text();
    expect(res.statusCode).toBe(403);
    expectPageHeaders({ status: res.statusCode, headers: res.headers, body: {}, text }, 'form-post challenge');
  });
});
