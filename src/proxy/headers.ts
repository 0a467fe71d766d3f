// Header hygiene (SPEC §6): what the upstream may receive, and what the client may get back.
// Headers are hostile until proven otherwise: the client cannot speak for the gateway
// (X-Stepgate-*), for a proxy it does not sit behind (X-Forwarded-*), or rewrite the URL the app
// sees (X-Original-URL and friends), and cannot use `Connection` to make the gateway drop a header
// it evaluated.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { AddressSet } from '../net/cidr.js';
import { unmapIPv4 } from '../net/cidr.js';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus `expect` (Node answers 100-continue itself). */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'http2-settings', 'expect',
]);

/** Headers some servers and frameworks read as "the real URL/method": a client must never set them. */
const URL_OVERRIDES = new Set([
  'x-original-url', 'x-rewrite-url', 'x-forwarded-uri', 'x-forwarded-path', 'x-forwarded-prefix',
  'x-forwarded-method', 'x-envoy-original-path',
]);

/** Headers the gate reads or sets: `Connection` may not name them (the gate must see what the app sees). */
const PROTECTED = new Set([
  'cookie', 'authorization', 'host', 'content-length', 'content-type', 'content-encoding', 'forwarded',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id',
  'x-http-method-override', 'x-http-method', 'x-method-override',
]);

export interface HeaderPolicy {
  trustProxy: AddressSet;
  /** identity.header.user (lower-case), stripped unless the peer is a trusted SSO proxy. */
  identityHeader: string | null;
  identityTrusted: AddressSet;
  forwardedProto: string;
  forwardedHost: string;
}

/**
 * CGI-style servers (PHP's $_SERVER, Rack, WSGI) read `X_Stepgate_User` exactly like
 * `X-Stepgate-User` (both become HTTP_X_STEPGATE_USER), so every name check compares this form.
 */
function dashed(name: string): string {
  return name.includes('_') ? name.replace(/_/g, '-') : name;
}

/** Headers some apps read as the request's real method (SPEC §7); matching counts them. */
const METHOD_OVERRIDES = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

/** What the gate needs to know of one request header name, worked out once per name. */
export interface HeaderName {
  /** The name as CGI-style servers read it (`_` as `-`): every check compares this form. */
  readonly dashed: string;
  /** Never forwarded: hop-by-hop, URL overrides, X-Stepgate-*, X-Forwarded-*, Forwarded, X-Request-Id. */
  readonly dropped: boolean;
  /**
   * Dropped whoever sends it: `dropped` minus the X-Forwarded-* names, which are dropped only so a
   * client cannot pose as a proxy. The one such header a trusted SSO proxy may set is the identity
   * header (`X-Forwarded-User` by default).
   */
  readonly alwaysDropped: boolean;
  readonly methodOverride: boolean;
}

/** Clients choose header names, so only this many are remembered; later ones are worked out each time. */
const MAX_REMEMBERED_NAMES = 1_000;
const rememberedNames = new Map<string, HeaderName>();

/**
 * The checks of a request header name. A request carries ~5–20 headers and they are nearly always
 * the same names: one Map look-up replaces the underscore scan, two Set look-ups and two prefix
 * tests per header and request.
 */
export function headerName(name: string): HeaderName {
  let known = rememberedNames.get(name);
  if (known === undefined) {
    const key = dashed(name);
    const alwaysDropped = HOP_BY_HOP.has(key) || URL_OVERRIDES.has(key) || key.startsWith('x-stepgate-') || key === 'forwarded' || key === 'x-request-id';
    known = { dashed: key, dropped: alwaysDropped || key.startsWith('x-forwarded-'), alwaysDropped, methodOverride: METHOD_OVERRIDES.has(key) };
    if (rememberedNames.size < MAX_REMEMBERED_NAMES) rememberedNames.set(name, known);
  }
  return known;
}

const NO_TOKENS: readonly string[] = Object.freeze([]);
/** The last `Connection` value parsed: nearly every request and answer says `keep-alive`. */
let lastConnection = '';
let lastTokens: readonly string[] = NO_TOKENS;
/** lastTokens minus the hop-by-hop names, which are dropped anyway: for `keep-alive`, none. */
let lastExtraHopByHop: readonly string[] = NO_TOKENS;

function parseConnection(value: string | string[]): void {
  const joined = Array.isArray(value) ? value.join(',') : value;
  if (joined === lastConnection) return;
  lastTokens = Object.freeze(joined.split(',').map((t) => dashed(t.trim().toLowerCase())).filter(Boolean));
  const extra = lastTokens.filter((t) => !HOP_BY_HOP.has(t));
  lastExtraHopByHop = extra.length > 0 ? Object.freeze(extra) : NO_TOKENS;
  lastConnection = joined;
}

function connectionTokens(value: string | string[] | undefined): readonly string[] {
  if (value === undefined) return NO_TOKENS;
  parseConnection(value);
  return lastTokens;
}

/** Headers `Connection` names beyond the fixed hop-by-hop set (RFC 9110 §7.6.1): also not forwarded. */
function extraHopByHop(value: string | string[] | undefined): readonly string[] {
  if (value === undefined) return NO_TOKENS;
  parseConnection(value);
  return lastExtraHopByHop;
}

/** False when `Connection` names a header the gateway relies on (→ 400 BAD_REQUEST). */
export function connectionHeaderAllowed(headers: IncomingHttpHeaders, policy: HeaderPolicy): boolean {
  for (const token of connectionTokens(headers.connection)) {
    if (PROTECTED.has(token) || token.startsWith('x-stepgate-') || URL_OVERRIDES.has(token) || token === policy.identityHeader) {
      return false;
    }
  }
  return true;
}

/** The client's address: the peer, or with trusted proxies the rightmost X-Forwarded-For entry not in trust_proxy. */
export function clientAddress(req: IncomingMessage, trustProxy: AddressSet): string | undefined {
  const peer = req.socket.remoteAddress ? unmapIPv4(req.socket.remoteAddress) : undefined;
  if (!trustProxy.has(peer)) return peer;
  const xff = req.headers['x-forwarded-for'];
  const chain = (Array.isArray(xff) ? xff.join(',') : xff ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = chain.length - 1; i >= 0; i--) {
    if (!trustProxy.has(chain[i])) return chain[i];
  }
  return chain[0] ?? peer;
}

/**
 * The headers sent upstream: the client's (Host unchanged), minus hop-by-hop and spoofable ones,
 * plus X-Forwarded-*, X-Request-Id and the caller's trusted `extra` headers. Built from Node's
 * parsed `req.headers`, so duplicated single-value headers reach the app exactly as the gate read
 * them (Node keeps the first Authorization/Host and joins Cookie values).
 */
export function upstreamHeaders(
  req: IncomingMessage,
  policy: HeaderPolicy,
  requestId: string,
  extra?: Record<string, string>,
  keepUpgrade = false,
): Record<string, string | string[]> {
  const src = req.headers;
  const named = extraHopByHop(src.connection);
  const peer = req.socket.remoteAddress ? unmapIPv4(req.socket.remoteAddress) : '';
  const out: Record<string, string | string[]> = {};
  for (const name in src) {
    const value = src[name];
    if (value === undefined) continue;
    const verdict = headerName(name);
    const key = verdict.dashed;
    if (key === policy.identityHeader) {
      // SPEC §6: the user header passes from a trusted proxy only, and only in the exact spelling
      // the identity source read: an underscore twin would reach a CGI-style app as the same
      // variable, and could carry a name the proxy never vouched for.
      if (name !== key || !policy.identityTrusted.has(peer) || verdict.alwaysDropped) continue;
    } else if (verdict.dropped || (named.length > 0 && named.includes(key))) continue;
    out[name] = value;
  }
  if (keepUpgrade) {
    out.connection = 'upgrade';
    out.upgrade = 'websocket';
  }
  const priorXff = src['x-forwarded-for'];
  // From a trusted load balancer the chain is kept and extended; from anyone else it is replaced,
  // so an app that reads the leftmost address cannot be fooled by the client.
  out['x-forwarded-for'] = policy.trustProxy.has(peer) && priorXff ? `${Array.isArray(priorXff) ? priorXff.join(', ') : priorXff}, ${peer}` : peer;
  out['x-forwarded-proto'] = policy.forwardedProto;
  out['x-forwarded-host'] = policy.forwardedHost;
  out['x-request-id'] = requestId;
  if (extra) Object.assign(out, extra);
  return out;
}

/** The upstream's response headers minus hop-by-hop ones, with our X-Request-Id. */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>, requestId: string): OutgoingHttpHeaders {
  const named = extraHopByHop(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || (named.length > 0 && named.includes(name))) continue;
    out[name] = value;
  }
  out['x-request-id'] = requestId;
  return out;
}
