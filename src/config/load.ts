// Loads config/gateway.yaml and config/routes.yaml: YAML → schema → environment overrides
// → frozen config. Every problem is collected with its `file:line:col` and thrown together
// as one ConfigError, so `stepgate check` shows an operator the whole list in one run.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ZodType } from 'zod';
import { load as loadFast } from 'js-yaml';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError, ENV_FILE, type ConfigProblem } from './errors.js';
import {
  child,
  dataDirSchema,
  gatewayCrossChecks,
  gatewayFileSchema,
  hostPortSchema,
  publicOriginSchema,
  routesFileSchema,
  upstreamSchema,
  validate,
  type PathIssue,
} from './schema.js';
import type { GatewayConfig, RoutesConfig, SourcePos } from './types.js';

export { ConfigError, formatProblem, type ConfigProblem } from './errors.js';

/** Where the two files are: STEPGATE_CONFIG / STEPGATE_ROUTES, else `config/*.yaml` under the working directory. */
export function resolveConfigPaths(env: NodeJS.ProcessEnv = process.env): { gatewayFile: string; routesFile: string } {
  return {
    gatewayFile: resolve(process.cwd(), envValue(env, 'STEPGATE_CONFIG') ?? 'config/gateway.yaml'),
    routesFile: resolve(process.cwd(), envValue(env, 'STEPGATE_ROUTES') ?? 'config/routes.yaml'),
  };
}

export function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  return parseGatewayConfig(readConfigFile(file), file, env);
}

export function loadRoutesConfig(file: string): RoutesConfig {
  return parseRoutesConfig(readConfigFile(file), file);
}

export function parseGatewayConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const yaml = parseYaml(text, file);
  const { data } = yaml;
  const problems: ConfigProblem[] = [];
  const report = (issues: PathIssue[]) => problems.push(...issues.map((i) => yaml.problem(i)));
  const reportEnv = (name: string, message: string) =>
    problems.push({ file: ENV_FILE, line: 0, col: 0, message: `${name}: ${message}` });

  const result = validate(gatewayFileSchema, data);
  if (!result.ok) report(result.issues);
  report(gatewayCrossChecks(data));

  // Each override beats the YAML (SPEC §1) and is validated like the key it replaces.
  const override = <T>(name: string, schema: ZodType<T>): T | undefined => {
    const value = envValue(env, name);
    if (value === undefined) return undefined;
    const parsed = validate(schema, value);
    if (parsed.ok) return parsed.value;
    for (const issue of parsed.issues) reportEnv(name, issue.message);
    return undefined;
  };
  const listen = override('STEPGATE_LISTEN', hostPortSchema);
  const dataDir = override('STEPGATE_DATA_DIR', dataDirSchema);
  const upstream = override('STEPGATE_UPSTREAM', upstreamSchema) ?? (result.ok ? result.value.upstream : undefined);
  const publicOrigin =
    override('STEPGATE_PUBLIC_ORIGIN', publicOriginSchema) ?? (result.ok ? result.value.publicOrigin : undefined);
  const isMapDoc = typeof data === 'object' && data !== null && !Array.isArray(data);
  for (const [key, name] of [
    ['upstream', 'STEPGATE_UPSTREAM'],
    ['public_origin', 'STEPGATE_PUBLIC_ORIGIN'],
  ] as const) {
    // A document that is not a map at all has already been reported as such.
    if (isMapDoc && child(data, key) === undefined && envValue(env, name) === undefined) {
      report([{ path: [], at: 'value', message: `missing required key "${key}" (or set ${name})` }]);
    }
  }

  // The PostgreSQL URL carries credentials, so it only ever comes from the environment
  // (SPEC §1) and is never echoed in a message.
  const store = child(data, 'store') ?? 'sqlite';
  const storeUrl = envValue(env, 'STEPGATE_STORE');
  if (store === 'postgres') {
    const needs = (name: string, what: string) =>
      report([{ path: ['store'], at: 'value', message: `store: postgres needs the ${name} environment variable (${what})` }]);
    if (storeUrl === undefined) {
      needs('STEPGATE_STORE', 'the PostgreSQL URL');
    } else if (!/^postgres(ql)?:\/\//i.test(storeUrl)) {
      reportEnv('STEPGATE_STORE', 'is not a postgres:// or postgresql:// URL');
    }
    // Every instance must share the key that encrypts and signs, so it cannot be generated locally.
    if (envValue(env, 'STEPGATE_SECRET') === undefined) {
      needs('STEPGATE_SECRET', 'base64, at least 32 bytes, the same on every instance');
    }
  } else if (store === 'sqlite' && storeUrl !== undefined) {
    // Refused rather than ignored: the operator clearly meant a database this config would not use.
    reportEnv('STEPGATE_STORE', `is set, but ${file} uses store: sqlite (set store: postgres, or unset STEPGATE_STORE)`);
  }

  if (problems.length > 0 || !result.ok || upstream === undefined || publicOrigin === undefined) {
    throw new ConfigError(sortProblems(problems));
  }
  return deepFreeze({
    file,
    ...result.value,
    listen: listen ?? result.value.listen,
    upstream,
    publicOrigin,
    dataDir: dataDir ?? result.value.dataDir,
  });
}

/**
 * routes.yaml may hold thousands of rules and is re-read whenever it changes, while requests wait
 * for nothing but a CPU that also serves them. `yaml` keeps a position for every node (what
 * `file:line:col` messages need) and reads ~0.7 MB, 10,000 rules, in ~800 ms here; js-yaml reads
 * the same in ~80 ms without positions. So a file is read with js-yaml first, and only a file with
 * a problem (or anything js-yaml refuses: aliases, several documents, an empty file) is read
 * again with `yaml`, whose messages are the ones reported. Positions of a file read fast are
 * computed the same slow way on first use: only a rule compile error asks for one.
 * Both parsers read YAML 1.2's core schema: the same text gives the same values
 * (test/unit/config.test.ts compares them over every fixture).
 */
export function parseRoutesConfig(text: string, file: string): RoutesConfig {
  const fast = readRoutesFast(text, file);
  return fast ? routesConfigFromData(fast, text, file) : readRoutesWithPositions(text, file);
}

/** A validated routes.yaml as plain data: what a worker thread can hand back (no functions). */
export type RoutesData = Omit<RoutesConfig, 'file' | 'locate'>;

/** The data of a file js-yaml reads and the schema accepts as it is; null for anything else. */
function readRoutesFast(text: string, file: string): RoutesData | null {
  let data: unknown;
  try {
    // No aliases: `yaml` expands them under an alias-bomb limit, js-yaml would share references.
    data = loadFast(text, { filename: file, maxAliases: 0 });
  } catch {
    return null;
  }
  const result = validate(routesFileSchema, data);
  if (!result.ok) return null;
  const names = new Set(result.value.rules.map((rule) => rule.name));
  if (names.size !== result.value.rules.length) return null; // reported (with both lines) by the slow path
  return result.value;
}

/**
 * parseRoutesConfig without the freezing and the positions, for reading in a worker thread
 * (config/routes-reader.ts); routesConfigFromData turns the result into the same RoutesConfig.
 * Throws ConfigError exactly as parseRoutesConfig does.
 */
export function readRoutesData(text: string, file: string): RoutesData {
  const fast = readRoutesFast(text, file);
  if (fast) return fast;
  // Valid only for `yaml` (aliases, say): its reading is the reference; the positions are dropped
  // here and computed again from the same text if a compile error asks for one.
  const { file: _file, locate: _locate, ...data } = readRoutesWithPositions(text, file);
  return data;
}

/** The RoutesConfig of data read from `text`. */
export function routesConfigFromData(data: RoutesData, text: string, file: string): RoutesConfig {
  // Positions are asked for only by a compile error: the file is then read again the slow way.
  // (A position per rule, even a lazy getter, was a quarter of a 10,000-rule reload.)
  let located: RoutesConfig | null = null;
  const locate = (rule: number, pattern?: number): SourcePos => (located ??= readRoutesWithPositions(text, file)).locate(rule, pattern);
  return deepFreeze({ file, ...data, locate });
}

/** The reference reading (yaml, with every position): what parseRoutesConfig must agree with. */
export function readRoutesWithPositions(text: string, file: string): RoutesConfig {
  const yaml = parseYaml(text, file);
  const { data } = yaml;
  const problems: ConfigProblem[] = [];

  const result = validate(routesFileSchema, data);
  if (!result.ok) problems.push(...result.issues.map((i) => yaml.problem(i)));

  // Names identify rules in headers, answers and the audit log, so they must be unique.
  // Checked on the raw YAML so a duplicate is reported alongside any other problem.
  const rawRules = child(data, 'rules');
  const firstIndex = new Map<string, number>();
  (Array.isArray(rawRules) ? rawRules : []).forEach((rule, index) => {
    const raw = child(rule, 'name');
    if (typeof raw !== 'string' && typeof raw !== 'number') return;
    const name = String(raw);
    const first = firstIndex.get(name);
    if (first === undefined) {
      firstIndex.set(name, index);
      return;
    }
    const firstLine = yaml.pos(['rules', first, 'name'], 'value').line;
    problems.push(
      yaml.problem({
        path: ['rules', index, 'name'],
        at: 'value',
        message: `name: duplicate rule name "${name}" (first used on line ${firstLine})`,
      }),
    );
  });

  if (problems.length > 0 || !result.ok) throw new ConfigError(sortProblems(problems));
  const { rules } = result.value;
  const rulePos = rules.map((_, index) => yaml.pos(['rules', index], 'value'));
  const patternPos = rules.map((rule, index) => {
    const matchIsList = Array.isArray(child(data, 'rules', index, 'match'));
    return rule.patterns.map((_, j) => yaml.pos(matchIsList ? ['rules', index, 'match', j] : ['rules', index, 'match'], 'value'));
  });
  const unknown: SourcePos = { file, line: 1, col: 1 };
  const locate = (rule: number, pattern?: number): SourcePos => (pattern === undefined ? rulePos[rule] : patternPos[rule]?.[pattern]) ?? unknown;
  return deepFreeze({ file, ...result.value, locate });
}

// ---------------------------------------------------------------------------

/** Unset and empty are the same: container tooling often passes `VAR=` for "not configured". */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 0, col: 0, message: `cannot read the file: ${(err as Error).message}` }]);
  }
}

interface ParsedYaml {
  /** Plain JS value of the document; `{}` for an empty file, so only the required keys are reported. */
  data: unknown;
  pos(path: readonly PropertyKey[], at: PathIssue['at']): SourcePos;
  problem(issue: PathIssue): ConfigProblem;
}

/** Parses YAML keeping positions; a syntax error stops here, as validating a half-read file only adds noise. */
function parseYaml(text: string, file: string): ParsedYaml {
  const lineCounter = new LineCounter();
  // prettyErrors off: the position is reported in our own `file:line:col` form instead.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): SourcePos => ({ file, ...lineCounter.linePos(offset) });

  // Warnings count too: an unresolved tag (`!!foo`) would otherwise be read as a plain string.
  const syntax = [...doc.errors, ...doc.warnings].map((e) => ({
    ...at(e.pos[0]),
    // yaml's own wording for this one addresses programmers (it names an API).
    message: `invalid YAML: ${e.code === 'MULTIPLE_DOCS' ? 'only one document is allowed (remove the second ---)' : e.message}`,
  }));
  let data: unknown;
  if (syntax.length === 0) {
    try {
      // toJS resolves aliases and refuses alias bombs (maxAliasCount).
      data = doc.toJS() ?? {};
    } catch (err) {
      syntax.push({ ...at(0), message: `invalid YAML: ${(err as Error).message}` });
    }
  }
  if (syntax.length > 0) throw new ConfigError(sortProblems(syntax));

  const pos = (path: readonly PropertyKey[], where: PathIssue['at']): SourcePos => {
    const node = nodeAt(doc, path, where);
    return node?.range ? at(node.range[0]) : { file, line: 1, col: 1 };
  };
  return {
    data,
    pos,
    problem: (issue) => ({ ...pos(issue.path, issue.at), message: issue.message }),
  };
}

/**
 * The YAML node a path points at: the value, or with `at: 'key'` the key of the last
 * element (an unknown key is shown where it is written). When the path leaves the
 * document (a missing key) the deepest node that exists is returned, i.e. the map the
 * key is missing from. An alias (`*name`) is not followed: a problem in reused content
 * is shown where it is reused (two rules sharing an anchor would otherwise point at the same line).
 */
function nodeAt(doc: Document.Parsed, path: readonly PropertyKey[], at: PathIssue['at']): YamlNode | null {
  let node: YamlNode | null = doc.contents;
  for (const [i, seg] of path.entries()) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair && at === 'key' && i === path.length - 1 && isNode(pair.key)) return pair.key;
      next = pair?.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (!isNode(next)) break;
    node = next;
  }
  return node;
}

/** By position; problems without one (environment variables) first. Stable, so equal positions keep their order. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Config is read by every request handler; freezing makes an accidental write throw instead of leak. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    // By index for lists (10,000 rules): `for…in` would make a string of every index.
    if (Array.isArray(value)) for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
    else for (const key in value) deepFreeze(value[key]);
  }
  return value;
}
