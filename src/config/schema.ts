// The shapes of config/gateway.yaml and config/routes.yaml (SPEC §2, §3).
//
// Every object is strict: an unknown key is an error, because a misspelt `max_age` or
// `factors` would otherwise silently fall back to a weaker default. Values are parsed
// here, once (durations → ms, origins normalised, header names lower-cased); the
// loader only adds positions, environment overrides and the checks that need them.
//
// Validation never stops at the first problem: `validate` returns every issue with the
// path of the YAML node it concerns, and the loader turns paths into `line:col`.

import { isIPv4, isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { normaliseParamName } from '../rules/param-name.js';
import { ALL_FACTORS, type FactorType, type HostPort, type RoutePattern, type ValuePattern, type WhenCondition } from './types.js';
import { parseDuration, parseSize } from './units.js';

/** One problem, located by its path in the parsed YAML, message ready for the operator. */
export interface PathIssue {
  path: readonly PropertyKey[];
  message: string;
  /** `key`: point at the last path element's key (unknown keys); otherwise at the value. */
  at: 'key' | 'value';
}

// ---------------------------------------------------------------------------
// Value parsers. Each throws RangeError with the operator-facing message.

/** A YAML value as the operator wrote it, for messages. */
function describeValue(v: unknown): string {
  if (v === undefined || v === null) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

const PORT_RE = /^\d{1,5}$/;
const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** `127.0.0.1:8080`, `localhost:8080`, `[::1]:8080` (Node's listen() wants the IPv6 host unbracketed). */
function parseHostPort(text: string): HostPort {
  const bad = (why: string) =>
    new RangeError(`${JSON.stringify(text)} ${why}; write host:port, e.g. 127.0.0.1:8080 or "[::1]:8080"`);
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw bad('has no port');
  const hostPart = text.slice(0, colon);
  const portPart = text.slice(colon + 1);
  if (!PORT_RE.test(portPart) || Number(portPart) > 65535) throw bad('has no valid port (0-65535)');
  let host: string;
  if (hostPart.startsWith('[') && hostPart.endsWith(']')) {
    host = hostPart.slice(1, -1);
    if (!isIPv6(host)) throw bad('has an invalid IPv6 address');
  } else {
    host = hostPart;
    // An IPv6 address without brackets is ambiguous (`::1:8080`); a dotted-digits name is a broken IPv4.
    const valid = isIPv4(host) || (HOSTNAME_RE.test(host) && !/^[\d.]+$/.test(host));
    if (!valid) throw bad(host === '' ? 'has no host' : 'has an invalid host');
  }
  return { host, port: Number(portPart) };
}

function parseHttpUrl(text: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(`${JSON.stringify(text)} is not a URL (e.g. ${what})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RangeError(`${JSON.stringify(text)} must be an http: or https: URL`);
  }
  // Never echo a URL that carries credentials: messages end up in logs and CI output.
  if (url.username !== '' || url.password !== '') throw new RangeError('must not contain credentials (user:password@)');
  // `?` and `#` cannot occur in an authority, so their presence anywhere means a query or fragment,
  // even an empty one that URL.search would not show.
  if (text.includes('?') || text.includes('#')) {
    throw new RangeError(`${JSON.stringify(text)} must not have a query or fragment`);
  }
  return url;
}

/** The app's origin: the gateway forwards the request path itself, so a base path would be silently dropped. */
function parseUpstream(text: string): string {
  const url = parseHttpUrl(text, 'http://127.0.0.1:3000');
  if (url.pathname !== '/') {
    throw new RangeError(`${JSON.stringify(text)} must not have a path: stepgate forwards each request's own path`);
  }
  return url.origin;
}

/** True for the hosts browsers treat as a secure context over plain http (W3C Secure Contexts §3.2). */
function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '[::1]') return true;
  return isIPv4(hostname) && hostname.startsWith('127.');
}

/** The origin users see. WebAuthn and Secure/__Host- cookies only work in a secure context. */
function parsePublicOrigin(text: string): string {
  const url = parseHttpUrl(text, 'https://app.example.com');
  if (url.pathname !== '/') {
    throw new RangeError(`${JSON.stringify(text)} must be an origin (scheme://host[:port]) without a path`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new RangeError(
      `${JSON.stringify(text)} uses http: on a host that is not localhost or a loopback address; ` +
        'browsers only allow passkeys (WebAuthn) and secure cookies in a secure context, so use https:',
    );
  }
  return url.origin;
}

const PREFIX_RE = /^(\/[A-Za-z0-9._~-]+)+$/;

/** `/__stepup`: requests under it are answered by the gateway and never forwarded. */
function parsePrefix(text: string): string {
  const segments = text.split('/').slice(1);
  if (!PREFIX_RE.test(text) || segments.some((s) => s === '.' || s === '..')) {
    throw new RangeError(
      `${JSON.stringify(text)} is not a prefix (start with /, no trailing slash, only letters, digits and . _ ~ -, e.g. /__stepup)`,
    );
  }
  return text;
}

/** `10.0.0.0/8`, `::1`; a bare address means that address alone. Output always has the prefix length. */
function parseCidr(text: string): string {
  const slash = text.indexOf('/');
  const addr = (slash < 0 ? text : text.slice(0, slash)).toLowerCase();
  const bits = isIPv4(addr) ? 32 : isIPv6(addr) ? 128 : 0;
  const lenText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (bits === 0 || !/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) {
    throw new RangeError(`${JSON.stringify(text)} is not an IP address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)`);
  }
  return `${addr}/${Number(lenText)}`;
}

// RFC 9110 §5.6.2 token: header names, cookie names and method names all use it.
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function tokenParser(what: string) {
  return (text: string): string => {
    if (!TOKEN_RE.test(text)) throw new RangeError(`${JSON.stringify(text)} is not a valid ${what}`);
    return text;
  };
}

/** The identity endpoint on the upstream: a path, optionally with a query string. */
function parseIdentityPath(text: string): string {
  // `//host` would be read as a different authority by some clients; fragments are never sent.
  if (!text.startsWith('/') || text.startsWith('//') || /[\s#]/.test(text)) {
    throw new RangeError(`${JSON.stringify(text)} must be a path on the app, e.g. /api/me or /api.php?action=query`);
  }
  return text;
}

/** A dotted path into a JSON answer or token (`query.userinfo.id`). */
function parseFieldPath(text: string): string {
  if (text.split('.').some((s) => s === '')) {
    throw new RangeError(`${JSON.stringify(text)} is not a field name or dotted path (e.g. id, query.userinfo.id)`);
  }
  return text;
}

function parseEnvName(text: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) {
    throw new RangeError(`${JSON.stringify(text)} is not an environment variable name`);
  }
  return text;
}

function parseNonEmpty(text: string): string {
  if (text.trim() === '') throw new RangeError('must not be empty');
  return text;
}

const HEX_COLOUR_RE = /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;

function parseHexColour(text: string): string {
  if (!HEX_COLOUR_RE.test(text)) throw new RangeError(`${JSON.stringify(text)} is not a hex colour (e.g. "#2563eb")`);
  return text;
}

/** Rendered into the gateway's pages, so only web URLs or same-origin paths (never `javascript:`). */
function parseLogoUrl(text: string): string {
  if (text.startsWith('/') && !text.startsWith('//')) return text;
  try {
    const url = new URL(text);
    if (url.protocol === 'https:' || url.protocol === 'http:') return text;
  } catch {
    // fall through to the message below
  }
  throw new RangeError(`${JSON.stringify(text)} must be an http(s) URL or a path starting with /`);
}

function parsePositiveDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms === 0) throw new RangeError(`${JSON.stringify(text)} must be longer than 0`);
  return ms;
}

function parseDataDir(text: string): string {
  return resolve(process.cwd(), parseNonEmpty(text));
}

// Rule names are joined with commas into the X-Stepgate-Rule header and the challenge body.
const RULE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function parseRuleName(text: string): string {
  if (!RULE_NAME_RE.test(text)) {
    throw new RangeError(
      `${JSON.stringify(text)} is not a rule name (letters, digits, ".", "_", "-"; it appears in headers and answers)`,
    );
  }
  return text;
}

/**
 * `METHODS PATH` (SPEC §3). Only the split and the basics are checked here; the rule
 * compiler owns the path grammar (`:name`, a final `*`) and factor intersections.
 */
function parsePattern(text: string): RoutePattern {
  const example = 'write METHODS PATH, e.g. "POST /account/password", "PATCH|DELETE /me" or "* /admin/*"';
  const parts = text.trim().split(/[ \t]+/);
  const [methodsText, path] = parts;
  if (methodsText === undefined || methodsText === '' || path === undefined) {
    const missing = methodsText?.startsWith('/') ? 'no method' : 'no path';
    throw new RangeError(`${JSON.stringify(text)} has ${missing}: ${example}`);
  }
  if (parts.length > 2) throw new RangeError(`${JSON.stringify(text)} has more than one path: ${example}`);
  if (!path.startsWith('/')) throw new RangeError(`${JSON.stringify(text)}: the path must start with /`);
  if (methodsText === '*') return { methods: '*', path, text };
  const methods: string[] = [];
  for (const method of methodsText.split('|')) {
    // `*` and `|` are token characters, so they need their own checks.
    if (method === '*') throw new RangeError(`${JSON.stringify(text)}: * cannot be combined with other methods`);
    if (!TOKEN_RE.test(method)) throw new RangeError(`${JSON.stringify(text)}: ${JSON.stringify(method)} is not a method name`);
    const upper = method.toUpperCase();
    if (!methods.includes(upper)) methods.push(upper);
  }
  return { methods, path, text };
}

// ---------------------------------------------------------------------------
// Schema building blocks.

/**
 * A scalar parsed by `parse`. YAML numbers are passed on as text so that `max_age: 300`
 * gets "not a duration" rather than a type error. `emptyHint` explains a value that YAML
 * read as empty.
 */
function scalar<T>(parse: (text: string) => T, emptyHint?: string) {
  return z.unknown().transform((value, ctx): T => {
    if (value === undefined) {
      // Reported by the enclosing object as a missing key.
      return z.NEVER;
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      const hint = value === null && emptyHint ? ` (${emptyHint})` : '';
      ctx.addIssue({ code: 'custom', message: `expected a string, got ${describeValue(value)}${hint}` });
      return z.NEVER;
    }
    try {
      return parse(String(value));
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}

const duration = scalar(parseDuration);
const positiveDuration = scalar(parsePositiveDuration);
const cidrList = z.array(scalar(parseCidr)).default(() => []);
/** Header names are case-insensitive; the rest of the code compares them lower-cased. */
const headerName = scalar((s) => tokenParser('header name')(s).toLowerCase());
const cookieName = scalar(tokenParser('cookie name'));
const optionalText = scalar(parseNonEmpty).nullable().default(null);

export const hostPortSchema = scalar(parseHostPort);
export const upstreamSchema = scalar(parseUpstream);
export const publicOriginSchema = scalar(parsePublicOrigin);
export const dataDirSchema = scalar(parseDataDir);

const factorList = z
  .array(z.enum(['passkey', 'totp', 'recovery']))
  .min(1, 'must list at least one factor (passkey, totp, recovery)')
  .superRefine((list, ctx) => {
    list.forEach((f, i) => {
      if (list.indexOf(f) !== i) ctx.addIssue({ code: 'custom', message: `"${f}" is listed twice`, path: [i] });
    });
  })
  // Canonical order, which is also the verify page's preference order.
  .transform((list): readonly FactorType[] => ALL_FACTORS.filter((f) => list.includes(f)));

// ---------------------------------------------------------------------------
// gateway.yaml

const upstreamIdentitySchema = z
  .strictObject({
    path: scalar(parseIdentityPath).default('/api/me'),
    user_field: scalar(parseFieldPath).default('id'),
    name_field: scalar(parseFieldPath).nullable().default(null),
    cache_ttl: duration.default(30_000),
  })
  .transform((u) => ({ path: u.path, userField: u.user_field, nameField: u.name_field, cacheTtlMs: u.cache_ttl }));

const headerIdentitySchema = z
  .strictObject({
    user: headerName.default('x-forwarded-user'),
    trusted_proxies: cidrList,
  })
  .transform((h) => ({ user: h.user, trustedProxies: h.trusted_proxies }));

const jwtIdentitySchema = z
  .strictObject({
    cookie: cookieName.nullable().default(null),
    header: headerName.nullable().default(null),
    secret_env: scalar(parseEnvName).nullable().default(null),
    jwks_file: optionalText,
    public_key_file: optionalText,
    issuer: optionalText,
    audience: optionalText,
    user_claim: scalar(parseFieldPath).default('sub'),
  })
  .transform((j) => ({
    cookie: j.cookie,
    header: j.header,
    secretEnv: j.secret_env,
    jwksFile: j.jwks_file,
    publicKeyFile: j.public_key_file,
    issuer: j.issuer,
    audience: j.audience,
    userClaim: j.user_claim,
  }));

const identitySchema = z
  .strictObject({
    source: z.enum(['upstream', 'header', 'jwt']).default('upstream'),
    session_cookies: z.array(cookieName).default(() => []),
    upstream: upstreamIdentitySchema.prefault({}),
    credential_params: z.array(scalar(parseNonEmpty)).default(() => []),
    header: headerIdentitySchema.prefault({}),
    jwt: jwtIdentitySchema.prefault({}),
  })
  .transform((i) => ({
    source: i.source,
    sessionCookies: i.session_cookies,
    upstream: i.upstream,
    credentialParams: i.credential_params,
    header: i.header,
    jwt: i.jwt,
  }));

const themeSchema = z
  .strictObject({
    product_name: scalar(parseNonEmpty).default('stepgate'),
    accent: scalar(parseHexColour, 'quote colours, e.g. accent: "#eab308": an unquoted # starts a YAML comment').default(
      '#2563eb',
    ),
    logo_url: scalar(parseLogoUrl).nullable().default(null),
  })
  .transform((t) => ({ productName: t.product_name, accent: t.accent, logoUrl: t.logo_url }));

/**
 * gateway.yaml as written. `upstream` and `public_origin` are optional here because an
 * environment variable may supply them; the loader reports them missing otherwise.
 */
export const gatewayFileSchema = z
  .strictObject({
    listen: hostPortSchema.default(() => ({ host: '127.0.0.1', port: 8080 })),
    upstream: upstreamSchema.optional(),
    public_origin: publicOriginSchema.optional(),
    prefix: scalar(parsePrefix).default('/__stepup'),
    data_dir: dataDirSchema.default(() => resolve(process.cwd(), 'data')),
    admin_listen: hostPortSchema.nullable().default(() => ({ host: '127.0.0.1', port: 9090 })),
    trust_proxy: cidrList,
    upstream_timeout: positiveDuration.default(30_000),
    grant_cache_ttl: duration.default(1_000),
    identity: identitySchema.prefault({}),
    store: z.enum(['sqlite', 'postgres']).default('sqlite'),
    theme: themeSchema.prefault({}),
    unenrolled: z.enum(['enroll', 'allow', 'deny']).default('enroll'),
    enrollment: z.enum(['self', 'invite']).default('self'),
    inject_client: z.boolean().default(false),
  })
  .transform((g) => ({
    listen: g.listen,
    upstream: g.upstream,
    publicOrigin: g.public_origin,
    prefix: g.prefix,
    dataDir: g.data_dir,
    adminListen: g.admin_listen,
    trustProxy: g.trust_proxy,
    upstreamTimeoutMs: g.upstream_timeout,
    grantCacheTtlMs: g.grant_cache_ttl,
    identity: g.identity,
    store: g.store,
    theme: g.theme,
    unenrolled: g.unenrolled,
    enrollment: g.enrollment,
    injectClient: g.inject_client,
  }));

/** `raw.a[0].b…` in parsed YAML, or undefined as soon as the shape on the way does not fit. */
export function child(raw: unknown, ...keys: (string | number)[]): unknown {
  let v = raw;
  for (const k of keys) {
    if (typeof k === 'number' ? !Array.isArray(v) : typeof v !== 'object' || v === null || Array.isArray(v)) {
      return undefined;
    }
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

/**
 * Checks that involve several keys of gateway.yaml. They read the raw YAML so that they
 * run even when some value has a problem of its own (zod skips refinements on an object
 * with a failed property, and every problem should be reported at once).
 */
export function gatewayCrossChecks(raw: unknown): PathIssue[] {
  const issues: PathIssue[] = [];
  const source = child(raw, 'identity', 'source') ?? 'upstream';
  // Blocks of sources that are not selected are checked for shape only (SPEC §2).
  if (source === 'jwt') {
    const jwtPath = ['identity', 'jwt'];
    const jwt = child(raw, ...jwtPath);
    const exactlyOne = (keys: string[], purpose: string) => {
      const set = keys.filter((k) => child(jwt, k) !== undefined && child(jwt, k) !== null);
      const list = keys.join(', ');
      if (set.length === 0) {
        issues.push({ path: jwtPath, at: 'value', message: `identity.jwt: set one of ${list} (${purpose})` });
      } else if (set.length > 1) {
        issues.push({
          path: [...jwtPath, set[1] as string],
          at: 'key',
          message: `identity.jwt: set only one of ${list} (found ${set.join(' and ')})`,
        });
      }
    };
    exactlyOne(['cookie', 'header'], "where the app's JWT is");
    exactlyOne(['secret_env', 'jwks_file', 'public_key_file'], 'how to verify its signature');
  }
  if (source === 'header') {
    const proxies = child(raw, 'identity', 'header', 'trusted_proxies');
    // An identity header is only believable from a known hop; without one the setting is a bypass or a no-op.
    if (proxies === undefined || (Array.isArray(proxies) && proxies.length === 0)) {
      issues.push({
        path: ['identity', 'header', 'trusted_proxies'],
        at: 'value',
        message:
          'identity.header.trusted_proxies: list the addresses of the proxies that set the user header (required with source: header)',
      });
    }
  }
  return issues;
}

// ---------------------------------------------------------------------------
// routes.yaml

const DEFAULT_MAX_AGE_MS = 10 * 60_000;

const patternsSchema = z.union([z.string(), z.array(z.unknown())]).transform((match, ctx) => {
  const list = typeof match === 'string' ? [match] : match;
  if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'must list at least one pattern' });
  const patterns: RoutePattern[] = [];
  list.forEach((item, i) => {
    const path = typeof match === 'string' ? [] : [i];
    if (typeof item !== 'string') {
      ctx.addIssue({ code: 'custom', path, message: `expected a pattern like "POST /path", got ${describeValue(item)}` });
      return;
    }
    try {
      patterns.push(parsePattern(item));
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      ctx.addIssue({ code: 'custom', path, message: err.message });
    }
  });
  return patterns;
});

/** `delete`, `Special:Block*` → lower-cased, a trailing `*` meaning "starts with". */
function parseValuePattern(text: string): ValuePattern {
  if (text === '' || text === '*') throw new RangeError(`${JSON.stringify(text)} matches nothing useful; list a value (a trailing * matches a prefix)`);
  const prefix = text.endsWith('*');
  return { value: (prefix ? text.slice(0, -1) : text).toLowerCase(), prefix };
}

const valueList = z.array(scalar(parseValuePattern)).min(1, 'must list at least one value');

/** RFC 6901: `/method`, `/params/0/name`; `~1` is `/` and `~0` is `~` inside a token. */
function parseJsonPointer(text: string): string[] {
  if (!text.startsWith('/')) throw new RangeError(`${JSON.stringify(text)} is not a JSON Pointer (it starts with /, e.g. /method)`);
  if (/~[^01]|~$/.test(text)) throw new RangeError(`${JSON.stringify(text)}: "~" must be followed by 0 or 1 (RFC 6901)`);
  return text.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const whenSchema = z
  .strictObject({
    param: z.record(z.string().min(1, 'a parameter name cannot be empty'), valueList).optional(),
    json: z.record(z.string(), valueList).optional(),
  })
  .superRefine((w, ctx) => {
    if (!w.param && !w.json) ctx.addIssue({ code: 'custom', message: 'list `param` and/or `json` conditions' });
    for (const pointer of Object.keys(w.json ?? {})) {
      try {
        parseJsonPointer(pointer);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['json', pointer], message: (err as Error).message });
      }
    }
  })
  .transform((w): WhenCondition => ({
    param: Object.entries(w.param ?? {}).map(([name, values]) => ({ name: normaliseParamName(name), values })),
    json: Object.entries(w.json ?? {}).map(([pointer, values]) => ({ pointer, tokens: parseJsonPointer(pointer), values })),
  }));

const ruleSchema = z
  .strictObject({
    name: scalar(parseRuleName),
    match: patternsSchema,
    max_age: positiveDuration.optional(),
    factors: factorList.optional(),
    once: z.boolean().default(false),
    anonymous: z.enum(['allow', 'deny']).default('deny'),
    when: whenSchema.optional(),
  })
  .transform((r) => ({
    name: r.name,
    patterns: r.match,
    maxAgeMs: r.max_age,
    factors: r.factors,
    once: r.once,
    anonymous: r.anonymous,
    when: r.when ?? null,
  }));

export const routesFileSchema = z
  .strictObject({
    defaults: z
      .strictObject({
        max_age: positiveDuration.default(DEFAULT_MAX_AGE_MS),
        factors: factorList.default(() => ALL_FACTORS),
      })
      .prefault({}),
    rules: z.array(ruleSchema).default(() => []),
    case_sensitive: z.boolean().default(false),
    encoded_slashes: z.enum(['reject', 'keep']).default('reject'),
    max_inspect_body: scalar(parseSize).default(1024 * 1024),
  })
  .transform((f) => ({
    maxInspectBodyBytes: f.max_inspect_body,
    caseSensitive: f.case_sensitive,
    encodedSlashes: f.encoded_slashes,
    defaults: { maxAgeMs: f.defaults.max_age, factors: f.defaults.factors },
    // A rule without its own max_age / factors inherits the file's defaults (filled in on the
    // schema's own output objects rather than in a copy of every rule).
    rules: f.rules.map((r, index) => Object.assign(r, { index, maxAgeMs: r.maxAgeMs ?? f.defaults.max_age, factors: r.factors ?? f.defaults.factors })),
  }));


// ---------------------------------------------------------------------------
// Running a schema and turning zod's issues into operator messages.

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  object: 'a map',
  array: 'a list',
};

/** Messages for the issue kinds zod raises itself; the schema supplies all the others. */
function zodMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${EXPECTED[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
    case 'invalid_value':
      return `expected one of ${iss.values.map(String).join(', ')}, got ${describeValue(iss.input)}`;
    case 'invalid_union': {
      const expected = iss.errors.flatMap((branch) =>
        branch.flatMap((b) => (b.code === 'invalid_type' && b.path.length === 0 ? [EXPECTED[b.expected] ?? b.expected] : [])),
      );
      return `expected ${expected.join(' or ')}, got ${describeValue(iss.input)}`;
    }
    default:
      return undefined;
  }
}

/** `identity.upstream.cache_ttl`; inside a list only the part after the index (the line says which item). */
function label(path: readonly PropertyKey[]): string {
  let last = -1;
  path.forEach((seg, i) => {
    if (typeof seg === 'number') last = i;
  });
  if (last < 0) return path.map(String).join('.');
  const rest = path.slice(last + 1);
  return rest.length > 0 ? rest.map(String).join('.') : String(path[last - 1] ?? '');
}

/** ` in identity.upstream`, or nothing at the top level and inside list items (the position says where). */
function where(container: readonly PropertyKey[]): string {
  return container.length === 0 || typeof container[container.length - 1] === 'number' ? '' : ` in ${label(container)}`;
}

/** Keys the schema accepts at `path`, for "did you mean" hints. */
function knownKeys(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let s: z.core.$ZodType | undefined = schema;
  const rest = [...path];
  while (s) {
    const def = s._zod.def as unknown as {
      type: string;
      shape?: Record<string, z.core.$ZodType>;
      element?: z.core.$ZodType;
      in?: z.core.$ZodType;
      innerType?: z.core.$ZodType;
    };
    if (def.type === 'pipe') s = def.in;
    else if (def.innerType) s = def.innerType;
    else if (rest.length === 0) return def.type === 'object' ? Object.keys(def.shape ?? {}) : [];
    else {
      const seg = rest.shift();
      s = def.type === 'object' && typeof seg === 'string' ? def.shape?.[seg] : def.type === 'array' ? def.element : undefined;
    }
  }
  return [];
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

function suggestion(key: string, known: string[]): string {
  const close = known
    .map((k) => ({ k, d: editDistance(key.toLowerCase(), k) }))
    .filter(({ d }) => d <= 2)
    .sort((a, b) => a.d - b.d)[0];
  return close ? ` (did you mean "${close.k}"?)` : '';
}

export type Validated<T> = { ok: true; value: T } | { ok: false; issues: PathIssue[] };

/** Runs `schema` on parsed YAML and returns the value or every issue, each with its path. */
export function validate<S extends z.ZodType>(schema: S, data: unknown): Validated<z.output<S>> {
  const result = schema.safeParse(data, { error: zodMessage, reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  const issues: PathIssue[] = [];
  for (const iss of result.error.issues) {
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeys(schema, iss.path);
      for (const key of iss.keys) {
        issues.push({
          path: [...iss.path, key],
          at: 'key',
          message: `unknown key "${key}"${where(iss.path)}${suggestion(key, known)}`,
        });
      }
    } else if ((iss.code === 'invalid_type' || iss.code === 'invalid_union') && iss.input === undefined) {
      const container = iss.path.slice(0, -1);
      issues.push({
        path: container,
        at: 'value',
        message: `missing required key "${String(iss.path[iss.path.length - 1])}"${where(container)}`,
      });
    } else {
      const name = label(iss.path);
      issues.push({ path: iss.path, at: 'value', message: name === '' ? iss.message : `${name}: ${iss.message}` });
    }
  }
  return { ok: false, issues };
}
