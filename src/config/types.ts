// The validated, frozen shapes of config/gateway.yaml and config/routes.yaml.
// Everything downstream reads these; nothing re-parses YAML or durations per request.

export type FactorType = 'passkey' | 'totp' | 'recovery';
/** Accepted-factor order is also the UI's preference order: passkey first, recovery last. */
export const ALL_FACTORS: readonly FactorType[] = ['passkey', 'totp', 'recovery'];

export interface HostPort {
  host: string;
  port: number;
}

/** Where a value came from, so errors and `stepgate check` can point at it. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export interface UpstreamIdentityConfig {
  /** Path plus optional query string, e.g. `/api/me` or `/api.php?action=query&meta=userinfo`. */
  path: string;
  /** Dotted path into the JSON answer. */
  userField: string;
  nameField: string | null;
  cacheTtlMs: number;
}

export interface HeaderIdentityConfig {
  /** Header name, lower-cased. */
  user: string;
  trustedProxies: string[];
}

export interface JwtIdentityConfig {
  cookie: string | null;
  /** Lower-cased header name, normally `authorization`. */
  header: string | null;
  secretEnv: string | null;
  jwksFile: string | null;
  publicKeyFile: string | null;
  issuer: string | null;
  audience: string | null;
  userClaim: string;
}

export interface IdentityConfig {
  source: 'upstream' | 'header' | 'jwt';
  sessionCookies: string[];
  upstream: UpstreamIdentityConfig;
  credentialParams: string[];
  header: HeaderIdentityConfig;
  jwt: JwtIdentityConfig;
}

export interface ThemeConfig {
  productName: string;
  accent: string;
  logoUrl: string | null;
}

export interface GatewayConfig {
  file: string;
  listen: HostPort;
  /** Origin of the app, e.g. `http://127.0.0.1:3000` (no path). */
  upstream: string;
  /** The origin users see (scheme://host[:port]); WebAuthn, cookies and redirects derive from it. */
  publicOrigin: string;
  /** Starts with `/`, no trailing slash, e.g. `/__stepup`. */
  prefix: string;
  /** Absolute path (relative values are resolved against the working directory). */
  dataDir: string;
  adminListen: HostPort | null;
  trustProxy: string[];
  upstreamTimeoutMs: number;
  /** How long a session's grant read from the store may be reused by this process (0: never). */
  grantCacheTtlMs: number;
  identity: IdentityConfig;
  store: 'sqlite' | 'postgres';
  theme: ThemeConfig;
  unenrolled: 'enroll' | 'allow' | 'deny';
  enrollment: 'self' | 'invite';
  injectClient: boolean;
}

export interface RoutePattern {
  /** Upper-cased method names, or '*' for every method except OPTIONS. */
  methods: readonly string[] | '*';
  /** The path part as written, e.g. `/internal/org/:key/billing/*`. */
  path: string;
  /** The whole pattern as written, for `check` / `explain` output. */
  text: string;
}

/** A listed value: compared case-insensitively; a trailing `*` in YAML makes it a prefix. */
export interface ValuePattern {
  /** Lower-cased, without the trailing `*`. */
  value: string;
  prefix: boolean;
}

/**
 * SPEC §3 `when`: the rule matches only if some listed name (or JSON Pointer) has some occurrence
 * with a listed value. Bodies that cannot be inspected count as matching (fail closed).
 */
export interface WhenCondition {
  /** Names normalised as PHP reads them: lower-cased, leading spaces and a trailing `[…]` dropped. */
  param: ReadonlyArray<{ name: string; values: readonly ValuePattern[] }>;
  json: ReadonlyArray<{ pointer: string; tokens: readonly string[]; values: readonly ValuePattern[] }>;
}

export interface RuleConfig {
  name: string;
  /** Position in the file (0-based); combined rule names are joined in this order. */
  index: number;
  patterns: RoutePattern[];
  maxAgeMs: number;
  factors: readonly FactorType[];
  once: boolean;
  anonymous: 'allow' | 'deny';
  when: WhenCondition | null;
}

export interface RoutesConfig {
  file: string;
  caseSensitive: boolean;
  encodedSlashes: 'reject' | 'keep';
  /** Bodies read for `when`, `_method` and credential parameters are read up to this many bytes. */
  maxInspectBodyBytes: number;
  defaults: { maxAgeMs: number; factors: readonly FactorType[] };
  rules: RuleConfig[];
  /**
   * Where rule `rule` (by index), or its pattern `pattern`, is written: for `file:line:col`
   * messages. Only a compile error asks, so a file read without positions computes them then.
   */
  locate(rule: number, pattern?: number): SourcePos;
}
