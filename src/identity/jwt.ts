// identity.source: jwt — the app's own JWT, in a cookie or a header, verified with jose against a
// shared secret (HS*), a PEM public key or a JWKS file. An invalid or expired token is anonymous
// (the app would refuse it too); only a misconfiguration is a failure.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, importSPKI, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { createSecretKey, type KeyObject } from 'node:crypto';
import type { JwtIdentityConfig } from '../config/types.js';
import { readCookie } from './cookies.js';
import { identityValue } from './upstream.js';
import type { Identity, IdentityInput, IdentitySource } from './types.js';

type Key = KeyObject | JWTVerifyGetKey | CryptoKey;

export class JwtIdentitySource implements IdentitySource {
  private constructor(
    private readonly cfg: JwtIdentityConfig,
    private readonly key: Key,
  ) {}

  static async create(cfg: JwtIdentityConfig, env: NodeJS.ProcessEnv): Promise<JwtIdentitySource> {
    let key: Key;
    if (cfg.secretEnv) {
      const secret = env[cfg.secretEnv];
      if (!secret) throw new Error(`identity.jwt.secret_env: environment variable ${cfg.secretEnv} is not set`);
      key = createSecretKey(Buffer.from(secret));
    } else if (cfg.publicKeyFile) {
      const pem = readFileSync(cfg.publicKeyFile, 'utf8');
      // The algorithm is only needed to import; jose accepts the key for any compatible alg.
      key = await importSPKI(pem, pem.includes('EC') ? 'ES256' : 'RS256');
    } else if (cfg.jwksFile) {
      key = createLocalJWKSet(JSON.parse(readFileSync(cfg.jwksFile, 'utf8')));
    } else {
      throw new Error('identity.jwt needs secret_env, public_key_file or jwks_file');
    }
    return new JwtIdentitySource(cfg, key);
  }

  /** The raw token of a request, from the configured cookie or header (`Bearer` prefix removed). */
  token(headers: IdentityInput['headers']): string | undefined {
    if (this.cfg.cookie) return readCookie(headers.cookie, this.cfg.cookie);
    const raw = this.cfg.header ? headers[this.cfg.header] : undefined;
    const value = Array.isArray(raw) ? raw[0] : raw;
    return value?.replace(/^Bearer\s+/i, '') || undefined;
  }

  /** Verifying a token is asynchronous (jose), so nothing is known without waiting. */
  known(): undefined {
    return undefined;
  }

  async resolve({ headers }: IdentityInput): Promise<Identity | null> {
    const token = this.token(headers);
    if (!token) return null;
    const opts: JWTVerifyOptions = {};
    if (this.cfg.issuer) opts.issuer = this.cfg.issuer;
    if (this.cfg.audience) opts.audience = this.cfg.audience;
    try {
      const { payload } = await jwtVerify(token, this.key as Parameters<typeof jwtVerify>[1], opts);
      const user = identityValue(payload[this.cfg.userClaim]);
      if (!user) return null;
      const name = identityValue(payload.name) ?? identityValue(payload.email);
      const sid = identityValue(payload.sid);
      return { user, name, sessionId: sid };
    } catch {
      return null;
    }
  }
}
