// Faults an attacker can cause or an operator will meet, beyond test/integration/proxy.test.ts
// (upstream down, reset, slow; identity source failing): oversized headers, a slowloris client,
// the SQLite store locked by another connection, and a gateway restart in the middle of step-up
// flows. In every case the gateway keeps serving a free path, and a gated request is never
// forwarded when the gate is in doubt (SPEC §4.4, §9.9, §10).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { oathtool, signIn, startTestGateway, TestClock, type TestGateway } from '../helpers/gateway.js';
import { httpText, RawConnection, rawRequest } from '../helpers/raw.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';
import { enrolTotp } from '../helpers/stepup.js';
import { startRecordingUpstream } from '../helpers/upstream.js';

const MIN = 60_000;

async function call(t: TestGateway, path: string, cookie: string, body?: unknown) {
  const res = await request(t.url + '/__stepup/api' + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...(cookie ? { cookie } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
}

async function hit(t: TestGateway, method: string, path: string, cookie = '', body?: string) {
  const started = Date.now();
  const res = await request(t.url + path, { method: method as 'GET', headers: cookie ? { cookie } : {}, body });
  const text = await res.body.text();
  return { status: res.statusCode, body: text, ms: Date.now() - started };
}

/**
 * A GET from a child process, sent `delayMs` after go(): its latency is measured outside this
 * process, so it shows whether the gateway (which runs in this process) was able to answer.
 */
async function clientInAnotherProcess(url: string, delayMs: number): Promise<{ go(): void; result: Promise<{ status: number; ms: number }> }> {
  const script = `process.stdin.once('data', () => setTimeout(async () => {
    const t0 = Date.now();
    try { const r = await fetch(${JSON.stringify(url)}); await r.text(); console.log(JSON.stringify({ status: r.status, ms: Date.now() - t0 })); }
    catch (e) { console.log(JSON.stringify({ status: 0, ms: Date.now() - t0 })); }
    process.exit(0);
  }, ${delayMs})); console.log('ready');`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const check = () => (out.includes('ready') ? resolve() : undefined);
    child.stdout.on('data', check);
    child.once('exit', () => reject(new Error(`client exited early: ${out}`)));
  });
  const result = new Promise<{ status: number; ms: number }>((resolve) => child.once('exit', () => resolve(JSON.parse(out.slice(out.indexOf('{'))) as { status: number; ms: number })));
  return { go: () => child.stdin.end('go\n'), result };
}

/** The gateway is up: a free path is forwarded. */
async function expectServesFreePath(t: TestGateway): Promise<void> {
  const free = await hit(t, 'GET', `/free/alive-${Date.now()}`);
  expect(free.status).toBe(200);
}

describe('oversized headers (> 32 KiB) → 431, the gateway stays up', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t.close();
  });

  const cases: Array<[string, () => string]> = [
    ['one 40 KiB header on a free path', () => httpText('GET', '/free/a', { 'X-Big': 'a'.repeat(40 * 1024) })],
    ['2,000 small headers', () => httpText('GET', '/free/a', Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`X-H${i}`, 'v'.repeat(16)])))],
    ['a 40 KiB Cookie on a gated path', () => httpText('DELETE', '/me', { Cookie: 'sid=' + 'c'.repeat(40 * 1024) })],
    ['a 40 KiB request target', () => httpText('DELETE', '/me?' + 'q'.repeat(40 * 1024))],
    ['a 40 KiB X-HTTP-Method-Override', () => httpText('POST', '/me', { 'X-HTTP-Method-Override': 'DELETE,'.repeat(6000) })],
  ];
  it.each(cases)('%s', async (_name, text) => {
    const conn = await RawConnection.open(t.url);
    conn.write(text());
    const res = await conn.readResponse();
    expect(res.status).toBe(431);
    expect(await conn.waitClosed()).toBe(true);
    conn.close();
    expect(t.upstream.appRequests()).toEqual([]);
    await expectServesFreePath(t);
    t.upstream.seen.length = 0;
  });

  it('headers just under the limit are read and gated as usual', async () => {
    // (A gated path: the recording upstream's own 16 KiB limit would answer a forwarded one.)
    const res = await rawRequest(t.url, httpText('DELETE', '/me', { Cookie: signIn(t, 'alice'), 'X-Big': 'a'.repeat(30 * 1024) }));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'STEP_UP_REQUIRED' });
  });
});

describe('slowloris: clients trickling their headers byte by byte do not stop the gateway', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t.close();
  });

  it('30 slow clients for 2.5 s: free and gated requests of others are answered promptly, the slow ones are answered when done', async () => {
    const cookie = signIn(t, 'alice');
    await enrolTotp(t, cookie);
    const slowText = (i: number) => httpText('DELETE', '/me', { Cookie: cookie, 'X-Slow': `client-${i}-` + 'z'.repeat(20) });
    const slow = await Promise.all(Array.from({ length: 30 }, () => RawConnection.open(t.url)));
    let sent = 0;
    const texts = slow.map((_c, i) => slowText(i));
    const trickle = setInterval(() => {
      for (const [i, c] of slow.entries()) if (sent < texts[i]!.length - 1) c.write(texts[i]![sent]!);
      sent++;
    }, 25);
    try {
      const deadline = Date.now() + 2_500;
      const latencies: number[] = [];
      while (Date.now() < deadline) {
        const free = await hit(t, 'GET', '/free/x');
        const gated = await hit(t, 'DELETE', '/me', cookie);
        expect(free.status).toBe(200);
        expect(gated.status).toBe(403);
        latencies.push(free.ms, gated.ms);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(latencies.length).toBeGreaterThan(10);
      expect(Math.max(...latencies)).toBeLessThan(1_000);
    } finally {
      clearInterval(trickle);
    }
    // Still connected and half-way through their headers (headersTimeout is 30 s)...
    expect(slow.every((c) => !c.closed)).toBe(true);
    // ...and a slow client that finally completes is gated like anyone else.
    for (const [i, c] of slow.entries()) c.write(texts[i]!.slice(Math.min(sent, texts[i]!.length - 1)));
    const answers = await Promise.all(slow.map((c) => c.readResponse({ timeoutMs: 5_000 })));
    for (const c of slow) c.close();
    expect(answers.map((a) => a.status)).toEqual(slow.map(() => 403));
    expect(t.upstream.appRequests().filter((r) => r.url === '/me')).toEqual([]);
  });
});

describe('the SQLite store locked by another connection (BEGIN EXCLUSIVE) → 503 STORE_UNAVAILABLE, never forwarded, recovers', () => {
  let t: TestGateway;
  let lock: Database.Database | null = null;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterEach(() => {
    if (lock?.inTransaction) lock.exec('ROLLBACK');
    lock?.close();
    lock = null;
  });
  afterAll(async () => {
    await t.close();
  });

  function takeLock(): void {
    lock = new Database(join(t.dataDir, 'stepgate.db'), { timeout: 0 });
    lock.exec('BEGIN EXCLUSIVE');
  }

  /** How long a free request took while a gated one waited on the locked store (measured in the first test). */
  let freeDuringLockMs = -1;

  it('a verify call and a once-rule use (they need a write) answer 503 within ~5–6 s, a challenge (it needs none) 403 at once; then it recovers', async () => {
    const cookie = signIn(t, 'alice');
    const secret = await enrolTotp(t, cookie);
    // A challenge now warms the identity cache: under the lock the calls go straight to the store.
    expect((await hit(t, 'PATCH', '/internal/org/acme/billing', cookie, '{}')).status).toBe(403);
    const seenBefore = t.upstream.appRequests().length;
    takeLock();

    // A free request from another process (this one is the gateway's), sent 300 ms after the
    // verify call, while that one waits on the store.
    const other = await clientInAnotherProcess(`${t.url}/free/during-lock`, 300);
    other.go();
    const started = Date.now();
    const verify = await call(t, '/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
    const verifyMs = Date.now() - started;
    const free = await other.result;
    expect(verify.status).toBe(503);
    expect(verify.body.code).toBe('STORE_UNAVAILABLE');
    expect(verifyMs).toBeGreaterThanOrEqual(4_500);
    expect(verifyMs).toBeLessThan(6_500);
    expect(free.status).toBe(200);
    freeDuringLockMs = free.ms;

    // The reads of a gated request pass a writer's lock (WAL) and its sealed ticket is no write.
    const gated = await hit(t, 'PATCH', '/internal/org/acme/billing', cookie, '{}');
    expect(gated.status).toBe(403);
    expect(gated.ms).toBeLessThan(1_500);
    expect(t.upstream.appRequests().length).toBe(seenBefore + 1); // the free request only
    await expectServesFreePath(t);

    lock!.exec('ROLLBACK');
    // Recovered by itself: the same code (never spent) verifies, through the ticket issued under the lock.
    const ticket = new URL(JSON.parse(gated.body).verifyUrl as string, 'http://x').searchParams.get('ticket');
    expect((await call(t, '/verify/totp', '', { code: oathtool(secret, t.clock.now()), ticket })).status).toBe(200);
    expect((await hit(t, 'PATCH', '/internal/org/acme/billing', cookie, '{}')).status).toBe(200);
    t.clock.advance(30_000);

    // With a grant, a once rule must record the use before forwarding: locked → 503, not forwarded.
    takeLock();
    const once = await hit(t, 'DELETE', '/me', cookie);
    expect(once.status).toBe(503);
    expect(t.upstream.appRequests().filter((r) => r.url === '/me')).toEqual([]);
    lock!.exec('ROLLBACK');
    expect((await hit(t, 'DELETE', '/me', cookie)).status).toBe(200);
    expect((await hit(t, 'DELETE', '/me', cookie)).status).toBe(403);
    await expectServesFreePath(t);
  }, 40_000);

  it('meanwhile the free path was answered promptly (SPEC §4.3: no database access, so a stuck store must not stall it)', () => {
    expect(freeDuringLockMs).toBeGreaterThanOrEqual(0);
    expect(freeDuringLockMs).toBeLessThan(1_500);
  });
});

describe('a gateway restart in the middle of step-up flows: factors, grants, one-shots, tickets, challenges and lockouts persist', () => {
  it('picks up every flow where it was left', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'stepgate-restart-'));
    const clock = new TestClock();
    const upstream = await startRecordingUpstream();
    let t = await startTestGateway({ dataDir, clock, upstream });
    try {
      const alice = signIn(t, 'alice'); // enrolled, verified: holds a grant
      const bob = signIn(t, 'bob'); // locked out
      const carol = signIn(t, 'carol'); // challenged: holds a ticket
      const dave = signIn(t, 'dave'); // a passkey challenge open
      const aliceSecret = await enrolTotp(t, alice);
      const bobSecret = await enrolTotp(t, bob);
      const carolSecret = await enrolTotp(t, carol);
      const daveKey = new SoftAuthenticator();
      const opts = await call(t, '/enroll/passkey/options', dave, {});
      expect((await call(t, '/enroll/passkey', dave, { response: daveKey.register(opts.body as { challenge: string }), name: 'k' })).status).toBe(200);

      const aliceCode = oathtool(aliceSecret, clock.now());
      expect((await call(t, '/verify/totp', alice, { code: aliceCode })).status).toBe(200);
      expect((await hit(t, 'DELETE', '/me', alice)).status).toBe(200); // the once grant is used...
      for (let i = 0; i < 5; i++) await call(t, '/verify/totp', bob, { code: '000000' });
      const challenge = await hit(t, 'PATCH', '/internal/org/acme/billing', carol, '{}');
      const ticket = new URL(JSON.parse(challenge.body).verifyUrl as string, 'http://x').searchParams.get('ticket');
      const daveOptions = (await call(t, '/verify/passkey/options', dave, {})).body as { challenge: string };

      await t.close();
      clock.advance(10_000);
      t = await startTestGateway({ dataDir, clock, upstream });

      expect((await call(t, '/status', alice)).body).toMatchObject({ enrolled: ['totp'], grant: { factor: 'totp' } });
      expect((await hit(t, 'PATCH', '/internal/org/acme/billing', alice, '{}')).status).toBe(200);
      expect((await hit(t, 'DELETE', '/me', alice)).status).toBe(403); // ...and stays used
      expect((await call(t, '/verify/totp', alice, { code: aliceCode })).body.code).toBe('INVALID_CODE'); // the step stays spent
      expect((await call(t, '/verify/totp', bob, { code: oathtool(bobSecret, clock.now()) })).status).toBe(429);
      expect((await call(t, '/verify/totp', '', { code: oathtool(carolSecret, clock.now()), ticket })).status).toBe(200);
      expect((await hit(t, 'PATCH', '/internal/org/acme/billing', carol, '{}')).status).toBe(200);
      expect((await call(t, '/verify/passkey', dave, daveKey.assert(daveOptions))).status).toBe(200);
      expect((await hit(t, 'PATCH', '/portal/security/devices/d1/trust', dave)).status).toBe(200);
      clock.advance(15 * MIN);
      expect((await call(t, '/verify/totp', bob, { code: oathtool(bobSecret, clock.now()) })).status).toBe(200);
      await expectServesFreePath(t);
    } finally {
      await t.close();
      await upstream.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
