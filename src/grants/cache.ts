// The grant read on the hot path (a gated request with a valid grant). Reading the store for every
// such request cost ~25 µs of the gateway's CPU per request in the benchmark (a third of the
// request), so a session's grant is remembered for `grant_cache_ttl` (default 1 s).
//
// What a cached grant may and may not decide:
// - It may only *allow*. A cached grant that does not satisfy the rule is read again, so a newer
//   verification made through another gateway instance is never missed.
// - This process's own changes (a new verification, "leave sudo mode") drop the entry at once.
// - Changes made elsewhere (another instance on PostgreSQL ending the grant, `stepgate users
//   reset` from the CLI) take effect within the TTL. docs/SECURITY.md states this bound.
// - `once` rules never use it: their grant is read and consumed in the store, exactly once.
import type { Clock } from '../clock.js';
import type { GrantRecord, Store } from '../store/store.js';
import { ExpiringMap } from '../util/expiring-map.js';

const MAX_ENTRIES = 10_000;

export class GrantCache {
  /** Keyed by the session's primary key hash. */
  private readonly entries = new ExpiringMap<GrantRecord>(MAX_ENTRIES);

  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  /**
   * The session's grant if `allows` accepts it, else the store's current answer. `allows` is the
   * rule check: only a grant it accepts is served from memory.
   */
  async find(sessionKeys: string[], allows: (grant: GrantRecord) => boolean): Promise<GrantRecord | null> {
    const key = sessionKeys[0]!;
    const now = this.clock.now();
    const cached = this.entries.get(key, now);
    if (cached && allows(cached)) return cached;
    const grant = await this.store.getGrant(sessionKeys);
    if (grant && this.ttlMs > 0) this.entries.set(key, grant, now + this.ttlMs, now);
    else this.entries.delete(key);
    return grant;
  }

  /** The session's grant changed here (verified again, ended): forget what was read. */
  forget(sessionKeys: string[]): void {
    for (const key of sessionKeys) this.entries.delete(key);
  }
}
