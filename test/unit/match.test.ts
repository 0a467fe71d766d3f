import { describe, expect, it } from 'vitest';
import type { FactorType, RoutesConfig, RuleConfig } from '../../src/config/types.js';
import { ALL_FACTORS } from '../../src/config/types.js';
import {
  compileRules,
  describeRules,
  RuleCompileErrors,
  type CompiledRules,
} from '../../src/rules/match.js';

const MIN = 60_000;

interface RuleOpts {
  maxAgeMs?: number;
  factors?: readonly FactorType[];
  once?: boolean;
  anonymous?: 'allow' | 'deny';
}

/** A rule from `METHODS PATH` strings; index and positions are filled in by `routes`. */
function rule(name: string, patterns: string[], opts: RuleOpts = {}): RuleConfig {
  return {
    name,
    index: -1,
    patterns: patterns.map((text) => {
      const m = /^(\S+) +(\S+)$/.exec(text);
      if (m === null) throw new Error(`bad test pattern ${text}`);
      const methods = m[1]!;
      return { methods: methods === '*' ? '*' : methods.split('|'), path: m[2]!, text };
    }),
    maxAgeMs: opts.maxAgeMs ?? 10 * MIN,
    factors: opts.factors ?? ALL_FACTORS,
    once: opts.once ?? false,
    anonymous: opts.anonymous ?? 'deny',
  };
}

/** Rule i sits at line 10*i+1, its pattern j at line 10*i+2+j, as if each rule took ten lines. */
function routes(rules: RuleConfig[], opts: Partial<Pick<RoutesConfig, 'caseSensitive' | 'encodedSlashes'>> = {}): RoutesConfig {
  return {
    file: 'routes.yaml',
    caseSensitive: opts.caseSensitive ?? false,
    encodedSlashes: opts.encodedSlashes ?? 'reject',
    defaults: { maxAgeMs: 10 * MIN, factors: ALL_FACTORS },
    rules: rules.map((r, i) => ({ ...r, index: i })),
    locate: (i, j) => (j === undefined ? { file: 'routes.yaml', line: 10 * i + 1, col: 5 } : { file: 'routes.yaml', line: 10 * i + 2 + j, col: 9 }),
  };
}

/** The example of SPEC §3. */
const SPEC_RULES = [
  rule('billing', ['PATCH /internal/org/:key/billing', 'POST  /internal/org/:key/billing/*'], { maxAgeMs: 5 * MIN }),
  rule('device-trust', ['PATCH  /portal/security/devices/:id/trust', 'DELETE /portal/security/devices/:id'], {
    factors: ['passkey'],
  }),
  rule('invites', ['POST /portal/org/users/invite', 'POST /portal/org/users/invite/*']),
  rule('close-account', ['DELETE /me'], { once: true }),
  rule('whole-app-2fa', ['* /*'], { maxAgeMs: 12 * 60 * MIN, anonymous: 'allow' }),
];

/** `METHOD PATH` (methods `|`-separated as interpretations) → the match's summary, or null. */
function ask(compiled: CompiledRules, request: string, ...morePaths: string[]) {
  const [methods, path] = request.split(' ') as [string, string];
  const m = compiled.match(methods.split('|'), [path, ...morePaths]);
  return m === null
    ? null
    : { name: m.name, maxAgeMs: m.maxAgeMs, factors: m.factors, once: m.once, anonymousAllowed: m.anonymousAllowed };
}

function names(compiled: CompiledRules, request: string, ...morePaths: string[]): string | null {
  return ask(compiled, request, ...morePaths)?.name ?? null;
}

describe('the SPEC §3 example', () => {
  const compiled = compileRules(routes(SPEC_RULES));
  const all = ['passkey', 'totp', 'recovery'];
  const wholeApp = { name: 'whole-app-2fa', maxAgeMs: 720 * MIN, factors: all, once: false, anonymousAllowed: true };

  it.each([
    ['PATCH /internal/org/acme/billing', { name: 'billing,whole-app-2fa', maxAgeMs: 5 * MIN, factors: all, once: false, anonymousAllowed: false }],
    ['POST /internal/org/acme/billing', { name: 'billing,whole-app-2fa', maxAgeMs: 5 * MIN, factors: all, once: false, anonymousAllowed: false }],
    ['POST /internal/org/acme/billing/plan/upgrade', { name: 'billing,whole-app-2fa', maxAgeMs: 5 * MIN, factors: all, once: false, anonymousAllowed: false }],
    ['GET /internal/org/acme/billing', wholeApp],
    ['PATCH /internal/org/acme/billing/x', wholeApp],
    ['PATCH /internal/org/billing', wholeApp],
    ['PATCH /internal/org/a/b/billing', wholeApp],
    ['PATCH /portal/security/devices/d1/trust', { name: 'device-trust,whole-app-2fa', maxAgeMs: 10 * MIN, factors: ['passkey'], once: false, anonymousAllowed: false }],
    ['DELETE /portal/security/devices/d1', { name: 'device-trust,whole-app-2fa', maxAgeMs: 10 * MIN, factors: ['passkey'], once: false, anonymousAllowed: false }],
    ['DELETE /portal/security/devices/d1/trust', wholeApp],
    ['DELETE /portal/security/devices', wholeApp],
    ['GET /portal/security/devices/d1', wholeApp],
    ['POST /portal/org/users/invite', { name: 'invites,whole-app-2fa', maxAgeMs: 10 * MIN, factors: all, once: false, anonymousAllowed: false }],
    ['POST /portal/org/users/invite/bulk/csv', { name: 'invites,whole-app-2fa', maxAgeMs: 10 * MIN, factors: all, once: false, anonymousAllowed: false }],
    ['POST /portal/org/users/invitee', wholeApp],
    ['PUT /portal/org/users/invite', wholeApp],
    ['DELETE /me', { name: 'close-account,whole-app-2fa', maxAgeMs: 10 * MIN, factors: all, once: true, anonymousAllowed: false }],
    ['GET /me', wholeApp],
    ['DELETE /me/photo', wholeApp],
    ['GET /', wholeApp],
    ['HEAD|GET /login', wholeApp],
    // Several interpretations: each rule any of them matches joins in, in file order.
    ['POST|DELETE /me', { name: 'close-account,whole-app-2fa', maxAgeMs: 10 * MIN, factors: all, once: true, anonymousAllowed: false }],
    ['DELETE|PATCH /portal/security/devices/d1', { name: 'device-trust,whole-app-2fa', maxAgeMs: 10 * MIN, factors: ['passkey'], once: false, anonymousAllowed: false }],
    ['OPTIONS /me', null],
    ['OPTIONS /internal/org/acme/billing', null],
    ['OPTIONS|DELETE /me', { name: 'close-account,whole-app-2fa', maxAgeMs: 10 * MIN, factors: all, once: true, anonymousAllowed: false }],
    // Matching is case-insensitive by default, and methods compare upper-case.
    ['PATCH /Internal/ORG/Acme/Billing', { name: 'billing,whole-app-2fa', maxAgeMs: 5 * MIN, factors: all, once: false, anonymousAllowed: false }],
    ['delete /ME', { name: 'close-account,whole-app-2fa', maxAgeMs: 10 * MIN, factors: all, once: true, anonymousAllowed: false }],
  ])('%s', (request, expected) => {
    expect(ask(compiled, request)).toEqual(expected);
  });

  it('matches a rule on any of several path readings', () => {
    // `%2F` read as data keeps one segment for `:key`; read as a separator it does not.
    expect(names(compiled, 'PATCH /internal/org/a%2Fb/billing', '/internal/org/a/b/billing')).toBe('billing,whole-app-2fa');
    expect(names(compiled, 'DELETE /portal/security/devices%2Fd1', '/portal/security/devices/d1')).toBe('device-trust,whole-app-2fa');
    expect(names(compiled, 'DELETE /x', '/me')).toBe('close-account,whole-app-2fa');
  });

  it('lists every matched rule once, in file order', () => {
    const m = compiled.match(['DELETE', 'PATCH'], ['/portal/security/devices/d1', '/portal/security/devices/d1/trust']);
    expect(m?.rules.map((r) => r.name)).toEqual(['device-trust', 'whole-app-2fa']);
    expect(m?.rules.map((r) => r.index)).toEqual([1, 4]);
    expect(compiled.ruleCount).toBe(5);
  });

  it('returns the same answer to the same question (re-entrant, nothing shared is mutated)', () => {
    expect(compiled.match(['GET'], ['/a'])).toEqual(compiled.match(['GET'], ['/a']));
    const first = compiled.match(['DELETE'], ['/me']);
    expect(compiled.match(['DELETE'], ['/me'])).toEqual(first);
    expect(Object.isFrozen(compiled.match(['GET'], ['/a']))).toBe(true);
  });
});

describe('path patterns', () => {
  const compiled = compileRules(
    routes([
      rule('param', ['GET /users/:id']),
      rule('param-mid', ['GET /org/:org/team/:team/edit']),
      rule('star', ['GET /files/*']),
      rule('root', ['GET /']),
      rule('trailing', ['GET /settings/']),
      rule('trailing-star', ['GET /docs/*/']),
      rule('literal-over-param', ['GET /users/me']),
    ]),
  );

  it.each([
    ['GET /users/42', 'param'],
    ['GET /users/me', 'param,literal-over-param'],
    ['GET /users', null],
    ['GET /users/42/posts', null],
    ['GET /org/a/team/b/edit', 'param-mid'],
    ['GET /org/a/team/edit', null],
    ['GET /org/a/x/team/b/edit', null],
    ['GET /files', 'star'],
    ['GET /files/a', 'star'],
    ['GET /files/a/b/c', 'star'],
    ['GET /filesx', null],
    ['GET /', 'root'],
    ['GET /x', null],
    ['GET /settings', 'trailing'],
    ['GET /settings/x', null],
    ['GET /docs', 'trailing-star'],
    ['GET /docs/a/b', 'trailing-star'],
  ])('%s → %s', (request, expected) => {
    expect(names(compiled, request)).toBe(expected);
  });

  it('treats a trailing slash on the request as insignificant too', () => {
    expect(names(compiled, 'GET /settings/')).toBe('trailing');
    expect(names(compiled, 'GET /files/')).toBe('star');
  });
});

describe('methods', () => {
  const compiled = compileRules(
    routes([
      rule('list', ['GET|POST /a']),
      rule('any', ['* /b']),
      rule('preflight', ['OPTIONS /c']),
      rule('odd', ['PROPFIND /d']),
    ]),
  );

  it.each([
    ['GET /a', 'list'],
    ['POST /a', 'list'],
    ['PUT /a', null],
    ['GET /b', 'any'],
    ['PATCH /b', 'any'],
    ['PROPFIND /b', 'any'],
    ['OPTIONS /b', null],
    ['OPTIONS /c', 'preflight'],
    ['GET /c', null],
    ['PROPFIND /d', 'odd'],
    ['propfind /d', 'odd'],
  ])('%s → %s', (request, expected) => {
    expect(names(compiled, request)).toBe(expected);
  });

  it('matches nothing without a method or a path', () => {
    expect(compiled.match([], ['/a'])).toBeNull();
    expect(compiled.match(['GET'], [])).toBeNull();
  });
});

describe('case sensitivity', () => {
  const rules = [rule('admin', ['POST /Admin/Users/:id']), rule('wiki', ['POST /wiki/Special:Block'])];
  const insensitive = compileRules(routes(rules));
  const sensitive = compileRules(routes(rules, { caseSensitive: true }));

  it.each([
    ['POST /Admin/Users/7', 'admin', 'admin'],
    ['POST /admin/users/7', 'admin', null],
    ['POST /ADMIN/USERS/7', 'admin', null],
    ['POST /wiki/special:block', 'wiki', null],
    ['POST /wiki/Special:Block', 'wiki', 'wiki'],
  ])('%s → insensitive %s, sensitive %s', (request, expectInsensitive, expectSensitive) => {
    expect(names(insensitive, request)).toBe(expectInsensitive);
    expect(names(sensitive, request)).toBe(expectSensitive);
  });
});

describe('percent-encoded literals are normalised like canonical paths', () => {
  const rules = [
    rule('cafe', ['GET /Café']),
    rule('lower-hex', ['GET /caf%c3%a9/menu']),
    rule('unreserved', ['GET /%7Euser/%41bc']),
    rule('kept', ['GET /a%40b']),
    rule('braces', ['GET /x{y}']),
    rule('emoji', ['GET /🙂']),
    rule('star', ['GET /p%2Aq']),
  ];
  const insensitive = compileRules(routes(rules));
  const sensitive = compileRules(routes(rules, { caseSensitive: true }));

  it.each([
    ['GET /Caf%C3%A9', 'cafe', 'cafe'],
    ['GET /caf%C3%A9', 'cafe', null],
    ['GET /CAF%C3%A9', 'cafe', null],
    ['GET /caf%C3%A9/menu', 'lower-hex', 'lower-hex'],
    ['GET /CAF%C3%A9/MENU', 'lower-hex', null],
    ['GET /~user/Abc', 'unreserved', 'unreserved'],
    ['GET /a%40b', 'kept', 'kept'],
    ['GET /x%7By%7D', 'braces', 'braces'],
    ['GET /%F0%9F%99%82', 'emoji', 'emoji'],
    ['GET /p%2Aq', 'star', 'star'],
  ])('%s → insensitive %s, sensitive %s', (request, expectInsensitive, expectSensitive) => {
    expect(names(insensitive, request)).toBe(expectInsensitive);
    expect(names(sensitive, request)).toBe(expectSensitive);
  });

  it('keeps %2F inside a segment with encoded_slashes: keep', () => {
    const compiled = compileRules(routes([rule('scoped', ['PUT /@scope%2fname'])], { encodedSlashes: 'keep' }));
    expect(names(compiled, 'PUT /@scope%2Fname')).toBe('scoped');
    expect(names(compiled, 'PUT /@scope/name')).toBeNull();
  });
});

describe('matchesPathForOtherMethod', () => {
  const compiled = compileRules(routes(SPEC_RULES));

  it.each([
    // DELETE /me is close-account: a POST there with `_method=DELETE` is worth reading.
    ['POST', '/me', true],
    ['POST', '/portal/security/devices/d1', true],
    ['POST', '/portal/security/devices/d1/trust', true],
    // billing already matches POST on its own path (the `*` matches none), whole-app-2fa any method.
    ['POST', '/internal/org/acme/billing', false],
    ['POST', '/portal/org/users/invite', false],
    ['POST', '/somewhere/else', false],
    ['DELETE', '/me', false],
    ['POST', '/internal/org/acme/billing/x', false],
    // For OPTIONS, `*` covers other methods.
    ['OPTIONS', '/anything', true],
  ])('%s %s → %s', (method, path, expected) => {
    expect(compiled.matchesPathForOtherMethod(method, [path])).toBe(expected);
  });

  it('answers on any path reading and for lists and `*` without a catch-all', () => {
    const narrow = compileRules(routes([rule('list', ['PUT|PATCH /a']), rule('any', ['* /b']), rule('post', ['POST /c'])]));
    expect(narrow.matchesPathForOtherMethod('POST', ['/x', '/a'])).toBe(true);
    expect(narrow.matchesPathForOtherMethod('PUT', ['/a'])).toBe(false);
    expect(narrow.matchesPathForOtherMethod('POST', ['/b'])).toBe(false);
    expect(narrow.matchesPathForOtherMethod('POST', ['/c'])).toBe(false);
    expect(narrow.matchesPathForOtherMethod('GET', ['/c'])).toBe(true);
    expect(narrow.matchesPathForOtherMethod('POST', ['/nothing'])).toBe(false);
  });
});

function compileErrors(config: RoutesConfig): [number, string][] {
  try {
    compileRules(config);
  } catch (e) {
    expect(e).toBeInstanceOf(RuleCompileErrors);
    return (e as RuleCompileErrors).errors.map((err) => [err.pos.line, err.message]);
  }
  throw new Error('expected compile errors');
}

describe('compile errors', () => {
  it('reports every malformed pattern at its position, all at once', () => {
    const errors = compileErrors(
      routes([
        rule('bad-paths', [
          'GET a/b',
          'GET /a/*/b',
          'GET /a*',
          'GET /:',
          'GET /:id/x/:id',
          'GET /a;b',
          'GET /a%ZZ',
          'GET /a%C3',
          'GET /a%00',
        ]),
        rule('more', ['GET /a%5C', 'GET /a\\b', 'GET /a//b', 'GET /a%2Fb', 'GET|* /x', 'G(T /y', 'GET /:id.json']),
      ]),
    );
    expect(errors).toEqual([
      [2, 'pattern path "a/b" must start with "/"'],
      [3, 'pattern path "/a/*/b": "*" is only allowed as the last segment'],
      [4, 'pattern path "/a*": "*" must be a whole segment (write %2A for a literal "*")'],
      [5, 'pattern path "/:": ":" needs a parameter name'],
      [6, 'pattern path "/:id/x/:id": parameter ":id" is used twice'],
      [7, 'pattern path "/a;b": "a;b": ";" parameters are stripped before matching; write %3B for a literal ";"'],
      [8, 'pattern path "/a%ZZ": "a%ZZ" has an invalid percent-escape'],
      [9, 'pattern path "/a%C3": "a%C3" percent-encodes invalid UTF-8, which the gateway refuses in requests'],
      [10, 'pattern path "/a%00": "a%00" contains a control character, which the gateway refuses in requests'],
      [12, 'pattern path "/a%5C": "a%5C" contains an encoded backslash (%5C), which the gateway refuses in requests'],
      [13, 'pattern path "/a\\b": "a\\b" contains "\\", which never reaches path matching'],
      [14, 'pattern path "/a//b": empty segment, which a canonical path never has'],
      [15, 'pattern path "/a%2Fb": "a%2Fb" contains an encoded slash (%2F), which the gateway refuses with encoded_slashes: reject'],
      [16, 'pattern "GET|* /x": `*` stands for every method and cannot be combined with method names'],
      [17, 'pattern "G(T /y": "G(T" is not a valid HTTP method name'],
      [18, 'pattern path "/:id.json": parameter ":id.json" must be a whole segment named with letters, digits, "_" or "-"'],
    ]);
  });

  it('rejects rules that can match the same request but accept no common factor, at the later rule', () => {
    const errors = compileErrors(
      routes([
        rule('keys', ['DELETE /keys/:id'], { factors: ['passkey'] }),
        rule('whole-app', ['* /*']),
        rule('keys-totp', ['GET /other', 'DELETE|PUT /keys/*'], { factors: ['totp'] }),
        rule('keys-shared', ['DELETE /keys/:id'], { factors: ['passkey', 'totp'] }),
        rule('admin', ['* /admin/*'], { factors: ['recovery'] }),
        rule('admin-read', ['GET /admin/users'], { factors: ['passkey'] }),
        rule('admin-preflight', ['OPTIONS /admin/x'], { factors: ['passkey'] }),
        rule('locks', ['DELETE /locks/:id'], { factors: ['totp'] }),
        rule('keys-read', ['GET /keys/:id'], { factors: ['totp'] }),
        rule('totp-everywhere', ['GET|DELETE /*'], { factors: ['totp'] }),
      ]),
    );
    expect(errors).toEqual([
      [
        23,
        'rules "keys" (line 1) and "keys-totp" can match the same request ("DELETE /keys/:id" and "DELETE|PUT /keys/*") ' +
          'but accept no common factor (passkey vs totp)',
      ],
      [
        52,
        'rules "admin" (line 41) and "admin-read" can match the same request ("* /admin/*" and "GET /admin/users") ' +
          'but accept no common factor (recovery vs passkey)',
      ],
      [
        92,
        'rules "keys" (line 1) and "totp-everywhere" can match the same request ("DELETE /keys/:id" and "GET|DELETE /*") ' +
          'but accept no common factor (passkey vs totp)',
      ],
      [
        92,
        'rules "admin" (line 41) and "totp-everywhere" can match the same request ("* /admin/*" and "GET|DELETE /*") ' +
          'but accept no common factor (recovery vs totp)',
      ],
      [
        92,
        'rules "admin-read" (line 51) and "totp-everywhere" can match the same request ("GET /admin/users" and "GET|DELETE /*") ' +
          'but accept no common factor (passkey vs totp)',
      ],
    ]);
  });

  it('accepts disjoint factor sets on rules that never match the same request', () => {
    const config = routes([
      rule('a', ['GET /x/:id'], { factors: ['passkey'] }),
      rule('b', ['POST /x/:id', 'GET /x/:id/more', 'GET /x'], { factors: ['totp'] }),
      rule('c', ['* /y/*'], { factors: ['recovery'] }),
      rule('d', ['OPTIONS /y/z'], { factors: ['passkey'] }),
      rule('e', ['GET /Z'], { factors: ['passkey'] }),
      rule('f', ['GET /zz'], { factors: ['totp'] }),
    ]);
    expect(() => compileRules(config)).not.toThrow();
  });

  it('compares overlapping literals case-insensitively unless case_sensitive', () => {
    const rules = [rule('upper', ['GET /Admin'], { factors: ['passkey'] }), rule('lower', ['GET /admin'], { factors: ['totp'] })];
    expect(compileErrors(routes(rules))).toHaveLength(1);
    expect(() => compileRules(routes(rules, { caseSensitive: true }))).not.toThrow();
  });

  it('rejects a rule accepting no factor, and formats every problem as file:line:col', () => {
    try {
      compileRules(
        routes([
          rule('none', ['GET /n'], { factors: [] }),
          rule('bad', ['GET n']),
          // Meeting the factor-less rule is not reported again.
          rule('n-totp', ['GET /n'], { factors: ['totp'] }),
        ]),
      );
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toBe(
        'routes.yaml:1:5: rule "none" accepts no factor\nroutes.yaml:12:9: pattern path "n" must start with "/"',
      );
    }
  });
});

describe('scaling', () => {
  const N = 10_000;
  // Ten thousand distinct ordinary rules, every hundredth restricted to TOTP, plus one catch-all
  // accepting passkey or TOTP: all must compile (no false overlap errors) and match exactly.
  const many = routes([
    ...Array.from({ length: N }, (_, i) =>
      rule(`r${i}`, [`POST|PUT /tenants/t${i}/items/:id`, `DELETE /tenants/t${i}/*`], {
        maxAgeMs: (i + 1) * 1000,
        ...(i % 100 === 0 ? { factors: ['totp'] as const } : {}),
      }),
    ),
    rule('catch-all', ['* /*'], { factors: ['passkey', 'totp'], maxAgeMs: 3_600_000, anonymous: 'allow' }),
  ]);
  const compiled = compileRules(many);

  it('matches exactly the right rule among 10,000', () => {
    expect(compiled.ruleCount).toBe(N + 1);
    for (const i of [0, 1, 99, 100, 4_321, 9_998, 9_999]) {
      const m = compiled.match(['PUT'], [`/tenants/t${i}/items/x`]);
      expect(m?.name).toBe(`r${i},catch-all`);
      expect(m?.maxAgeMs).toBe(Math.min((i + 1) * 1000, 3_600_000));
      expect(m?.factors).toEqual(i % 100 === 0 ? ['totp'] : ['passkey', 'totp']);
      expect(m?.anonymousAllowed).toBe(false);
      expect(compiled.match(['DELETE'], [`/tenants/t${i}`])?.name).toBe(`r${i},catch-all`);
      expect(compiled.match(['GET'], [`/tenants/t${i}/items/x`])?.name).toBe('catch-all');
    }
    expect(compiled.match(['PUT'], ['/tenants/t10000/items/x'])?.name).toBe('catch-all');
    expect(compiled.match(['OPTIONS'], ['/tenants/t5/items/x'])).toBeNull();
  });

  it('finds one conflicting rule among 10,000', () => {
    const conflicting = routes([...many.rules, rule('passkey-only', ['DELETE /tenants/t4200/keys'], { factors: ['passkey'] })]);
    expect(compileErrors(conflicting)).toEqual([
      [
        10 * (N + 1) + 2,
        'rules "r4200" (line 42001) and "passkey-only" can match the same request ("DELETE /tenants/t4200/*" and ' +
          '"DELETE /tenants/t4200/keys") but accept no common factor (totp vs passkey)',
      ],
    ]);
  });
});

describe('describeRules', () => {
  it('prints one aligned line per pattern', () => {
    expect(describeRules(routes(SPEC_RULES))).toBe(
      [
        'RULE           METHODS  PATH                                MAX_AGE  FACTORS                ONCE  ANONYMOUS  WHEN',
        'billing        PATCH    /internal/org/:key/billing          5m       passkey,totp,recovery  no    deny       -',
        'billing        POST     /internal/org/:key/billing/*        5m       passkey,totp,recovery  no    deny       -',
        'device-trust   PATCH    /portal/security/devices/:id/trust  10m      passkey                no    deny       -',
        'device-trust   DELETE   /portal/security/devices/:id        10m      passkey                no    deny       -',
        'invites        POST     /portal/org/users/invite            10m      passkey,totp,recovery  no    deny       -',
        'invites        POST     /portal/org/users/invite/*          10m      passkey,totp,recovery  no    deny       -',
        'close-account  DELETE   /me                                 10m      passkey,totp,recovery  yes   deny       -',
        'whole-app-2fa  *        /*                                  12h      passkey,totp,recovery  no    allow      -',
        '',
      ].join('\n'),
    );
  });
});
