// Property-based fuzzing (fast-check) of the two pure halves of the gate: canonicalise (SPEC §7)
// and the rule matcher (SPEC §3). The table tests (canonical.test.ts, match.test.ts) pin known
// cases; these throw thousands of random targets and random rule tables at them and check
// invariants that must hold for every input:
//   - compileRules agrees with a deliberately naive reference matcher (one regex per pattern);
//   - canonicalise is idempotent, what it accepts round-trips, and what it accepts is clean (no
//     `//`, no dot segment, no `%2F` under reject, no backslash, no `#`, only valid escapes);
//   - no under-gating: whenever an app reading of the forwarded request (test/helpers/interpreters)
//     routes to a rule, the gate matched that rule on its own matchPaths.
// Runs are bounded and seeded: FC_SEED=<n> reproduces a run; fast-check prints the seed and the
// shrunk counterexample on failure.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FactorType, RoutesConfig, RuleConfig } from '../../src/config/types.js';
import { ALL_FACTORS } from '../../src/config/types.js';
import { canonicalise, type EncodedSlashes } from '../../src/rules/canonical.js';
import { compileRules } from '../../src/rules/match.js';
import { appRoutesOf, expressRoutes, strictRfcRoutes } from '../helpers/interpreters.js';

const SEED = Number(process.env.FC_SEED ?? 0x5e7a6a7e);
const RUNS = Number(process.env.FC_RUNS ?? 1000);
const params = (numRuns = RUNS) => ({ seed: SEED, numRuns });

// ── random rule tables ──────────────────────────────────────────────────────────────────────────

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
/** Few literals, so random paths and random patterns meet often. */
const LITERALS = ['a', 'b', 'api', 'me', 'Billing', 'x-y', 'v1.2', '~u', 'org', 'ORG'];
const FACTOR_SETS: FactorType[][] = [['totp'], ['passkey', 'totp'], ['totp', 'recovery'], ['passkey', 'totp', 'recovery']];
const MIN = 60_000;

const patternPath = fc
  .tuple(fc.array(fc.oneof(fc.constantFrom(...LITERALS), fc.constant(':p')), { maxLength: 4 }), fc.boolean(), fc.boolean())
  .map(([segs, wildcard, trailingSlash]) => {
    const parts = segs.map((s, i) => (s === ':p' ? `:p${i}` : s));
    if (wildcard) parts.push('*');
    const path = '/' + parts.join('/');
    return trailingSlash && path.length > 1 && !wildcard ? path + '/' : path;
  });

const pattern = fc.record({
  methods: fc.oneof(fc.constant('*' as const), fc.uniqueArray(fc.constantFrom(...METHODS), { minLength: 1, maxLength: 3 })),
  path: patternPath,
});

const rule: fc.Arbitrary<GenRule> = fc.record({
  patterns: fc.array(pattern, { minLength: 1, maxLength: 3 }),
  maxAgeMs: fc.constantFrom(1 * MIN, 5 * MIN, 10 * MIN, 60 * MIN),
  factors: fc.constantFrom(...FACTOR_SETS),
  once: fc.boolean(),
  anonymous: fc.constantFrom('allow' as const, 'deny' as const),
});

interface GenRule {
  patterns: Array<{ methods: '*' | string[]; path: string }>;
  maxAgeMs: number;
  factors: FactorType[];
  once: boolean;
  anonymous: 'allow' | 'deny';
}

function routesOf(rules: GenRule[], caseSensitive: boolean, encodedSlashes: EncodedSlashes = 'reject'): RoutesConfig {
  return {
    file: 'routes.yaml',
    caseSensitive,
    encodedSlashes,
    maxInspectBodyBytes: 1024 * 1024,
    defaults: { maxAgeMs: 10 * MIN, factors: ALL_FACTORS },
    rules: rules.map((r, i): RuleConfig => ({
      name: `r${i}`,
      index: i,
      patterns: r.patterns.map((p, j) => ({
        methods: p.methods,
        path: p.path,
        text: `${p.methods === '*' ? '*' : p.methods.join('|')} ${p.path}`,
      })),
      maxAgeMs: r.maxAgeMs,
      factors: r.factors,
      once: r.once,
      anonymous: r.anonymous,
      when: null,
    })),
    locate: (i, j) => (j === undefined ? { file: 'routes.yaml', line: 10 * i + 1, col: 5 } : { file: 'routes.yaml', line: 10 * i + 2 + j, col: 9 }),
  };
}

const ruleTable = fc.array(rule, { minLength: 1, maxLength: 6 });

// ── the reference matcher ───────────────────────────────────────────────────────────────────────

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One regex per pattern: literal segments, `:p` one non-empty segment, final `*` any rest incl. none. */
function patternRegex(path: string, caseSensitive: boolean): RegExp {
  const body = path.length > 1 && path.endsWith('/') ? path.slice(1, -1) : path.slice(1);
  const parts = body === '' ? [] : body.split('/');
  let re = '^';
  parts.forEach((p, i) => {
    if (p === '*' && i === parts.length - 1) re += '(?:/.*)?';
    else if (p.startsWith(':')) re += '/[^/]+';
    else re += '/' + escapeRegex(p);
  });
  return new RegExp(re + '/?$', caseSensitive ? '' : 'i');
}

function referenceMatch(routes: RoutesConfig, methods: readonly string[], paths: readonly string[]) {
  const upper = methods.map((m) => m.toUpperCase());
  const hits = routes.rules.filter((r) =>
    r.patterns.some((p) => {
      const methodOk = p.methods === '*' ? upper.some((m) => m !== 'OPTIONS') : upper.some((m) => (p.methods as readonly string[]).includes(m));
      const re = patternRegex(p.path, routes.caseSensitive);
      return methodOk && paths.some((path) => re.test(path));
    }),
  );
  if (hits.length === 0) return null;
  return {
    name: hits.map((r) => r.name).join(','),
    maxAgeMs: Math.min(...hits.map((r) => r.maxAgeMs)),
    factors: ALL_FACTORS.filter((f) => hits.every((r) => r.factors.includes(f))),
    once: hits.some((r) => r.once),
    anonymousAllowed: hits.every((r) => r.anonymous === 'allow'),
  };
}

// ── random request paths and targets ───────────────────────────────────────────────────────────

const pathSegment = fc.oneof(
  fc.constantFrom(...LITERALS),
  fc.constantFrom(...LITERALS).map((s) => s.toUpperCase()),
  fc.stringMatching(/^[a-z0-9]{1,3}$/),
);
const matchPath = fc.tuple(fc.array(pathSegment, { maxLength: 5 }), fc.boolean()).map(([segs, slash]) => '/' + segs.join('/') + (slash && segs.length > 0 ? '/' : ''));
const methodList = fc.uniqueArray(fc.constantFrom(...METHODS, 'PROPFIND', 'patch'), { minLength: 1, maxLength: 3 });

/** Pieces of request targets, weighted towards what canonicalisers get wrong. */
const TOKENS = [
  'a', 'B', 'me', 'billing', 'x9', '.', '..', '...', '%2e', '%2E', '%2e%2e', '.%2E', '%2e.', '%2F', '%2f', '%5C', '%5c', '\\',
  ';', ';x=1', ';jsessionid=A', '%3B', '%41', '%61', '%7E', '%7e', '~', '-', '_', '%2D', '%5F', '%25', '%', '%zz', '%2', '%00', '%0a', '%1F', '%7F',
  '%C0%AF', '%C0%AE', '%C3%A9', '%c3%a9', '%E2%82%AC', '%ED%A0%80', '%FF', '%C3', '%80', '%C2%85', ' ', '\u00e9', '\u0000', '\t', '#', '?', '@', ':',
  '!', '$', '&', "'", '(', ')', '*', '+', ',', '=', '%20', '%2A', '%5B', '[', ']', '{', '|', '"', '%252F', '%252e', '%3F', '%23',
];
const pathPiece = fc.oneof({ weight: 3, arbitrary: fc.constant('/') }, { weight: 1, arbitrary: fc.constant('//') }, { weight: 6, arbitrary: fc.constantFrom(...TOKENS) });
const queryPiece = fc.constantFrom('', '?', '?x=1', '?a=%2F&b=..', '?_method=DELETE', '?q=/../%zz#', '?\\');
const target = fc
  .tuple(fc.constantFrom('', '', '', 'http://h', 'HTTPS://Host:8080', 'http://u@h'), fc.array(pathPiece, { maxLength: 14 }), queryPiece)
  .map(([authority, pieces, query]) => authority + '/' + pieces.join('') + query);
const slashesMode = fc.constantFrom<EncodedSlashes>('reject', 'keep');

/** The raw query of a target (from its first `?` after the authority), '' when none. */
function queryOf(t: string): string {
  const start = t.startsWith('/') ? 0 : t.indexOf('://') + 3;
  const q = t.indexOf('?', start);
  return q === -1 ? '' : t.slice(q);
}

/** A segment's name: what is left once its `;` parameters are stripped. */
const nameOf = (seg: string) => (seg.includes(';') ? seg.slice(0, seg.indexOf(';')) : seg);
const UNRESERVED = /[A-Za-z0-9\-._~]/;

// ── properties ─────────────────────────────────────────────────────────────────────────────────

describe(`compileRules agrees with a reference regex matcher (fast-check, seed ${SEED})`, () => {
  it(`random rule tables × random methods and paths (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(ruleTable, fc.boolean(), methodList, fc.array(matchPath, { minLength: 1, maxLength: 2 }), (rules, caseSensitive, methods, paths) => {
        const routes = routesOf(rules, caseSensitive);
        let compiled;
        try {
          compiled = compileRules(routes);
        } catch {
          return; // factor sets always share totp, so a table that does not compile is a generator bug
        }
        const got = compiled.match(methods, paths);
        const want = referenceMatch(routes, methods, paths);
        expect(got && { name: got.name, maxAgeMs: got.maxAgeMs, factors: [...got.factors], once: got.once, anonymousAllowed: got.anonymousAllowed }).toEqual(want);
      }),
      params(),
    );
  });

  it('every generated table compiles (the generator is not silently skipping cases)', () => {
    fc.assert(
      fc.property(ruleTable, fc.boolean(), (rules, caseSensitive) => {
        expect(() => compileRules(routesOf(rules, caseSensitive))).not.toThrow();
      }),
      params(200),
    );
  });
});

describe(`canonicalise invariants (fast-check, seed ${SEED})`, () => {
  it(`is idempotent: canonicalising what it forwards gives the same result (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(target, slashesMode, (t, mode) => {
        const first = canonicalise(t, mode);
        if (!first.ok) return;
        expect(canonicalise(first.forwardPath + first.query, mode)).toEqual(first);
      }),
      params(),
    );
  });

  it(`round-trips: forwardPath + query canonicalises to the same forwardPath and query (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(target, slashesMode, (t, mode) => {
        const first = canonicalise(t, mode);
        if (!first.ok) return;
        const again = canonicalise(first.forwardPath + first.query, mode);
        expect(again.ok).toBe(true);
        if (again.ok) {
          expect(again.forwardPath).toBe(first.forwardPath);
          expect(again.query).toBe(first.query);
        }
      }),
      params(),
    );
  });

  it(`accepts only clean paths: no //, no dot segment, no backslash, no #, no %2F under reject, valid upper-case escapes (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(target, slashesMode, (t, mode) => {
        const r = canonicalise(t, mode);
        if (!r.ok) {
          expect(r.reason).toMatch(/\S/);
          return;
        }
        const p = r.forwardPath;
        expect(p.startsWith('/')).toBe(true);
        expect(p).not.toContain('//');
        expect(p).not.toContain('\\');
        expect(p).not.toContain('#');
        expect(p).not.toContain('?');
        if (mode === 'reject') expect(p).not.toMatch(/%2F/i);
        // (Under keep, a piece between %2Fs may be `.`: the gate resolves that reading separately.)
        for (const seg of p.split('/').slice(1)) expect(['.', '..']).not.toContain(nameOf(seg));
        // Only RFC 3986 pchar raw; every escape valid, upper-case, and not of an unreserved character.
        expect(p).toMatch(/^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*$/);
        for (const [, h] of p.matchAll(/%([0-9A-F]{2})/g)) {
          const byte = parseInt(h!, 16);
          expect(UNRESERVED.test(String.fromCharCode(byte)) && byte < 0x80).toBe(false);
          expect(byte < 0x20 || byte === 0x7f || byte === 0x5c).toBe(false);
        }
        // The matcher's readings are clean too, and the first is the forwarded path, parameters stripped.
        for (const m of r.matchPaths) {
          expect(m.startsWith('/')).toBe(true);
          expect(m).not.toContain('//');
          expect(m === '/' || !m.endsWith('/')).toBe(true);
          expect(m).not.toContain(';');
        }
        expect(r.matchPaths[0]).toBe('/' + p.split('/').slice(1).map(nameOf).filter((s) => s !== '').join('/'));
        expect(r.hasMatrixParams).toBe(p.includes(';'));
        // The query is forwarded byte for byte.
        expect(r.query).toBe(queryOf(t));
      }),
      params(),
    );
  });

  it('accepts a good share of the generated targets (the generator reaches the interesting cases)', () => {
    const sample = fc.sample(fc.tuple(target, slashesMode), { seed: SEED, numRuns: 2000 });
    const accepted = sample.filter(([t, m]) => canonicalise(t, m).ok).length;
    expect(accepted).toBeGreaterThan(200);
    expect(accepted).toBeLessThan(1800);
  });
});

describe(`no under-gating: the gate matches whatever an app reading of the forwarded request routes (fast-check, seed ${SEED})`, () => {
  it(`random targets × random rule tables, Express-like and strict RFC 3986 readings (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(ruleTable, target, slashesMode, fc.constantFrom(...METHODS), (rules, t, mode, method) => {
        const routes = routesOf(rules, false, mode);
        const compiled = compileRules(routes);
        const canon = canonicalise(t, mode);
        if (!canon.ok) return;
        const gate = new Set(compiled.match([method, ...(method === 'HEAD' ? ['GET'] : [])], canon.matchPaths)?.rules.map((r) => r.name) ?? []);
        // Path readings only: method overrides (query `_method`, headers) are the pipeline's business.
        const forwarded = { method, url: canon.forwardPath, headers: {} };
        const app = appRoutesOf(routes.rules);
        for (const name of [...expressRoutes(app, forwarded), ...strictRfcRoutes(app, forwarded)]) {
          expect(gate.has(name), `${method} ${forwarded.url} (from ${JSON.stringify(t)}, ${mode}) routes to ${name} in the app, the gate matched ${[...gate].join(',') || 'nothing'}`).toBe(true);
        }
      }),
      params(),
    );
  });
});
