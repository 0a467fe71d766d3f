// A Map of entries that expire, bounded in size: the gateway's in-memory caches (identity
// look-ups, grants) must not grow without limit however many sessions pass through.

export class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(private readonly maxEntries: number) {}

  /** The value stored for `key`, unless it expired by `now`. */
  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    return entry && entry.until > now ? entry.value : undefined;
  }

  set(key: string, value: V, until: number, now: number): void {
    if (this.entries.size >= this.maxEntries && !this.entries.has(key)) this.evict(now);
    this.entries.set(key, { value, until });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /**
   * Expired entries go first, then the oldest (a Map iterates in insertion order) until a tenth
   * is free: evicting one entry at a time made every insert into a full map scan all of it,
   * which a burst of new sessions would pay on every request.
   */
  private evict(now: number): void {
    for (const [k, v] of this.entries) if (v.until <= now) this.entries.delete(k);
    const keep = Math.floor(this.maxEntries * 0.9);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= keep) break;
      this.entries.delete(k);
    }
  }
}
