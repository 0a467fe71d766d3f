// Building blocks of the rule matcher: parsing a pattern into trie keys (normalised exactly as
// rules/canonical.ts normalises request paths), the segment trie itself, and the pattern-vs-trie
// overlap walk that `compileRules` uses to find rules that can never be satisfied together.
import type { RoutePattern, RoutesConfig, RuleConfig, SourcePos } from '../config/types.js';

export class RuleCompileError extends Error {
  constructor(
    readonly pos: SourcePos,
    message: string,
  ) {
    super(message);
    this.name = 'RuleCompileError';
  }
}

function formatError(e: RuleCompileError): string {
  return `${e.pos.file}:${e.pos.line}:${e.pos.col}: ${e.message}`;
}

/** Every problem found in routes.yaml, so `stepgate check` can list them all at once. */
export class RuleCompileErrors extends AggregateError {
  declare errors: RuleCompileError[];

  constructor(errors: RuleCompileError[]) {
    super(errors, errors.map(formatError).join('\n'));
    this.name = 'RuleCompileErrors';
  }
}

/** One compiled rule: what matching needs without looking at RuleConfig's arrays again. */
export interface CompiledRule {
  readonly rule: RuleConfig;
  /** Accepted factors as a bit set over ALL_FACTORS (bit i = ALL_FACTORS[i]). */
  readonly factorMask: number;
}

export interface TrieEntry {
  readonly compiled: CompiledRule;
  readonly pattern: RoutePattern;
  /** Upper-case method names; null means every method except OPTIONS. */
  readonly methods: ReadonlySet<string> | null;
}

export interface TrieNode {
  literals: Map<string, TrieNode>;
  param: TrieNode | null;
  /** Patterns ending in `*` here: they match this node's path and everything below it. */
  wildcard: TrieEntry[];
  /** Patterns ending exactly here. */
  terminal: TrieEntry[];
}

export type Segment =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'param' }
  | { readonly kind: 'wildcard' };

// Most trie nodes have no literal children and no entries of one kind or the other: they share
// these empty ones until insert() gives them their own (a 10,000-rule table has ~20,000 nodes,
// and their empty maps and lists were a good part of a reload's allocation and GC). Both refuse
// to be filled, so sharing them can never leak an entry from one node into another.
class NoChildren extends Map<string, TrieNode> {
  override set(): never {
    throw new Error('the shared empty child map cannot be filled');
  }
}
const NO_CHILDREN: Map<string, TrieNode> = new NoChildren();
const NO_ENTRIES: TrieEntry[] = Object.freeze([]) as unknown as TrieEntry[];

export function newNode(): TrieNode {
  return { literals: NO_CHILDREN, param: null, wildcard: NO_ENTRIES, terminal: NO_ENTRIES };
}

export function insert(root: TrieNode, segments: readonly Segment[], entry: TrieEntry): void {
  let node = root;
  for (const seg of segments) {
    if (seg.kind === 'wildcard') {
      if (node.wildcard === NO_ENTRIES) node.wildcard = [];
      node.wildcard.push(entry);
      return;
    }
    if (seg.kind === 'param') {
      node = node.param ??= newNode();
    } else {
      let child = node.literals.get(seg.value);
      if (child === undefined) {
        child = newNode();
        if (node.literals === NO_CHILDREN) node.literals = new Map();
        node.literals.set(seg.value, child);
      }
      node = child;
    }
  }
  if (node.terminal === NO_ENTRIES) node.terminal = [];
  node.terminal.push(entry);
}

function visitSubtree(node: TrieNode, visit: (e: TrieEntry) => void): void {
  node.terminal.forEach(visit);
  node.wildcard.forEach(visit);
  for (const child of node.literals.values()) visitSubtree(child, visit);
  if (node.param !== null) visitSubtree(node.param, visit);
}

/**
 * Calls `visit` for every trie entry whose path pattern can match some path that `segments` also
 * matches (an entry may be visited more than once). A `:p` query segment overlaps any literal or
 * param child; a `*` overlaps the whole subtree, including the node itself (`*` matches none).
 */
export function forEachOverlap(
  node: TrieNode,
  segments: readonly Segment[],
  i: number,
  visit: (e: TrieEntry) => void,
): void {
  const seg = segments[i];
  if (seg === undefined) {
    node.terminal.forEach(visit);
    node.wildcard.forEach(visit);
    return;
  }
  if (seg.kind === 'wildcard') {
    visitSubtree(node, visit);
    return;
  }
  node.wildcard.forEach(visit);
  if (seg.kind === 'literal') {
    const child = node.literals.get(seg.value);
    if (child !== undefined) forEachOverlap(child, segments, i + 1, visit);
  } else {
    for (const child of node.literals.values()) forEachOverlap(child, segments, i + 1, visit);
  }
  if (node.param !== null) forEachOverlap(node.param, segments, i + 1, visit);
}

export function methodsOverlap(a: ReadonlySet<string> | null, b: ReadonlySet<string> | null): boolean {
  if (a === null && b === null) return true;
  if (a === null || b === null) {
    // `*` excludes OPTIONS, so an OPTIONS-only pattern never meets it.
    for (const m of (a ?? b)!) if (m !== 'OPTIONS') return true;
    return false;
  }
  for (const m of a) if (b.has(m)) return true;
  return false;
}

// RFC 9110 token characters; `|` is missing on purpose because it separates methods.
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`~0-9A-Z]+$/;

/** The pattern's method set (null = `*`), or a message saying what is wrong with it. */
export function compileMethods(pattern: RoutePattern): ReadonlySet<string> | null | string {
  if (pattern.methods === '*') return null;
  const names = pattern.methods.map((m) => m.toUpperCase());
  if (names.length === 0) return 'a pattern needs at least one method';
  if (names.includes('*')) {
    // A lone `*` in list form means the same as '*'; mixed in with names it is a typo.
    return names.length === 1 ? null : '`*` stands for every method and cannot be combined with method names';
  }
  const bad = names.find((m) => !METHOD_TOKEN.test(m));
  if (bad !== undefined) return `"${bad}" is not a valid HTTP method name`;
  // Thousands of patterns name the same few methods: they share one (read-only) set per list.
  const key = names.join('|');
  let set = METHOD_SETS.get(key);
  if (set === undefined) METHOD_SETS.set(key, (set = new Set(names)));
  return set;
}

/** Method sets by their method list, shared across patterns and tables (never modified). */
const METHOD_SETS = new Map<string, ReadonlySet<string>>();

const PARAM_NAME = /^[A-Za-z0-9_-]+$/;
// RFC 3986 §2.3 unreserved characters: the canonicaliser decodes their escapes (§7), so a
// canonical path only ever spells them raw.
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const ALL_UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
// Other characters RFC 3986 §3.3 allows raw in a path segment (sub-delims, `:` and `@`). `;` is
// not here: its parameters are stripped before matching. `*` is not here: it has to be a whole
// segment (the wildcard); a literal star is written `%2A`.
const RAW_PCHAR = new Set([...`!$&'()+,=:@`]);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function hex(b: number): string {
  return '%' + b.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * Rewrites a literal segment in canonical form: unreserved escapes decoded, other escapes with
 * upper-case hex, non-ASCII and characters RFC 3986 does not allow raw in a path percent-encoded
 * as UTF-8. Returns a message for anything that cannot appear in a canonical path at all.
 */
function normaliseLiteral(seg: string, encodedSlashes: RoutesConfig['encodedSlashes']): { value: string } | string {
  // Nearly every literal is plain letters and digits, already canonical (a third of the compile
  // time of a 10,000-rule file went into the byte-by-byte path below).
  if (ALL_UNRESERVED.test(seg)) return { value: seg };
  const bytes: number[] = [];
  const escaped: boolean[] = [];
  for (let i = 0; i < seg.length; i++) {
    const code = seg.codePointAt(i)!;
    if (code === 0x25) {
      const pair = seg.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(pair)) return `"${seg}" has an invalid percent-escape`;
      bytes.push(parseInt(pair, 16));
      escaped.push(true);
      i += 2;
    } else if (code < 0x80) {
      bytes.push(code);
      escaped.push(false);
    } else {
      if (code >= 0xd800 && code <= 0xdfff) return `"${seg}" is not valid Unicode`;
      for (const b of Buffer.from(String.fromCodePoint(code), 'utf8')) {
        bytes.push(b);
        escaped.push(false);
      }
      if (code > 0xffff) i++;
    }
  }
  try {
    utf8.decode(Uint8Array.from(bytes));
  } catch {
    return `"${seg}" percent-encodes invalid UTF-8, which the gateway refuses in requests`;
  }
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const ch = String.fromCharCode(b);
    if (b < 0x20 || b === 0x7f) return `"${seg}" contains a control character, which the gateway refuses in requests`;
    if (b >= 0x80) out += hex(b);
    else if (UNRESERVED.test(ch)) out += ch;
    else if (escaped[i]) {
      if (b === 0x5c) return `"${seg}" contains an encoded backslash (%5C), which the gateway refuses in requests`;
      if (b === 0x2f && encodedSlashes === 'reject') {
        return `"${seg}" contains an encoded slash (%2F), which the gateway refuses with encoded_slashes: reject`;
      }
      out += hex(b);
    } else if (RAW_PCHAR.has(ch)) out += ch;
    else if (ch === ';') return `"${seg}": ";" parameters are stripped before matching; write %3B for a literal ";"`;
    else if (ch === '\\' || ch === '#' || ch === '?' || ch === ' ') {
      return `"${seg}" contains "${ch}", which never reaches path matching`;
    } else out += hex(b);
  }
  return { value: out };
}

/** One pattern segment as a trie key, or a message saying why it can never match. */
function parseSegment(part: string, isLast: boolean, params: Set<string>, routes: RoutesConfig): Segment | string {
  if (part === '') return 'empty segment, which a canonical path never has';
  if (part === '*') return isLast ? { kind: 'wildcard' } : '"*" is only allowed as the last segment';
  if (part.includes('*')) return '"*" must be a whole segment (write %2A for a literal "*")';
  if (part.startsWith(':')) {
    const name = part.slice(1);
    if (name === '') return '":" needs a parameter name';
    if (!PARAM_NAME.test(name)) return `parameter ":${name}" must be a whole segment named with letters, digits, "_" or "-"`;
    if (params.has(name)) return `parameter ":${name}" is used twice`;
    params.add(name);
    return { kind: 'param' };
  }
  const literal = normaliseLiteral(part, routes.encodedSlashes);
  if (typeof literal === 'string') return literal;
  return { kind: 'literal', value: routes.caseSensitive ? literal.value : literal.value.toLowerCase() };
}

/**
 * Parses the path half of a pattern into trie keys, reporting every problem found. Literals are
 * lower-cased unless matching is case-sensitive; escapes then read `%c3`, exactly as a
 * lower-cased request path does.
 */
export function parsePatternPath(path: string, routes: RoutesConfig, report: (message: string) => void): Segment[] | null {
  if (!path.startsWith('/')) {
    report(`pattern path "${path}" must start with "/"`);
    return null;
  }
  // A trailing slash is insignificant (§3): `/a/` is `/a`; `/` alone stays the root.
  const body = path.length > 1 && path.endsWith('/') ? path.slice(1, -1) : path.slice(1);
  if (body === '') return [];
  const parts = body.split('/');
  const params = new Set<string>();
  const segments: Segment[] = [];
  let ok = true;
  for (const [i, part] of parts.entries()) {
    const seg = parseSegment(part, i === parts.length - 1, params, routes);
    if (typeof seg === 'string') {
      report(`pattern path "${path}": ${seg}`);
      ok = false;
    } else {
      segments.push(seg);
    }
  }
  return ok ? segments : null;
}
