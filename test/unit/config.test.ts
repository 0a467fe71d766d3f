import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  formatProblem,
  loadGatewayConfig,
  loadRoutesConfig,
  parseGatewayConfig,
  parseRoutesConfig,
  readRoutesWithPositions,
  resolveConfigPaths,
} from '../../src/config/load.js';
import { readFileSync } from 'node:fs';
import { routesYaml } from '../../bench/rules.mjs';
import { formatDuration, parseDuration, parseSize } from '../../src/config/units.js';
import type { RoutesConfig } from '../../src/config/types.js';
import { buildRouteTable } from '../../src/config/route-table.js';

const fixture = (name: string) => `test/fixtures/config/${name}`;

/** The formatted problems of a failing load, or a failure if it loaded. */
function problems(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const MINIMAL = 'upstream: http://127.0.0.1:3000\npublic_origin: http://localhost:8080\n';
/** MINIMAL plus `yaml`, which replaces MINIMAL's line for the same key (a duplicate key is a YAML error). */
function withMinimal(yaml: string): string {
  const key = yaml.split(':')[0];
  const base = MINIMAL.split('\n').filter((line) => line !== '' && !line.startsWith(`${key}:`));
  return `${[...base, yaml].join('\n')}\n`;
}
const gateway = (yaml: string, env: NodeJS.ProcessEnv = {}) => parseGatewayConfig(yaml, 'gateway.yaml', env);
const routes = (yaml: string) => parseRoutesConfig(yaml, 'routes.yaml');

describe('units', () => {
  it('parses durations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('0s')).toBe(0);
  });

  it.each(['5', '5 minutes', '1.5h', '1h30m', '-5m', '', '5M', '99999999999999999999d'])('refuses %j as a duration', (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError);
    expect(() => parseDuration(text)).toThrow('is not a duration (use 30s, 5m, 2h)');
  });

  it('formats durations in the shortest exact unit, readable back', () => {
    for (const [ms, text] of [
      [0, '0s'],
      [250, '250ms'],
      [1_500, '1500ms'],
      [90_000, '90s'],
      [600_000, '10m'],
      [43_200_000, '12h'],
      [172_800_000, '2d'],
    ] as const) {
      expect(formatDuration(ms)).toBe(text);
      expect(parseDuration(text)).toBe(ms);
    }
  });

  it('parses sizes', () => {
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize('1024')).toBe(1024);
    expect(parseSize('100B')).toBe(100);
    expect(parseSize('512KiB')).toBe(512 * 1024);
    expect(parseSize('1MiB')).toBe(1024 * 1024);
    expect(parseSize('2GiB')).toBe(2 * 1024 ** 3);
    for (const bad of ['1MB', '1.5MiB', '-1', 'lots', '1 MiB x']) {
      expect(() => parseSize(bad)).toThrow('is not a size (use bytes, or 512KiB, 1MiB)');
    }
  });
});

describe('gateway.yaml', () => {
  it('fills every default', () => {
    const c = gateway(MINIMAL);
    expect(c).toEqual({
      file: 'gateway.yaml',
      listen: { host: '127.0.0.1', port: 8080 },
      upstream: 'http://127.0.0.1:3000',
      publicOrigin: 'http://localhost:8080',
      prefix: '/__stepup',
      dataDir: resolve(process.cwd(), 'data'),
      adminListen: { host: '127.0.0.1', port: 9090 },
      trustProxy: [],
      upstreamTimeoutMs: 30_000,
      grantCacheTtlMs: 1_000,
      identity: {
        source: 'upstream',
        sessionCookies: [],
        upstream: { path: '/api/me', userField: 'id', nameField: null, cacheTtlMs: 30_000 },
        credentialParams: [],
        header: { user: 'x-forwarded-user', trustedProxies: [] },
        jwt: {
          cookie: null,
          header: null,
          secretEnv: null,
          jwksFile: null,
          publicKeyFile: null,
          issuer: null,
          audience: null,
          userClaim: 'sub',
        },
      },
      store: 'sqlite',
      theme: { productName: 'stepgate', accent: '#2563eb', logoUrl: null },
      unenrolled: 'enroll',
      enrollment: 'self',
      injectClient: false,
    });
  });

  it('loads the minimal fixture the same as the text', () => {
    expect(loadGatewayConfig(fixture('gateway-minimal.yaml'), {})).toEqual({
      ...gateway(MINIMAL),
      file: fixture('gateway-minimal.yaml'),
    });
  });

  it('reads grant_cache_ttl as a duration; 0s turns the cache off, a negative value is an error', () => {
    expect(gateway(`${MINIMAL}grant_cache_ttl: 0s\n`).grantCacheTtlMs).toBe(0);
    expect(gateway(`${MINIMAL}grant_cache_ttl: 5s\n`).grantCacheTtlMs).toBe(5_000);
    expect(() => gateway(`${MINIMAL}grant_cache_ttl: -1s\n`)).toThrow(/grant_cache_ttl/);
  });

  it('loads the full SPEC example, normalising what it can', () => {
    const c = loadGatewayConfig(fixture('gateway-full.yaml'), {});
    expect(c.upstream).toBe('http://127.0.0.1:3000'); // trailing `/` dropped
    expect(c.publicOrigin).toBe('https://app.example.com'); // host lower-cased, default port dropped
    expect(c.adminListen).toEqual({ host: '::1', port: 9090 });
    expect(c.trustProxy).toEqual(['10.0.0.0/8', '192.168.1.7/32', '::1/128']);
    expect(c.upstreamTimeoutMs).toBe(120_000);
    expect(c.identity.upstream).toEqual({
      path: '/api.php?action=query&meta=userinfo&format=json',
      userField: 'query.userinfo.id',
      nameField: 'query.userinfo.name',
      cacheTtlMs: 30_000,
    });
    expect(c.identity.credentialParams).toEqual(['access_token']);
    expect(c.identity.header).toEqual({ user: 'x-forwarded-user', trustedProxies: ['127.0.0.1/32'] });
    // The jwt block is not selected: checked for shape, kept as written.
    expect(c.identity.jwt.cookie).toBe('token');
    expect(c.identity.jwt.secretEnv).toBe('APP_JWT_SECRET');
    expect(c.theme).toEqual({ productName: 'Acme', accent: '#eab308', logoUrl: null });
    expect([c.unenrolled, c.enrollment, c.injectClient]).toEqual(['deny', 'invite', true]);
  });

  it('loads the shipped config/gateway.yaml', () => {
    const c = loadGatewayConfig('config/gateway.yaml', {});
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.upstream).toBe('http://127.0.0.1:3000');
    expect(c.publicOrigin).toBe('http://localhost:8080');
    expect(c.identity.source).toBe('upstream');
    expect(c.identity.sessionCookies).toEqual(['sid']);
    expect(c.identity.upstream).toEqual({ path: '/api/me', userField: 'id', nameField: 'email', cacheTtlMs: 30_000 });
    expect(c.store).toBe('sqlite');
  });

  it('deep-freezes the result', () => {
    const c = gateway(MINIMAL);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.identity.upstream)).toBe(true);
    expect(Object.isFrozen(c.trustProxy)).toBe(true);
    expect(() => {
      (c.identity.upstream as { path: string }).path = '/evil';
    }).toThrow(TypeError);
  });

  it('accepts admin_listen: null, IPv6 listen addresses, port 0 and lower-cases header names', () => {
    const c = gateway(
      MINIMAL +
        'listen: "[::1]:0"\nadmin_listen: null\n' +
        'identity:\n  source: jwt\n  jwt:\n    header: Authorization\n    public_key_file: /etc/app.pem\n',
    );
    expect(c.listen).toEqual({ host: '::1', port: 0 });
    expect(c.adminListen).toBeNull();
    expect(c.identity.jwt.header).toBe('authorization');
  });

  it('reports an unknown key at the key itself, with a suggestion', () => {
    expect(problems(() => gateway('upstream: http://127.0.0.1:3000\npublic_origin: http://localhost:8080\nupstrem: x\n'))).toEqual([
      'gateway.yaml:3:1: unknown key "upstrem" (did you mean "upstream"?)',
    ]);
    expect(problems(() => gateway(`${MINIMAL}identity:\n  upstream:\n    path: /me\n    pathh: /api/me\n`))).toEqual([
      'gateway.yaml:6:5: unknown key "pathh" in identity.upstream (did you mean "path"?)',
    ]);
  });

  it('reports a bad value at the value', () => {
    expect(problems(() => gateway(`${MINIMAL}identity:\n  upstream:\n    cache_ttl: 5 minutes\n`))).toEqual([
      'gateway.yaml:5:16: identity.upstream.cache_ttl: "5 minutes" is not a duration (use 30s, 5m, 2h)',
    ]);
    expect(problems(() => gateway(`${MINIMAL}store: mysql\n`))).toEqual([
      'gateway.yaml:3:8: store: expected one of sqlite, postgres, got "mysql"',
    ]);
    expect(problems(() => gateway(`${MINIMAL}inject_client: yes\n`))).toEqual([
      'gateway.yaml:3:16: inject_client: expected true or false, got "yes"',
    ]);
    expect(problems(() => gateway(`${MINIMAL}trust_proxy: [10.0.0.0/8, 10.0.0.0/33, example.com]\n`))).toEqual([
      'gateway.yaml:3:27: trust_proxy: "10.0.0.0/33" is not an IP address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)',
      'gateway.yaml:3:40: trust_proxy: "example.com" is not an IP address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)',
    ]);
  });

  it('explains an accent colour that YAML read as a comment', () => {
    expect(problems(() => gateway(`${MINIMAL}theme:\n  accent: #eab308\n`))).toEqual([
      'gateway.yaml:4:11: theme.accent: expected a string, got an empty value (quote colours, e.g. accent: "#eab308": an unquoted # starts a YAML comment)',
    ]);
  });

  it('reports missing required keys at the map they are missing from', () => {
    expect(problems(() => gateway('listen: 127.0.0.1:8080\n'))).toEqual([
      'gateway.yaml:1:1: missing required key "upstream" (or set STEPGATE_UPSTREAM)',
      'gateway.yaml:1:1: missing required key "public_origin" (or set STEPGATE_PUBLIC_ORIGIN)',
    ]);
    expect(problems(() => gateway(''))).toHaveLength(2);
    expect(problems(() => gateway('- a\n'))).toEqual(['gateway.yaml:1:1: expected a map, got a list']);
  });

  it('reports every problem of a file at once, sorted by position', () => {
    expect(problems(() => loadGatewayConfig(fixture('gateway-errors.yaml'), {}))).toEqual(
      [
        '1:1: missing required key "upstream" (or set STEPGATE_UPSTREAM)',
        '1:9: listen: "127.0.0.1:99999" has no valid port (0-65535); write host:port, e.g. 127.0.0.1:8080 or "[::1]:8080"',
        '2:1: unknown key "upstrem" (did you mean "upstream"?)',
        '3:16: public_origin: "http://app.example.com" uses http: on a host that is not localhost or a loopback address; ' +
          'browsers only allow passkeys (WebAuthn) and secure cookies in a secure context, so use https:',
        '4:9: prefix: "/__stepup/" is not a prefix (start with /, no trailing slash, only letters, digits and . _ ~ -, e.g. /__stepup)',
        '8:5: unknown key "pathh" in identity.upstream (did you mean "path"?)',
        '11:5: identity.jwt: set only one of cookie, header (found cookie and header)',
        '14:11: theme.accent: "blue" is not a hex colour (e.g. "#2563eb")',
      ].map((p) => `${fixture('gateway-errors.yaml')}:${p}`),
    );
  });

  it('refuses an http: public_origin except on localhost and loopback addresses', () => {
    for (const ok of ['http://localhost:8080', 'http://127.0.0.1', 'http://127.8.0.1:81', 'http://[::1]:8080', 'https://app.example.com']) {
      expect(gateway(`upstream: http://127.0.0.1:3000\npublic_origin: ${JSON.stringify(ok)}\n`).publicOrigin).toBe(new URL(ok).origin);
    }
    for (const bad of ['http://app.example.com', 'http://10.0.0.1:8080', 'http://localhost.example.com', 'http://[::2]']) {
      const [p] = problems(() => gateway(`upstream: http://127.0.0.1:3000\npublic_origin: ${JSON.stringify(bad)}\n`));
      expect(p).toMatch(/^gateway\.yaml:2:16: public_origin: .* secure context, so use https:$/);
    }
  });

  it.each([
    ['upstream: http://127.0.0.1:3000/app', 'must not have a path'],
    ['upstream: http://127.0.0.1:3000/?x=1', 'must not have a query or fragment'],
    ['upstream: http://user:secret@127.0.0.1:3000', 'upstream: must not contain credentials (user:password@)'],
    ['upstream: ftp://127.0.0.1', 'must be an http: or https: URL'],
    ['upstream: 127.0.0.1:3000', 'is not a URL (e.g. http://127.0.0.1:3000)'],
    ['public_origin: https://app.example.com/base', 'must be an origin (scheme://host[:port]) without a path'],
    ['listen: 8080', 'has no port'],
    ['listen: ":8080"', 'has no host'],
    ['listen: "::1:8080"', 'has an invalid host'],
    ['listen: "[zz]:8080"', 'has an invalid IPv6 address'],
    ['prefix: /', 'is not a prefix'],
    ['prefix: __stepup', 'is not a prefix'],
    ['prefix: /a/../b', 'is not a prefix'],
    ['prefix: "/a b"', 'is not a prefix'],
    ['upstream_timeout: 0s', 'must be longer than 0'],
    ['theme:\n  logo_url: "javascript:alert(1)"', 'must be an http(s) URL or a path starting with /'],
    ['identity:\n  session_cookies: ["a b"]', 'is not a valid cookie name'],
    ['identity:\n  header:\n    user: "X User"', 'is not a valid header name'],
    ['identity:\n  upstream:\n    path: api/me', 'must be a path on the app'],
    ['identity:\n  upstream:\n    user_field: a..b', 'is not a field name or dotted path'],
  ])('refuses %j', (yaml, message) => {
    const found = problems(() => gateway(withMinimal(yaml)));
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(message);
    expect(found[0]).not.toContain('secret'); // credentials in a URL are never echoed
  });

  it('checks the selected identity source across keys', () => {
    const jwt = (block: string) => gateway(`${MINIMAL}identity:\n  source: jwt\n  jwt:\n${block}`);
    expect(problems(() => jwt('    issuer: me\n'))).toEqual([
      "gateway.yaml:6:5: identity.jwt: set one of cookie, header (where the app's JWT is)",
      'gateway.yaml:6:5: identity.jwt: set one of secret_env, jwks_file, public_key_file (how to verify its signature)',
    ]);
    expect(problems(() => jwt('    cookie: token\n    secret_env: S\n    jwks_file: /j.json\n'))).toEqual([
      'gateway.yaml:8:5: identity.jwt: set only one of secret_env, jwks_file, public_key_file (found secret_env and jwks_file)',
    ]);
    expect(jwt('    cookie: token\n    jwks_file: /j.json\n').identity.jwt.jwksFile).toBe('/j.json');

    expect(problems(() => gateway(`${MINIMAL}identity:\n  source: header\n`))).toEqual([
      'gateway.yaml:4:3: identity.header.trusted_proxies: list the addresses of the proxies that set the user header (required with source: header)',
    ]);
    const header = gateway(`${MINIMAL}identity:\n  source: header\n  header:\n    trusted_proxies: [10.1.2.3]\n`);
    expect(header.identity.header).toEqual({ user: 'x-forwarded-user', trustedProxies: ['10.1.2.3/32'] });
  });

  it('lets environment variables win over the file', () => {
    const c = gateway(
      'listen: 127.0.0.1:8080\nupstream: http://127.0.0.1:3000\npublic_origin: http://localhost:8080\ndata_dir: ./data\n',
      {
        STEPGATE_LISTEN: '0.0.0.0:80',
        STEPGATE_UPSTREAM: 'http://app:3000/',
        STEPGATE_PUBLIC_ORIGIN: 'https://app.example.com',
        STEPGATE_DATA_DIR: '/var/lib/stepgate',
      },
    );
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 80 });
    expect(c.upstream).toBe('http://app:3000');
    expect(c.publicOrigin).toBe('https://app.example.com');
    expect(c.dataDir).toBe('/var/lib/stepgate');
  });

  it('takes required values from the environment alone, and treats empty variables as unset', () => {
    const c = gateway('', { STEPGATE_UPSTREAM: 'http://127.0.0.1:3000', STEPGATE_PUBLIC_ORIGIN: 'http://localhost:8080' });
    expect(c.upstream).toBe('http://127.0.0.1:3000');
    expect(gateway(MINIMAL, { STEPGATE_LISTEN: '' }).listen.port).toBe(8080);
    expect(gateway(MINIMAL, { STEPGATE_DATA_DIR: 'rel/dir' }).dataDir).toBe(resolve(process.cwd(), 'rel/dir'));
  });

  it('reports invalid environment values as env problems, before file problems', () => {
    expect(
      problems(() =>
        gateway(`${MINIMAL}store: nope\n`, { STEPGATE_LISTEN: 'localhost', STEPGATE_PUBLIC_ORIGIN: 'http://example.com' }),
      ),
    ).toEqual([
      'env STEPGATE_LISTEN: "localhost" has no port; write host:port, e.g. 127.0.0.1:8080 or "[::1]:8080"',
      expect.stringMatching(/^env STEPGATE_PUBLIC_ORIGIN: "http:\/\/example.com" uses http: on a host that is not localhost/),
      'gateway.yaml:3:8: store: expected one of sqlite, postgres, got "nope"',
    ]);
  });

  describe('store', () => {
    const secret = Buffer.alloc(32, 7).toString('base64');
    const url = 'postgres://stepgate:hunter2@db:5432/stepgate';

    it('postgres takes its URL and secret from the environment', () => {
      expect(gateway(`${MINIMAL}store: postgres\n`, { STEPGATE_STORE: url, STEPGATE_SECRET: secret }).store).toBe('postgres');
    });

    it('postgres without STEPGATE_STORE or STEPGATE_SECRET names the missing variable', () => {
      expect(problems(() => gateway(`${MINIMAL}store: postgres\n`, {}))).toEqual([
        'gateway.yaml:3:8: store: postgres needs the STEPGATE_STORE environment variable (the PostgreSQL URL)',
        'gateway.yaml:3:8: store: postgres needs the STEPGATE_SECRET environment variable (base64, at least 32 bytes, the same on every instance)',
      ]);
      expect(problems(() => gateway(`${MINIMAL}store: postgres\n`, { STEPGATE_STORE: url }))).toEqual([
        expect.stringContaining('needs the STEPGATE_SECRET environment variable'),
      ]);
    });

    it('never echoes the store URL', () => {
      const found = problems(() =>
        gateway(`${MINIMAL}store: postgres\n`, { STEPGATE_STORE: 'mysql://u:hunter2@db/x', STEPGATE_SECRET: secret }),
      );
      expect(found).toEqual(['env STEPGATE_STORE: is not a postgres:// or postgresql:// URL']);
    });

    it('refuses STEPGATE_STORE with store: sqlite, explicit or default', () => {
      const message = 'env STEPGATE_STORE: is set, but gateway.yaml uses store: sqlite (set store: postgres, or unset STEPGATE_STORE)';
      expect(problems(() => gateway(MINIMAL, { STEPGATE_STORE: url }))).toEqual([message]);
      expect(problems(() => gateway(`${MINIMAL}store: sqlite\n`, { STEPGATE_STORE: url }))).toEqual([message]);
    });
  });
});

describe('routes.yaml', () => {
  // parseRoutesConfig reads with js-yaml and falls back to `yaml` (which keeps positions) for any
  // file with a problem; a file both accept must mean exactly the same, positions included.
  /** The values, and where every rule and pattern is written (asked of `locate`). */
  const plain = (c: RoutesConfig) => ({
    ...(JSON.parse(JSON.stringify(c)) as object),
    positions: c.rules.map((r, i) => [c.locate(i), r.patterns.map((_, j) => c.locate(i, j))]),
  });
  const WHEN_RULES = `rules:
  - name: delete-user
    match: POST /admin.php
    when:
      param: { action: [delete_user, "remove*"] }
  - name: json-role
    match: ["PATCH /api/users/:id", 'PUT /api/users/:id']
    factors: [passkey]
    when: { json: { /role: [admin, "owner"] } }
    max_age: 90s
  - name: anon
    match: "GET /x/%7Euser/caf%C3%A9"
    anonymous: allow
    once: false
`;
  it.each([
    ['the SPEC example', readFileSync(fixture('routes-spec.yaml'), 'utf8')],
    ['the shipped config/routes.yaml', readFileSync('config/routes.yaml', 'utf8')],
    ['when conditions, flow style, quoting, escapes', WHEN_RULES],
    ['1,000 generated rules (the benchmark\'s)', routesYaml(1_000)],
  ])('reads %s exactly like the position-keeping parser', (_name, text) => {
    expect(plain(parseRoutesConfig(text, 'routes.yaml'))).toEqual(plain(readRoutesWithPositions(text, 'routes.yaml')));
  });

  it('still accepts YAML aliases (read by the parser that bounds their expansion)', () => {
    const c = routes(`defaults: { max_age: 5m }
rules:
  - name: a
    match: POST /a
    factors: &strong [passkey]
  - name: b
    match: POST /b
    factors: *strong
`);
    expect(c.rules.map((r) => [r.name, r.factors, c.locate(r.index).line])).toEqual([
      ['a', ['passkey'], 3],
      ['b', ['passkey'], 6],
    ]);
  });

  it('loads the SPEC example with defaults and positions', () => {
    const file = fixture('routes-spec.yaml');
    const c = loadRoutesConfig(file);
    expect(c.file).toBe(file);
    expect(c.caseSensitive).toBe(false);
    expect(c.encodedSlashes).toBe('reject');
    expect(c.defaults).toEqual({ maxAgeMs: 600_000, factors: ['passkey', 'totp', 'recovery'] });
    expect(c.rules.map((r) => [r.name, r.index, r.maxAgeMs, r.factors, r.once, r.anonymous])).toEqual([
      ['billing', 0, 300_000, ['passkey', 'totp', 'recovery'], false, 'deny'],
      ['device-trust', 1, 600_000, ['passkey'], false, 'deny'],
      ['invites', 2, 600_000, ['passkey', 'totp', 'recovery'], false, 'deny'],
      ['close-account', 3, 600_000, ['passkey', 'totp', 'recovery'], true, 'deny'],
      ['whole-app-2fa', 4, 43_200_000, ['passkey', 'totp', 'recovery'], false, 'allow'],
    ]);
    const [billing, , invites, closeAccount, wholeApp] = c.rules;
    expect(c.locate(0)).toEqual({ file, line: 6, col: 5 });
    expect(billing?.patterns).toEqual([
      { methods: ['PATCH'], path: '/internal/org/:key/billing', text: 'PATCH /internal/org/:key/billing' },
      { methods: ['POST'], path: '/internal/org/:key/billing/*', text: 'POST  /internal/org/:key/billing/*' },
    ]);
    expect([c.locate(0, 0), c.locate(0, 1)]).toEqual([
      { file, line: 8, col: 9 },
      { file, line: 9, col: 9 },
    ]);
    expect(invites?.patterns.map((p, j) => [p.path, c.locate(2, j).line, c.locate(2, j).col])).toEqual([
      ['/portal/org/users/invite', 17, 13],
      ['/portal/org/users/invite/*', 17, 44],
    ]);
    expect(closeAccount?.patterns).toEqual([{ methods: ['DELETE'], path: '/me', text: 'DELETE /me' }]);
    expect(c.locate(3, 0)).toEqual({ file, line: 19, col: 12 });
    expect(wholeApp?.patterns[0]).toEqual({ methods: '*', path: '/*', text: '* /*' });
    expect(c.locate(4, 0)).toEqual({ file, line: 22, col: 12 });
  });

  it('loads the shipped config/routes.yaml', () => {
    const c = loadRoutesConfig('config/routes.yaml');
    expect(c.rules.map((r) => r.name)).toEqual([
      'billing',
      'device-trust',
      'invites',
      'close-account',
      'password-change',
      'api-keys',
      'exports',
    ]);
    expect(c.rules.every((r) => r.anonymous === 'deny')).toBe(true);
    expect(c.rules.find((r) => r.name === 'api-keys')?.patterns).toMatchObject([
      { methods: ['POST', 'DELETE'], path: '/account/api-keys/*' },
    ]);
    expect(c.rules.find((r) => r.name === 'password-change')?.patterns).toMatchObject([
      { methods: ['POST'], path: '/account/password' },
    ]);
    expect(c.rules.find((r) => r.name === 'exports')?.patterns).toMatchObject([{ methods: ['GET'], path: '/reports/*' }]);
  });

  it('inherits defaults, orders factors, reads the top-level switches', () => {
    const c = routes(
      'defaults:\n  max_age: 2h\n  factors: [totp, passkey]\ncase_sensitive: true\nencoded_slashes: keep\n' +
        'rules:\n  - name: a\n    match: get|Post  /x\n  - name: b\n    match: [DELETE /y]\n    factors: [recovery, passkey]\n    max_age: 30s\n',
    );
    expect(c.caseSensitive).toBe(true);
    expect(c.encodedSlashes).toBe('keep');
    expect(c.defaults).toEqual({ maxAgeMs: 7_200_000, factors: ['passkey', 'totp'] });
    expect(c.rules[0]).toMatchObject({ maxAgeMs: 7_200_000, factors: ['passkey', 'totp'] });
    expect(c.rules[0]?.patterns[0]).toMatchObject({ methods: ['GET', 'POST'], path: '/x', text: 'get|Post  /x' });
    expect(c.rules[1]).toMatchObject({ maxAgeMs: 30_000, factors: ['passkey', 'recovery'] });
    expect(Object.isFrozen(c.rules[1]?.patterns[0]?.methods)).toBe(true);
  });

  it('accepts an empty file as no rules', () => {
    expect(routes('').rules).toEqual([]);
  });

  it('reports a bad duration at the value', () => {
    expect(problems(() => routes('rules:\n  - name: a\n    match: DELETE /me\n    max_age: 5 minutes\n'))).toEqual([
      'routes.yaml:4:14: max_age: "5 minutes" is not a duration (use 30s, 5m, 2h)',
    ]);
  });

  it('reports a bad factor name at the list item', () => {
    expect(problems(() => routes('rules:\n  - name: a\n    match: DELETE /me\n    factors: [passkey, sms]\n'))).toEqual([
      'routes.yaml:4:24: factors: expected one of passkey, totp, recovery, got "sms"',
    ]);
    expect(problems(() => routes('rules:\n  - name: a\n    match: DELETE /me\n    factors: [totp, totp]\n'))).toEqual([
      'routes.yaml:4:21: factors: "totp" is listed twice',
    ]);
    expect(problems(() => routes('defaults:\n  factors: []\n'))).toEqual([
      'routes.yaml:2:12: defaults.factors: must list at least one factor (passkey, totp, recovery)',
    ]);
  });

  it('places compile errors of a file the fast reader accepted (positions asked of locate)', () => {
    // Valid YAML and schema, so js-yaml reads it; only the rule compiler finds the problems.
    const text = [
      'rules:',
      '  - name: keys',
      '    match: ["POST /keys", "DELETE /keys/:id"]',
      '    factors: [passkey]',
      '  - name: tokens',
      '    match: "DELETE /keys/*"',
      '    factors: [totp]',
      '  - name: odd',
      '    match:',
      '      - GET /fine',
      '      - "GET /a/*/b"',
      '',
    ].join('\n');
    const parsed = routes(text);
    expect(parsed.rules.map((r) => r.name)).toEqual(['keys', 'tokens', 'odd']);
    expect(problems(() => buildRouteTable(parsed))).toEqual([
      'routes.yaml:6:12: rules "keys" (line 2) and "tokens" can match the same request ("DELETE /keys/:id" and "DELETE /keys/*") but accept no common factor (passkey vs totp)',
      'routes.yaml:11:9: pattern path "/a/*/b": "*" is only allowed as the last segment',
    ]);
  });

  it('reports a duplicate rule name at the second one, naming the first line', () => {
    expect(
      problems(() => routes('rules:\n  - name: billing\n    match: PATCH /b\n  - name: other\n    match: GET /o\n  - name: billing\n    match: POST /b\n')),
    ).toEqual(['routes.yaml:6:11: name: duplicate rule name "billing" (first used on line 2)']);
  });

  it('reports bad patterns at the pattern', () => {
    const example = 'write METHODS PATH, e.g. "POST /account/password", "PATCH|DELETE /me" or "* /admin/*"';
    expect(problems(() => routes('rules:\n  - name: a\n    match: DELETE\n'))).toEqual([
      `routes.yaml:3:12: match: "DELETE" has no path: ${example}`,
    ]);
    expect(
      problems(() =>
        routes(
          'rules:\n  - name: a\n    match:\n      - /me\n      - GET me\n      - GET|* /x\n      - G(T /x\n      - GET /a /b\n      - 42\n      - GET||POST /x\n',
        ),
      ),
    ).toEqual([
      `routes.yaml:4:9: match: "/me" has no method: ${example}`,
      'routes.yaml:5:9: match: "GET me": the path must start with /',
      'routes.yaml:6:9: match: "GET|* /x": * cannot be combined with other methods',
      'routes.yaml:7:9: match: "G(T /x": "G(T" is not a method name',
      `routes.yaml:8:9: match: "GET /a /b" has more than one path: ${example}`,
      'routes.yaml:9:9: match: expected a pattern like "POST /path", got 42',
      'routes.yaml:10:9: match: "GET||POST /x": "" is not a method name',
    ]);
    expect(problems(() => routes('rules:\n  - name: a\n    match: []\n'))).toEqual([
      'routes.yaml:3:12: match: must list at least one pattern',
    ]);
    expect(problems(() => routes('rules:\n  - name: a\n    match: {GET: /x}\n'))).toEqual([
      'routes.yaml:3:12: match: expected a string or a list, got a map',
    ]);
  });

  it('reports missing and unsupported keys', () => {
    expect(problems(() => routes('rules:\n  - match: GET /x\n  - name: b\n'))).toEqual([
      'routes.yaml:2:5: missing required key "name"',
      'routes.yaml:3:5: missing required key "match"',
    ]);
    // An empty `when` would silently gate nothing extra: it must say what it checks.
    expect(problems(() => routes('max_inspect_body: 1MiB\nrules:\n  - name: a\n    match: POST /rpc\n    when: {}\n'))).toEqual([
      'routes.yaml:5:11: when: list `param` and/or `json` conditions',
    ]);
    expect(problems(() => routes('rules:\n  - name: a\n    match: POST /x\n    max-age: 1m\n'))).toEqual([
      'routes.yaml:4:5: unknown key "max-age" (did you mean "max_age"?)',
    ]);
    expect(problems(() => routes('rules:\n  - name: "bad name"\n    match: POST /x\n'))).toEqual([
      'routes.yaml:2:11: name: "bad name" is not a rule name (letters, digits, ".", "_", "-"; it appears in headers and answers)',
    ]);
  });

  it('reports every problem of a file at once, sorted by position', () => {
    const file = fixture('routes-errors.yaml');
    expect(problems(() => loadRoutesConfig(file))).toEqual(
      [
        '2:12: defaults.max_age: "5 minutes" is not a duration (use 30s, 5m, 2h)',
        '6:24: factors: expected one of passkey, totp, recovery, got "sms"',
        '7:11: name: duplicate rule name "billing" (first used on line 4)',
        '9:9: match: "POST" has no path: write METHODS PATH, e.g. "POST /account/password", "PATCH|DELETE /me" or "* /admin/*"',
        '10:9: match: "GET billing": the path must start with /',
        '11:11: once: expected true or false, got "yes"',
        '16:17: when.json.method: "method" is not a JSON Pointer (it starts with /, e.g. /method)',
        '17:7: unknown key "header" in when',
        '18:19: max_inspect_body: "a lot" is not a size (use bytes, or 512KiB, 1MiB)',
      ].map((p) => `${file}:${p}`),
    );
  });

  it('reports YAML syntax errors with their position', () => {
    expect(problems(() => routes('rules:\n  - name: "a\n    match: GET /x\n'))).toEqual([
      'routes.yaml:4:1: invalid YAML: Missing closing "quote',
    ]);
    expect(problems(() => routes('rules:\n  - name: a\n    name: b\n'))).toEqual([
      'routes.yaml:3:5: invalid YAML: Map keys must be unique',
    ]);
    expect(problems(() => routes('rules:\n\t- name: a\n'))).toEqual([
      'routes.yaml:2:1: invalid YAML: Tabs are not allowed as indentation',
    ]);
    expect(problems(() => routes('rules: []\n---\nrules: []\n'))).toEqual([
      'routes.yaml:2:1: invalid YAML: only one document is allowed (remove the second ---)',
    ]);
  });
});

describe('files and paths', () => {
  it('reports an unreadable file without a position', () => {
    const [p] = problems(() => loadRoutesConfig('test/fixtures/config/missing.yaml'));
    expect(p).toMatch(/^test\/fixtures\/config\/missing\.yaml: cannot read the file: ENOENT/);
  });

  it('resolves the file paths from STEPGATE_CONFIG / STEPGATE_ROUTES, else config/ under the working directory', () => {
    expect(resolveConfigPaths({})).toEqual({
      gatewayFile: resolve(process.cwd(), 'config/gateway.yaml'),
      routesFile: resolve(process.cwd(), 'config/routes.yaml'),
    });
    expect(resolveConfigPaths({ STEPGATE_CONFIG: '/etc/stepgate/g.yaml', STEPGATE_ROUTES: 'r.yaml' })).toEqual({
      gatewayFile: '/etc/stepgate/g.yaml',
      routesFile: resolve(process.cwd(), 'r.yaml'),
    });
  });

  it('formats problems for files, environment variables and whole files', () => {
    expect(formatProblem({ file: 'a.yaml', line: 3, col: 7, message: 'm' })).toBe('a.yaml:3:7: m');
    expect(formatProblem({ file: 'env', line: 0, col: 0, message: 'STEPGATE_LISTEN: m' })).toBe('env STEPGATE_LISTEN: m');
    expect(formatProblem({ file: 'a.yaml', line: 0, col: 0, message: 'm' })).toBe('a.yaml: m');
    const err = new ConfigError([
      { file: 'a.yaml', line: 1, col: 1, message: 'x' },
      { file: 'a.yaml', line: 2, col: 1, message: 'y' },
    ]);
    expect(err.message).toBe('a.yaml:1:1: x\na.yaml:2:1: y');
    expect(err.name).toBe('ConfigError');
  });
});
