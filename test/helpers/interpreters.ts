// Two independent readings of a request as the app behind the gateway might route it, used by the
// security tests to ask "would the app have run a gated handler for what it just received?".
// Neither shares code with src/: they are written from the frameworks' and RFCs' behaviour, and
// err on the side of routing MORE requests to a handler (a false alarm is safe; a blind spot is not).
//
// - expressRoutes: an Express-4-like router with method-override middleware. Case-insensitive,
//   trailing slash optional, literal segments compared raw or decoded once, `:params` decoded once
//   with decodeURIComponent, `;x` read both as data (as Express does) and stripped (as Tomcat and
//   Spring do), repeated slashes collapsed (over-approximation), HEAD routed to GET handlers, and the method overridden
//   by `X-HTTP-Method-Override` / `X-HTTP-Method` / `X-Method-Override` (underscore spellings too:
//   CGI servers read `X_HTTP_Method_Override` as the same header), `_method` in the query, and
//   `_method` in the urlencoded or multipart body of a POST.
// - strictRfcRoutes: a strict RFC 3986 reader. The path is percent-decoded once (every escape,
//   `%2F` included, then read as a separator), dot segments removed (§5.2.4), then routed; the
//   method is the request method, HEAD as GET. No overrides, no `;` handling.
import type { IncomingHttpHeaders } from 'node:http';

export interface AppRoute {
  name: string;
  /** Upper-case method names, or '*' (every method except OPTIONS). */
  methods: readonly string[] | '*';
  /** `/literal/:param/*` as in routes.yaml. */
  path: string;
}

export interface AppRequest {
  method: string;
  /** The request target as the app received it. */
  url: string;
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  body?: string;
}

const OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

/** Routes in the shape of a parsed routes.yaml (src/config/types.ts RoutesConfig.rules). */
export function appRoutesOf(rules: ReadonlyArray<{ name: string; patterns: ReadonlyArray<{ methods: readonly string[] | '*'; path: string }> }>): AppRoute[] {
  return rules.flatMap((r) => r.patterns.map((p) => ({ name: r.name, methods: p.methods === '*' ? ('*' as const) : p.methods.map((m) => m.toUpperCase()), path: p.path })));
}

function pathAndQuery(url: string): { path: string; query: string } {
  let target = url;
  // Absolute-form: the path starts after the authority.
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i.exec(target);
  if (abs) target = target.slice(abs[0].length) || '/';
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

function safeDecodeURIComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * RFC 3986 percent-decoding, once: every valid `%XX` becomes its byte, the bytes are read as UTF-8
 * (invalid sequences as U+FFFD, as most stacks do), invalid escapes stay as they are.
 */
export function percentDecodeOnce(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      // A raw byte as Node hands it over (latin1): keep the byte.
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 3986 §5.2.4 over a `/`-separated path; never climbs above the root. */
export function removeDotSegments(path: string): string {
  const input = path.split('/').slice(1);
  const out: string[] = [];
  let trailing = false;
  for (const seg of input) {
    if (seg === '.') {
      trailing = true;
    } else if (seg === '..') {
      out.pop();
      trailing = true;
    } else {
      out.push(seg);
      trailing = false;
    }
  }
  return '/' + out.join('/') + (trailing && out.length > 0 ? '/' : '');
}

/** The PHP/qs reading of a parameter name: leading spaces and a trailing `[…]` dropped, lower-cased. */
function paramName(name: string): string {
  return name.replace(/^ +/, '').replace(/\[[^\]]*\]$/, '').toLowerCase();
}

function overrideValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((m) => m.trim().toUpperCase())
    .filter(Boolean);
}

function header(req: AppRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.toLowerCase() === name && v !== undefined) return Array.isArray(v) ? v.join(', ') : v;
  }
  return undefined;
}

function bodyMethodOverrides(req: AppRequest): string[] {
  if (req.method.toUpperCase() !== 'POST' || !req.body) return [];
  const type = (header(req, 'content-type') ?? '').toLowerCase();
  const out: string[] = [];
  if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [n, v] of new URLSearchParams(req.body)) if (paramName(n) === '_method') out.push(...overrideValues(v));
  } else if (type.startsWith('multipart/form-data')) {
    const re = /name="([^"]*)"\r\n\r\n([^\r]*)/g;
    for (let m = re.exec(req.body); m !== null; m = re.exec(req.body)) if (paramName(m[1]!) === '_method') out.push(...overrideValues(m[2]));
  }
  return out;
}

/** Every method an Express app with method-override (header, query and body getters) may run. */
export function expressMethods(req: AppRequest): string[] {
  const methods = new Set([req.method.toUpperCase()]);
  if (methods.has('HEAD')) methods.add('GET');
  for (const [name, value] of Object.entries(req.headers)) {
    if (OVERRIDE_HEADERS.has(name.toLowerCase().replace(/_/g, '-'))) for (const m of overrideValues(value)) methods.add(m);
  }
  const { query } = pathAndQuery(req.url);
  for (const [n, v] of new URLSearchParams(query)) if (paramName(n) === '_method') for (const m of overrideValues(v)) methods.add(m);
  for (const m of bodyMethodOverrides(req)) methods.add(m);
  return [...methods];
}

function methodMatches(route: AppRoute, methods: readonly string[]): boolean {
  if (route.methods === '*') return methods.some((m) => m !== 'OPTIONS');
  return methods.some((m) => route.methods.includes(m));
}

/** Segment-wise match: `:p` one non-empty segment, a final `*` any rest (including none). */
function segmentsMatch(patternPath: string, segments: readonly string[], literalEquals: (literal: string, segment: string) => boolean): boolean {
  const pattern = patternPath.split('/').filter((s) => s !== '');
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '*' && i === pattern.length - 1) return true;
    const seg = segments[i];
    if (seg === undefined) return false;
    if (p.startsWith(':')) {
      if (seg === '') return false;
    } else if (!literalEquals(p, seg)) {
      return false;
    }
  }
  return segments.length === pattern.length;
}

/** Names of the routes an Express-like app would run for this request (empty: none). */
export function expressRoutes(routes: readonly AppRoute[], req: AppRequest): string[] {
  const { path } = pathAndQuery(req.url);
  const raw = path.split('/').filter((s) => s !== '');
  const stripped = raw.map((s) => (s.includes(';') ? s.slice(0, s.indexOf(';')) : s));
  // Express itself reads `;x` as data (`/users/;x` fills `:id`); servlet-style stacks strip it.
  // Every reading counts, including a segment left empty by stripping, with and without it.
  const readings = [raw, stripped, stripped.filter((s) => s !== '')];
  const methods = expressMethods(req);
  const eq = (literal: string, seg: string) => {
    const l = literal.toLowerCase();
    return l === seg.toLowerCase() || l === safeDecodeURIComponent(seg).toLowerCase();
  };
  const names = new Set<string>();
  for (const route of routes) {
    if (methodMatches(route, methods) && readings.some((segments) => segmentsMatch(route.path, segments, eq))) names.add(route.name);
  }
  return [...names];
}

/** Names of the routes a strict RFC 3986 app (decode once, remove dot segments) would run. */
export function strictRfcRoutes(routes: readonly AppRoute[], req: AppRequest): string[] {
  const { path } = pathAndQuery(req.url);
  const decoded = removeDotSegments(percentDecodeOnce(path));
  const segments = decoded.split('/').slice(1);
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop(); // trailing slash
  const method = req.method.toUpperCase();
  const methods = method === 'HEAD' ? ['HEAD', 'GET'] : [method];
  const eq = (literal: string, seg: string) => literal.toLowerCase() === seg.toLowerCase();
  const names = new Set<string>();
  for (const route of routes) if (methodMatches(route, methods) && segmentsMatch(route.path, segments, eq)) names.add(route.name);
  return [...names];
}

/** Both readings at once: which gated routes would run, by whom. */
export function appReadings(routes: readonly AppRoute[], req: AppRequest): { express: string[]; strict: string[] } {
  return { express: expressRoutes(routes, req), strict: strictRfcRoutes(routes, req) };
}
