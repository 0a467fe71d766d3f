// identity.source: jwt — the app's own JWT, in a cookie or a header, verified with jose against a
// shared secret (HS*), a PEM public key or a JWKS file. An invalid or expired token is anonymous
// (the app would refuse it too); only a misconfiguration is a failure.
// A token that verified is remembered until it expires (at most VERIFIED_TTL_MS): the keys are
// fixed for the process, so until then verifying it again can only give the same identity, and
// a signature check (tens of µs for RS256/ES256) on every gated request would be wasted.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { JwtIdentityConfig } from '../config/types.js';
import { ExpiringMap } from '../util/expiring-map.js';
import { readCookie } from './cookies.js';
import { identityValue } from './upstream.js';
import type { Identity, IdentityInput, IdentitySource } from './types.js';

type Key = KeyObject | JWTVerifyGetKey | CryptoKey;

/** A verified token is trusted again without checking its signature for at most this long. */
const VERIFIED_TTL_MS = 60_000;
/** Tokens run to ~1–2 KB; this many keeps the cache to a few MB whatever the traffic. */
const MAX_VERIFIED_TOKENS = 2_000;

export class JwtIdentitySource implements IdentitySource {
  /** Identities of tokens that verified, by the token itself, until min(exp, now + VERIFIED_TTL_MS). */
  private readonly verified = new ExpiringMap<Identity>(MAX_VERIFIED_TOKENS);

  private constructor(
    private readonly cfg: JwtIdentityConfig,
    private readonly key: Key,
    private readonly clock: Clock,
  ) {}

  static async create(cfg: JwtIdentityConfig, env: NodeJS.ProcessEnv, clock: Clock): Promise<JwtIdentitySource> {
    let key: Key;
    if (cfg.secretEnv) {
      const secret = env[cfg.secretEnv];
      if (!secret) throw new Error(`identity.jwt.secret_env: environment variable ${cfg.secretEnv} is not set`);
      key = createSecretKey(Buffer.from(secret));
    } else if (cfg.publicKeyFile) {
      // A KeyObject carries its own type (RSA, EC curve, Ed25519): jose then accepts exactly the
      // algorithms of that type. (Guessing an algorithm from the PEM text imported every EC key
      // as RSA, and start-up failed.)
      key = createPublicKey(readFileSync(cfg.publicKeyFile, 'utf8'));
    } else if (cfg.jwksFile) {
      key = createLocalJWKSet(JSON.parse(readFileSync(cfg.jwksFile, 'utf8')));
    } else {
      throw new Error('identity.jwt needs secret_env, public_key_file or jwks_file');
    }
    return new JwtIdentitySource(cfg, key, clock);
  }

  /** The raw token of a request, from the configured cookie or header (`Bearer` prefix removed). */
  token(headers: IdentityInput['headers']): string | undefined {
    if (this.cfg.cookie) return readCookie(headers.cookie, this.cfg.cookie);
    const raw = this.cfg.header ? headers[this.cfg.header] : undefined;
    const value = Array.isArray(raw) ? raw[0] : raw;
    return value?.replace(/^Bearer\s+/i, '') || undefined;
  }

  /** The identity of a token that verified recently; anything else needs `resolve` (jose is asynchronous). */
  known({ headers }: IdentityInput): Identity | undefined {
    const token = this.token(headers);
    return token ? this.verified.get(token, this.clock.now()) : undefined;
  }

  async resolve(input: IdentityInput): Promise<Identity | null> {
    const token = this.token(input.headers);
    if (!token) return null;
    const now = this.clock.now();
    const cached = this.verified.get(token, now);
    if (cached) return cached;
    const opts: JWTVerifyOptions = { currentDate: new Date(now) };
    if (this.cfg.issuer) opts.issuer = this.cfg.issuer;
    if (this.cfg.audience) opts.audience = this.cfg.audience;
    try {
      const { payload } = await jwtVerify(token, this.key as Parameters<typeof jwtVerify>[1], opts);
      const user = identityValue(payload[this.cfg.userClaim]);
      if (!user) return null;
      const name = identityValue(payload.name) ?? identityValue(payload.email);
      const sid = identityValue(payload.sid);
      const identity: Identity = Object.freeze({ user, name, sessionId: sid });
      // Never past the token's own expiry; a token without `exp` is re-checked every VERIFIED_TTL_MS.
      const until = Math.min(now + VERIFIED_TTL_MS, typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity);
      if (until > now) this.verified.set(token, identity, until, now);
      return identity;
    } catch {
      return null;
    }
  }
}
