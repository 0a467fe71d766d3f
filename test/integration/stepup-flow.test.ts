// The end-to-end flow through a real gateway in front of a recording upstream: a gated request is
// challenged, the user enrols an authenticator app, verifies with a code computed by oathtool,
// and the retried request reaches the app with the trusted headers. Then the ways it must NOT
// pass: another session, a once-rule reused, a factor the rule refuses, an expired window, a
// replayed code, and brute force.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { oathtool, signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeEach(async () => {
  t = await startTestGateway();
});
afterEach(async () => {
  await t.close();
});

async function api(path: string, cookie: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') {
  const res = await fetch(t.url + '/__stepup/api' + path, {
    method,
    headers: { cookie, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

async function enrolTotp(cookie: string): Promise<{ secret: string; recoveryCodes: string[] }> {
  const start = await api('/enroll/totp', cookie, {});
  expect(start.status).toBe(200);
  expect(start.body.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
  expect(start.body.qrSvg).toMatch(/^<svg/);
  const secret = start.body.secret as string;
  const confirm = await api('/enroll/totp/confirm', cookie, { code: oathtool(secret, t.clock.now()) });
  expect(confirm.status).toBe(200);
  expect(confirm.body.recoveryCodes).toHaveLength(10);
  // The next code must be a later step than the confirmation's (RFC 6238 §5.2).
  t.clock.advance(30_000);
  return { secret, recoveryCodes: confirm.body.recoveryCodes };
}

const billing = (cookie: string, headers: Record<string, string> = {}) =>
  fetch(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: { cookie, 'content-type': 'application/json', ...headers }, body: '{"plan":"pro"}' });

const billingSeen = () => t.upstream.appRequests().filter((r) => r.url === '/internal/org/acme/billing');

describe('step-up with TOTP', () => {
  it('challenges, enrols, verifies with an oathtool code, then forwards with trusted headers', async () => {
    const cookie = signIn(t, 'alice');
    const first = await billing(cookie, { 'x-request-id': 'req-1' });
    expect(first.status).toBe(403);
    expect(first.headers.get('x-stepgate-challenge')).toBe('1');
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.headers.get('x-request-id')).toBe('req-1');
    const challenge = (await first.json()) as Record<string, any>;
    expect(challenge).toMatchObject({ code: 'STEP_UP_REQUIRED', requestId: 'req-1', rule: 'billing', maxAge: 300, factors: ['passkey', 'totp', 'recovery'], enrolled: [], enrollUrl: '/__stepup/settings' });
    expect(challenge.verifyUrl).toMatch(/^\/__stepup\/verify\?rule=billing&ticket=[\w-]+&return_to=%2Finternal%2Forg%2Facme%2Fbilling$/);
    expect(billingSeen()).toHaveLength(0);

    const { secret } = await enrolTotp(cookie);
    // Enrolling never creates a grant.
    expect((await billing(cookie)).status).toBe(403);
    const verify = await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ ok: true, factor: 'totp' });

    const retried = await billing(cookie);
    expect(retried.status).toBe(200);
    expect(retried.headers.get('cache-control')).toBe('private, no-store');
    const seen = billingSeen();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-stepgate-user']).toBe('alice');
    expect(seen[0]!.headers['x-stepgate-factor']).toBe('totp');
    expect(seen[0]!.headers['x-stepgate-rule']).toBe('billing');
    expect(seen[0]!.headers['x-stepgate-verified-at']).toBe(new Date(t.clock.now()).toISOString());
    expect(seen[0]!.body).toBe('{"plan":"pro"}');

    const status = await api('/status', cookie);
    expect(status.body).toMatchObject({ user: 'alice', name: 'alice@example.com', enrolled: ['totp'], grant: { factor: 'totp' } });
  });

  it('does not let another session of the same user, or a new login, use the grant', async () => {
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    expect((await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) })).status).toBe(200);
    expect((await billing(cookie)).status).toBe(200);
    const otherSession = signIn(t, 'alice');
    expect((await billing(otherSession)).status).toBe(403);
    // Another user presenting the same-looking request gets nothing either.
    expect((await billing(signIn(t, 'bob'))).status).toBe(403);
    expect(billingSeen()).toHaveLength(1);
  });

  it('grant/end leaves sudo mode', async () => {
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
    expect((await api('/grant/end', cookie, {})).status).toBe(200);
    expect((await billing(cookie)).status).toBe(403);
  });

  it('needs a fresh verification for every request of a once rule', async () => {
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
    const close = () => fetch(t.url + '/me', { method: 'DELETE', headers: { cookie } });
    expect((await close()).status).toBe(200);
    expect((await close()).status).toBe(403);
    // Rules without once keep using the same verification.
    expect((await billing(cookie)).status).toBe(200);
    t.clock.advance(30_000);
    await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
    expect((await close()).status).toBe(200);
    expect(t.upstream.appRequests().filter((r) => r.method === 'DELETE' && r.url === '/me')).toHaveLength(2);
  });

  it('refuses a TOTP grant on a passkey-only rule', async () => {
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
    const res = await fetch(t.url + '/portal/security/devices/d1/trust', { method: 'PATCH', headers: { cookie } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).factors).toEqual(['passkey']);
    expect(t.upstream.appRequests().some((r) => r.url.startsWith('/portal'))).toBe(false);
  });

  it('expires with a short max_age', async () => {
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
    const short = () => fetch(t.url + '/short', { method: 'POST', headers: { cookie } });
    t.clock.advance(29_000);
    expect((await short()).status).toBe(200);
    t.clock.advance(1_000);
    expect((await short()).status).toBe(403);
    expect((await billing(cookie)).status).toBe(200);
  });

  it('rejects a replayed code, and an older step after a newer one', async () => {
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    const code = oathtool(secret, t.clock.now());
    expect((await api('/verify/totp', cookie, { code })).status).toBe(200);
    const replay = await api('/verify/totp', cookie, { code });
    expect(replay.status).toBe(400);
    expect(replay.body.code).toBe('INVALID_CODE');
    const older = await api('/verify/totp', cookie, { code: oathtool(secret, t.clock.now() - 30_000) });
    expect(older.body.code).toBe('INVALID_CODE');
  });

  it('locks TOTP after 5 failures in 15 minutes with Retry-After, and not other users', async () => {
    const alice = signIn(t, 'alice');
    const bob = signIn(t, 'bob');
    const { secret } = await enrolTotp(alice);
    const bobTotp = await enrolTotp(bob);
    for (let i = 0; i < 5; i++) {
      const res = await api('/verify/totp', alice, { code: '000000' });
      expect(res.body.code).toBe('INVALID_CODE');
    }
    const locked = await api('/verify/totp', alice, { code: oathtool(secret, t.clock.now()) });
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('RATE_LIMITED');
    expect(Number(locked.headers.get('retry-after'))).toBe(900);
    expect((await api('/verify/recovery', alice, { code: 'AAAAAAAAAA' })).status).toBe(429);
    // Bob is not locked out by Alice's attacker.
    expect((await api('/verify/totp', bob, { code: oathtool(bobTotp.secret, t.clock.now()) })).status).toBe(200);
    t.clock.advance(15 * 60_000);
    expect((await api('/verify/totp', alice, { code: oathtool(secret, t.clock.now()) })).status).toBe(200);
  });

  it('accepts a recovery code once', async () => {
    const cookie = signIn(t, 'alice');
    const { recoveryCodes } = await enrolTotp(cookie);
    const code = recoveryCodes[3]!;
    expect((await api('/verify/recovery', cookie, { code: code.toLowerCase().replace(/(.{5})/, '$1 ') })).status).toBe(200);
    expect((await billing(cookie)).status).toBe(200);
    const again = await api('/verify/recovery', cookie, { code });
    expect(again.body.code).toBe('INVALID_CODE');
  });

  it('verifies through a ticket for a bearer-token client and answers RFC 9470 challenges', async () => {
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    t.upstream.sessions.set('tok-123', { id: 'alice', email: 'alice@example.com' });
    const bearer = { authorization: 'Bearer tok-123' };
    const first = await fetch(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: bearer });
    expect(first.status).toBe(403);
    expect(first.headers.get('www-authenticate')).toBe('Bearer error="insufficient_user_authentication", error_description="step-up required", max_age=300');
    const { verifyUrl } = (await first.json()) as { verifyUrl: string };
    const ticket = new URL(verifyUrl, t.url).searchParams.get('ticket');
    // No credentials at all on the verify call: the ticket names the session.
    const verify = await fetch(t.url + '/__stepup/api/verify/totp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: oathtool(secret, t.clock.now()), ticket }) });
    expect(verify.status).toBe(200);
    expect((await fetch(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: bearer })).status).toBe(200);
    // The grant belongs to the bearer session only, and the ticket is spent.
    expect((await billing(cookie)).status).toBe(403);
    t.clock.advance(30_000);
    const reuse = await fetch(t.url + '/__stepup/api/verify/totp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: oathtool(secret, t.clock.now()), ticket }) });
    expect(reuse.status).toBe(401);
  });

  it('redirects a browser navigation to the verify page and back', async () => {
    const routes = `rules:\n  - name: export\n    match: GET /export\n`;
    await t.close();
    t = await startTestGateway({ routes });
    const cookie = signIn(t, 'alice');
    const { secret } = await enrolTotp(cookie);
    // fetch() may not set Sec-Fetch-* headers; a browser navigation is sent with undici.request.
    const nav = await request(t.url + '/export?format=csv', { headers: { cookie, 'sec-fetch-mode': 'navigate', accept: 'text/html' } });
    await nav.body.dump();
    expect(nav.statusCode).toBe(303);
    expect(nav.headers['x-stepgate-challenge']).toBe('1');
    const location = nav.headers.location as string;
    expect(location.startsWith('http://localhost:8080/__stepup/verify?rule=export&ticket=')).toBe(true);
    const url = new URL(location);
    expect(url.searchParams.get('return_to')).toBe('/export?format=csv');
    // `<a download>` is a navigation whose answer is saved, never shown (Sec-Fetch-Dest: empty):
    // it gets the 403 (a failed download), not a verify page saved as the file.
    const download = await request(t.url + '/export?format=csv', { headers: { cookie, 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'empty' } });
    expect(download.statusCode).toBe(403);
    expect(download.headers['x-stepgate-challenge']).toBe('1');
    expect(((await download.body.json()) as { code: string }).code).toBe('STEP_UP_REQUIRED');
    const page = await fetch(t.url + url.pathname + url.search, { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'self'");
    const form = new URLSearchParams({ code: oathtool(secret, t.clock.now()), return_to: url.searchParams.get('return_to')!, ticket: url.searchParams.get('ticket')!, rule: 'export' });
    const post = await fetch(t.url + '/__stepup/verify', { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:8080' }, body: form, redirect: 'manual' });
    expect(post.status).toBe(303);
    expect(post.headers.get('location')).toBe('http://localhost:8080/export?format=csv');
    expect((await fetch(t.url + '/export?format=csv', { headers: { cookie } })).status).toBe(200);
  });
});
