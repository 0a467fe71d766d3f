// The grant read on the hot path (a gated request with a valid grant). Reading the store for every
// such request cost ~27 µs of the gateway's CPU per request in the benchmark (a quarter of the
// request), so a session's grant is remembered for `grant_cache_ttl` (default 1 s).
//
// What a cached answer may and may not decide:
// - A cached grant may only *allow*. One that does not satisfy the rule is read again.
// - "No grant" is remembered too, for at most 250 ms, so that a client retrying a gated call
//   without a grant (or an attacker hammering one) costs no query per 403. It only ever refuses:
//   a verification made through another instance is seen here within 250 ms (a retry inside that
//   window is challenged once more; a verification through this process is seen at once).
// - This process's own changes (a new verification, "leave sudo mode") drop the entry at once.
// - Changes made elsewhere (another instance on PostgreSQL ending the grant, `stepgate users
//   reset` from the CLI) take effect within the TTL. docs/SECURITY.md states this bound.
// - `once` rules never use it: their grant is read and consumed in the store, exactly once.
import type { Clock } from '../clock.js';
import type { GrantRecord, Store } from '../store/store.js';
import { ExpiringMap } from '../util/expiring-map.js';

const MAX_ENTRIES = 10_000;
const NO_GRANT_TTL_MS = 250;

export class GrantCache {
  /** Keyed by the session's primary key hash. */
  private readonly entries = new ExpiringMap<GrantRecord | null>(MAX_ENTRIES);

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
    if (cached === null) return null; // read moments ago: no grant
    if (cached && allows(cached)) return cached;
    const grant = await this.store.getGrant(sessionKeys);
    if (this.ttlMs > 0) this.entries.set(key, grant, now + (grant ? this.ttlMs : Math.min(this.ttlMs, NO_GRANT_TTL_MS)), now);
    return grant;
  }

  /** The session's grant if one was read within the TTL, without waiting: the caller may only allow on it. */
  known(sessionKeys: string[]): GrantRecord | undefined {
    return this.entries.get(sessionKeys[0]!, this.clock.now()) ?? undefined;
  }

  /** The session's grant changed here (verified again, ended): forget what was read. */
  forget(sessionKeys: string[]): void {
    for (const key of sessionKeys) this.entries.delete(key);
  }
}
