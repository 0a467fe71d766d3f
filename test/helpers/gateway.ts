// Starts a real gateway (the same startGateway as `stepgate start`) on an ephemeral loopback port
// in front of a recording upstream, with a real SQLite file in a temp dir and a clock the test
// can move, so TOTP steps and max_age windows pass without sleeping.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseGatewayConfig, parseRoutesConfig } from '../../src/config/load.js';
import { buildRouteTable } from '../../src/config/route-table.js';
import { startGateway, type RunningGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { startRecordingUpstream, type RecordingUpstream } from './upstream.js';
import { Writable } from 'node:stream';

export class TestClock {
  constructor(public ms = Date.UTC(2026, 10, 23, 12, 0, 0)) {}
  now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

export interface TestGateway {
  gw: RunningGateway;
  upstream: RecordingUpstream;
  clock: TestClock;
  url: string;
  dataDir: string;
  logs: string[];
  close(): Promise<void>;
}

export const DEFAULT_ROUTES = `
defaults:
  max_age: 10m
rules:
  - name: billing
    match:
      - PATCH /internal/org/:key/billing
      - POST  /internal/org/:key/billing/*
    max_age: 5m
  - name: device-trust
    match:
      - PATCH  /portal/security/devices/:id/trust
      - DELETE /portal/security/devices/:id
    factors: [passkey]
  - name: close-account
    match: DELETE /me
    once: true
  - name: short
    match: POST /short
    max_age: 30s
  - name: public-form
    match: POST /signup
    anonymous: allow
`;

export interface TestGatewayOptions {
  routes?: string;
  gatewayYaml?: (upstreamUrl: string, dataDir: string) => string;
  /** Extra top-level gateway.yaml lines (appended). */
  extra?: string;
  /** Reuse this data_dir (a restart); it is then left in place by close(). */
  dataDir?: string;
  /** Reuse this clock (a restart keeps the test's time). */
  clock?: TestClock;
  /** Reuse this upstream (a restart keeps the app's sessions); it is then left running by close(). */
  upstream?: RecordingUpstream;
  /** Extra environment variables for the gateway (e.g. a JWT secret named by secret_env). */
  env?: Record<string, string>;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const upstream = opts.upstream ?? (await startRecordingUpstream());
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'stepgate-test-'));
  const yaml =
    opts.gatewayYaml?.(upstream.url, dataDir) ??
    `listen: 127.0.0.1:0
upstream: ${upstream.url}
public_origin: http://localhost:8080
data_dir: ${dataDir}
admin_listen: 127.0.0.1:0
upstream_timeout: 2s
identity:
  source: upstream
  session_cookies: [sid]
  upstream: { path: /api/me, user_field: id, name_field: email, cache_ttl: 30s }
  credential_params: [access_token]
${opts.extra ?? ''}`;
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const clock = opts.clock ?? new TestClock();
  const env = { STEPGATE_SECRET: Buffer.alloc(32, 7).toString('base64'), ...opts.env };
  const gw = await startGateway({
    cfg: parseGatewayConfig(yaml, 'gateway.yaml', env),
    routes: buildRouteTable(parseRoutesConfig(opts.routes ?? DEFAULT_ROUTES, 'routes.yaml')),
    clock,
    log: createLogger('debug', sink),
    env,
  });
  return {
    gw,
    upstream,
    clock,
    url: gw.url,
    dataDir,
    logs,
    async close() {
      await gw.close();
      if (!opts.upstream) await upstream.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A TOTP code computed by Debian's oathtool at the given clock time: an independent implementation. */
export function oathtool(secret: string, atMs: number): string {
  const when = new Date(atMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return execFileSync('oathtool', ['--totp', '-b', '--now', when, secret], { encoding: 'utf8' }).trim();
}

/** Signs a user in at the recording upstream; returns the session cookie header. */
export function signIn(t: TestGateway, user: string, sid = `sid-${user}-${Math.random().toString(36).slice(2)}`): string {
  t.upstream.sessions.set(sid, { id: user, email: `${user}@example.com` });
  return `sid=${sid}`;
}
