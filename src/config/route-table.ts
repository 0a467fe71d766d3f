// routes.yaml → the table the pipeline uses: parsed and validated, then compiled. Problems from
// either stage come out together as one ConfigError with `file:line:col` positions, so `check`,
// start-up and reload all report a broken file the same way.
import type { RouteTable } from '../context.js';
import { compileRules, RuleCompileErrors } from '../rules/match.js';
import { ConfigError } from './errors.js';
import { loadRoutesConfig } from './load.js';
import { readRoutesOffThread } from './routes-reader.js';
import type { RoutesConfig } from './types.js';

export function buildRouteTable(cfg: RoutesConfig): RouteTable {
  let rules;
  try {
    rules = compileRules(cfg);
  } catch (err) {
    if (err instanceof RuleCompileErrors) {
      throw new ConfigError(err.errors.map((e) => ({ file: e.pos.file, line: e.pos.line, col: e.pos.col, message: e.message })));
    }
    throw err;
  }
  // `*` patterns already match the POST itself; named methods are what a hidden `_method` could add.
  const methods = new Set<string>(['POST']);
  for (const rule of cfg.rules) for (const p of rule.patterns) if (p.methods !== '*') for (const m of p.methods) methods.add(m);
  return { cfg, rules, possibleMethods: [...methods] };
}

export function loadRouteTable(file: string): RouteTable {
  return buildRouteTable(loadRoutesConfig(file));
}

/** loadRouteTable for a running gateway: only the compile runs on the main thread (config/routes-reader.ts). */
export async function loadRouteTableOffThread(file: string): Promise<RouteTable> {
  return buildRouteTable(await readRoutesOffThread(file));
}
