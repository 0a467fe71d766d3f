// SPEC §9.6 and §9.7: codes, secrets, cookies, Authorization values, tickets and query strings never
// appear in the logs, and secrets are not stored in clear. A full flow runs with the gateway's
// logger at `debug` writing to a capture stream (test/helpers/gateway.ts `logs`): TOTP enrolment,
// verification, failed attempts, recovery codes, a bearer-token client stepping up through a
// ticket, the no-JavaScript verify form, query strings carrying `access_token=…`, and the failure
// paths that log errors (identity source down, upstream down). Then every log line AND the raw
// bytes of the SQLite files (db, -wal, -shm) are searched for every secret of the flow.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { oathtool, startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => {
  await t.close();
});

const ORIGIN = 'http://localhost:8080';
const rnd = () => randomBytes(12).toString('base64url');

/** Every secret the flow handles, by kind. Six-digit codes are matched as whole numbers. */
const secrets: Array<{ kind: string; value: string }> = [];
const remember = (kind: string, value: string) => {
  if (value && !secrets.some((s) => s.value === value)) secrets.push({ kind, value });
  return value;
};

async function api(path: string, headers: Record<string, string>, body?: unknown, raw?: string) {
  const res = await request(t.url + '/__stepup' + path, {
    method: body === undefined && raw === undefined ? 'GET' : 'POST',
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.body.text();
  let json: Record<string, any> = {};
  try {
    json = JSON.parse(text) as Record<string, any>;
  } catch {
    /* HTML */
  }
  return { status: res.statusCode, headers: res.headers, body: json, text };
}

async function app(method: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await request(t.url + path, { method: method as 'GET', headers, body });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

const base32Decode = (s: string): Buffer => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  return Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
};

/** Where a secret shows up in `haystack` (a six-digit code only as a whole number, not inside an id). */
function occurrences(haystack: string, value: string): number {
  if (/^\d{6}$/.test(value)) return [...haystack.matchAll(new RegExp(`(?<![0-9A-Za-z])${value}(?![0-9A-Za-z])`, 'g'))].length;
  let n = 0;
  for (let i = haystack.indexOf(value); i !== -1; i = haystack.indexOf(value, i + 1)) n++;
  return n;
}

let totpSecret = '';

describe('a full flow with every kind of secret', () => {
  it('runs: enrolment, verifications, failures, recovery, a bearer client with a ticket, the verify form, credential query strings', async () => {
    const sid = remember('session cookie', `sidSECRET${rnd()}`);
    t.upstream.sessions.set(sid, { id: 'alice', email: 'alice@example.com' });
    const cookie = { cookie: `sid=${sid}` };

    // Enrol an authenticator app.
    const start = await api('/api/enroll/totp', cookie, {});
    expect(start.status).toBe(200);
    totpSecret = remember('TOTP secret', start.body.secret as string);
    remember('TOTP secret (lower case)', totpSecret.toLowerCase());
    remember('otpauth URI', start.body.otpauthUri as string);
    const confirm = await api('/api/enroll/totp/confirm', cookie, { code: remember('TOTP code (enrolment)', oathtool(totpSecret, t.clock.now())) });
    expect(confirm.status).toBe(200);
    const recoveryCodes = confirm.body.recoveryCodes as string[];
    for (const c of recoveryCodes) remember('recovery code', c);
    t.clock.advance(30_000);

    // Failed attempts of every kind (each is audited and logged).
    let wrong = '';
    do wrong = String(100000 + Math.floor(Math.random() * 900000));
    while ([-1, 0, 1].some((d) => oathtool(totpSecret, t.clock.now() + d * 30_000) === wrong));
    expect((await api('/api/verify/totp', cookie, { code: remember('TOTP code (wrong)', wrong) })).status).toBe(400);
    expect((await api('/api/verify/recovery', cookie, { code: remember('recovery code (wrong)', 'QQQQQ7QQQQ') })).status).toBe(400);
    expect((await api('/api/enroll/totp/confirm', cookie, { code: wrong })).status).toBeGreaterThanOrEqual(400);

    // A good TOTP code, then a replay of it.
    const good = remember('TOTP code', oathtool(totpSecret, t.clock.now()));
    expect((await api('/api/verify/totp', cookie, { code: good })).status).toBe(200);
    expect((await api('/api/verify/totp', cookie, { code: good })).status).toBe(400);
    t.clock.advance(30_000);

    // A recovery code, typed the way people type them, then replayed.
    const spaced = remember('recovery code (as typed)', recoveryCodes[2]!.toLowerCase().replace(/(.{5})/, '$1 '));
    expect((await api('/api/verify/recovery', cookie, { code: spaced })).status).toBe(200);
    expect((await api('/api/verify/recovery', cookie, { code: recoveryCodes[2] })).status).toBe(400);

    // Recovery codes regenerated (fresh grant): the new ones are secrets too.
    const regenerated = await api('/api/recovery/regenerate', cookie, {});
    expect(regenerated.status).toBe(200);
    for (const c of regenerated.body.recoveryCodes as string[]) remember('recovery code (regenerated)', c);

    // A bearer-token client: challenged, verifies through the ticket, then passes.
    const token = remember('bearer token', `tokSECRET${rnd()}`);
    t.upstream.sessions.set(token, { id: 'alice', email: 'alice@example.com' });
    const bearer = { authorization: `Bearer ${token}` };
    const challenged = await app('PATCH', '/internal/org/acme/billing', bearer, '{}');
    expect(challenged.status).toBe(403);
    const ticket = remember('ticket', new URL(JSON.parse(challenged.text).verifyUrl as string, ORIGIN).searchParams.get('ticket')!);
    // The verify page is opened with the ticket in its URL.
    expect((await api(`/verify?rule=billing&ticket=${ticket}&return_to=%2F`, {})).status).toBe(200);
    t.clock.advance(30_000);
    const viaTicket = remember('TOTP code (ticket)', oathtool(totpSecret, t.clock.now()));
    expect((await api('/api/verify/totp', {}, { code: viaTicket, ticket })).status).toBe(200);
    expect((await app('PATCH', '/internal/org/acme/billing', bearer, '{}')).status).toBe(200);
    expect((await api('/api/verify/totp', {}, { code: viaTicket, ticket })).status).toBe(401); // spent

    // The no-JavaScript verify form, with a wrong then a right code.
    t.clock.advance(30_000);
    const form = (code: string) => new URLSearchParams({ code, return_to: '/internal/org/acme/billing', rule: 'billing' }).toString();
    const formHeaders = { ...cookie, 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN };
    expect((await api('/verify', formHeaders, undefined, form(wrong))).status).toBe(400);
    expect((await api('/verify', formHeaders, undefined, form(remember('TOTP code (form)', oathtool(totpSecret, t.clock.now()))))).status).toBe(303);

    // Query strings carrying credentials: free, gated, anonymous, and to the gateway's own API.
    const qs = remember('access_token in a query', `qsSECRET${rnd()}`);
    expect((await app('GET', `/free/page?access_token=${qs}&x=1`, cookie)).status).toBe(200);
    expect((await app('PATCH', `/internal/org/acme/billing?access_token=${qs}`, cookie, '{}')).status).toBe(200);
    expect((await app('POST', `/signup?access_token=${qs}`, {}, '')).status).toBe(401);
    expect([200, 403]).toContain((await app('DELETE', `/me?access_token=${qs}`, cookie)).status);
    expect((await api(`/api/status?access_token=${qs}`, cookie)).status).toBe(200);

    // Failure paths log errors: identity source down (a gated request), upstream down (a free one).
    const downToken = remember('bearer token (upstream down)', `tokDOWN${rnd()}`);
    const downQs = remember('access_token (upstream down)', `qsDOWN${rnd()}`);
    await t.upstream.close();
    expect((await app('PATCH', `/internal/org/acme/billing?access_token=${downQs}`, { authorization: `Bearer ${downToken}` }, '{}')).status).toBe(503);
    expect((await app('GET', `/free/page?access_token=${downQs}`, { cookie: `sid=${sid}`, authorization: `Bearer ${downToken}` })).status).toBe(502);
  });
});

describe('nothing secret in the logs or in the store files', () => {
  it('the flow produced a log worth searching (audit events, decisions, errors)', () => {
    const log = t.logs.join('');
    expect(secrets.length).toBeGreaterThan(30);
    expect(log).toMatch(/"audit":true/);
    expect(log).toMatch(/audit verify failure/);
    expect(log).toMatch(/audit verify success/);
    expect(log).toMatch(/step-up required/);
    expect(log).toMatch(/identity source failed|IDENTITY_UNAVAILABLE/);
    expect(log).toMatch(/UPSTREAM_UNAVAILABLE/);
    // The search itself works: a secret planted in a copy is found.
    expect(occurrences(log + ` code=${secrets.find((s) => s.kind === 'TOTP code')!.value} `, secrets.find((s) => s.kind === 'TOTP code')!.value)).toBe(1);
  });

  it('no log line contains any of them', () => {
    const lines = t.logs.join('').split('\n').filter(Boolean);
    const leaks = secrets.flatMap(({ kind, value }) => lines.filter((l) => occurrences(l, value) > 0).map((l) => `${kind} (${value}) in: ${l.slice(0, 300)}`));
    expect(leaks).toEqual([]);
  });

  it('the SQLite files (db, -wal, -shm) hold none of them in clear, nor the raw TOTP key', () => {
    const files = ['stepgate.db', 'stepgate.db-wal', 'stepgate.db-shm'].map((f) => join(t.dataDir, f)).filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThan(0);
    const key = base32Decode(totpSecret);
    const leaks: string[] = [];
    for (const file of files) {
      const bytes = readFileSync(file);
      const text = bytes.toString('latin1');
      for (const { kind, value } of secrets) if (occurrences(text, value) > 0) leaks.push(`${kind} (${value}) in ${file}`);
      if (bytes.includes(key)) leaks.push(`the raw TOTP key in ${file}`);
      if (text.includes(key.toString('hex'))) leaks.push(`the TOTP key in hex in ${file}`);
      if (text.includes(key.toString('base64'))) leaks.push(`the TOTP key in base64 in ${file}`);
    }
    expect(leaks).toEqual([]);
    // The store did record the flow (so the search was over real data).
    const all = files.map((f) => readFileSync(f).toString('latin1')).join('');
    expect(all).toContain('alice');
  });
});

describe('every verification attempt of the flow is an audit event, in the store and as a log line (SPEC §9.8)', () => {
  it('with user, factor, outcome, IP and request id; the replay and the failures included', async () => {
    const events = await t.gw.ctx.store.listAudit({ user: 'alice' });
    const verifies = events.filter((e) => e.event === 'verify');
    const summary = verifies.map((e) => `${e.factor} ${e.outcome}`);
    // Wrong TOTP, wrong recovery, good TOTP, replayed TOTP, recovery as typed, spent recovery,
    // ticket TOTP, the form's wrong then good code (the spent ticket is refused before any code check).
    for (const expected of ['totp failure', 'recovery failure', 'totp success', 'recovery success']) expect(summary).toContain(expected);
    expect(verifies.filter((e) => e.outcome === 'failure').length).toBeGreaterThanOrEqual(5);
    expect(verifies.filter((e) => e.outcome === 'success').length).toBeGreaterThanOrEqual(4);
    expect(verifies.some((e) => /replay/i.test(e.detail ?? ''))).toBe(true);
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['factor.add', 'recovery.issue']));
    for (const e of events) {
      expect(e.ip).toBe('127.0.0.1');
      expect(e.requestId).toMatch(/\S/);
    }
    // The same events reached the log, one line each, tied by request id.
    const auditLines = t.logs.join('').split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l) as { requestId: string; event: string; user: string });
    for (const e of events) expect(auditLines.some((l) => l.requestId === e.requestId && l.event === e.event && l.user === 'alice')).toBe(true);
  });
});
