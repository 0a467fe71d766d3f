import { describe, expect, it } from 'vitest';
import { canonicalise } from '../../src/rules/canonical.js';
import type { CanonicalResult } from '../../src/rules/canonical.js';
import { canonicalCases, gatedSpellings } from '../fixtures/canonical-cases.js';
import type { CanonicalCase } from '../fixtures/canonical-cases.js';

function label(c: CanonicalCase): string {
  const target = c.target.length > 60 ? `${c.target.slice(0, 40)}… (${c.target.length} chars)` : c.target;
  return `${c.slashes ?? 'reject'} ${JSON.stringify(target)}${c.note ? ` — ${c.note}` : ''}`;
}

describe('canonicalise (SPEC §7)', () => {
  it('has a case table large enough to cover every rule', () => {
    expect(canonicalCases.length).toBeGreaterThanOrEqual(80);
  });

  for (const c of canonicalCases) {
    it(label(c), () => {
      const result = canonicalise(c.target, c.slashes ?? 'reject');
      if (c.expect === 'reject') {
        expect(result.ok, JSON.stringify(result)).toBe(false);
        if (!result.ok) expect(result.reason).toMatch(/\S/);
        return;
      }
      expect(result).toEqual({
        ok: true,
        forwardPath: c.expect.forwardPath,
        query: c.expect.query ?? '',
        matchPaths: c.expect.matchPaths,
        hasMatrixParams: c.expect.matrix ?? false,
      });
    });
  }
});

describe('canonicalise is idempotent', () => {
  // Property: what the upstream receives is itself canonical, so a second gate (or a retry
  // through this one) evaluates exactly what the first did.
  const accepted = canonicalCases.filter((c) => c.expect !== 'reject');
  for (const c of accepted) {
    it(label(c), () => {
      const slashes = c.slashes ?? 'reject';
      const first = canonicalise(c.target, slashes);
      if (!first.ok) throw new Error(`expected ${c.target} to be accepted: ${first.reason}`);
      expect(canonicalise(first.forwardPath + first.query, slashes)).toEqual(first);
    });
  }
});

// A deliberately naive reference for the four routes gatedSpellings is written against, so the
// fixture is checked here, independently of src/rules/match.ts: each spelling must be refused, or
// some method interpretation (SPEC §7) x some matchPath must hit a route, case-insensitively.
const ROUTES: [method: string, path: string][] = [
  ['PATCH', '/internal/org/:key/billing'],
  ['POST', '/internal/org/:key/billing/*'],
  ['DELETE', '/me'],
  ['PATCH', '/portal/security/devices/:id/trust'],
];
const OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

function methodInterpretations(method: string, query: string, headers: Record<string, string>): string[] {
  const methods = [method.toUpperCase()];
  if (methods[0] === 'HEAD') methods.push('GET');
  for (const [name, value] of Object.entries(headers)) {
    if (OVERRIDE_HEADERS.has(name.toLowerCase())) methods.push(value.toUpperCase());
  }
  for (const value of new URLSearchParams(query).getAll('_method')) methods.push(value.toUpperCase());
  return methods;
}

function routeMatches(pattern: string, path: string): boolean {
  const want = pattern.toLowerCase().split('/').slice(1);
  const have = path === '/' ? [] : path.toLowerCase().split('/').slice(1);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w === '*' && i === want.length - 1) return true;
    const h = have[i];
    if (h === undefined || (w.startsWith(':') ? h === '' : w !== h)) return false;
  }
  return have.length === want.length;
}

function isGated(result: Extract<CanonicalResult, { ok: true }>, methods: string[]): boolean {
  return ROUTES.some(
    ([method, pattern]) => methods.includes(method) && result.matchPaths.some((p) => routeMatches(pattern, p)),
  );
}

describe('gatedSpellings are refused or gated', () => {
  it('has at least 40 spellings, some refused and some gated', () => {
    expect(gatedSpellings.length).toBeGreaterThanOrEqual(40);
    const results = gatedSpellings.map((s) => canonicalise(s.target, 'reject'));
    expect(results.some((r) => r.ok)).toBe(true);
    expect(results.some((r) => !r.ok)).toBe(true);
  });

  for (const slashes of ['reject', 'keep'] as const) {
    for (const s of gatedSpellings) {
      const headers = s.headers ? ` ${JSON.stringify(s.headers)}` : '';
      it(`${slashes}: ${s.method} ${s.target}${headers}`, () => {
        const result = canonicalise(s.target, slashes);
        if (!result.ok) return;
        const methods = methodInterpretations(s.method, result.query, s.headers ?? {});
        expect(isGated(result, methods), JSON.stringify({ methods, matchPaths: result.matchPaths })).toBe(true);
      });
    }
  }
});
