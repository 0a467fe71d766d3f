// A gateway whose identity source is the app's own JWT (identity.source: jwt), end to end: a real
// gateway, a recording upstream, tokens signed by jose, TOTP codes from oathtool. As an attacker:
// no token, a token signed with another key and an expired token never reach the app, even once
// the named user holds a grant and the gateway has already verified (and remembered) their token.
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { enrolTotp, verifyTotp } from '../helpers/stepup.js';

const SECRET = 'the-apps-jwt-secret-of-32-bytes-or-more';
let t: TestGateway;

beforeAll(async () => {
  t = await startTestGateway({
    env: { APP_JWT_SECRET: SECRET },
    gatewayYaml: (upstreamUrl, dataDir) => `listen: 127.0.0.1:0
upstream: ${upstreamUrl}
public_origin: http://localhost:8080
data_dir: ${dataDir}
admin_listen: null
identity:
  source: jwt
  jwt:
    cookie: app_token
    secret_env: APP_JWT_SECRET
    issuer: https://id.example
    audience: legacy-app
`,
  });
});
afterAll(() => t.close());

/** A token for `user` at the gateway's clock, valid `minutes` from now. */
function token(user: string, { sid = `sid-${user}`, minutes = 30, secret = SECRET } = {}): Promise<string> {
  const now = Math.floor(t.clock.now() / 1000);
  return new SignJWT({ sub: user, email: `${user}@example.com`, sid })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(now)
    .setIssuer('https://id.example')
    .setAudience('legacy-app')
    .setExpirationTime(now + minutes * 60)
    .sign(new TextEncoder().encode(secret));
}

const cookieOf = (jwt: string) => `app_token=${jwt}`;
const billing = (cookie?: string) =>
  fetch(`${t.url}/internal/org/acme/billing`, { method: 'PATCH', headers: cookie ? { cookie } : {} });
const billingRequestsSeen = () => t.upstream.appRequests().filter((r) => r.url === '/internal/org/acme/billing').length;

describe('identity.source: jwt', () => {
  it('gates by the token\'s user, forwards after a step-up, and keeps every forged or stale token out', async () => {
    expect((await billing()).status).toBe(401);

    const alice = cookieOf(await token('alice', { minutes: 8 }));
    const challenge = await billing(alice);
    expect(challenge.status).toBe(403);
    expect(((await challenge.json()) as { code: string }).code).toBe('STEP_UP_REQUIRED');

    const secret = await enrolTotp(t, alice);
    await verifyTotp(t, alice, secret);
    const passed = await billing(alice);
    expect(passed.status).toBe(200);
    const seen = t.upstream.appRequests().at(-1)!;
    expect(seen.headers['x-stepgate-user']).toBe('alice');
    expect(seen.headers['x-stepgate-factor']).toBe('totp');
    expect(billingRequestsSeen()).toBe(1);

    // The same claims and session id, signed with a key that is not the app's.
    const forged = cookieOf(await token('alice', { secret: 'an-attackers-secret-of-32-bytes-or-more' }));
    expect((await billing(forged)).status).toBe(401);

    // A refreshed token of the same session (same `sid`) keeps the grant.
    const refreshed = cookieOf(await token('alice', { minutes: 20 }));
    expect((await billing(refreshed)).status).toBe(200);
    expect(billingRequestsSeen()).toBe(2);

    // Past the first token's exp: it is anonymous, although the gateway verified it before.
    t.clock.advance(7 * 60_000);
    expect((await billing(alice)).status).toBe(401);
    expect((await billing(forged)).status).toBe(401);
    expect(billingRequestsSeen()).toBe(2);
  });
});
