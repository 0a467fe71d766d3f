// SPEC §3 `when` conditions: gate RPC-style requests by a parameter (`action=delete`) or a JSON
// body field (`{"method":"account.delete"}`). The rule matches when any listed name has any
// occurrence with a listed value. A body the gate cannot read with certainty counts as matching
// (fail closed): what the gate cannot see, the app might.
import type { RuleConfig, ValuePattern, WhenCondition } from '../config/types.js';
import type { CompiledRules, RuleMatch } from './match.js';
import { formParams, type BodyParams, type InspectedBody } from '../proxy/body.js';
import { normaliseParamName } from './param-name.js';

const MAX_JSON_DEPTH = 64;

/** What a request offers to conditions, parsed lazily and at most once per request. */
export class ConditionInput {
  private queryCache: Array<[string, string]> | null = null;
  private bodyCache: Promise<InspectedBody | null> | null = null;
  private formCache: Promise<BodyParams> | null = null;
  private jsonCache: Promise<JsonBody> | null = null;

  constructor(
    private readonly rawQuery: string,
    private readonly contentType: string | undefined,
    /** Reads the body (null: the request has none); called only when a condition needs it. */
    private readonly loadBody: () => Promise<InspectedBody | null>,
  ) {}

  body(): Promise<InspectedBody | null> {
    return (this.bodyCache ??= this.loadBody());
  }

  query(): Array<[string, string]> {
    // WHATWG urlencoded parsing: the same decoding (`+`, percent-escapes) a form parser applies.
    return (this.queryCache ??= this.rawQuery.length > 1 ? [...new URLSearchParams(this.rawQuery.slice(1))] : []);
  }

  form(): Promise<BodyParams> {
    return (this.formCache ??= this.body().then((b) => (b ? formParams(b.bytes, this.contentType) : { kind: 'empty' })));
  }

  json(): Promise<JsonBody> {
    return (this.jsonCache ??= this.body().then((b) => readJson(b, this.contentType)));
  }
}

type JsonBody = { kind: 'empty' } | { kind: 'value'; value: unknown } | { kind: 'uninspectable'; why: string };

function readJson(body: InspectedBody | null, contentType: string | undefined): JsonBody {
  if (!body || (body.failure === null && body.bytes.length === 0)) return { kind: 'empty' };
  if (body.failure) return { kind: 'uninspectable', why: `body ${body.failure}` };
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) return { kind: 'uninspectable', why: `body is ${type || 'untyped'}, not JSON` };
  const text = body.bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'uninspectable', why: 'body is not valid JSON' };
  }
  // Parsers disagree on duplicate keys (first or last wins) and on deep nesting: the gate cannot
  // know which the app sees.
  const problem = ambiguousJson(text);
  return problem ? { kind: 'uninspectable', why: problem } : { kind: 'value', value };
}

/** Duplicate keys in one object, or nesting deeper than 64, in already-valid JSON text. */
export function ambiguousJson(text: string): string | null {
  const stack: Array<Set<string> | null> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') {
      stack.push(c === '{' ? new Set() : null);
      if (stack.length > MAX_JSON_DEPTH) return `JSON nested deeper than ${MAX_JSON_DEPTH}`;
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const keys = stack[stack.length - 1];
      if (keys) {
        let k = j + 1;
        while (text[k] === ' ' || text[k] === '\n' || text[k] === '\r' || text[k] === '\t') k++;
        if (text[k] === ':') {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (keys.has(key)) return `duplicate JSON key ${JSON.stringify(key)}`;
          keys.add(key);
        }
      }
      i = j;
    }
  }
  return null;
}

export function valueMatches(value: string, patterns: readonly ValuePattern[]): boolean {
  const v = value.toLowerCase();
  return patterns.some((p) => (p.prefix ? v.startsWith(p.value) : v === p.value));
}

/** Values at an RFC 6901 pointer; an array found there counts element by element. */
function valuesAt(root: unknown, tokens: readonly string[]): string[] {
  let cur: unknown = root;
  for (const token of tokens) {
    if (Array.isArray(cur) && /^(0|[1-9]\d*)$/.test(token)) cur = cur[Number(token)];
    else if (cur !== null && typeof cur === 'object' && !Array.isArray(cur) && Object.hasOwn(cur, token)) cur = (cur as Record<string, unknown>)[token];
    else return [];
  }
  const leaves = Array.isArray(cur) ? cur : [cur];
  return leaves.filter((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean').map(String);
}

/** Why the condition matched (for logs and `stepgate explain`), or null when it did not. */
export async function conditionMatch(cond: WhenCondition, input: ConditionInput): Promise<string | null> {
  for (const { name, values } of cond.param) {
    for (const [n, v] of input.query()) {
      if (normaliseParamName(n) === name && valueMatches(v, values)) return `query parameter ${name}=${v}`;
    }
  }
  const body = await input.body();
  if (cond.param.length > 0 && body) {
    if (body.failure) return `body ${body.failure} (cannot be inspected)`;
    const form = await input.form();
    if (form.kind === 'uninspectable') return 'body is neither urlencoded nor multipart (cannot be inspected)';
    if (form.kind === 'params') {
      for (const { name, values } of cond.param) {
        for (const [n, v] of form.params) if (normaliseParamName(n) === name && valueMatches(v, values)) return `body parameter ${name}=${v}`;
      }
    }
  }
  if (cond.json.length > 0) {
    const json = await input.json();
    if (json.kind === 'uninspectable') return `${json.why} (cannot be inspected)`;
    if (json.kind === 'value') {
      // A root array is a JSON-RPC batch: each element is a call of its own.
      const roots = Array.isArray(json.value) ? json.value : [json.value];
      for (const { pointer, tokens, values } of cond.json) {
        for (const root of roots) for (const v of valuesAt(root, tokens)) if (valueMatches(v, values)) return `JSON ${pointer} = ${v}`;
      }
    }
  }
  return null;
}

/**
 * The match again, without the conditional rules whose condition does not hold for this request.
 * `report` hears each condition's verdict (`stepgate explain` prints them).
 */
export async function matchWithConditions(
  rules: CompiledRules,
  methods: readonly string[],
  paths: readonly string[],
  match: RuleMatch,
  input: ConditionInput,
  report?: (rule: RuleConfig, why: string | null) => void,
): Promise<RuleMatch | null> {
  if (!match.rules.some((r) => r.when)) return match;
  const satisfied = new Set<RuleConfig>();
  for (const rule of match.rules) {
    if (!rule.when) continue;
    const why = await conditionMatch(rule.when, input);
    report?.(rule, why);
    if (why !== null) satisfied.add(rule);
  }
  return rules.match(methods, paths, (rule) => !rule.when || satisfied.has(rule));
}
