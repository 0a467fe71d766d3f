// SPEC §9.1 at scale: a GENERATED corpus of spellings of gated requests — a few gated targets ×
// every transformation an attacker has (percent-encoding of each character class, double encoding,
// case, dot segments plain and encoded, slashes, backslashes, `;` parameters, `#`, absolute-form,
// overlong and invalid UTF-8, NUL and control characters, very long paths, method spellings and
// overrides, HEAD, WebSocket upgrades, HTTP/1.0, pipelining, CL/TE conflicts, and `%2F` on a second
// gateway with `encoded_slashes: keep`) — sent byte for byte over raw sockets through a real
// gateway, for a signed-in user with a factor and NO grant.
//
// The verdict does not come from the gateway: every request the upstream receives is read by two
// independent app interpreters (test/helpers/interpreters.ts: an Express-like router with
// method-override, and a strict RFC 3986 decoder). The test fails if EITHER would run a gated
// handler, if the upstream receives a request the gate did not evaluate (smuggling), or if what it
// receives is not exactly the canonical target the gate evaluated (`canonicalise()`).
// test/security/gated-spellings.test.ts keeps the hand-written list; this file extends it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRoutesConfig } from '../../src/config/load.js';
import { canonicalise } from '../../src/rules/canonical.js';
import { signIn, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { appReadings, appRoutesOf, type AppRoute } from '../helpers/interpreters.js';
import { RawConnection, type RawResponse } from '../helpers/raw.js';
import { closeUpgradesWithPeer } from '../helpers/scripted-upstream.js';
import { enrolTotp, verifyTotp } from '../helpers/stepup.js';
import type { SeenRequest } from '../helpers/upstream.js';

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
const APP_ROUTES: AppRoute[] = appRoutesOf(parseRoutesConfig(ROUTES, 'routes.yaml').rules);

// ── the corpus ──────────────────────────────────────────────────────────────────────────────────

interface Sub {
  method: string;
  target: string;
  headers?: Record<string, string>;
  body?: string;
  version?: '1.0' | '1.1';
  /** Leave out the Host header (HTTP/1.0). */
  noHost?: boolean;
}

interface Spelling {
  label: string;
  /** Requests written on one connection, in order (several: pipelining). */
  subs: Sub[];
  /** Raw bytes to write instead of `subs` (framing attacks); `subs` then lists the evaluable requests. */
  raw?: (ids: string[]) => string;
  noBody?: boolean;
  /** Which gateway: routes.yaml `encoded_slashes` (default reject). */
  mode?: 'reject' | 'keep';
}

interface Base {
  method: string;
  path: string;
}

const BASES: Base[] = [
  { method: 'PATCH', path: '/internal/org/acme/billing' },
  { method: 'POST', path: '/internal/org/acme/billing/plan' },
  { method: 'DELETE', path: '/me' },
  { method: 'PATCH', path: '/portal/security/devices/d1/trust' },
  { method: 'GET', path: '/internal/export' },
];
/** `:param` segments holding every unreserved punctuation character, to encode each class. */
const PUNCT_BASES: Base[] = [
  { method: 'PATCH', path: '/internal/org/a-c.m_e~1/billing' },
  { method: 'PATCH', path: '/portal/security/devices/D-9.x_y~z/trust' },
];

const hex = (c: string, lower = false) => {
  const h = '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
  return lower ? h.toLowerCase() : h;
};
const label = (b: Base, target: string, extra = '') => `${b.method} ${target.length > 90 ? `${target.slice(0, 60)}… (${target.length} chars)` : target}${extra}`;
const one = (b: Base, target: string, sub: Partial<Sub> = {}, extra = ''): Spelling => ({ label: label({ ...b, method: sub.method ?? b.method }, target, extra), subs: [{ method: b.method, target, ...sub }], noBody: (sub.method ?? b.method) === 'HEAD' });
/** Indexes of the `/` separators of a path. */
const slashes = (p: string) => [...p].flatMap((c, i) => (c === '/' ? [i] : []));
const segmentsOf = (p: string) => p.split('/').slice(1);
const join = (segs: string[]) => '/' + segs.join('/');

const corpus: Record<string, Spelling[]> = {};
function add(category: string, spellings: Spelling[]): void {
  (corpus[category] ??= []).push(...spellings);
}

// Percent-encoding of unreserved characters: each character of each path on its own (upper-case
// hex, and lower-case hex), every character at once, and each punctuation class.
for (const b of [...BASES, ...PUNCT_BASES]) {
  const p = b.path;
  const chars = [...p].map((c, i) => [c, i] as const).filter(([c]) => c !== '/');
  add('percent-encoded unreserved characters', [
    ...chars.map(([c, i]) => one(b, p.slice(0, i) + hex(c, i % 2 === 1) + p.slice(i + 1))),
    one(b, [...p].map((c) => (c === '/' ? c : hex(c))).join('')),
    one(b, [...p].map((c) => (c === '/' ? c : hex(c, true))).join('')),
  ]);
}

// Percent-encoding of reserved, delimiter and other characters, inside and around segments.
const RESERVED = ['/', '\\', ';', '?', '#', '%', ' ', '@', ':', '*', '+', ',', '=', '&', '$', '!', "'", '(', ')', '[', ']', '"', '<', '>', '|', '^', '`', '{', '}'];
for (const b of BASES.slice(0, 3)) {
  const segs = segmentsOf(b.path);
  const last = segs.length - 1;
  add('percent-encoded reserved and other characters', [
    ...RESERVED.map((c, i) => one(b, join([...segs.slice(0, last), i % 2 ? segs[last]! + hex(c) : hex(c) + segs[last]!]))),
    // %2F in place of each separator, both hex cases.
    ...slashes(b.path).slice(1).map((i) => one(b, b.path.slice(0, i) + '%2F' + b.path.slice(i + 1))),
    ...slashes(b.path).slice(1).map((i) => one(b, b.path.slice(0, i) + '%2f' + b.path.slice(i + 1))),
    one(b, '%2F' + b.path.slice(1)),
  ]);
}

// Double (and mixed) encoding: %25-escapes of escapes.
for (const b of BASES) {
  const p = b.path;
  add('double encoding', [
    one(b, p.slice(0, -1) + '%25' + p.charCodeAt(p.length - 1).toString(16)), // …billin%2567
    one(b, p.replaceAll('/', '%252F').replace(/^%252F/, '/')),
    one(b, '/x/%252e%252e' + p),
    one(b, '/x/%25%32%65%25%32%65' + p),
    one(b, p + '%252F..%252F..'),
    one(b, p.replace(/e/, '%%36%35')),
  ]);
}

// Case: the gate matches case-insensitively, as Express routes.
for (const b of BASES) {
  const p = b.path;
  const title = p.replace(/(^|\/)([a-z])/g, (_m, s: string, c: string) => s + c.toUpperCase());
  const alternating = [...p].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('');
  const lastUpper = p.replace(/[^/]+$/, (s) => s.toUpperCase());
  add('mixed case', [one(b, p.toUpperCase()), one(b, title), one(b, alternating), one(b, lastUpper), one(b, p.toUpperCase().replace(/E/g, '%65'))]);
}

// Dot segments, plain: resolved by the gate before matching (and before forwarding).
for (const b of BASES) {
  const p = b.path;
  add('dot segments (plain)', [
    ...slashes(p).map((i) => one(b, p.slice(0, i) + '/.' + p.slice(i))),
    ...slashes(p).map((i) => one(b, p.slice(0, i) + '/x/..' + p.slice(i))),
    one(b, p + '/.'),
    one(b, p + '/x/..'),
    one(b, p + '/x/../'),
    one(b, '/..' + p), // climbs above the root
    one(b, p + '/../..' + p),
    one(b, p.replace(/\/[^/]+$/, '/..;x=1$&')),
  ]);
}

// Dot segments spelled with encoded dots: refused.
for (const b of BASES) {
  const p = b.path;
  add('dot segments (encoded)', ['%2e', '%2E', '.%2e', '%2e.', '%2E%2e', '%2e%2E'].flatMap((dots, k) => [
    one(b, `/x/${dots}${dots.length > 3 ? '' : '/x/..'}${p}`),
    one(b, p + '/x/' + dots + (k % 2 ? '' : '/')),
  ]));
}

// Repeated and trailing slashes.
for (const b of BASES) {
  const p = b.path;
  add('repeated and trailing slashes', [
    ...slashes(p).map((i) => one(b, p.slice(0, i) + '//' + p.slice(i + 1))),
    one(b, p.replaceAll('/', '///')),
    one(b, p + '/'),
    one(b, p + '//'),
    one(b, '//' + p.slice(1) + '//'),
  ]);
}

// Backslashes, raw and encoded: refused.
for (const b of BASES) {
  const p = b.path;
  add('backslashes', [
    ...slashes(p).slice(1).map((i) => one(b, p.slice(0, i) + '\\' + p.slice(i + 1))),
    one(b, p + '\\'),
    one(b, '/\\' + p.slice(1)),
    one(b, p.replace(/\/([^/]+)$/, '/x\\..\\$1')),
    one(b, p.slice(0, p.lastIndexOf('/')) + '%5C' + p.slice(p.lastIndexOf('/') + 1)),
    one(b, p.slice(0, p.lastIndexOf('/')) + '%5c' + p.slice(p.lastIndexOf('/') + 1)),
  ]);
}

// `;` parameters (matched as if stripped; refused on a gated request).
for (const b of BASES) {
  const segs = segmentsOf(b.path);
  add('`;` parameters', [
    ...segs.map((_s, i) => one(b, join(segs.map((s, j) => (j === i ? s + ';x=1' : s))))),
    one(b, b.path + ';'),
    one(b, b.path + ';jsessionid=ABC123'),
    one(b, '/;x' + b.path),
    one(b, b.path + '/;x'),
    one(b, b.path.replace(/\/[^/]+$/, '/x;/..;$&')),
  ]);
}
// A `:param` filled by a segment that is nothing but parameters: `/devices/;x/trust`.
add('`;` parameters', [
  one(BASES[0]!, '/internal/org/;x/billing'),
  one(BASES[0]!, '/internal/org/;/billing'),
  one(BASES[1]!, '/internal/org/;jsessionid=1/billing/plan'),
  one(BASES[3]!, '/portal/security/devices/;x=1/trust'),
  one(BASES[3]!, '/portal/security/devices/;/trust'),
]);

// `#` in the target (a fragment is never sent): refused; `%23` is data.
for (const b of BASES) {
  const p = b.path;
  add('`#` in the target', [one(b, p + '#'), one(b, p + '#frag'), one(b, p + '#/../x'), one(b, '/x#/../..' + p), one(b, p + '?a=1#b'), one(b, p + '%23')]);
}

// Absolute-form targets: matched on their path.
for (const b of BASES) {
  const p = b.path;
  add('absolute-form', [
    one(b, 'http://localhost' + p),
    one(b, 'https://evil.example' + p),
    one(b, 'HTTP://LOCALHOST:80' + p.toUpperCase()),
    one(b, 'http://user:pw@localhost' + p + '?q=1'),
    one(b, 'http://[::1]:8080' + p),
    one(b, 'http://localhost/' + p),
    one(b, 'http://localhost/x/..' + p),
    one(b, 'http://evil\\@localhost' + p),
    one(b, 'http:' + p),
    one(b, '//localhost' + p),
  ]);
}

// Overlong and invalid UTF-8, percent-encoded (raw bytes >= 0x80 are refused by the parser too).
const BAD_UTF8 = ['%C0%AF', '%C0%AE', '%E0%80%AF', '%F0%80%80%AF', '%C1%9C', '%ED%A0%80', '%FF', '%C3', '%80', '%F8%88%80%80%80', '%C0%80'];
for (const b of BASES) {
  const p = b.path;
  const cut = p.lastIndexOf('/');
  add('overlong / invalid UTF-8', [
    ...BAD_UTF8.map((s, i) => one(b, i % 2 ? p + s : p.slice(0, cut) + s + p.slice(cut + 1))),
    one(b, p.slice(0, cut) + '%C0%AF' + p.slice(cut + 1)), // overlong '/' as the separator
    one(b, '/x/%C0%AE%C0%AE' + p), // overlong '..'
    one(b, p.slice(0, cut) + '\u00c0\u00af' + p.slice(cut + 1)), // raw overlong bytes
    one(b, p + '\u00e9'), // a raw latin1 byte
    one(b, p.slice(0, cut) + '%EF%BC%8F' + p.slice(cut + 1)), // valid: fullwidth solidus is data
  ]);
}

// NUL and control characters, encoded and raw.
const CONTROLS = ['%00', '%01', '%09', '%0A', '%0D', '%0D%0A', '%1B', '%1F', '%7F', '%C2%80', '%C2%85', '%C2%9F'];
for (const b of BASES) {
  const p = b.path;
  add('NUL and control characters', [
    ...CONTROLS.map((c, i) => one(b, i % 2 ? p + c : p.slice(0, p.lastIndexOf('/') + 1) + c + p.slice(p.lastIndexOf('/') + 1))),
    one(b, p + '\u0000'),
    one(b, p + '\t'),
    one(b, p + '\u007f'),
    one(b, p + '\u000b'),
  ]);
}

// Very long paths: deep dot-segment chains, long segments, thousands of slashes, one past the header limit.
for (const b of BASES) {
  const p = b.path;
  add('very long paths', [
    one(b, '/x'.repeat(2000) + '/..'.repeat(2000) + p),
    one(b, '/.'.repeat(4000) + p),
    one(b, '/' + 'a'.repeat(8000) + '/..' + p),
    one(b, '/'.repeat(10_000) + p.slice(1)),
    one(b, p + '/' + 'x'.repeat(6000) + '/..'),
    one(b, '/x/..'.repeat(7000) + p), // 35 KB: past the 32 KiB header limit
  ]);
}

// Method spellings: lower/mixed-case methods, override headers in every spelling, `_method`.
const OVERRIDE_NAMES = ['X-HTTP-Method-Override', 'x-http-method-override', 'X-HTTP-Method', 'X-Method-Override', 'X_HTTP_Method_Override', 'x_http_method_override', 'X-HTTP_Method-Override', 'X_HTTP_METHOD', 'X_Method_Override'];
for (const b of BASES) {
  const p = b.path;
  const m = b.method;
  const outer = m === 'POST' ? 'PUT' : 'POST';
  const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
  add('method spellings and overrides', [
    one(b, p, { method: m.toLowerCase() }),
    one(b, p, { method: m[0] + m.slice(1).toLowerCase() }),
    ...OVERRIDE_NAMES.map((name) => one(b, p, { method: outer, headers: { [name]: m } }, ` ${name}: ${m}`)),
    ...[m.toLowerCase(), ` ${m[0]}${m.slice(1).toLowerCase()} `, `GET, ${m}`, `${m},GET`].map((v) => one(b, p, { method: outer, headers: { 'X-HTTP-Method-Override': v } }, ` X-HTTP-Method-Override: ${JSON.stringify(v)}`)),
    one(b, p, { method: 'GET', headers: { 'X-HTTP-Method-Override': m } }, ` X-HTTP-Method-Override: ${m}`),
    one(b, p, { method: 'OPTIONS', headers: { 'X-HTTP-Method-Override': m } }, ` X-HTTP-Method-Override: ${m}`),
    ...[`_method=${m}`, `_METHOD=${m.toLowerCase()}`, `x=1&_method=${m}`, `_method%5B%5D=${m}`, `+_method=${m}`, `_method=%20${m}%20`, `%5Fmethod=${m}`, `%5fmethod=${m}`, `_%6Dethod=${m}`, `_met%68od=${m}`].map((q) =>
      one(b, `${p}?${q}`, { method: outer }),
    ),
    one(b, p, { method: 'POST', headers: form, body: `_method=${m}` }),
    one(b, p, { method: 'POST', headers: form, body: `%5Fmethod=${m.toLowerCase()}` }),
  ]);
}

// HEAD is a GET to the app.
{
  const b = BASES[4]!; // GET /internal/export
  const head = (target: string, headers: Record<string, string> = {}) => one({ ...b, method: 'HEAD' }, target, { method: 'HEAD', headers });
  add('HEAD', [
    head(b.path),
    head(b.path.toUpperCase()),
    head(b.path + '/'),
    head('/internal/./x/../export'),
    head('//internal//export'),
    head('/internal/%65xport'),
    head('http://localhost/internal/export'),
    head(b.path + ';x'),
    head(b.path + '?_method=GET'),
    head('/me', { 'X-HTTP-Method-Override': 'DELETE' }),
    head('/me?_method=DELETE'),
    head('/internal/org/acme/billing', { X_HTTP_Method_Override: 'PATCH' }),
  ]);
}

// WebSocket upgrades are gated like a GET of their path, overrides included.
{
  const ws = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' };
  const up = (target: string, headers: Record<string, string> = {}, method = 'GET') => one({ method, path: target }, target, { method, headers: { ...ws, ...headers } }, ` [Upgrade: ${headers.Upgrade ?? 'websocket'}]${Object.keys(headers).filter((h) => h !== 'Upgrade' && h !== 'Connection').map((h) => ` ${h}: ${headers[h]}`).join('')}`);
  add('WebSocket upgrades', [
    up('/internal/export'),
    up('/INTERNAL/EXPORT/'),
    up('/internal/./export'),
    up('/internal/%65xport'),
    up('//internal/export'),
    up('http://localhost/internal/export'),
    up('/internal/export', { Upgrade: 'WebSocket' }),
    up('/internal/export', { Upgrade: 'websocket', Connection: 'keep-alive, Upgrade' }),
    up('/me', { 'X-HTTP-Method-Override': 'DELETE' }),
    up('/me', { X_HTTP_Method_Override: 'DELETE' }),
    up('/me?_method=DELETE'),
    up('/me?%5Fmethod=DELETE'),
    up('/internal/org/acme/billing', { 'X-Method-Override': 'PATCH' }),
    up('/portal/security/devices/d1/trust?_method=patch'),
    up('/me', { Upgrade: 'h2c', Connection: 'Upgrade, HTTP2-Settings', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' }, 'DELETE'),
    up('/me', {}, 'DELETE'),
    up('/me', { 'X-HTTP-Method-Override': 'DELETE' }, 'POST'),
  ]);
}

// HTTP/1.0, with and without Host.
for (const b of BASES) {
  add('HTTP/1.0', [
    one(b, b.path, { version: '1.0' }),
    one(b, b.path, { version: '1.0', noHost: true }, ' (no Host)'),
    one(b, 'http://localhost' + b.path, { version: '1.0', noHost: true }, ' (no Host)'),
    one(b, b.path.toUpperCase() + '/', { version: '1.0', headers: { Connection: 'keep-alive' } }),
  ]);
}

// Pipelining: several requests on one connection, each gated on its own.
const FREE: Sub = { method: 'GET', target: '/free/a' };
for (const b of BASES) {
  const gated: Sub = { method: b.method, target: b.path };
  const variant: Sub = { method: b.method, target: b.path.toUpperCase() + '/' };
  const pipelined = (subs: Sub[], what: string): Spelling => ({ label: `${label(b, b.path)} ${what}`, subs });
  add('pipelined requests', [
    pipelined([FREE, gated, { ...FREE, target: '/free/b' }], 'between two free requests'),
    pipelined([gated, FREE], 'then a free request'),
    pipelined([gated, variant, gated], 'three times, two spellings'),
    pipelined([{ method: 'POST', target: '/free/a', headers: { 'Content-Type': 'text/plain' }, body: `${b.method} ${b.path} HTTP/1.1\r\nHost: localhost\r\n\r\n` }, gated], 'after a POST whose body spells it'),
    pipelined([{ ...gated, version: '1.0', headers: { Connection: 'keep-alive' } }, { ...FREE, version: '1.0' }], 'HTTP/1.0 keep-alive, then a free request'),
  ]);
}

// CL/TE conflicts and other framing tricks: an outer request to a free path, an inner gated one
// that only exists if some parser reads the framing differently. The inner request carries no
// X-Request-Id, so the upstream receiving it is caught as "never evaluated by the gate".
for (const b of BASES) {
  const inner = `${b.method} ${b.path} HTTP/1.1\r\nHost: localhost\r\nCookie: {COOKIE}\r\n\r\n`;
  const smuggle = (name: string, head: string, body: string): Spelling => ({
    label: `${label(b, b.path)} smuggled by ${name}`,
    subs: [{ method: 'POST', target: '/free/a' }],
    raw: ([id]) => `POST /free/a HTTP/1.1\r\nHost: localhost\r\nCookie: {COOKIE}\r\nX-Request-Id: ${id}\r\n${head}\r\n${body}`,
  });
  const cl = Buffer.byteLength(`0\r\n\r\n${inner}`);
  add('CL/TE conflicts', [
    smuggle('CL + TE', `Content-Length: 5\r\nTransfer-Encoding: chunked\r\n`, `0\r\n\r\n${inner}`),
    smuggle('TE + CL', `Transfer-Encoding: chunked\r\nContent-Length: ${cl}\r\n`, `0\r\n\r\n${inner}`),
    smuggle('two Content-Lengths', `Content-Length: 0\r\nContent-Length: ${inner.length}\r\n`, inner),
    smuggle('a Content-Length list', `Content-Length: 0, ${inner.length}\r\n`, inner),
    smuggle('TE: gzip, chunked', `Transfer-Encoding: gzip, chunked\r\n`, `0\r\n\r\n${inner}`),
    smuggle('TE: chunked, identity', `Transfer-Encoding: chunked, identity\r\n`, `0\r\n\r\n${inner}`),
    smuggle('two TE headers', `Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n`, `0\r\n\r\n${inner}`),
    smuggle('TE: xchunked', `Transfer-Encoding: xchunked\r\n`, `0\r\n\r\n${inner}`),
    smuggle('obs-folded TE', `Transfer-Encoding:\r\n chunked\r\nContent-Length: ${cl}\r\n`, `0\r\n\r\n${inner}`),
    smuggle('TE with a tab', `Transfer-Encoding:\tchunked\r\nContent-Length: ${cl}\r\n`, `0\r\n\r\n${inner}`),
    smuggle('a signed Content-Length', `Content-Length: +0\r\n`, inner),
    smuggle('a hex Content-Length', `Content-Length: 0x0\r\n`, inner),
    smuggle('a chunk-size with an extension', `Transfer-Encoding: chunked\r\n`, `0;ext=1\r\n\r\n${inner}`),
    smuggle('bare-LF chunk framing', `Transfer-Encoding: chunked\r\n`, `0\n\n${inner}`),
  ]);
}

// Encoded slashes on a gateway with `encoded_slashes: keep` (SPEC §7): `%2F` is forwarded, and the
// request is gated if EITHER reading — data inside a segment, or a separator — matches a rule.
for (const b of BASES) {
  const p = b.path;
  const cuts = slashes(p).slice(1);
  const keep = (target: string): Spelling => ({ ...one(b, target), mode: 'keep' });
  add('encoded slashes under encoded_slashes: keep', [
    ...cuts.map((i) => keep(p.slice(0, i) + '%2F' + p.slice(i + 1))),
    ...cuts.map((i) => keep(p.slice(0, i) + '%2f' + p.slice(i + 1))),
    keep(p.replaceAll('/', '%2F').replace(/^%2F/, '/')),
    ...cuts.map((i) => keep(p.slice(0, i) + '/x%2F..' + p.slice(i))),
    ...cuts.map((i) => keep(p.slice(0, i) + '%2Fx%2F..' + p.slice(i))),
    keep('/x%2F..' + p),
    keep('/x%2F..%2F..' + p),
    keep(p + '%2F'),
    keep(p + '%2F.'),
    keep(p + '%2Fx%2F..'),
    keep('/a%2F%2e%2e' + p),
    keep(p.replace(/\/[^/]+$/, '%2F..$&')),
  ]);
}

const CATEGORIES = Object.entries(corpus);
const TOTAL = CATEGORIES.reduce((n, [, s]) => n + s.length, 0);

// ── the run ─────────────────────────────────────────────────────────────────────────────────────

interface Under {
  t: TestGateway;
  cookie: string;
  secret: string;
  closeUpgrades: () => void;
}
const gateways: Partial<Record<'reject' | 'keep', Under>> = {};
let nextId = 0;

async function gatewayFor(mode: 'reject' | 'keep'): Promise<Under> {
  const t = await startTestGateway({ routes: mode === 'keep' ? `encoded_slashes: keep\n${ROUTES}` : ROUTES });
  const closeUpgrades = closeUpgradesWithPeer(t.upstream.server);
  const cookie = signIn(t, 'alice');
  const secret = await enrolTotp(t, cookie); // a factor, and no grant: enrolling never creates one
  return { t, cookie, secret, closeUpgrades };
}

beforeAll(async () => {
  gateways.reject = await gatewayFor('reject');
  gateways.keep = await gatewayFor('keep');
});
afterAll(async () => {
  for (const g of Object.values(gateways)) {
    g.closeUpgrades();
    await g.t.close();
  }
});

function requestText(s: Sub, id: string, cookie: string): string {
  const version = s.version ?? '1.1';
  const lines = [`${s.method} ${s.target} HTTP/${version}`];
  if (!s.noHost) lines.push('Host: localhost');
  lines.push(`Cookie: ${cookie}`, `X-Request-Id: ${id}`);
  for (const [n, v] of Object.entries(s.headers ?? {})) lines.push(`${n}: ${v}`);
  if (s.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(s.body, 'latin1')}`);
  return lines.join('\r\n') + '\r\n\r\n' + (s.body ?? '');
}

interface Outcome {
  responses: RawResponse[];
  received: SeenRequest[];
  ids: string[];
}

async function send(sp: Spelling): Promise<Outcome> {
  const { t, cookie } = gateways[sp.mode ?? 'reject']!;
  const ids = sp.subs.map(() => `corpus-${++nextId}`);
  const before = t.upstream.appRequests().length;
  const text = (sp.raw ? sp.raw(ids) : sp.subs.map((s, i) => requestText(s, ids[i]!, cookie)).join('')).replaceAll('{COOKIE}', cookie);
  const conn = await RawConnection.open(t.url);
  const responses: RawResponse[] = [];
  try {
    conn.write(Buffer.from(text, 'latin1'));
    const deadline = Date.now() + 3_000;
    // Read until every request was answered, the gateway closed, or an upgrade took the connection.
    for (let i = 0; i < sp.subs.length + (sp.raw ? 1 : 0); i++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      // A raw framing attack may answer once and close; its extra read returns as soon as it does.
      const res = await conn.readResponse({ noBody: sp.noBody, timeoutMs: sp.raw && i > 0 ? Math.min(left, 300) : left });
      if (res.status === 0) break;
      responses.push(res);
      if (res.status === 101) break;
    }
  } finally {
    conn.close();
  }
  if (sp.raw) await new Promise((r) => setTimeout(r, 20)); // a smuggled request would be recorded by now
  return { responses, received: t.upstream.appRequests().slice(before), ids };
}

/** The assertions of SPEC §9.1 for one spelling, against what the upstream actually received. */
function assertNothingGatedReached(sp: Spelling, { responses, received, ids }: Outcome): void {
  for (const r of received) {
    const id = r.headers['x-request-id'];
    const i = ids.indexOf(typeof id === 'string' ? id : '');
    // Smuggling: the upstream got a request the gate never evaluated.
    expect(i, `the upstream received ${r.method} ${r.url}, which the gate never evaluated`).toBeGreaterThanOrEqual(0);
    const sub = sp.subs[i]!;
    // The gate forwards exactly the canonical target it evaluated, method unchanged.
    const canon = canonicalise(sub.target, sp.mode ?? 'reject');
    expect(canon.ok, `forwarded a target canonicalise() refuses: ${sub.target}`).toBe(true);
    if (canon.ok) expect(r.url).toBe(canon.forwardPath + canon.query);
    expect(r.method).toBe(sub.method);
    // Neither app reading may route it to a gated handler.
    expect(appReadings(APP_ROUTES, r), `${r.method} ${r.url} ${JSON.stringify(r.headers)}`).toEqual({ express: [], strict: [] });
  }
  // Whatever did not reach the app was refused or challenged by the gateway itself.
  for (const res of responses) expect([101, 200, 400, 401, 403, 405, 431]).toContain(res.status);
  expect(responses.length, 'the gateway answered').toBeGreaterThan(0);
}

describe(`bypass corpus: ${TOTAL} generated spellings of gated requests, user signed in without a grant`, () => {
  it('is large enough, and the interpreters do see the gated targets themselves', () => {
    expect(TOTAL).toBeGreaterThanOrEqual(300);
    // The readings are not vacuous: each base target, and typical spellings, route to a gated rule.
    for (const b of BASES) expect(appReadings(APP_ROUTES, { method: b.method, url: b.path, headers: {} }).express).not.toEqual([]);
    for (const b of BASES) expect(appReadings(APP_ROUTES, { method: b.method, url: b.path, headers: {} }).strict).not.toEqual([]);
    expect(appReadings(APP_ROUTES, { method: 'POST', url: '/ME/', headers: { x_http_method_override: 'delete' } }).express).toEqual(['close-account']);
    expect(appReadings(APP_ROUTES, { method: 'POST', url: '/me?%5Fmethod=DELETE', headers: {} }).express).toEqual(['close-account']);
    expect(appReadings(APP_ROUTES, { method: 'POST', url: '/me', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '_method=delete' }).express).toEqual(['close-account']);
    expect(appReadings(APP_ROUTES, { method: 'PATCH', url: '/internal/org/%61cme%2Fx/billing', headers: {} }).express).toEqual(['billing']);
    expect(appReadings(APP_ROUTES, { method: 'PATCH', url: '/internal/org/x%2F..%2Facme/billing', headers: {} }).strict).toEqual(['billing']);
    expect(appReadings(APP_ROUTES, { method: 'HEAD', url: '/internal/x/%2e%2e/export', headers: {} }).strict).toEqual(['export']);
  });

  for (const [category, spellings] of CATEGORIES) {
    describe(`${category} (${spellings.length} spellings)`, () => {
      it.each(spellings.map((s) => [s.label, s] as const))('%s', async (_label, sp) => {
        assertNothingGatedReached(sp, await send(sp));
      });
    });
  }
});

describe('control: the same corpus machinery does detect gated requests', () => {
  it('with a grant, gated spellings reach the app with the canonical path, and the interpreters flag them', async () => {
    const { t, cookie, secret } = gateways.reject!;
    await verifyTotp(t, cookie, secret);
    const sample = [...corpus['mixed case']!, ...corpus['dot segments (plain)']!.slice(0, 4), ...corpus['percent-encoded unreserved characters']!.slice(0, 4)];
    let flagged = 0;
    for (const sp of sample) {
      const { received, ids } = await send(sp);
      for (const r of received) {
        const sub = sp.subs[ids.indexOf(r.headers['x-request-id'] as string)]!;
        const canon = canonicalise(sub.target, 'reject');
        if (canon.ok) expect(r.url).toBe(canon.forwardPath + canon.query);
        const readings = appReadings(APP_ROUTES, r);
        if (readings.express.length > 0 || readings.strict.length > 0) flagged++;
      }
    }
    // Every sampled spelling that is not a climb above the root reached the app as a gated request.
    expect(flagged).toBeGreaterThanOrEqual(sample.length - 5);
  });
});
