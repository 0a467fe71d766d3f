// Which factor types a user has, as a challenge needs them (the `enrolled` list of a 403, the
// unenrolled policy). Every 403 read them from the store; a script retrying a gated call paid a
// query per retry. A non-empty list is reused for `grant_cache_ttl`, like a grant:
// - an empty list is never reused, so `unenrolled: allow` never lets a request through on a stale
//   "no factors" once the user enrolled (through any instance);
// - a stale non-empty list only changes which factors the challenge offers, for at most the TTL;
// - this process's own enrolments and removals drop the entry at once.
import type { Clock } from '../clock.js';
import type { AuthenticatorType, Store } from '../store/store.js';
import { ExpiringMap } from '../util/expiring-map.js';

const MAX_ENTRIES = 10_000;

export class FactorTypesCache {
  private readonly entries = new ExpiringMap<readonly AuthenticatorType[]>(MAX_ENTRIES);

  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  /** The type of each authenticator the user has (one entry per passkey). */
  async of(user: string): Promise<readonly AuthenticatorType[]> {
    const now = this.clock.now();
    const cached = this.entries.get(user, now);
    if (cached) return cached;
    const types = (await this.store.listFactors(user)).map((f) => f.type);
    if (types.length > 0 && this.ttlMs > 0) this.entries.set(user, types, now + this.ttlMs, now);
    return types;
  }

  /** The user's factors changed here: read them again next time. */
  forget(user: string): void {
    this.entries.delete(user);
  }
}
