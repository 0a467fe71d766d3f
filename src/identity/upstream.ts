// identity.source: upstream — ask the app itself who this is, forwarding only Cookie and
// Authorization to `identity.upstream.path` (e.g. /api/me). Positive answers are cached per
// credential for `cache_ttl`; anonymous answers are not, so a login shows up at once.
import type { Dispatcher } from 'undici';
import type { UpstreamIdentityConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { ExpiringMap } from '../util/expiring-map.js';
import { cookieOccurrences } from './cookies.js';
import { AmbiguousIdentityError, IdentityUnavailableError, type Identity, type IdentityInput, type IdentitySource } from './types.js';

const LOOKUP_TIMEOUT_MS = 5_000;
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_CACHE_ENTRIES = 10_000;

export interface IdentityStats {
  hits: number;
  misses: number;
}

export class UpstreamIdentitySource implements IdentitySource {
  private readonly cache = new ExpiringMap<Identity>(MAX_CACHE_ENTRIES);
  readonly stats: IdentityStats = { hits: 0, misses: 0 };

  constructor(
    private readonly cfg: UpstreamIdentityConfig,
    private readonly sessionCookies: readonly string[],
    private readonly dispatcher: Dispatcher,
    private readonly clock: Clock,
  ) {}

  async resolve({ headers }: IdentityInput): Promise<Identity | null> {
    const cookie = headers.cookie;
    const authorization = headers.authorization;
    const hasSessionCookie = cookieOccurrences(cookie, this.sessionCookies).length > 0;
    // SPEC §4.4: a session cookie and an Authorization header that name two users → 400. The app
    // might pick either, so the gate cannot know whose grant applies.
    if (hasSessionCookie && authorization) {
      const [byCookie, byToken] = await Promise.all([this.lookup(cookie, undefined), this.lookup(undefined, authorization)]);
      if (byCookie && byToken && byCookie.user !== byToken.user) throw new AmbiguousIdentityError('cookie and Authorization name different users');
      return byCookie ?? byToken;
    }
    if (!cookie && !authorization) return null;
    return this.lookup(cookie, authorization);
  }

  known({ headers }: IdentityInput): Identity | undefined {
    const { cookie, authorization } = headers;
    // Both credentials present: `resolve` checks that they name the same user.
    if (cookie && authorization && cookieOccurrences(cookie, this.sessionCookies).length > 0) return undefined;
    if (!cookie && !authorization) return undefined;
    const cached = this.cache.get(cacheKey(cookie, authorization), this.clock.now());
    if (cached) this.stats.hits++;
    return cached;
  }

  private async lookup(cookie: string | undefined, authorization: string | undefined): Promise<Identity | null> {
    const key = cacheKey(cookie, authorization);
    const now = this.clock.now();
    const cached = this.cache.get(key, now);
    if (cached) {
      this.stats.hits++;
      return cached;
    }
    this.stats.misses++;
    const identity = await this.ask(cookie, authorization);
    if (identity && this.cfg.cacheTtlMs > 0) this.cache.set(key, identity, now + this.cfg.cacheTtlMs, now);
    return identity;
  }

  private async ask(cookie: string | undefined, authorization: string | undefined): Promise<Identity | null> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (cookie) headers.cookie = cookie;
    if (authorization) headers.authorization = authorization;
    let statusCode: number;
    let text: string;
    try {
      const res = await this.dispatcher.request({
        method: 'GET',
        path: this.cfg.path,
        headers,
        headersTimeout: LOOKUP_TIMEOUT_MS,
        bodyTimeout: LOOKUP_TIMEOUT_MS,
      });
      statusCode = res.statusCode;
      text = await readLimited(res.body, MAX_ANSWER_BYTES);
    } catch (err) {
      throw new IdentityUnavailableError(`identity lookup failed: ${(err as Error).message}`);
    }
    if (statusCode === 401 || statusCode === 403) return null;
    if (statusCode < 200 || statusCode > 299) throw new IdentityUnavailableError(`identity lookup answered ${statusCode}`);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new IdentityUnavailableError('identity lookup answered invalid JSON');
    }
    const user = identityValue(dig(answer, this.cfg.userField));
    if (user === null) return null;
    const name = this.cfg.nameField ? identityValue(dig(answer, this.cfg.nameField)) : null;
    return { user, name, sessionId: null };
  }
}

function cacheKey(cookie: string | undefined, authorization: string | undefined): string {
  return `${cookie ?? ''}\0${authorization ?? ''}`;
}

/** Follows a dotted path (`query.userinfo.id`) into parsed JSON. */
export function dig(value: unknown, dotted: string): unknown {
  let cur = value;
  for (const part of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** SPEC §2: a missing, null, empty, 0 or false value means anonymous. Objects are not identities. */
export function identityValue(v: unknown): string | null {
  if (typeof v === 'string') return v.length > 0 ? v : null;
  if (typeof v === 'number') return v !== 0 && Number.isFinite(v) ? String(v) : null;
  return null;
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error(`answer larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
