// Several gateways, one truth: two real `stepgate start` processes on different ports, sharing one
// PostgreSQL (a throwaway cluster of this file's own, since it is stopped on purpose) and one
// STEPGATE_SECRET, in front of one recording upstream — what a load balancer would spread users
// over. A step-up made through A holds on B, a `once` grant raced on A and B passes once, a lockout
// made on A holds on B, and with the database stopped gated requests are refused (503), never
// forwarded, until it is back. The processes run on the real clock, so TOTP codes come from
// oathtool at the current time.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oathtool } from '../helpers/gateway.js';
import { requirePgBin } from '../helpers/pg-shared.js';
import { destroyCluster, startCluster, startServer, stopServer, type PgClusterInfo } from '../helpers/postgres.js';
import { freePort, runCli, startCli, writeConfigDir, type ConfigDir, type GatewayProcess } from '../helpers/process.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/upstream.js';

const ROUTES = `
rules:
  - name: billing
    match: PATCH /internal/org/:key/billing
    max_age: 10m
  - name: close-account
    match: DELETE /me
    once: true
`;

interface Instance {
  name: string;
  cfg: ConfigDir;
  url: string;
  admin: string;
  proc: GatewayProcess;
}

let cluster: PgClusterInfo;
let upstream: RecordingUpstream;
let a: Instance;
let b: Instance;
const secret = randomBytes(32).toString('base64');
/** Signed in, stepped up (through B) by the step-up test; used by the outage test. */
let carol: string;

async function configure(name: string): Promise<Omit<Instance, 'proc'>> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const cfg = writeConfigDir(
    `listen: 127.0.0.1:${port}
upstream: ${upstream.url}
public_origin: http://localhost:8080
data_dir: ./data
admin_listen: 127.0.0.1:${adminPort}
identity:
  source: upstream
  session_cookies: [sid]
  upstream: { path: /api/me, user_field: id, name_field: email, cache_ttl: 30s }
store: postgres
`,
    ROUTES,
  );
  Object.assign(cfg.env, { STEPGATE_DATA_DIR: `${cfg.dir}/data`, STEPGATE_STORE: cluster.url, STEPGATE_SECRET: secret });
  return { name, cfg, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}` };
}

function signIn(user: string): string {
  const sid = `sid-${user}-${randomBytes(6).toString('hex')}`;
  upstream.sessions.set(sid, { id: user, email: `${user}@example.com` });
  return `sid=${sid}`;
}

async function api(at: Instance, path: string, cookie: string, body?: unknown): Promise<{ status: number; headers: Headers; body: Record<string, any> }> {
  const res = await fetch(`${at.url}/__stepup/api${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

const billing = (at: Instance, cookie: string) =>
  fetch(`${at.url}/internal/org/acme/billing`, { method: 'PATCH', headers: { cookie, 'content-type': 'application/json' }, body: '{"plan":"pro"}' });
const seen = (method: string, url: string) => upstream.appRequests().filter((r) => r.method === method && r.url === url);
const step = (ms: number) => Math.floor(ms / 30_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Enrols an authenticator app (started on one instance, confirmed on another); returns the secret and the step used. */
async function enrol(start: Instance, confirm: Instance, cookie: string): Promise<{ totpSecret: string; step: number }> {
  const begun = await api(start, '/enroll/totp', cookie, {});
  expect(begun.status).toBe(200);
  const totpSecret = begun.body.secret as string;
  const now = Date.now();
  const confirmed = await api(confirm, '/enroll/totp/confirm', cookie, { code: oathtool(totpSecret, now) });
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
  expect(confirmed.body.recoveryCodes).toHaveLength(10);
  return { totpSecret, step: step(now) };
}

beforeAll(async () => {
  cluster = await startCluster(requirePgBin());
  upstream = await startRecordingUpstream();
  const [ca, cb] = [await configure('A'), await configure('B')];
  // Both start at once on an empty database: the schema lock makes one migrate, the other wait.
  a = { ...ca, proc: startCli(ca.cfg) };
  b = { ...cb, proc: startCli(cb.cfg) };
  await Promise.all([a.proc.waitForLog(/stepgate listening/, 30_000), b.proc.waitForLog(/stepgate listening/, 30_000)]);
});

afterAll(async () => {
  for (const i of [a, b]) {
    if (i && i.proc.child.exitCode === null) {
      i.proc.child.kill('SIGTERM');
      await Promise.race([i.proc.exited, sleep(5_000)]);
      if (i.proc.child.exitCode === null) i.proc.child.kill('SIGKILL');
    }
  }
  await upstream?.close();
  if (cluster) destroyCluster(cluster);
});

describe('two gateways sharing one PostgreSQL', () => {
  it('migrate, users and audit work against the shared database', () => {
    const migrate = runCli(a.cfg, ['migrate']);
    expect(migrate.stderr).toBe('');
    expect(migrate.status).toBe(0);
    expect(migrate.stdout).toBe(`store schema up to date in PostgreSQL at 127.0.0.1:${cluster.port}/stepgate\n`);
    expect(runCli(b.cfg, ['users', 'show', 'nobody']).stdout).toContain('no factors');
    const invite = runCli(a.cfg, ['users', 'invite', 'nobody']);
    expect(invite.status).toBe(0);
    const audit = runCli(b.cfg, ['audit', '--user', 'nobody', '--json']);
    expect(audit.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['user.invite']);
  });

  it('shares step-up, once grants and lockouts between the instances', async () => {
    const alice = signIn('alice');
    const bob = signIn('bob');
    carol = signIn('carol');

    const challenged = await billing(b, alice);
    expect(challenged.status).toBe(403);
    expect(await challenged.json()).toMatchObject({ code: 'STEP_UP_REQUIRED', enrolled: [] });

    // Enrolment begun on one instance is confirmed on the other.
    const { totpSecret, step: confirmedStep } = await enrol(a, b, alice);
    const { totpSecret: bobSecret } = await enrol(b, a, bob);
    const carolEnrolment = await enrol(a, b, carol);

    // Bob fails five times on A: locked. B knows it (429 for TOTP and recovery alike).
    const wrong = String((Number(oathtool(bobSecret, Date.now())) + 500_000) % 1_000_000).padStart(6, '0');
    for (let i = 0; i < 5; i++) expect((await api(a, '/verify/totp', bob, { code: wrong })).status).toBe(400);
    const locked = await api(b, '/verify/totp', bob, { code: oathtool(bobSecret, Date.now()) });
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('RATE_LIMITED');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);
    expect((await api(b, '/verify/recovery', bob, { code: 'AAAAA-AAAAA' })).status).toBe(429);
    expect((await api(a, '/verify/totp', bob, { code: wrong })).status).toBe(429);

    // The confirmations used their 30 s steps; a verification needs a later one (RFC 6238 §5.2).
    // Carol's enrolment came after Alice's and may have crossed into the next step.
    const deadline = Date.now() + 31_000;
    while (step(Date.now()) <= Math.max(confirmedStep, carolEnrolment.step)) {
      expect(Date.now()).toBeLessThan(deadline);
      await sleep(200);
    }
    const verified = await api(a, '/verify/totp', alice, { code: oathtool(totpSecret, Date.now()) });
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    expect(verified.body).toMatchObject({ ok: true, factor: 'totp' });
    // The same code again, on the other instance: a replay.
    expect((await api(b, '/verify/totp', alice, { code: oathtool(totpSecret, Date.now()) })).status).toBe(400);
    // Carol (for the outage test) steps up through B.
    expect((await api(b, '/verify/totp', carol, { code: oathtool(carolEnrolment.totpSecret, Date.now()) })).status).toBe(200);

    // The grant made through A lets the request pass through B.
    const passed = await billing(b, alice);
    expect(passed.status).toBe(200);
    const forwarded = seen('PATCH', '/internal/org/acme/billing');
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]!.headers['x-stepgate-user']).toBe('alice');
    expect(forwarded[0]!.headers['x-stepgate-factor']).toBe('totp');
    expect((await api(b, '/status', alice)).body.grant).toMatchObject({ factor: 'totp' });

    // A once grant hit by concurrent requests on A and B passes exactly once.
    const closes = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`${(i % 2 ? a : b).url}/me`, { method: 'DELETE', headers: { cookie: alice } })));
    expect(closes.map((r) => r.status).sort()).toEqual([200, ...Array(9).fill(403)]);
    expect(seen('DELETE', '/me')).toHaveLength(1);

    // Ending the grant through A: A refuses at once; B, which read the grant moments ago, refuses
    // once grant_cache_ttl (1 s, the default) has passed, and never forwards (docs/operations.md).
    expect((await billing(b, alice)).status).toBe(200);
    const beforeEnd = seen('PATCH', '/internal/org/acme/billing').length;
    expect((await api(a, '/grant/end', alice, {})).status).toBe(200);
    expect((await billing(a, alice)).status).toBe(403);
    await sleep(1_100);
    expect((await billing(b, alice)).status).toBe(403);
    expect(seen('PATCH', '/internal/org/acme/billing')).toHaveLength(beforeEnd);
  }, 90_000);

  it('answers 503 STORE_UNAVAILABLE while PostgreSQL is down, never forwarding, and recovers by itself', async () => {
    expect((await billing(a, carol)).status).toBe(200);
    const before = seen('PATCH', '/internal/org/acme/billing').length;

    stopServer(cluster);
    // A grant read within grant_cache_ttl (default 1 s) may still allow (docs/operations.md);
    // past it, every gated decision needs the database.
    await sleep(1_100);
    try {
      for (const at of [a, b]) {
        const res = await billing(at, carol);
        expect(res.status).toBe(503);
        expect(((await res.json()) as { code: string }).code).toBe('STORE_UNAVAILABLE');
        expect((await api(at, '/status', carol)).status).toBe(503);
        expect((await fetch(`${at.admin}/readyz`)).status).toBe(503);
        expect((await fetch(`${at.admin}/healthz`)).status).toBe(200);
        // Ungated traffic needs no store and keeps flowing.
        expect((await fetch(`${at.url}/public/page`)).status).toBe(200);
      }
      expect(seen('PATCH', '/internal/org/acme/billing')).toHaveLength(before);
      expect(a.proc.child.exitCode).toBeNull();
      expect(b.proc.child.exitCode).toBeNull();
    } finally {
      startServer(cluster);
    }

    // No restart needed: the pools reconnect on demand.
    for (const at of [a, b]) {
      const deadline = Date.now() + 15_000;
      let status = 0;
      while ((status = (await billing(at, carol)).status) !== 200 && Date.now() < deadline) await sleep(250);
      expect(status).toBe(200);
      expect((await fetch(`${at.admin}/readyz`)).status).toBe(200);
    }
    expect(seen('PATCH', '/internal/org/acme/billing')).toHaveLength(before + 2);
    expect(a.proc.output()).toMatch(/store connection lost/);
    expect(a.proc.output()).not.toContain(cluster.password);
  }, 90_000);

  it('refuses to start when the database is unreachable, naming the host but not the password', async () => {
    const port = await freePort();
    const c = await configure('C');
    c.cfg.env.STEPGATE_STORE = `postgres://stepgate:${cluster.password}@127.0.0.1:${port}/stepgate`;
    const proc = startCli(c.cfg);
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain(`cannot reach the PostgreSQL store at 127.0.0.1:${port}/stepgate (STEPGATE_STORE)`);
    expect(proc.output()).not.toContain(cluster.password);
    const migrate = runCli(c.cfg, ['migrate']);
    expect(migrate.status).toBe(1);
    expect(migrate.stderr).toContain(`127.0.0.1:${port}`);
  });
});
