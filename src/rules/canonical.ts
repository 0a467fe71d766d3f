// Canonical request paths (SPEC §7): the gate matches, and the upstream receives, one canonical
// spelling of the path, so the gate and the app can never disagree about which resource a request
// names. Anything that two reasonable parsers could read differently is refused (400
// BAD_REQUEST_PATH) rather than guessed at. Runs on every request: one pass over the target, a
// fast path for ordinary paths, lookup tables built once at load.

export type EncodedSlashes = 'reject' | 'keep';

export interface CanonicalPath {
  ok: true;
  forwardPath: string;
  query: string;
  matchPaths: string[];
  hasMatrixParams: boolean;
}

export type CanonicalResult = CanonicalPath | { ok: false; reason: string };

const SLASH = 0x2f;
const PERCENT = 0x25;
const SEMICOLON = 0x3b;
const DOT = 0x2e;
const BACKSLASH = 0x5c;
const QUESTION = 0x3f;

// Character classes of RFC 3986, one bit each, for code points below 0x80.
const UNRESERVED = 1; // §2.3: their escapes are equivalent to the raw character, so they are decoded
const PCHAR = 2; // §3.3: allowed raw in a path segment (unreserved, sub-delims, ':' and '@'); '%' is handled apart
const FAST = 4; // pchar that needs no attention on the fast path: all of them but ';' (parameters)
const AUTHORITY = 8; // §3.2: reg-name / IP-literal / userinfo / port characters, including '%'

const CLASS = new Uint8Array(0x80);
{
  const unreserved = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
  const subDelims = "!$&'()*+,;=";
  for (let c = 0; c < 0x80; c++) {
    const ch = String.fromCharCode(c);
    let bits = 0;
    if (unreserved.includes(ch)) bits |= UNRESERVED | PCHAR;
    if (subDelims.includes(ch) || ch === ':' || ch === '@') bits |= PCHAR;
    if (bits & PCHAR && c !== SEMICOLON) bits |= FAST;
    if (bits & PCHAR || ch === '[' || ch === ']' || ch === '%') bits |= AUTHORITY;
    CLASS[c] = bits;
  }
}

function classOf(c: number): number {
  return c < 0x80 ? (CLASS[c] ?? 0) : 0;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

const HEX = '0123456789ABCDEF';
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function refuse(reason: string): CanonicalResult {
  return { ok: false, reason };
}

/**
 * `target` is `req.url` as Node gives it (latin1, so a raw byte >= 0x80 is one char >= 0x80).
 * With `encodedSlashes: 'keep'`, a path containing `%2F` yields several `matchPaths`: the rule
 * matcher must gate the request if any of them matches.
 */
export function canonicalise(target: string, encodedSlashes: EncodedSlashes): CanonicalResult {
  // A fragment is never sent by a conforming client (RFC 9112 §3.2); one in the target means
  // the client, the gate and the app may disagree on where the path ends.
  if (target.includes('#')) return refuse('fragment (#) in request target');

  const pathStart = pathStartOf(target);
  if (typeof pathStart === 'string') return refuse(pathStart);
  let queryStart = target.indexOf('?', pathStart);
  if (queryStart === -1) queryStart = target.length;
  // An absolute-form target may have an empty path, which means `/` (RFC 9112 §3.2.1).
  const path = queryStart === pathStart ? '/' : target.slice(pathStart, queryStart);
  // The query is forwarded byte for byte and never matched (SPEC §3), so it is not inspected.
  const query = target.slice(queryStart);

  if (isFast(path)) {
    const last = path.length - 1;
    const matchPath = last > 0 && path.charCodeAt(last) === SLASH ? path.slice(0, last) : path;
    return { ok: true, forwardPath: path, query, matchPaths: [matchPath], hasMatrixParams: false };
  }
  return canonicalisePath(path, query, encodedSlashes);
}

/**
 * Where the path begins: origin-form (`/…`) or absolute-form (`http://host/…`, RFC 9112 §3.2.2,
 * matched on its path per SPEC §7). Asterisk-form and anything else is refused: no rule can be
 * evaluated against it. Returns a reason when refused.
 */
function pathStartOf(target: string): number | string {
  if (target.charCodeAt(0) === SLASH) return 0;
  const scheme = target.slice(0, 8).toLowerCase();
  const authorityStart = scheme.startsWith('http://') ? 7 : scheme.startsWith('https://') ? 8 : -1;
  if (authorityStart === -1) return 'not an origin-form or http(s) absolute-form target';
  let end = authorityStart;
  for (; end < target.length; end++) {
    const c = target.charCodeAt(end);
    if (c === SLASH || c === QUESTION) break;
    // A backslash here is a separator to WHATWG URL parsers (`http://evil\@host/`), so anything
    // outside RFC 3986 §3.2 makes the authority, and therefore where the path starts, ambiguous.
    if ((classOf(c) & AUTHORITY) === 0) return 'invalid authority in absolute-form target';
  }
  if (end === authorityStart) return 'empty host in absolute-form target';
  return end;
}

/**
 * True when the path is already canonical and has no `;` parameters: only characters that need
 * no decoding, no empty segment except a final one (a trailing slash), no `.` or `..` segment.
 */
function isFast(path: string): boolean {
  let segmentStart = 1;
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      const length = i - segmentStart;
      if (length === 0 ? i !== path.length : length <= 2 && isDots(path, segmentStart, i)) return false;
      segmentStart = i + 1;
    } else if ((classOf(c) & FAST) === 0) {
      return false;
    }
  }
  return true;
}

function isDots(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (s.charCodeAt(i) !== DOT) return false;
  return true;
}

function rawCharProblem(c: number): string {
  // SPEC §7: a backslash is a separator to some servers (IIS, WHATWG parsers) and not to others.
  if (c === BACKSLASH) return 'backslash in path';
  if (c >= 0x80) return 'raw non-ASCII byte in path';
  if (c <= 0x20 || c === 0x7f) return 'control character or space in path';
  return `character "${String.fromCharCode(c)}" not allowed raw in a path (RFC 3986 §3.3)`;
}

/**
 * Validates the percent-encoded bytes >= 0x80. SPEC §7 refuses invalid UTF-8: overlong forms
 * (`%C0%AF` is a classic `/` smuggle), truncated sequences and surrogates decode differently, or
 * not at all, in different stacks. The WHATWG decoder in fatal mode rejects all of them. C1
 * controls (U+0080–U+009F) are refused like the C0 ones: they are control characters too.
 */
function utf8Problem(bytes: number[]): string | null {
  let text: string;
  try {
    text = UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return 'percent-encoded bytes are not valid UTF-8';
  }
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    if (u >= 0x80 && u <= 0x9f) return 'encoded control character';
  }
  return null;
}

/**
 * The general case: one pass that validates and normalises every segment, then dot-segment
 * removal over the normalised segments.
 */
function canonicalisePath(path: string, query: string, encodedSlashes: EncodedSlashes): CanonicalResult {
  const segments: string[] = [];
  let segment = '';
  let copiedTo = 1; // path[copiedTo, i) is raw text already validated but not yet copied into `segment`
  // Every run of escapes >= 0x80, runs separated by a space, validated as UTF-8 in one decode at
  // the end: the ASCII separator makes a truncated run, or one starting mid-sequence, invalid
  // exactly as it would be alone, and one decode per path keeps an 8 KB path of escapes cheap.
  const highBytes: number[] = [];
  let highRunEnd = -1; // index just past the last escape >= 0x80

  // The encoded-dot rule (SPEC §7) looks at each "piece": a segment, or under `keep` the part of
  // a segment between `%2F`s, which the app may read as a segment of its own. Only the piece's
  // name (before its first `;`) counts, since parameters are stripped before dot removal.
  let nameLength = 0;
  let nameDots = 0;
  let nameHasEncodedDot = false;
  let inParams = false;

  for (let i = 1; i <= path.length; i++) {
    // A virtual slash after the last character ends the last segment.
    const c = i < path.length ? path.charCodeAt(i) : SLASH;
    if (c === PERCENT) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return refuse('invalid percent-escape');
      const byte = hi * 16 + lo;
      let decoded: string;
      if (byte >= 0x80) {
        if (i !== highRunEnd && highBytes.length !== 0) highBytes.push(0x20);
        highBytes.push(byte);
        highRunEnd = i + 3;
        decoded = '%' + HEX.charAt(hi) + HEX.charAt(lo);
      } else if (byte < 0x20 || byte === 0x7f) {
        return refuse('encoded control character');
      } else if (byte === BACKSLASH) {
        return refuse('encoded backslash');
      } else if (byte === SLASH) {
        if (encodedSlashes === 'reject') return refuse('encoded slash (%2F) with encoded_slashes: reject');
        decoded = '%2F'; // forwarded untouched; the matcher gets both readings (SPEC §7)
      } else if (classOf(byte) & UNRESERVED) {
        // RFC 3986 §6.2.2.2: escapes of unreserved characters are equivalent to the characters.
        decoded = String.fromCharCode(byte);
      } else {
        // RFC 3986 §6.2.2.1: hex digits are case-insensitive; upper case is the normal form.
        decoded = '%' + HEX.charAt(hi) + HEX.charAt(lo);
      }
      segment += path.slice(copiedTo, i) + decoded;
      copiedTo = i + 3;
      i += 2;
      if (byte === SLASH) {
        if (isEncodedDotSegment(nameLength, nameDots, nameHasEncodedDot)) return refuse('encoded dot segment');
        nameLength = nameDots = 0;
        nameHasEncodedDot = inParams = false;
      } else if (!inParams) {
        nameLength++;
        if (byte === DOT) {
          nameDots++;
          nameHasEncodedDot = true;
        }
      }
    } else if (c === SLASH) {
      if (isEncodedDotSegment(nameLength, nameDots, nameHasEncodedDot)) return refuse('encoded dot segment');
      nameLength = nameDots = 0;
      nameHasEncodedDot = inParams = false;
      segments.push(segment + path.slice(copiedTo, i));
      segment = '';
      copiedTo = i + 1;
    } else if ((classOf(c) & PCHAR) === 0) {
      return refuse(rawCharProblem(c));
    } else if (c === SEMICOLON) {
      inParams = true;
    } else if (!inParams) {
      nameLength++;
      if (c === DOT) nameDots++;
    }
  }

  if (highBytes.length !== 0) {
    const problem = utf8Problem(highBytes);
    if (problem !== null) return refuse(problem);
  }

  const resolved = removeDotSegments(segments);
  if (resolved === null) return refuse('path climbs above the root');
  const { kept } = resolved;
  // `/devices/;x=1/trust`: an app that does not strip `;` routes `;x=1` into a `:param`, while
  // the stripped reading has one segment fewer. No browser sends such a segment: refuse it.
  if (kept.some((s) => s.startsWith(';'))) return refuse('a path segment made only of ; parameters');
  const forwardPath = '/' + kept.join('/') + (resolved.trailingSlash && kept.length > 0 ? '/' : '');

  const matchPaths = [matchPathOf(kept)];
  // Only `%2F`s that survive into forwardPath matter: the app never sees the others.
  if (encodedSlashes === 'keep' && forwardPath.includes('%2F')) {
    // The separator reading, for apps that decode `%2F` before routing. Every `%2F` in
    // forwardPath is a whole escape (a literal `%` is always `%25`), so a plain replace is exact.
    const pieces = forwardPath.replaceAll('%2F', '/').split('/');
    const separated = removeDotSegments(pieces);
    if (separated === null) return refuse('path climbs above the root once %2F is read as /');
    if (separated.kept.some((s) => s.startsWith(';'))) return refuse('a path segment made only of ; parameters');
    // Resolved, as an app that normalises after decoding sees it; and literal, as one that
    // decodes and routes without removing the dot segments the `%2F`s exposed (`/a%2F..%2Fb`
    // is then four segments, and `..` fills a `:param`).
    for (const reading of [matchPathOf(separated.kept), matchPathOf(pieces)]) {
      if (!matchPaths.includes(reading)) matchPaths.push(reading);
    }
  }
  // Parameters removed with a dot segment never reach the app, so only forwarded ones count. A
  // raw `;` in forwardPath always starts a parameter (`%3B` is data and stays encoded).
  return { ok: true, forwardPath, query, matchPaths, hasMatrixParams: forwardPath.includes(';') };
}

/** A piece whose name is `.` or `..` once decoded, spelled with at least one encoded dot. */
function isEncodedDotSegment(nameLength: number, nameDots: number, hasEncodedDot: boolean): boolean {
  return hasEncodedDot && nameLength === nameDots && nameLength <= 2;
}

/** The segment with its `;` parameters stripped (SPEC §7: matched as if stripped). */
function nameOf(segment: string): string {
  const semicolon = segment.indexOf(';');
  return semicolon === -1 ? segment : segment.slice(0, semicolon);
}

/**
 * RFC 3986 §5.2.4 remove_dot_segments over a list of segments, with SPEC §7's changes: empty
 * segments are dropped (repeated slashes collapse), a segment whose name is `.` or `..` once its
 * `;` parameters are stripped is a dot segment, and climbing above the root returns null instead
 * of stopping there. A segment whose name is empty but which has parameters (`;x`) is kept: it is
 * forwarded, so a following `..` must remove it, or the matched path would not be the one sent.
 */
function removeDotSegments(segments: readonly string[]): { kept: string[]; trailingSlash: boolean } | null {
  const kept: string[] = [];
  // Per §5.2.4 the output ends with `/` when the input ends with an empty or dot segment.
  let trailingSlash = false;
  for (const segment of segments) {
    const name = nameOf(segment);
    if (name === '..') {
      if (kept.pop() === undefined) return null;
      trailingSlash = true;
    } else if (segment === '' || name === '.') {
      trailingSlash = true;
    } else {
      kept.push(segment);
      trailingSlash = false;
    }
  }
  return { kept, trailingSlash };
}

/** The path the matcher sees: names only, segments with an empty name skipped, no trailing slash. */
function matchPathOf(segments: readonly string[]): string {
  let out = '';
  for (const segment of segments) {
    const name = nameOf(segment);
    if (name !== '') out += '/' + name;
  }
  return out === '' ? '/' : out;
}
