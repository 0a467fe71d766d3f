// Getting a user a grant through the gateway's own JSON API, as a browser would: enrol an
// authenticator app (code from Debian's oathtool), then verify with the next step's code.
import { oathtool, signIn, type TestGateway } from './gateway.js';

export async function stepupApi(t: TestGateway, path: string, cookie: string, body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(t.url + '/__stepup/api' + path, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Enrols TOTP for the signed-in session and returns the secret; the clock is moved one step on. */
export async function enrolTotp(t: TestGateway, cookie: string): Promise<string> {
  const start = await stepupApi(t, '/enroll/totp', cookie, {});
  if (start.status !== 200) throw new Error(`enroll/totp answered ${start.status}: ${JSON.stringify(start.body)}`);
  const secret = start.body.secret as string;
  const confirm = await stepupApi(t, '/enroll/totp/confirm', cookie, { code: oathtool(secret, t.clock.now()) });
  if (confirm.status !== 200) throw new Error(`enroll/totp/confirm answered ${confirm.status}: ${JSON.stringify(confirm.body)}`);
  t.clock.advance(30_000);
  return secret;
}

/** Verifies with TOTP for this session (a grant); the clock is moved one step on afterwards. */
export async function verifyTotp(t: TestGateway, cookie: string, secret: string): Promise<void> {
  const res = await stepupApi(t, '/verify/totp', cookie, { code: oathtool(secret, t.clock.now()) });
  if (res.status !== 200) throw new Error(`verify/totp answered ${res.status}: ${JSON.stringify(res.body)}`);
  t.clock.advance(30_000);
}

/** A signed-in session of `user` that holds a fresh TOTP grant. Returns its Cookie header. */
export async function signInWithGrant(t: TestGateway, user: string): Promise<string> {
  const cookie = signIn(t, user);
  const secret = await enrolTotp(t, cookie);
  await verifyTotp(t, cookie, secret);
  return cookie;
}

/** A signed-in session of `user` with a factor enrolled but no grant. Returns its Cookie header. */
export async function signInEnrolled(t: TestGateway, user: string): Promise<string> {
  const cookie = signIn(t, user);
  await enrolTotp(t, cookie);
  return cookie;
}
