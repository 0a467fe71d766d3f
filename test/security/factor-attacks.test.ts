// Attacks on the factors themselves (SPEC §9.3–§9.5), against a real gateway and its real store:
// TOTP brute force (lockout across a restart, per user, the 100-failure disable), replays, codes
// and recovery codes of another user, and WebAuthn at the API level with a software authenticator
// (test/helpers/soft-authenticator.ts) whose every field can be bent: challenge reuse, another
// session's challenge, an expired challenge, wrong origin, wrong rpID, no user verification,
// another user's credential, a forged signature, a counter going backwards — each must answer
// 400 PASSKEY_REJECTED and leave no grant — while a synced passkey (counter always 0) keeps
// working and a passkey success lifts a TOTP lockout.
// test/integration/stepup-flow.test.ts has the basic lockout, replay and single-use cases.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { oathtool, signIn, startTestGateway, TestClock, type TestGateway } from '../helpers/gateway.js';
import { FLAG_UP, SoftAuthenticator, type Tamper } from '../helpers/soft-authenticator.js';
import { startRecordingUpstream } from '../helpers/upstream.js';

const MIN = 60_000;

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

async function call(t: TestGateway, path: string, cookie: string, body?: unknown): Promise<Answer> {
  const res = await fetch(t.url + '/__stepup/api' + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/** Enrols TOTP (the confirmation consumes the current step); returns the secret and recovery codes. */
async function enrolTotp(t: TestGateway, cookie: string, advance = true): Promise<{ secret: string; recoveryCodes: string[] }> {
  const start = await call(t, '/enroll/totp', cookie, {});
  expect(start.status, JSON.stringify(start.body)).toBe(200);
  const secret = start.body.secret as string;
  const confirm = await call(t, '/enroll/totp/confirm', cookie, { code: oathtool(secret, t.clock.now()) });
  expect(confirm.status, JSON.stringify(confirm.body)).toBe(200);
  if (advance) t.clock.advance(30_000);
  return { secret, recoveryCodes: (confirm.body.recoveryCodes as string[] | undefined) ?? [] };
}

const totp = (t: TestGateway, cookie: string, code: string) => call(t, '/verify/totp', cookie, { code });
const recovery = (t: TestGateway, cookie: string, code: string) => call(t, '/verify/recovery', cookie, { code });
const grantOf = async (t: TestGateway, cookie: string) => (await call(t, '/status', cookie)).body.grant as Record<string, any> | null;
/** The passkey-only rule of DEFAULT_ROUTES. */
const deviceTrust = (t: TestGateway, cookie: string) => fetch(t.url + '/portal/security/devices/d1/trust', { method: 'PATCH', headers: { cookie } });
const billing = (t: TestGateway, cookie: string) => fetch(t.url + '/internal/org/acme/billing', { method: 'PATCH', headers: { cookie } });

// ── TOTP and recovery codes ─────────────────────────────────────────────────────────────────────

describe('TOTP brute force (SPEC §9.4)', () => {
  it('a lockout survives a gateway restart on the same data_dir, and locks only that user', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'stepgate-restart-'));
    const clock = new TestClock();
    const upstream = await startRecordingUpstream();
    let t = await startTestGateway({ dataDir, clock, upstream });
    try {
      const alice = signIn(t, 'alice', 'sid-alice-restart');
      const bob = signIn(t, 'bob', 'sid-bob-restart');
      const a = await enrolTotp(t, alice);
      const b = await enrolTotp(t, bob);
      for (let i = 0; i < 5; i++) expect((await totp(t, alice, '000000')).body.code).toBe('INVALID_CODE');
      expect((await totp(t, alice, oathtool(a.secret, clock.now()))).status).toBe(429);
      clock.advance(60_000);

      await t.close();
      t = await startTestGateway({ dataDir, clock, upstream });

      const locked = await totp(t, alice, oathtool(a.secret, clock.now()));
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('RATE_LIMITED');
      expect(Number(locked.headers.get('retry-after'))).toBe(15 * 60 - 60);
      expect((await recovery(t, alice, a.recoveryCodes[0]!)).status).toBe(429);
      // Another user is untouched, on the old gateway's data and the new one alike.
      expect((await totp(t, bob, oathtool(b.secret, clock.now()))).status).toBe(200);
      clock.advance(14 * MIN);
      expect((await totp(t, alice, oathtool(a.secret, clock.now()))).status).toBe(200);
    } finally {
      await t.close();
      await upstream.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('TOTP and recovery attacks', () => {
  let t: TestGateway;
  beforeEach(async () => {
    t = await startTestGateway();
  });
  afterEach(async () => {
    await t.close();
  });

  it('100 consecutive failures (TOTP and recovery, across lock windows) disable both: 403 FACTOR_DISABLED', async () => {
    const alice = signIn(t, 'alice');
    const { secret, recoveryCodes } = await enrolTotp(t, alice);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 5; i++) {
        const res = i % 2 ? await recovery(t, alice, 'AAAAAAAAAA') : await totp(t, alice, '000000');
        expect(res.body.code, `failure ${round * 5 + i + 1}`).toBe('INVALID_CODE');
      }
      if (round < 19) {
        expect((await totp(t, alice, '000000')).status).toBe(429); // locked: not evaluated, not counted
        t.clock.advance(15 * MIN);
      }
    }
    for (const res of [await totp(t, alice, oathtool(secret, t.clock.now())), await recovery(t, alice, recoveryCodes[0]!)]) {
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('FACTOR_DISABLED');
    }
    // Still disabled long after every lock window has passed.
    t.clock.advance(24 * 60 * MIN);
    expect((await totp(t, alice, oathtool(secret, t.clock.now()))).body.code).toBe('FACTOR_DISABLED');
    expect((await recovery(t, alice, recoveryCodes[1]!)).body.code).toBe('FACTOR_DISABLED');
    expect(await grantOf(t, alice)).toBeNull();
    // Another user is not disabled by them.
    const bob = signIn(t, 'bob');
    const b = await enrolTotp(t, bob);
    expect((await totp(t, bob, oathtool(b.secret, t.clock.now()))).status).toBe(200);
  });

  it('only CONSECUTIVE failures disable: a success in between restarts the count', async () => {
    const alice = signIn(t, 'alice');
    const { secret } = await enrolTotp(t, alice);
    const fail = async (n: number) => {
      for (let i = 0; i < n; i++) {
        expect((await totp(t, alice, '000000')).body.code).toBe('INVALID_CODE');
        if ((i + 1) % 5 === 0) t.clock.advance(15 * MIN);
      }
    };
    await fail(95);
    t.clock.advance(30_000);
    expect((await totp(t, alice, oathtool(secret, t.clock.now()))).status).toBe(200);
    await fail(10);
    t.clock.advance(30_000);
    expect((await totp(t, alice, oathtool(secret, t.clock.now()))).status).toBe(200);
  });

  it('refuses replays: the enrolment confirmation code, within the step, across steps, from another session', async () => {
    const alice = signIn(t, 'alice');
    const other = signIn(t, 'alice');
    const { secret } = await enrolTotp(t, alice, false);
    // The confirmation consumed this step (RFC 6238 §5.2: "enrolment confirmation included").
    const confirmation = oathtool(secret, t.clock.now());
    expect((await totp(t, alice, confirmation)).body.code).toBe('INVALID_CODE');
    t.clock.advance(30_000);
    const code = oathtool(secret, t.clock.now());
    expect((await totp(t, alice, code)).status).toBe(200);
    expect((await totp(t, alice, code)).body.code).toBe('INVALID_CODE'); // same step
    expect((await totp(t, other, code)).body.code).toBe('INVALID_CODE'); // another session of the same user
    t.clock.advance(30_000);
    expect((await totp(t, alice, code)).body.code).toBe('INVALID_CODE'); // next step: still in the ±1 window, still spent
    expect(await grantOf(t, other)).toBeNull();
    // The current step is still good.
    expect((await totp(t, other, oathtool(secret, t.clock.now()))).status).toBe(200);
  });

  it("refuses a code computed from another user's secret, and leaves that user's step unspent", async () => {
    const alice = signIn(t, 'alice');
    const bob = signIn(t, 'bob');
    const a = await enrolTotp(t, alice);
    const b = await enrolTotp(t, bob);
    const bobsCode = oathtool(b.secret, t.clock.now());
    if (bobsCode !== oathtool(a.secret, t.clock.now())) {
      expect((await totp(t, alice, bobsCode)).body.code).toBe('INVALID_CODE');
    }
    expect(await grantOf(t, alice)).toBeNull();
    expect((await billing(t, alice)).status).toBe(403);
    expect((await totp(t, bob, bobsCode)).status).toBe(200);
    expect((await totp(t, alice, oathtool(a.secret, t.clock.now()))).status).toBe(200);
  });

  it("recovery codes: one use from any session; user A's code is worthless to user B and stays A's", async () => {
    const alice = signIn(t, 'alice');
    const aliceOther = signIn(t, 'alice');
    const bob = signIn(t, 'bob');
    const a = await enrolTotp(t, alice);
    await enrolTotp(t, bob);
    const code = a.recoveryCodes[0]!;
    expect((await recovery(t, bob, code)).body.code).toBe('INVALID_CODE');
    expect(await grantOf(t, bob)).toBeNull();
    expect((await recovery(t, alice, code)).status).toBe(200);
    expect((await recovery(t, aliceOther, code)).body.code).toBe('INVALID_CODE');
    expect((await recovery(t, aliceOther, code.toLowerCase())).body.code).toBe('INVALID_CODE');
    expect((await recovery(t, bob, code)).body.code).toBe('INVALID_CODE');
    expect(await grantOf(t, aliceOther)).toBeNull();
    expect((await billing(t, bob)).status).toBe(403);
  });
});

// ── passkeys ─────────────────────────────────────────────────────────────────────────────────────

/** Registers `auth` as a passkey of the session's user (first factor, or with a fresh grant). */
async function enrolPasskey(t: TestGateway, cookie: string, auth: SoftAuthenticator): Promise<Answer> {
  const options = await call(t, '/enroll/passkey/options', cookie, {});
  expect(options.status, JSON.stringify(options.body)).toBe(200);
  expect(options.body.rp?.id).toBe('localhost');
  const done = await call(t, '/enroll/passkey', cookie, { response: auth.register(options.body as { challenge: string }), name: 'soft key' });
  expect(done.status, JSON.stringify(done.body)).toBe(200);
  return done;
}

async function passkeyOptions(t: TestGateway, cookie: string): Promise<{ challenge: string }> {
  const options = await call(t, '/verify/passkey/options', cookie, {});
  expect(options.status, JSON.stringify(options.body)).toBe(200);
  expect(options.body.userVerification).toBe('required');
  return options.body as { challenge: string };
}

async function verifyPasskey(t: TestGateway, cookie: string, auth: SoftAuthenticator, tamper: Tamper = {}): Promise<Answer> {
  return call(t, '/verify/passkey', cookie, auth.assert(await passkeyOptions(t, cookie), tamper));
}

describe('passkeys at the API level (SPEC §9.5, software authenticator)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t.close();
  });

  let users = 0;
  /** A fresh user with `auth` as their only factor, signed in; returns the session cookie. */
  async function userWith(auth: SoftAuthenticator): Promise<{ user: string; cookie: string }> {
    const user = `pk-user-${++users}`;
    const cookie = signIn(t, user);
    const enrolled = await enrolPasskey(t, cookie, auth);
    expect(enrolled.body.recoveryCodes).toHaveLength(10);
    expect(await grantOf(t, cookie)).toBeNull(); // enrolling never creates a grant
    return { user, cookie };
  }

  async function expectRejectedAndNoGrant(res: Answer, cookie: string): Promise<void> {
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.code).toBe('PASSKEY_REJECTED');
    expect(await grantOf(t, cookie)).toBeNull();
    expect((await deviceTrust(t, cookie)).status).toBe(403);
  }

  it('a passkey step-up works: grant factor passkey, and the passkey-only rule passes', async () => {
    const auth = new SoftAuthenticator();
    const { user, cookie } = await userWith(auth);
    expect((await deviceTrust(t, cookie)).status).toBe(403);
    const res = await verifyPasskey(t, cookie, auth);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ ok: true, factor: 'passkey' });
    expect(await grantOf(t, cookie)).toMatchObject({ factor: 'passkey' });
    expect((await deviceTrust(t, cookie)).status).toBe(200);
    const seen = t.upstream.appRequests().at(-1)!;
    expect(seen.headers['x-stepgate-user']).toBe(user);
    expect(seen.headers['x-stepgate-factor']).toBe('passkey');
    expect(seen.headers['x-stepgate-rule']).toBe('device-trust');
  });

  it('challenge reuse: replaying the same assertion is rejected (synced passkey, so only the challenge can stop it)', async () => {
    const auth = new SoftAuthenticator({ synced: true });
    const { cookie } = await userWith(auth);
    const assertion = auth.assert(await passkeyOptions(t, cookie));
    expect((await call(t, '/verify/passkey', cookie, assertion)).status).toBe(200);
    expect((await call(t, '/grant/end', cookie, {})).status).toBe(200);
    await expectRejectedAndNoGrant(await call(t, '/verify/passkey', cookie, assertion), cookie);
  });

  it("a challenge issued to another session of the same user is rejected (and stays usable by its own session)", async () => {
    const auth = new SoftAuthenticator();
    const { user, cookie } = await userWith(auth);
    const otherSession = signIn(t, user);
    const options = await passkeyOptions(t, cookie);
    await expectRejectedAndNoGrant(await call(t, '/verify/passkey', otherSession, auth.assert(options)), otherSession);
    expect((await call(t, '/verify/passkey', cookie, auth.assert(options))).status).toBe(200);
    expect(await grantOf(t, otherSession)).toBeNull();
  });

  it("a challenge issued to another user's session is rejected", async () => {
    const auth = new SoftAuthenticator();
    const { cookie } = await userWith(auth);
    const other = await userWith(new SoftAuthenticator());
    const foreign = await passkeyOptions(t, other.cookie);
    await expectRejectedAndNoGrant(await call(t, '/verify/passkey', cookie, auth.assert(foreign)), cookie);
  });

  it('an expired challenge (2 minutes) is rejected', async () => {
    const auth = new SoftAuthenticator();
    const { cookie } = await userWith(auth);
    const options = await passkeyOptions(t, cookie);
    t.clock.advance(2 * MIN);
    await expectRejectedAndNoGrant(await call(t, '/verify/passkey', cookie, auth.assert(options)), cookie);
  });

  it('several challenges open at once (tabs): each is usable once', async () => {
    const auth = new SoftAuthenticator();
    const { cookie } = await userWith(auth);
    const tab1 = await passkeyOptions(t, cookie);
    const tab2 = await passkeyOptions(t, cookie);
    expect((await call(t, '/verify/passkey', cookie, auth.assert(tab2))).status).toBe(200);
    expect((await call(t, '/verify/passkey', cookie, auth.assert(tab1))).status).toBe(200);
    expect((await call(t, '/verify/passkey', cookie, auth.assert(tab1))).body.code).toBe('PASSKEY_REJECTED');
  });

  const bent: Array<[string, Tamper]> = [
    ['wrong origin in clientDataJSON', { origin: 'https://evil.example' }],
    ['a look-alike origin', { origin: 'http://localhost:8080.evil.example' }],
    ['another port', { origin: 'http://localhost:8081' }],
    ['crossOrigin: true from an evil origin', { origin: 'https://evil.example', crossOrigin: true }],
    ['wrong rpID hash', { rpId: 'evil.example' }],
    ['rpID hash of a parent-looking domain', { rpId: 'localhost.evil.example' }],
    ['UV flag missing (user presence only)', { flags: FLAG_UP }],
    ['UP and UV flags missing', { flags: 0 }],
    ['clientDataJSON type webauthn.create', { type: 'webauthn.create' }],
    ['a challenge the gateway never issued', { challenge: Buffer.alloc(32, 1).toString('base64url') }],
  ];
  it.each(bent)('%s → 400 PASSKEY_REJECTED, no grant', async (_name, tamper) => {
    const auth = new SoftAuthenticator();
    const { cookie } = await userWith(auth);
    await expectRejectedAndNoGrant(await verifyPasskey(t, cookie, auth, tamper), cookie);
  });

  it('a forged signature (right credential id, another key) is rejected', async () => {
    const auth = new SoftAuthenticator();
    const { cookie } = await userWith(auth);
    await expectRejectedAndNoGrant(await verifyPasskey(t, cookie, auth, { signWith: new SoftAuthenticator().privateKey }), cookie);
  });

  it("a credential belonging to another user is rejected, even correctly signed over this session's challenge", async () => {
    const mine = new SoftAuthenticator();
    const theirs = new SoftAuthenticator();
    const { cookie } = await userWith(mine);
    await userWith(theirs);
    await expectRejectedAndNoGrant(await verifyPasskey(t, cookie, theirs), cookie);
    expect((await verifyPasskey(t, cookie, mine)).status).toBe(200);
  });

  it('a signature counter that goes backwards, or repeats, is rejected (possible clone)', async () => {
    const auth = new SoftAuthenticator({ counter: 5 });
    const { cookie } = await userWith(auth);
    expect((await verifyPasskey(t, cookie, auth, { counter: 9 })).status).toBe(200);
    await call(t, '/grant/end', cookie, {});
    await expectRejectedAndNoGrant(await verifyPasskey(t, cookie, auth, { counter: 3 }), cookie);
    await expectRejectedAndNoGrant(await verifyPasskey(t, cookie, auth, { counter: 9 }), cookie);
    await expectRejectedAndNoGrant(await verifyPasskey(t, cookie, auth, { counter: 0 }), cookie);
    expect((await verifyPasskey(t, cookie, auth, { counter: 10 })).status).toBe(200);
  });

  it('a synced passkey that always reports counter 0 keeps working', async () => {
    const auth = new SoftAuthenticator({ synced: true });
    const { cookie } = await userWith(auth);
    for (let i = 0; i < 3; i++) {
      const res = await verifyPasskey(t, cookie, auth);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      await call(t, '/grant/end', cookie, {});
    }
  });

  it('registration is checked too: wrong origin, wrong rpID or no UV → 400 PASSKEY_REJECTED, nothing added', async () => {
    const user = `pk-user-${++users}`;
    const cookie = signIn(t, user);
    for (const tamper of [{ origin: 'https://evil.example' }, { rpId: 'evil.example' }, { flags: FLAG_UP | 0x40 }] satisfies Tamper[]) {
      const options = await call(t, '/enroll/passkey/options', cookie, {});
      const res = await call(t, '/enroll/passkey', cookie, { response: new SoftAuthenticator().register(options.body as { challenge: string }, tamper), name: 'x' });
      expect(res.status, JSON.stringify(tamper)).toBe(400);
      expect(res.body.code).toBe('PASSKEY_REJECTED');
    }
    expect((await call(t, '/factors', cookie)).body.factors).toEqual([]);
  });

  it('a passkey success lifts a TOTP lockout and the 100-failure disable', async () => {
    const auth = new SoftAuthenticator();
    const user = `pk-user-${++users}`;
    const cookie = signIn(t, user);
    const { secret } = await enrolTotp(t, cookie);
    expect((await totp(t, cookie, oathtool(secret, t.clock.now()))).status).toBe(200);
    t.clock.advance(30_000);
    await enrolPasskey(t, cookie, auth); // a second factor needs the fresh grant just made
    await call(t, '/grant/end', cookie, {});

    for (let i = 0; i < 5; i++) expect((await totp(t, cookie, '000000')).body.code).toBe('INVALID_CODE');
    expect((await totp(t, cookie, oathtool(secret, t.clock.now()))).status).toBe(429);
    // Passkeys stay usable during a lockout (a thief cannot lock the owner out)...
    expect((await verifyPasskey(t, cookie, auth)).status).toBe(200);
    // ...and the owner's passkey success lifts it.
    expect((await totp(t, cookie, oathtool(secret, t.clock.now()))).status).toBe(200);

    for (let i = 0; i < 100; i++) {
      expect((await totp(t, cookie, '000000')).body.code).toBe('INVALID_CODE');
      if ((i + 1) % 5 === 0) t.clock.advance(15 * MIN);
    }
    t.clock.advance(30_000);
    expect((await totp(t, cookie, oathtool(secret, t.clock.now()))).body.code).toBe('FACTOR_DISABLED');
    expect((await verifyPasskey(t, cookie, auth)).status).toBe(200);
    t.clock.advance(30_000);
    expect((await totp(t, cookie, oathtool(secret, t.clock.now()))).status).toBe(200);
  });
});
