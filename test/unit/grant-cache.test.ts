// The hot path's caches against a real SQLite store: what a cached grant may decide (only "allow",
// only within the TTL), which factor lists a challenge may reuse (never an empty one), and that
// local changes are seen at once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { IdentityConfig } from '../../src/config/types.js';
import { Secrets } from '../../src/crypto/secrets.js';
import { GrantCache } from '../../src/grants/cache.js';
import { sessionBinding } from '../../src/grants/session-key.js';
import type { Identity } from '../../src/identity/types.js';
import { HeaderIdentitySource } from '../../src/identity/header.js';
import { FactorTypesCache } from '../../src/grants/factor-types.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { GrantRecord } from '../../src/store/store.js';
import { ExpiringMap } from '../../src/util/expiring-map.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const KEYS = ['session-key-primary', 'session-key-old-secret'];
const TTL = 1_000;

let dir: string;
let store: SqliteStore;
let clock: { now(): number; t: number };
let reads: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stepgate-grant-cache-'));
  store = SqliteStore.open(dir, { exclusive: false });
  clock = { t: T0, now: () => clock.t };
  reads = 0;
  // Count the store reads the cache makes, so "served from memory" is an observed fact.
  const getGrant = store.getGrant.bind(store);
  store.getGrant = (keys: string[]) => {
    reads++;
    return getGrant(keys);
  };
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const grant = (factor: GrantRecord['factor'], verifiedAt: number): GrantRecord => ({ user: 'alice', factor, verifiedAt, onceConsumed: false });
const anyGrant = () => true;

describe('GrantCache', () => {
  it('serves a grant it read within the TTL from memory, and reads the store again after it', async () => {
    await store.putGrant(KEYS[0]!, grant('totp', T0), []);
    const cache = new GrantCache(store, TTL, clock);
    expect(await cache.find(KEYS, anyGrant)).toMatchObject({ factor: 'totp' });
    // Ended elsewhere (the CLI, another instance): within the TTL the read is reused...
    await store.deleteGrant(KEYS);
    clock.t += TTL - 1;
    expect(await cache.find(KEYS, anyGrant)).toMatchObject({ factor: 'totp' });
    expect(reads).toBe(1);
    // ...and not one millisecond longer.
    clock.t += 1;
    expect(await cache.find(KEYS, anyGrant)).toBeNull();
    expect(reads).toBe(2);
  });

  it('reads the store again when the cached grant does not satisfy the rule (a newer verification elsewhere)', async () => {
    await store.putGrant(KEYS[0]!, grant('totp', T0), []);
    const cache = new GrantCache(store, TTL, clock);
    await cache.find(KEYS, anyGrant);
    await store.putGrant(KEYS[0]!, grant('passkey', T0 + 10), []);
    const wantsPasskey = (g: GrantRecord) => g.factor === 'passkey';
    expect(await cache.find(KEYS, wantsPasskey)).toMatchObject({ factor: 'passkey', verifiedAt: T0 + 10 });
    expect(reads).toBe(2);
  });

  it('remembers "no grant" for at most 250 ms; a verification through this process is seen at once', async () => {
    const cache = new GrantCache(store, TTL, clock);
    expect(await cache.find(KEYS, anyGrant)).toBeNull();
    // Verified through another instance: refused (never allowed) for up to 250 ms...
    await store.putGrant(KEYS[0]!, grant('totp', T0), []);
    clock.t += 249;
    expect(await cache.find(KEYS, anyGrant)).toBeNull();
    expect(reads).toBe(1);
    clock.t += 1;
    expect(await cache.find(KEYS, anyGrant)).toMatchObject({ factor: 'totp' });
    // ...and through this one, at once.
    await store.deleteGrant(KEYS);
    cache.forget(KEYS);
    expect(await cache.find(KEYS, anyGrant)).toBeNull();
    await store.putGrant(KEYS[0]!, grant('passkey', T0 + 300), []);
    cache.forget(KEYS);
    expect(await cache.find(KEYS, anyGrant)).toMatchObject({ factor: 'passkey' });
  });

  it('forget() drops the entry at once (this process ended or replaced the grant)', async () => {
    await store.putGrant(KEYS[0]!, grant('totp', T0), []);
    const cache = new GrantCache(store, TTL, clock);
    await cache.find(KEYS, anyGrant);
    await store.deleteGrant(KEYS);
    cache.forget(KEYS);
    expect(await cache.find(KEYS, anyGrant)).toBeNull();
  });

  it('with a TTL of 0 every request reads the store', async () => {
    await store.putGrant(KEYS[0]!, grant('totp', T0), []);
    const cache = new GrantCache(store, 0, clock);
    await cache.find(KEYS, anyGrant);
    await store.deleteGrant(KEYS);
    expect(await cache.find(KEYS, anyGrant)).toBeNull();
    expect(reads).toBe(2);
  });
});

describe('FactorTypesCache', () => {
  async function enrolTotp(user: string, id: string): Promise<void> {
    await store.setPendingTotp(user, Buffer.from('sealed'), clock.t);
    await store.confirmPendingTotp(user, id, 'Phone', clock.t);
  }

  it('reuses a non-empty list within the TTL, and reads again after it or after forget()', async () => {
    await enrolTotp('alice', 'f1');
    const cache = new FactorTypesCache(store, TTL, clock);
    expect(await cache.of('alice')).toEqual(['totp']);
    await store.deleteFactor('alice', 'f1');
    clock.t += TTL - 1;
    expect(await cache.of('alice')).toEqual(['totp']); // removed elsewhere: seen within the TTL
    clock.t += 1;
    expect(await cache.of('alice')).toEqual([]);
    await enrolTotp('alice', 'f2');
    cache.forget('alice');
    expect(await cache.of('alice')).toEqual(['totp']);
  });

  it('never reuses "no factors": an enrolment anywhere is seen by the next request', async () => {
    const cache = new FactorTypesCache(store, TTL, clock);
    expect(await cache.of('bob')).toEqual([]);
    await enrolTotp('bob', 'f3');
    expect(await cache.of('bob')).toEqual(['totp']);
  });
});

describe('ExpiringMap', () => {
  it('stays within its bound: expired entries go first, then the oldest', () => {
    const map = new ExpiringMap<number>(3);
    map.set('expired', 0, 10, 0);
    map.set('old', 1, 100, 0);
    map.set('mid', 2, 100, 0);
    map.set('new', 3, 100, 20); // full: 'expired' (until 10 <= now 20) is dropped
    expect([map.get('expired', 20), map.get('old', 20), map.get('mid', 20), map.get('new', 20)]).toEqual([undefined, 1, 2, 3]);
    map.set('newest', 4, 100, 20); // full, nothing expired: the oldest ('old') is dropped
    expect([map.get('old', 20), map.get('mid', 20), map.get('new', 20), map.get('newest', 20)]).toEqual([undefined, 2, 3, 4]);
    map.set('mid', 5, 100, 20); // replacing an entry evicts nothing
    expect([map.get('mid', 20), map.get('new', 20), map.get('newest', 20)]).toEqual([5, 3, 4]);
  });

  it('frees a tenth at once when full, so inserts into a full map do not each scan it', () => {
    const map = new ExpiringMap<number>(1_000);
    for (let i = 0; i < 1_000; i++) map.set(`k${i}`, i, 100, 0);
    map.set('k1000', 1_000, 100, 0); // full, nothing expired: the oldest 100 go
    expect(map.get('k99', 0)).toBeUndefined();
    expect(map.get('k100', 0)).toBe(100);
    // The next 99 inserts find room without evicting anything.
    for (let i = 1_001; i < 1_100; i++) map.set(`k${i}`, i, 100, 0);
    expect([map.get('k100', 0), map.get('k1099', 0)]).toEqual([100, 1_099]);
  });

  it('does not return an entry once its time is up', () => {
    const map = new ExpiringMap<string>(10);
    map.set('k', 'v', 100, 0);
    expect(map.get('k', 99)).toBe('v');
    expect(map.get('k', 100)).toBeUndefined();
  });
});

describe('GrantCache.known (the no-wait path: it may only allow)', () => {
  it('gives a grant read within the TTL, and nothing for "no grant", an unread session or after the TTL', async () => {
    const cache = new GrantCache(store, TTL, clock);
    expect(cache.known(KEYS)).toBeUndefined(); // never read: the caller must ask the store
    expect(await cache.find(KEYS, anyGrant)).toBeNull();
    expect(cache.known(KEYS)).toBeUndefined(); // "no grant" is remembered, but never allows
    await store.putGrant(KEYS[0]!, grant('totp', T0), []);
    cache.forget(KEYS);
    expect(await cache.find(KEYS, anyGrant)).toMatchObject({ factor: 'totp' });
    expect(cache.known(KEYS)).toMatchObject({ factor: 'totp' });
    clock.t += TTL;
    expect(cache.known(KEYS)).toBeUndefined();
  });
});

describe('sessionBinding reused for the same identity object', () => {
  const secrets = new Secrets([randomBytes(32)]);
  const cfg = { source: 'upstream', sessionCookies: ['sid'] } as IdentityConfig;
  const bind = (identity: Identity, headers: { cookie?: string; authorization?: string }) => sessionBinding(headers, identity, cfg, 'https://gw.example', secrets);
  const alice: Identity = { user: 'alice', name: null, sessionId: null };

  it('is recomputed whenever the Cookie or Authorization header differs from the last request', () => {
    const a = bind(alice, { cookie: 'sid=a' }).keys;
    const b = bind(alice, { cookie: 'sid=b' }).keys;
    expect(b).not.toEqual(a);
    expect(bind(alice, { cookie: 'sid=a' }).keys).toEqual(a);
    // Without a session cookie the bearer token names the session.
    const t1 = bind(alice, { authorization: 'Bearer one' }).keys;
    const t2 = bind(alice, { authorization: 'Bearer two' }).keys;
    expect(t2).not.toEqual(t1);
    expect(bind(alice, { authorization: 'Bearer one' }).keys).toEqual(t1);
  });

  it('keeps users apart and matches a fresh computation', () => {
    const fresh = (identity: Identity, cookie: string) => bind({ ...identity }, { cookie }).keys;
    bind(alice, { cookie: 'sid=x' });
    expect(bind(alice, { cookie: 'sid=x' }).keys).toEqual(fresh(alice, 'sid=x'));
    expect(bind({ user: 'bob', name: null, sessionId: null }, { cookie: 'sid=x' }).keys).not.toEqual(fresh(alice, 'sid=x'));
  });

  it('never reuses a new gateway cookie: each cookie-less request gets its own', () => {
    const first = bind(alice, {});
    const second = bind(alice, {});
    expect(first.newGatewayCookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(second.newGatewayCookie).not.toBe(first.newGatewayCookie);
    expect(second.keys).not.toEqual(first.keys);
  });

  it('is reused for identity.source: header, which hands out one identity object per user', () => {
    const source = new HeaderIdentitySource({ user: 'x-user', trustedProxies: ['10.0.0.1'] });
    const from = (user: string, peer = '10.0.0.1') => source.known({ headers: { 'x-user': user }, peer });
    const first = from('alice')!;
    expect(first).toEqual({ user: 'alice', name: 'alice', sessionId: null });
    expect(Object.isFrozen(first)).toBe(true);
    expect(from(' alice ')).toBe(first);
    expect(from('bob')).not.toBe(first);
    expect(from('bob')!.user).toBe('bob');
    // Only the trusted proxy names users; an empty name is nobody.
    expect(from('alice', '10.0.0.2')).toBeNull();
    expect(from('  ')).toBeNull();
    const binding = bind(first, { cookie: 'sid=a' });
    expect(bind(from('alice')!, { cookie: 'sid=a' })).toBe(binding);
    expect(bind(from('alice')!, { cookie: 'sid=b' }).keys).not.toEqual(binding.keys);
  });

  it('still names every user correctly past the number of identities the header source keeps', () => {
    const source = new HeaderIdentitySource({ user: 'x-user', trustedProxies: ['10.0.0.1'] });
    for (let i = 0; i < 10_050; i++) expect(source.known({ headers: { 'x-user': `user-${i}` }, peer: '10.0.0.1' })!.user).toBe(`user-${i}`);
    expect(source.known({ headers: { 'x-user': 'user-10049' }, peer: '10.0.0.1' })!.user).toBe('user-10049');
  });
});
