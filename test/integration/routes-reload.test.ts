// A running gateway re-reads routes.yaml on a worker thread (src/config/routes-reader.ts), from
// the built dist/ (the worker runs dist/config/routes-worker.js). What it builds there must be
// exactly what start-up and `stepgate check` build on the main thread from the same file: the
// same rules, and for a broken file the same `file:line:col` problems.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { routesYaml } from '../../bench/rules.mjs';
import type { RouteTable } from '../../src/context.js';
import type * as RouteTableModule from '../../src/config/route-table.js';
import type * as MatchModule from '../../src/rules/match.js';

const dist = join(import.meta.dirname, '..', '..', 'dist');
const { loadRouteTable, loadRouteTableOffThread } = (await import(join(dist, 'config', 'route-table.js'))) as typeof RouteTableModule;
const { describeRules } = (await import(join(dist, 'rules', 'match.js'))) as typeof MatchModule;

const dir = mkdtempSync(join(tmpdir(), 'stepgate-reload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function routesFile(text: string): string {
  const file = join(dir, `routes-${files++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** The values, the compiled table, and where every rule and pattern is written. */
function summary(table: RouteTable) {
  const { cfg } = table;
  return {
    cfg: JSON.parse(JSON.stringify(cfg)) as unknown,
    compiled: describeRules(cfg),
    possibleMethods: table.possibleMethods,
    positions: cfg.rules.map((r, i) => [cfg.locate(i), r.patterns.map((_, j) => cfg.locate(i, j))]),
  };
}

/** The message of a ConfigError, whichever way the file was read. */
async function failure(load: () => unknown): Promise<string> {
  try {
    await load();
  } catch (err) {
    expect((err as Error).name).toBe('ConfigError');
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('routes.yaml read on a worker thread', () => {
  it.each([
    ['the SPEC example', readFileSync('test/fixtures/config/routes-spec.yaml', 'utf8')],
    ['the shipped config/routes.yaml', readFileSync('config/routes.yaml', 'utf8')],
    ['10,000 generated rules (the benchmark\'s)', routesYaml(10_000)],
    ['a file with aliases (read by `yaml`, not js-yaml)', 'rules:\n  - name: a\n    match: POST /a\n    factors: &strong [passkey]\n  - name: b\n    match: POST /b\n    factors: *strong\n'],
    ['an empty rule list', 'rules: []\n'],
  ])('builds the same table as the main thread from %s', async (_name, text) => {
    const file = routesFile(text);
    const offThread = await loadRouteTableOffThread(file);
    expect(Object.isFrozen(offThread.cfg.rules[0] ?? offThread.cfg)).toBe(true);
    expect(summary(offThread)).toEqual(summary(loadRouteTable(file)));
  });

  it.each([
    ['schema problems and a duplicate name', readFileSync('test/fixtures/config/routes-errors.yaml', 'utf8')],
    ['a YAML syntax error', 'rules:\n  - name: "a\n    match: GET /x\n'],
    ['two documents', 'rules: []\n---\nrules: []\n'],
    ['rules that meet without a common factor (a compile error)', 'rules:\n  - name: x\n    match: GET /a\n    factors: [totp]\n  - name: y\n    match: GET /a\n    factors: [passkey]\n'],
  ])('reports %s exactly as the main thread does', async (_name, text) => {
    const file = routesFile(text);
    const expected = await failure(() => loadRouteTable(file));
    expect(expected).toContain(`${file}:`);
    expect(await failure(() => loadRouteTableOffThread(file))).toBe(expected);
  });

  it('reports a file it cannot read', async () => {
    const file = join(dir, 'missing.yaml');
    expect(await failure(() => loadRouteTableOffThread(file))).toMatch(new RegExp(`^${file}: cannot read the file: ENOENT`));
  });
});
