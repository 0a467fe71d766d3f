// The rule matcher (SPEC §3): every pattern of routes.yaml compiled once into one segment trie,
// so a request walks at most one branch per literal/param/wildcard choice whatever the number of
// rules, and an ungated request costs a few Map lookups and no allocation beyond its lower-cased
// path and segment keys.
import { ALL_FACTORS } from '../config/types.js';
import type { FactorType, RoutesConfig, RuleConfig, ValuePattern } from '../config/types.js';
import { formatDuration } from '../config/units.js';
import {
  compileMethods,
  forEachOverlap,
  insert,
  methodsOverlap,
  newNode,
  parsePatternPath,
  RuleCompileError,
  RuleCompileErrors,
} from './compile.js';
import type { CompiledRule, Segment, TrieEntry, TrieNode } from './compile.js';

export { RuleCompileError, RuleCompileErrors } from './compile.js';

export interface RuleMatch {
  /** Every matched rule, in file order, no duplicates. */
  rules: readonly RuleConfig[];
  /** Their names comma-joined in file order. */
  name: string;
  /** The smallest max_age. */
  maxAgeMs: number;
  /**
   * The intersection, in ALL_FACTORS order. Empty only when different method or path
   * interpretations of one request matched rules that never overlap for a single reading
   * (those pairs are not compile errors); no factor can then satisfy the request, which fails
   * closed.
   */
  factors: readonly FactorType[];
  /** Any matched rule has `once`. */
  once: boolean;
  /** Every matched rule says `anonymous: allow`. */
  anonymousAllowed: boolean;
}

export interface CompiledRules {
  readonly ruleCount: number;
  /**
   * methods: every method interpretation of the request (upper-case); paths: every matchPath
   * reading. A rule matches if any method x any path matches one of its patterns (and, when
   * given, `accept` says yes: the caller's verdict on `when` conditions).
   */
  match(methods: readonly string[], paths: readonly string[], accept?: (rule: RuleConfig) => boolean): RuleMatch | null;
  /**
   * True if some rule matches one of these paths for a method other than `method` but does not
   * already match for `method` itself: only then can a `_method` override in a POST body change
   * which rules gate the request, so only then is the body worth reading. (A `* /*` rule therefore
   * does not make every POST body worth reading.)
   */
  matchesPathForOtherMethod(method: string, paths: readonly string[]): boolean;
}

const FULL_MASK = (1 << ALL_FACTORS.length) - 1;

function factorMask(factors: readonly FactorType[]): number {
  let mask = 0;
  for (const f of factors) mask |= 1 << ALL_FACTORS.indexOf(f);
  return mask;
}

/** Factor lists for every mask, built once so combining rules allocates no factor arrays. */
const FACTORS_BY_MASK: readonly (readonly FactorType[])[] = Array.from({ length: FULL_MASK + 1 }, (_, mask) =>
  Object.freeze(ALL_FACTORS.filter((_, i) => (mask & (1 << i)) !== 0)),
);

function acceptsMethod(entry: TrieEntry, method: string): boolean {
  return entry.methods === null ? method !== 'OPTIONS' : entry.methods.has(method);
}

function acceptsAnyMethod(entry: TrieEntry, methods: readonly string[]): boolean {
  for (const m of methods) if (acceptsMethod(entry, m.toUpperCase())) return true;
  return false;
}

/**
 * Collects the entry lists of every trie node that `path[start, end)` reaches, or returns `acc`
 * untouched (null when nothing matched yet, so a miss allocates nothing).
 */
function walk(node: TrieNode, path: string, start: number, end: number, acc: TrieEntry[][] | null): TrieEntry[][] | null {
  if (node.wildcard.length > 0) (acc ??= []).push(node.wildcard);
  if (start >= end) {
    if (node.terminal.length > 0) (acc ??= []).push(node.terminal);
    return acc;
  }
  let slash = path.indexOf('/', start);
  if (slash === -1 || slash > end) slash = end;
  if (node.literals.size > 0) {
    const child = node.literals.get(path.slice(start, slash));
    if (child !== undefined) acc = walk(child, path, slash + 1, end, acc);
  }
  // A parameter is exactly one non-empty segment.
  if (node.param !== null && slash > start) acc = walk(node.param, path, slash + 1, end, acc);
  return acc;
}

function combine(rules: readonly CompiledRule[]): RuleMatch {
  let maxAgeMs = Infinity;
  let mask = FULL_MASK;
  let once = false;
  let anonymousAllowed = true;
  for (const { rule, factorMask } of rules) {
    maxAgeMs = Math.min(maxAgeMs, rule.maxAgeMs);
    mask &= factorMask;
    once ||= rule.once;
    anonymousAllowed &&= rule.anonymous === 'allow';
  }
  const configs = rules.map((r) => r.rule);
  return {
    rules: configs,
    name: configs.map((r) => r.name).join(','),
    maxAgeMs,
    factors: FACTORS_BY_MASK[mask]!,
    once,
    anonymousAllowed,
  };
}

function byFileOrder(a: CompiledRule, b: CompiledRule): number {
  return a.rule.index - b.rule.index;
}

class CompiledRuleSet implements CompiledRules {
  constructor(
    private readonly root: TrieNode,
    private readonly caseSensitive: boolean,
    readonly ruleCount: number,
    /** The answer for each rule matching alone (the common case), built once and frozen. */
    private readonly single: ReadonlyMap<CompiledRule, RuleMatch>,
  ) {}

  private lookup(paths: readonly string[]): TrieEntry[][] | null {
    let acc: TrieEntry[][] | null = null;
    for (const raw of paths) {
      const path = this.caseSensitive ? raw : raw.toLowerCase();
      // Canonical paths have no trailing slash except `/`; dropping one keeps this total anyway.
      const end = path.length > 1 && path.endsWith('/') ? path.length - 1 : path.length;
      acc = walk(this.root, path, 1, end, acc);
    }
    return acc;
  }

  match(methods: readonly string[], paths: readonly string[], accept?: (rule: RuleConfig) => boolean): RuleMatch | null {
    const lists = this.lookup(paths);
    if (lists === null) return null;
    // Nearly every hit is one rule: it needs no Set (and `single` has its answer ready).
    let first: CompiledRule | null = null;
    let more: Set<CompiledRule> | null = null;
    for (const list of lists) {
      for (const entry of list) {
        const rule = entry.compiled;
        if (rule === first || more?.has(rule)) continue;
        if (!acceptsAnyMethod(entry, methods) || (accept && !accept(rule.rule))) continue;
        if (first === null) first = rule;
        else (more ??= new Set([first])).add(rule);
      }
    }
    if (first === null) return null;
    if (more === null) return this.single.get(first)!;
    return combine([...more].sort(byFileOrder));
  }

  matchesPathForOtherMethod(method: string, paths: readonly string[]): boolean {
    const lists = this.lookup(paths);
    if (lists === null) return false;
    const own = method.toUpperCase();
    const forOwn = new Set<CompiledRule>();
    const forOther = new Set<CompiledRule>();
    for (const list of lists) {
      for (const entry of list) {
        if (acceptsMethod(entry, own)) forOwn.add(entry.compiled);
        // `*` covers some method other than `own` whatever `own` is; a list must name one.
        if (entry.methods === null || entry.methods.size > (entry.methods.has(own) ? 1 : 0)) {
          forOther.add(entry.compiled);
        }
      }
    }
    for (const rule of forOther) if (!forOwn.has(rule)) return true;
    return false;
  }
}

function describeFactors(mask: number): string {
  return FACTORS_BY_MASK[mask]!.join(',');
}

/**
 * Compiles routes.yaml's rules into one trie. Throws RuleCompileErrors listing every problem:
 * malformed patterns and pairs of rules that can match the same request yet accept no common
 * factor (reported at the later rule).
 */
export function compileRules(routes: RoutesConfig): CompiledRules {
  const errors: RuleCompileError[] = [];
  const root = newNode();
  // Only rules that do not accept every factor can make an empty intersection (with another such
  // rule), so the overlap check walks a trie of just those: ordinary rules cost nothing here.
  const restricted = newNode();
  const single = new Map<CompiledRule, RuleMatch>();

  for (const rule of routes.rules) {
    const compiled: CompiledRule = { rule, factorMask: factorMask(rule.factors) };
    const alone = combine([compiled]);
    Object.freeze(alone.rules);
    single.set(compiled, Object.freeze(alone));
    if (compiled.factorMask === 0) errors.push(new RuleCompileError(routes.locate(rule.index), `rule "${rule.name}" accepts no factor`));

    const parsed: { entry: TrieEntry; segments: Segment[]; patternIndex: number }[] = [];
    rule.patterns.forEach((pattern, patternIndex) => {
      const methods = compileMethods(pattern);
      const report = (message: string) => errors.push(new RuleCompileError(routes.locate(rule.index, patternIndex), message));
      if (typeof methods === 'string') report(`pattern "${pattern.text}": ${methods}`);
      const segments = parsePatternPath(pattern.path, routes, report);
      if (typeof methods !== 'string' && segments !== null) parsed.push({ entry: { compiled, pattern, methods }, segments, patternIndex });
    });

    // A rule accepting no factor is reported above; listing every rule it meets would be noise.
    if (compiled.factorMask !== FULL_MASK && compiled.factorMask !== 0) {
      const reported = new Set<CompiledRule>();
      for (const { entry, segments, patternIndex } of parsed) {
        forEachOverlap(restricted, segments, 0, (other) => {
          if ((other.compiled.factorMask & compiled.factorMask) !== 0 || reported.has(other.compiled)) return;
          if (!methodsOverlap(entry.methods, other.methods)) return;
          reported.add(other.compiled);
          const earlier = other.compiled.rule;
          errors.push(
            new RuleCompileError(
              routes.locate(rule.index, patternIndex),
              `rules "${earlier.name}" (line ${routes.locate(earlier.index).line}) and "${rule.name}" can match the same request ` +
                `("${other.pattern.text}" and "${entry.pattern.text}") but accept no common factor ` +
                `(${describeFactors(other.compiled.factorMask)} vs ${describeFactors(compiled.factorMask)})`,
            ),
          );
        });
      }
      for (const { entry, segments } of parsed) insert(restricted, segments, entry);
    }
    for (const { entry, segments } of parsed) insert(root, segments, entry);
  }

  if (errors.length > 0) {
    errors.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
    throw new RuleCompileErrors(errors);
  }
  return new CompiledRuleSet(root, routes.caseSensitive, routes.rules.length, single);
}

/** The compiled rule table for `stepgate check`: one line per pattern, plain text in columns. */
function valueText(v: ValuePattern): string {
  return v.prefix ? `${v.value}*` : v.value;
}

export function describeRules(routes: RoutesConfig): string {
  const header = ['RULE', 'METHODS', 'PATH', 'MAX_AGE', 'FACTORS', 'ONCE', 'ANONYMOUS', 'WHEN'];
  const describeWhen = (rule: RuleConfig) =>
    rule.when
      ? [...rule.when.param.map((p) => `${p.name}=${p.values.map(valueText).join('|')}`), ...rule.when.json.map((j) => `${j.pointer}=${j.values.map(valueText).join('|')}`)].join(' or ')
      : '-';
  const rows = routes.rules.flatMap((rule) => {
    const tail = [formatDuration(rule.maxAgeMs), rule.factors.join(',') || '-', rule.once ? 'yes' : 'no', rule.anonymous, describeWhen(rule)];
    if (rule.patterns.length === 0) return [[rule.name, '-', '-', ...tail]];
    return rule.patterns.map((p) => [rule.name, p.methods === '*' ? '*' : p.methods.join('|'), p.path, ...tail]);
  });
  const table = [header, ...rows];
  // reduce rather than Math.max(...): a spread of a very large table would overflow the stack.
  const widths = header.map((_, col) => table.reduce((w, row) => Math.max(w, row[col]!.length), 0));
  return table.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n') + '\n';
}
