// SPEC §9.1 as an attacker: no spelling of a gated request reaches the upstream without a grant.
// Every spelling from test/fixtures/canonical-cases.ts (`gatedSpellings`: case, slashes, dot
// segments, escapes, `;` parameters, absolute-form, fragments, method-override headers and
// `?_method=`) and the body method overrides of §7 (`_method` in urlencoded and multipart POSTs,
// bodies that cannot be inspected) go out byte for byte over a raw socket, for a signed-in user
// with a factor but no grant. Each must be refused (400) or challenged (401/403), and the recording
// upstream must have seen none of them. A control at the end shows the same gateway does forward.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatedSpellings } from '../fixtures/canonical-cases.js';
import { signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { httpText, rawRequest, type RawResponse } from '../helpers/raw.js';
import { closeUpgradesWithPeer } from '../helpers/scripted-upstream.js';
import { enrolTotp, verifyTotp } from '../helpers/stepup.js';

const ROUTES = `
rules:
  - name: billing
    match:
      - PATCH /internal/org/:key/billing
      - POST  /internal/org/:key/billing/*
  - name: device-trust
    match: PATCH /portal/security/devices/:id/trust
  - name: close-account
    match: DELETE /me
  - name: export
    match: GET /internal/export
`;

let t: TestGateway;
let cookie: string;
let secret: string;
let closeUpgrades = () => {};
beforeAll(async () => {
  t = await startTestGateway({ routes: ROUTES });
  closeUpgrades = closeUpgradesWithPeer(t.upstream.server);
  // A factor but no grant: enrolling never creates one (SPEC §4.6).
  cookie = signIn(t, 'alice');
  secret = await enrolTotp(t, cookie);
});
afterAll(async () => {
  closeUpgrades();
  await t.close();
});

const REFUSED_OR_CHALLENGED = [400, 401, 403];

/** One request on its own connection; a body gets a Content-Length unless the headers frame it (chunked). */
async function send(method: string, target: string, headers: Record<string, string> = {}, body: string | Buffer = ''): Promise<RawResponse> {
  const framed = Object.keys(headers).some((n) => n.toLowerCase() === 'transfer-encoding');
  const head = httpText(method, target, { Cookie: cookie, ...headers, ...(body.length && !framed ? { 'Content-Length': String(body.length) } : {}) });
  return rawRequest(t.url, Buffer.concat([Buffer.from(head, 'latin1'), typeof body === 'string' ? Buffer.from(body, 'latin1') : body]), { noBody: method === 'HEAD' });
}

/** What reached the app: anything but identity look-ups. */
const reachedApp = () => t.upstream.appRequests().map((r) => `${r.method} ${r.url}`);

/** Sends one attempt; `reached` is what the app received because of it. */
async function attempt(method: string, target: string, headers: Record<string, string> = {}, body: string | Buffer = '') {
  const before = reachedApp().length;
  const res = await send(method, target, headers, body);
  return { status: res.status, reached: reachedApp().slice(before) };
}

describe('every spelling of a gated request is refused or challenged, never forwarded', () => {
  it('has a case list worth the name', () => {
    expect(gatedSpellings.length).toBeGreaterThanOrEqual(40);
  });

  it.each(gatedSpellings.map((s) => [`${s.method} ${s.target}${s.headers ? ' ' + JSON.stringify(s.headers) : ''}`, s] as const))('%s', async (_label, s) => {
    const { status, reached } = await attempt(s.method, s.target, s.headers);
    expect(reached).toEqual([]);
    expect(REFUSED_OR_CHALLENGED).toContain(status);
  });
});

describe('method overrides (SPEC §7)', () => {
  const urlencoded = { 'Content-Type': 'application/x-www-form-urlencoded' };
  const multipart = (name: string, value: string) => ({
    headers: { 'Content-Type': 'multipart/form-data; boundary=----b0undary' },
    body: `------b0undary\r\nContent-Disposition: form-data; name="title"\r\n\r\nhi\r\n------b0undary\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n------b0undary--\r\n`,
  });
  const cases: Array<[string, string, string, Record<string, string>, string | Buffer]> = [
    ['X-HTTP-Method-Override: DELETE', 'POST', '/me', { 'X-HTTP-Method-Override': 'DELETE' }, ''],
    ['X-HTTP-Method: delete', 'POST', '/me', { 'X-HTTP-Method': 'delete' }, ''],
    ['X-Method-Override: DELETE', 'POST', '/me', { 'X-Method-Override': 'DELETE' }, ''],
    ['X-HTTP-Method-Override listing two methods', 'POST', '/me', { 'X-HTTP-Method-Override': 'GET, DELETE' }, ''],
    ['?_method=DELETE', 'POST', '/me?_method=DELETE', {}, ''],
    ['?_method[]=delete', 'POST', '/me?_method%5B%5D=delete', {}, ''],
    ['_method=DELETE in an urlencoded body', 'POST', '/me', urlencoded, '_method=DELETE'],
    ['_method=delete after other fields, with a charset', 'POST', '/me', { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' }, 'a=1&b=2&_method=delete'],
    ['%5Fmethod=DELETE (encoded name)', 'POST', '/me', urlencoded, '%5Fmethod=DELETE'],
    ['+_method=DELETE (leading space, as PHP reads it)', 'POST', '/me', urlencoded, '+_method=DELETE'],
    ['_method[x]=DELETE', 'POST', '/me', urlencoded, '_method%5Bx%5D=DELETE'],
    ['_method=DELETE on /Me/ (case and trailing slash)', 'POST', '/Me/', urlencoded, '_method=DELETE'],
    ['_method=DELETE in a multipart body', 'POST', '/me', multipart('_method', 'DELETE').headers, multipart('_method', 'DELETE').body],
    ['_method=patch in a multipart body to billing', 'POST', '/internal/org/acme/billing-not/../billing', multipart('_method', 'patch').headers, multipart('_method', 'patch').body],
    ['_method in a JSON body (cannot be ruled out: fail closed)', 'POST', '/me', { 'Content-Type': 'application/json' }, '{"_method":"DELETE"}'],
    ['_method in a text/plain body (wrong kind: fail closed)', 'POST', '/me', { 'Content-Type': 'text/plain' }, '_method=DELETE'],
    ['_method in a gzip body (cannot be inspected: fail closed)', 'POST', '/me', { ...urlencoded, 'Content-Encoding': 'gzip' }, gzipSync('_method=DELETE')],
    ['_method in a multipart body with a broken boundary (fail closed)', 'POST', '/me', { 'Content-Type': 'multipart/form-data' }, '--x\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--x--\r\n'],
  ];

  it.each(cases)('%s', async (_label, method, target, headers, body) => {
    const { status, reached } = await attempt(method, target, headers, body);
    expect(reached).toEqual([]);
    expect(REFUSED_OR_CHALLENGED).toContain(status);
  });

  it('_method=DELETE in a chunked urlencoded body', async () => {
    const body = '7\r\n_method\r\n7\r\n=DELETE\r\n0\r\n\r\n';
    const { status, reached } = await attempt('POST', '/me', { ...urlencoded, 'Transfer-Encoding': 'chunked' }, body);
    expect(reached).toEqual([]);
    expect(status).toBe(403); // challenged: the body was read, not refused for its framing
  });

  it.each([['/internal/export'], ['/INTERNAL/Export/'], ['/internal/./export?x=1'], ['http://evil/internal/export']])('HEAD %s is gated like GET', async (target) => {
    const { status, reached } = await attempt('HEAD', target);
    expect(reached).toEqual([]);
    expect(REFUSED_OR_CHALLENGED).toContain(status);
  });

  it('POST /internal/export with X-HTTP-Method-Override: GET is gated like GET', async () => {
    const { status, reached } = await attempt('POST', '/internal/export', { 'X-HTTP-Method-Override': 'GET' });
    expect(reached).toEqual([]);
    expect(REFUSED_OR_CHALLENGED).toContain(status);
  });
});

// SPEC §6 gates an upgrade like a GET of its path, and §7 lists every method interpretation of a
// request: an upgrade request is still a request the app may read an override from.
describe('WebSocket upgrade spellings', () => {
  const ws = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' };
  const cases: Array<[string, Record<string, string>]> = [
    ['/internal/export', {}],
    ['/INTERNAL/./export/', {}],
    ['/me', { 'X-HTTP-Method-Override': 'DELETE' }],
    ['/me', { 'X-HTTP-Method': 'delete' }],
    ['/me?_method=DELETE', {}],
    ['/internal/org/acme/billing', { 'X-Method-Override': 'PATCH' }],
    ['/portal/security/devices/abc/trust?_method=patch', {}],
  ];
  it.each(cases)('GET %s %j with Upgrade: websocket is not upgraded', async (target, headers) => {
    const { status, reached } = await attempt('GET', target, { ...ws, ...headers });
    expect(reached).toEqual([]);
    expect(REFUSED_OR_CHALLENGED).toContain(status);
  });
});

describe('afterwards', () => {
  it('the upstream saw none of them', () => {
    expect(t.upstream.appRequests()).toHaveLength(0);
    // The user was known to the gate all along (identity look-ups happened).
    expect(t.upstream.seen.some((r) => r.url === '/api/me')).toBe(true);
  });

  it('control: the same gateway forwards what is not gated, and gated requests with a grant', async () => {
    const free = await attempt('POST', '/me', { 'Content-Type': 'application/x-www-form-urlencoded' }, '_method=PUT&x=1');
    expect(free).toEqual({ status: 200, reached: ['POST /me'] });
    expect(t.upstream.appRequests().at(-1)!.body).toBe('_method=PUT&x=1');
    await verifyTotp(t, cookie, secret);
    expect(await attempt('PATCH', '/internal/org/acme/./BILLING')).toEqual({ status: 200, reached: ['PATCH /internal/org/acme/BILLING'] });
  });
});
