// identity.source: header (an SSO proxy in front names the user), attacked from both sides of the
// trust line. From a peer outside `trusted_proxies` the user header names nobody and never reaches
// the app, in any spelling a CGI-style app would read as the same header. From the trusted proxy
// it names the user and reaches the app (SPEC §6) in that one spelling; a grant then belongs to
// that user and that session only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oathtool, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const headerSourceYaml = (trusted: string) => (upstreamUrl: string, dataDir: string) => `listen: 127.0.0.1:0
upstream: ${upstreamUrl}
public_origin: http://localhost:8080
data_dir: ${dataDir}
admin_listen: null
identity:
  source: header
  header:
    user: X-Forwarded-User
    trusted_proxies: [${trusted}]
`;

/** Every spelling of the user header a PHP, Rack or WSGI app reads as X-Forwarded-User. */
const SPELLINGS = ['X-Forwarded-User', 'x-forwarded-user', 'X_Forwarded_User', 'x-FORWARDED_user'];
const namesUserHeader = (headers: Record<string, unknown>) => Object.keys(headers).some((n) => n.toLowerCase().replace(/_/g, '-') === 'x-forwarded-user');

interface Call {
  method?: string;
  user?: string;
  cookie?: string;
  body?: unknown;
  extra?: Record<string, string>;
}

async function call(t: TestGateway, path: string, { method = 'GET', user, cookie, body, extra }: Call = {}) {
  const headers: Record<string, string> = { ...extra };
  if (user) headers['x-forwarded-user'] = user;
  if (cookie) headers.cookie = cookie;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(t.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const setCookie = res.headers.get('set-cookie');
  return { status: res.status, text: await res.text(), cookie: setCookie ? setCookie.split(';')[0]! : undefined };
}

describe('from a peer outside trusted_proxies', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ gatewayYaml: headerSourceYaml('10.9.9.9') });
  });
  afterAll(() => t.close());

  it.each(SPELLINGS)('%s names nobody on a gated route, and the app never sees the request', async (spelling) => {
    const res = await call(t, '/internal/org/acme/billing', { method: 'PATCH', extra: { [spelling]: 'alice' } });
    expect(res.status).toBe(401);
    expect(t.upstream.appRequests().filter((r) => r.url.includes('billing'))).toEqual([]);
  });

  it.each(SPELLINGS)('%s is stripped before a free request is forwarded', async (spelling) => {
    const res = await call(t, `/free/${encodeURIComponent(spelling)}`, { extra: { [spelling]: 'admin' } });
    expect(res.status).toBe(200);
    const seen = t.upstream.appRequests().at(-1)!;
    expect(seen.url).toBe(`/free/${encodeURIComponent(spelling)}`);
    expect(namesUserHeader(seen.headers)).toBe(false);
  });
});

describe('from the trusted proxy', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ gatewayYaml: headerSourceYaml('127.0.0.1') });
  });
  afterAll(() => t.close());

  it('names the user; a grant passes that user and session only', async () => {
    // The app behind an SSO proxy reads the header too: from the trusted proxy it is forwarded
    // (SPEC §6), in the spelling the gate read and no other.
    await call(t, '/free/hello', { user: 'alice', extra: { X_Forwarded_User: 'admin', 'x-FORWARDED_user': 'admin' } });
    const free = t.upstream.appRequests().at(-1)!;
    expect(free.headers['x-forwarded-user']).toBe('alice');
    expect(Object.keys(free.headers).filter((n) => n.toLowerCase().replace(/_/g, '-') === 'x-forwarded-user')).toEqual(['x-forwarded-user']);

    // No app session cookie: the gateway's own cookie names the session.
    const first = await call(t, '/internal/org/acme/billing', { method: 'PATCH', user: 'alice' });
    expect(first.status).toBe(403);
    expect(JSON.parse(first.text).code).toBe('STEP_UP_REQUIRED');
    const session = first.cookie!;
    expect(session).toMatch(/^stepgate=[A-Za-z0-9_-]{43}$/);

    const enrol = await call(t, '/__stepup/api/enroll/totp', { method: 'POST', user: 'alice', cookie: session, body: {} });
    expect(enrol.status).toBe(200);
    const secret = JSON.parse(enrol.text).secret as string;
    const confirm = await call(t, '/__stepup/api/enroll/totp/confirm', { method: 'POST', user: 'alice', cookie: session, body: { code: oathtool(secret, t.clock.now()) } });
    expect(confirm.status).toBe(200);
    t.clock.advance(30_000);
    const verify = await call(t, '/__stepup/api/verify/totp', { method: 'POST', user: 'alice', cookie: session, body: { code: oathtool(secret, t.clock.now()) } });
    expect(verify.status).toBe(200);

    const passed = await call(t, '/internal/org/acme/billing', { method: 'PATCH', user: 'alice', cookie: session });
    expect(passed.status).toBe(200);
    const seen = t.upstream.appRequests().at(-1)!;
    expect(seen.headers['x-stepgate-user']).toBe('alice');
    expect(seen.headers['x-forwarded-user']).toBe('alice');
    const billingSeen = () => t.upstream.appRequests().filter((r) => r.url.includes('billing')).length;
    expect(billingSeen()).toBe(1);

    // The same session cookie with another user named: that user has no grant.
    expect((await call(t, '/internal/org/acme/billing', { method: 'PATCH', user: 'bob', cookie: session })).status).toBe(403);
    // Alice without her session: a new session, no grant.
    expect((await call(t, '/internal/org/acme/billing', { method: 'PATCH', user: 'alice' })).status).toBe(403);
    // Alice again, after the others: her identity and session still pass.
    expect((await call(t, '/internal/org/acme/billing', { method: 'PATCH', user: 'alice', cookie: session })).status).toBe(200);
    expect(billingSeen()).toBe(2);
  });
});
