// identity.source: jwt with real tokens signed by jose: who a token names, what counts as
// anonymous (bad signature, another key, `alg: none`, expired, wrong issuer or audience), and the
// verified-token memory, which may spare a signature check but never outlive a token's `exp`.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import type { JwtIdentityConfig } from '../../src/config/types.js';
import { JwtIdentitySource } from '../../src/identity/jwt.js';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const secretKey = new TextEncoder().encode(SECRET);
const BASE: JwtIdentityConfig = {
  cookie: 'session_jwt',
  header: null,
  secretEnv: 'TEST_JWT_SECRET',
  jwksFile: null,
  publicKeyFile: null,
  issuer: 'https://id.example',
  audience: 'app',
  userClaim: 'sub',
};

function clockAt(t: number) {
  return { t, now() { return this.t; } };
}

async function source(cfg: Partial<JwtIdentityConfig> = {}, clock = clockAt(T0)) {
  return { clock, src: await JwtIdentitySource.create({ ...BASE, ...cfg }, { TEST_JWT_SECRET: SECRET }, clock) };
}

/** An HS256 token for `sub`, issued at T0 by default, expiring 10 minutes later. */
function token(claims: Record<string, unknown> = {}, { exp = T0 + 600_000, iss = BASE.issuer!, aud = BASE.audience!, key = secretKey } = {}) {
  const jwt = new SignJWT({ sub: 'alice', email: 'alice@example.com', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(Math.floor(T0 / 1000))
    .setIssuer(iss)
    .setAudience(aud);
  if (exp !== 0) jwt.setExpirationTime(Math.floor(exp / 1000));
  return jwt.sign(key);
}

const withCookie = (t: string) => ({ headers: { cookie: `theme=dark; session_jwt=${t}` }, peer: '127.0.0.1' });

describe('identity.source: jwt', () => {
  it('names the user of a valid token, from the cookie or the Authorization header', async () => {
    const { src } = await source();
    expect(await src.resolve(withCookie(await token({ sid: 's-1' })))).toEqual({ user: 'alice', name: 'alice@example.com', sessionId: 's-1' });
    const { src: byHeader } = await source({ cookie: null, header: 'authorization' });
    expect(await byHeader.resolve({ headers: { authorization: `Bearer ${await token()}` }, peer: undefined })).toMatchObject({ user: 'alice' });
    expect(await byHeader.resolve({ headers: {}, peer: undefined })).toBeNull();
  });

  const dir = mkdtempSync(join(tmpdir(), 'stepgate-jwt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A new key pair, a source that verifies with its public key as a PEM file, and a token signer. */
  async function withKeyPair(type: 'ec' | 'rsa', alg: 'ES256' | 'RS256') {
    const { privateKey, publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = join(dir, `${type}.pem`);
    writeFileSync(pem, publicKey.export({ type: 'spki', format: 'pem' }));
    const { src } = await source({ secretEnv: null, publicKeyFile: pem });
    const sign = (sub: string) =>
      new SignJWT({ sub }).setProtectedHeader({ alg }).setIssuer(BASE.issuer!).setAudience(BASE.audience!).setExpirationTime(Math.floor((T0 + 60_000) / 1000)).sign(privateKey);
    return { src, publicKey, sign };
  }

  it('verifies ES256 tokens against a PEM public key or a JWKS file', async () => {
    const { src, publicKey, sign } = await withKeyPair('ec', 'ES256');
    const es = await sign('carol');
    expect(await src.resolve(withCookie(es))).toMatchObject({ user: 'carol' });
    // The same claims signed with the shared secret are not signed by this key.
    expect(await src.resolve(withCookie(await token({ sub: 'carol' })))).toBeNull();
    const jwks = join(dir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig' }] }));
    const { src: fromJwks } = await source({ secretEnv: null, jwksFile: jwks });
    expect(await fromJwks.resolve(withCookie(es))).toMatchObject({ user: 'carol' });
    // Algorithm confusion: HS256 with the public key's text as the HMAC secret.
    const pemText = new TextEncoder().encode(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    expect(await src.resolve(withCookie(await token({ sub: 'carol' }, { key: pemText })))).toBeNull();
  });

  it('verifies RS256 tokens against a PEM public key', async () => {
    const { src, sign } = await withKeyPair('rsa', 'RS256');
    expect(await src.resolve(withCookie(await sign('dave')))).toMatchObject({ user: 'dave' });
  });

  it.each([
    ['another key', () => token({}, { key: new TextEncoder().encode('another-secret-of-at-least-32-bytes!!') })],
    ['alg: none', async () => new UnsecuredJWT({ sub: 'alice', iss: BASE.issuer, aud: BASE.audience }).encode()],
    ['an expired token', () => token({}, { exp: T0 - 1_000 })],
    ['another issuer', () => token({}, { iss: 'https://evil.example' })],
    ['another audience', () => token({}, { aud: 'other-app' })],
    ['no user claim', () => token({ sub: undefined })],
    ['a tampered payload', async () => {
      const [h, , sig] = (await token()).split('.');
      return `${h}.${Buffer.from(JSON.stringify({ sub: 'mallory', iss: BASE.issuer, aud: BASE.audience })).toString('base64url')}.${sig}`;
    }],
  ])('treats %s as anonymous, and does not remember it', async (_name, make) => {
    const { src } = await source();
    const input = withCookie(await make());
    expect(await src.resolve(input)).toBeNull();
    expect(src.known(input)).toBeUndefined();
    expect(await src.resolve(input)).toBeNull();
  });

  it('remembers a verified token (one identity object) until its exp, never past it', async () => {
    const { src, clock } = await source();
    const input = withCookie(await token({}, { exp: T0 + 30_000 }));
    expect(src.known(input)).toBeUndefined();
    const first = await src.resolve(input);
    expect(first).toMatchObject({ user: 'alice' });
    expect(Object.isFrozen(first)).toBe(true);
    expect(src.known(input)).toBe(first);
    expect(await src.resolve(input)).toBe(first);
    clock.t = T0 + 29_000;
    expect(src.known(input)).toBe(first);
    clock.t = T0 + 30_000;
    expect(src.known(input)).toBeUndefined();
    expect(await src.resolve(input)).toBeNull();
  });

  it('checks a long-lived token again after a minute', async () => {
    const { src, clock } = await source();
    const input = withCookie(await token({}, { exp: 0 }));
    const first = await src.resolve(input);
    expect(first).toMatchObject({ user: 'alice' });
    clock.t = T0 + 59_000;
    expect(src.known(input)).toBe(first);
    clock.t = T0 + 60_000;
    expect(src.known(input)).toBeUndefined();
    const again = await src.resolve(input);
    expect(again).toEqual(first);
    expect(again).not.toBe(first);
  });
});
