// One suite for every Store backend (SQLite and PostgreSQL): the same calls must mean the same
// thing whichever database is behind them (SPEC §10). For PostgreSQL each test gets a fresh
// database in the throwaway cluster of test/setup/postgres.ts, and the races are run by two store
// instances (two pools, like two gateways) firing at once: exactly one caller may win each
// "use once". Outage tests run a cluster of their own, which they stop and start again.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/load.js';
import { DatabaseClock } from '../../src/store/db-clock.js';
import { openStore } from '../../src/store/open.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres-migrations.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-migrations.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { DISABLE_THRESHOLD, LOCKOUT_WINDOW_MS, SchemaTooNewError } from '../../src/store/store.js';
import { StoreUnavailableError, type AuditEvent, type NewPasskey, type Store } from '../../src/store/store.js';
import { requirePgBin, sharedCluster } from '../helpers/pg-shared.js';
import { createDatabase, createSchema, destroyCluster, startCluster, startServer, stopServer, type PgClusterInfo } from '../helpers/postgres.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const MIN = 60_000;

interface Opened {
  store: Store;
  /** A second, independent store on the same data (another gateway instance). */
  peer(): Promise<Store>;
  /** Closes everything and opens the data again (a restart). */
  reopen(): Promise<Store>;
  /** Marks the data as migrated by a newer stepgate. */
  bumpSchema(): Promise<void>;
  /** Opens the data as `stepgate start` would. */
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

/** Data an older stepgate left behind. */
interface Legacy {
  open(): Promise<Store>;
  tables(): Promise<string[]>;
  cleanup(): Promise<void>;
}

interface Backend {
  name: string;
  setup(): Opened | Promise<Opened>;
  /** Data at the last schema that stored every challenge ticket, holding one open ticket. */
  withStoredTickets(): Promise<Legacy>;
}

const sqlite: Backend = {
  name: 'sqlite',
  setup() {
    const dir = mkdtempSync(join(tmpdir(), 'stepgate-store-'));
    const opened: Store[] = [];
    const open = async () => {
      const s = SqliteStore.open(dir, { exclusive: false });
      opened.push(s);
      return s as Store;
    };
    const store = SqliteStore.open(dir, { exclusive: false });
    opened.push(store);
    return {
      store,
      peer: open,
      open,
      async reopen() {
        for (const s of opened.splice(0)) await s.close().catch(() => undefined);
        return open();
      },
      async bumpSchema() {
        const db = new Database(join(dir, 'stepgate.db'));
        db.pragma('user_version = 99');
        db.close();
      },
      async cleanup() {
        for (const s of opened.splice(0)) await s.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  async withStoredTickets() {
    const dir = mkdtempSync(join(tmpdir(), 'stepgate-store-'));
    const file = join(dir, 'stepgate.db');
    const db = new Database(file);
    for (const sql of SQLITE_MIGRATIONS.slice(0, 3)) db.exec(sql);
    db.pragma('user_version = 3');
    db.prepare('INSERT INTO tickets (id_hash, user, session_key, rule, expires_at) VALUES (?, ?, ?, ?, ?)').run('t-old', 'alice', 'sk1', 'billing', T0 + MIN);
    db.close();
    let store: Store | null = null;
    return {
      async open() {
        store = SqliteStore.open(dir, { exclusive: false });
        return store;
      },
      async tables() {
        const ro = new Database(file, { readonly: true });
        try {
          return (ro.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
        } finally {
          ro.close();
        }
      },
      async cleanup() {
        await store?.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

let pgDatabase: Promise<string> | null = null;

const postgres: Backend = {
  name: 'postgres',
  async setup() {
    // One database for this file, one fresh schema per test.
    pgDatabase ??= createDatabase(sharedCluster());
    const url = await createSchema(await pgDatabase);
    const opened: Store[] = [];
    const open = async () => {
      const s = await PostgresStore.open(url);
      opened.push(s);
      return s as Store;
    };
    const store = await open();
    return {
      store,
      peer: open,
      open,
      async reopen() {
        for (const s of opened.splice(0)) await s.close().catch(() => undefined);
        return open();
      },
      async bumpSchema() {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query('INSERT INTO stepgate_schema_migrations (version) VALUES (99)');
        await c.end();
      },
      async cleanup() {
        for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      },
    };
  },
  async withStoredTickets() {
    pgDatabase ??= createDatabase(sharedCluster());
    const url = await createSchema(await pgDatabase);
    const sql = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return await fn(c);
      } finally {
        await c.end();
      }
    };
    await sql(async (c) => {
      await c.query('CREATE TABLE stepgate_schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      await c.query(POSTGRES_MIGRATIONS[0]!);
      await c.query('INSERT INTO stepgate_schema_migrations (version) VALUES (1)');
      await c.query('INSERT INTO tickets (id_hash, username, session_key, rule, expires_at) VALUES ($1, $2, $3, $4, $5)', ['t-old', 'alice', 'sk1', 'billing', T0 + MIN]);
    });
    let store: Store | null = null;
    return {
      async open() {
        store = await PostgresStore.open(url);
        return store;
      },
      tables: () => sql(async (c) => (await c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()')).rows.map((r) => r.table_name as string)),
      async cleanup() {
        await store?.close();
      },
    };
  },
};

const passkey = (id: string, credentialId: string, counter = 0): NewPasskey => ({
  id,
  name: `key ${id}`,
  credentialId,
  publicKey: Buffer.from(`pk-${id}`),
  counter,
  transports: ['internal', 'hybrid'],
  backedUp: true,
  deviceType: 'multiDevice',
});

/** Fires `n` calls at once, alternating between two stores, and returns how many answered true. */
async function race(stores: Store[], n: number, call: (store: Store, i: number) => Promise<boolean>): Promise<number> {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => call(stores[i % stores.length]!, i)));
  return results.filter(Boolean).length;
}

describe.each([sqlite, postgres])('$name store', (backend) => {
  let o: Opened;
  let store: Store;
  let both: Store[];

  beforeEach(async () => {
    o = await backend.setup();
    store = o.store;
    both = [store, await o.peer()];
  });
  afterEach(async () => {
    await o?.cleanup();
  });

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  describe('authenticator app', () => {
    it('keeps a pending secret until confirmed, then makes it the factor', async () => {
      expect(await store.listFactors('alice')).toEqual([]);
      expect(await store.getTotp('alice')).toBeNull();
      await store.setPendingTotp('alice', Buffer.from('enc-1'), T0);
      expect(await store.getPendingTotp('alice', T0 - MIN)).toEqual(Buffer.from('enc-1'));
      expect(await store.getPendingTotp('alice', T0 + 1)).toBeNull();
      // A newer pending secret replaces the older one.
      await store.setPendingTotp('alice', Buffer.from('enc-2'), T0 + 1000);
      expect(await store.getPendingTotp('alice', T0)).toEqual(Buffer.from('enc-2'));

      expect(await store.confirmPendingTotp('alice', 'f1', 'Phone', T0 + 2000)).toEqual({ first: true });
      expect(await store.getPendingTotp('alice', 0)).toBeNull();
      const totp = await store.getTotp('alice');
      expect(totp).toMatchObject({ id: 'f1', user: 'alice', type: 'totp', name: 'Phone', createdAt: T0 + 2000, lastUsedAt: null });
      expect(totp!.secretEnc).toEqual(Buffer.from('enc-2'));
      // Nothing pending: nothing to confirm.
      expect(await store.confirmPendingTotp('alice', 'f2', 'Phone', T0)).toBeNull();

      // A second authenticator app replaces the first; it is not the user's first factor.
      await store.setPendingTotp('alice', Buffer.from('enc-3'), T0 + 3000);
      expect(await store.confirmPendingTotp('alice', 'f3', 'Tablet', T0 + 4000)).toEqual({ first: false });
      const factors = await store.listFactors('alice');
      expect(factors.map((f) => [f.id, f.type])).toEqual([['f3', 'totp']]);
      expect(await store.listFactors('bob')).toEqual([]);
    });

    it('confirms a pending secret once when two instances race', async () => {
      await store.setPendingTotp('alice', Buffer.from('enc'), T0);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => both[i % 2]!.confirmPendingTotp('alice', `f${i}`, 'Phone', T0)));
      expect(results.filter((r) => r !== null)).toEqual([{ first: true }]);
      expect(await store.listFactors('alice')).toHaveLength(1);
    });

    it('touches and deletes factors', async () => {
      await store.setPendingTotp('alice', Buffer.from('enc'), T0);
      await store.confirmPendingTotp('alice', 'f1', 'Phone', T0);
      await store.touchFactor('f1', T0 + 5000);
      expect((await store.listFactors('alice'))[0]!.lastUsedAt).toBe(T0 + 5000);
      expect(await store.deleteFactor('bob', 'f1')).toBeNull();
      expect(await store.deleteFactor('alice', 'f1')).toMatchObject({ id: 'f1', user: 'alice', type: 'totp' });
      expect(await store.deleteFactor('alice', 'f1')).toBeNull();
      expect(await store.listFactors('alice')).toEqual([]);
    });

    it('advances the TOTP step only forwards, once per step across instances', async () => {
      expect(await store.advanceTotpStep('alice', 100)).toBe(true);
      expect(await store.advanceTotpStep('alice', 100)).toBe(false);
      expect(await store.advanceTotpStep('alice', 99)).toBe(false);
      expect(await store.advanceTotpStep('bob', 50)).toBe(true);
      expect(await store.advanceTotpStep('alice', 101)).toBe(true);
      expect(await race(both, 20, (s) => s.advanceTotpStep('alice', 102))).toBe(1);
      expect(await race(both, 20, (s) => s.advanceTotpStep('carol', 7))).toBe(1);
    });
  });

  describe('passkeys', () => {
    it('adds passkeys, lists them with every field, and refuses a duplicate credential', async () => {
      expect(await store.addPasskey('alice', passkey('p1', 'cred-1'), T0)).toEqual({ first: true });
      expect(await store.addPasskey('alice', passkey('p2', 'cred-2', 3), T0 + 1)).toEqual({ first: false });
      const keys = await store.listPasskeys('alice');
      expect(keys).toHaveLength(2);
      expect(keys[0]).toEqual({
        id: 'p1',
        user: 'alice',
        type: 'passkey',
        name: 'key p1',
        createdAt: T0,
        lastUsedAt: null,
        credentialId: 'cred-1',
        publicKey: Buffer.from('pk-p1'),
        counter: 0,
        transports: ['internal', 'hybrid'],
        backedUp: true,
        deviceType: 'multiDevice',
      });
      expect(keys[1]!.counter).toBe(3);
      expect((await store.listFactors('alice')).map((f) => f.type)).toEqual(['passkey', 'passkey']);
      const dup = store.addPasskey('bob', passkey('p3', 'cred-1'), T0);
      await expect(dup).rejects.toThrow();
      await expect(dup).rejects.not.toBeInstanceOf(StoreUnavailableError);
      expect(await store.listPasskeys('bob')).toEqual([]);
    });

    it('keeps the signature counter increasing (0 stays acceptable for synced passkeys)', async () => {
      await store.addPasskey('alice', passkey('p1', 'cred-1'), T0);
      expect(await store.updatePasskeyCounter('p1', 0, T0 + 1)).toBe(true);
      expect(await store.updatePasskeyCounter('p1', 0, T0 + 2)).toBe(true);
      expect(await store.updatePasskeyCounter('p1', 5, T0 + 3)).toBe(true);
      expect(await store.updatePasskeyCounter('p1', 5, T0 + 4)).toBe(false);
      expect(await store.updatePasskeyCounter('p1', 4, T0 + 5)).toBe(false);
      expect(await store.updatePasskeyCounter('p1', 0, T0 + 6)).toBe(false);
      expect(await store.updatePasskeyCounter('p1', 6, T0 + 7)).toBe(true);
      expect(await store.updatePasskeyCounter('nope', 9, T0)).toBe(false);
      const [key] = await store.listPasskeys('alice');
      expect(key).toMatchObject({ counter: 6, lastUsedAt: T0 + 7 });
      // The same assertion replayed on two instances at once: one wins.
      expect(await race(both, 20, (s) => s.updatePasskeyCounter('p1', 7, T0 + 8))).toBe(1);
    });

    it('says first factor exactly once when two passkeys are added at once', async () => {
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => both[i % 2]!.addPasskey('alice', passkey(`p${i}`, `cred-${i}`), T0)));
      expect(results.filter((r) => r.first)).toHaveLength(1);
    });

    it('creates one WebAuthn user handle per user', async () => {
      let made = 0;
      const create = () => `handle-${++made}`;
      const handles = await Promise.all(Array.from({ length: 8 }, (_, i) => both[i % 2]!.webauthnUserHandle('alice', create)));
      expect(new Set(handles).size).toBe(1);
      expect(await store.webauthnUserHandle('alice', () => 'other')).toBe(handles[0]);
      expect(await store.webauthnUserHandle('bob', () => 'bob-handle')).toBe('bob-handle');
    });

    it('consumes a WebAuthn challenge once, bound to user, session, purpose and time', async () => {
      await store.createWebauthnChallenge('ch1', 'alice', 'sk1', 'authenticate', T0 + 2 * MIN);
      expect(await store.consumeWebauthnChallenge('ch1', 'bob', ['sk1'], 'authenticate', T0)).toBe(false);
      expect(await store.consumeWebauthnChallenge('ch1', 'alice', ['sk2'], 'authenticate', T0)).toBe(false);
      expect(await store.consumeWebauthnChallenge('ch1', 'alice', ['sk1'], 'register', T0)).toBe(false);
      expect(await store.consumeWebauthnChallenge('ch1', 'alice', ['sk1'], 'authenticate', T0 + 2 * MIN)).toBe(false);
      expect(await store.consumeWebauthnChallenge('ch1', 'alice', ['old', 'sk1'], 'authenticate', T0)).toBe(true);
      expect(await store.consumeWebauthnChallenge('ch1', 'alice', ['sk1'], 'authenticate', T0)).toBe(false);
      // Several open at once (several tabs); each used once, even when raced.
      await store.createWebauthnChallenge('ch2', 'alice', 'sk1', 'authenticate', T0 + 2 * MIN);
      await store.createWebauthnChallenge('ch3', 'alice', 'sk1', 'register', T0 + 2 * MIN);
      expect(await race(both, 20, (s) => s.consumeWebauthnChallenge('ch2', 'alice', ['sk1'], 'authenticate', T0))).toBe(1);
      expect(await store.consumeWebauthnChallenge('ch3', 'alice', ['sk1'], 'register', T0)).toBe(true);
    });
  });

  describe('recovery codes', () => {
    it('uses each code once and counts the rest; regenerating replaces them', async () => {
      const codes = Array.from({ length: 10 }, (_, i) => `hash-${i}`);
      await store.replaceRecoveryCodes('alice', codes, T0);
      expect(await store.countUnusedRecoveryCodes('alice')).toBe(10);
      expect(await store.useRecoveryCode('alice', ['nope'], T0)).toBe(false);
      expect(await store.useRecoveryCode('bob', ['hash-1'], T0)).toBe(false);
      // Candidates: one code hashed under each configured key.
      expect(await store.useRecoveryCode('alice', ['new-key-hash', 'hash-1'], T0)).toBe(true);
      expect(await store.useRecoveryCode('alice', ['hash-1'], T0)).toBe(false);
      expect(await store.countUnusedRecoveryCodes('alice')).toBe(9);
      expect(await race(both, 20, (s) => s.useRecoveryCode('alice', ['hash-2'], T0))).toBe(1);
      expect(await store.countUnusedRecoveryCodes('alice')).toBe(8);
      await store.replaceRecoveryCodes('alice', ['fresh-1', 'fresh-2'], T0 + 1);
      expect(await store.countUnusedRecoveryCodes('alice')).toBe(2);
      expect(await store.useRecoveryCode('alice', ['hash-3'], T0)).toBe(false);
    });
  });

  describe('lockouts', () => {
    it('locks for 15 minutes after 5 failures within 15 minutes', async () => {
      for (let i = 0; i < 4; i++) expect(await store.recordFailure('alice', T0 + i * MIN)).toEqual({ lockedUntil: null, disabled: false });
      const fifth = T0 + 4 * MIN;
      expect(await store.recordFailure('alice', fifth)).toEqual({ lockedUntil: fifth + LOCKOUT_WINDOW_MS, disabled: false });
      expect(await store.getLockout('alice', fifth + LOCKOUT_WINDOW_MS - 1)).toEqual({ lockedUntil: fifth + LOCKOUT_WINDOW_MS, disabled: false });
      expect(await store.getLockout('alice', fifth + LOCKOUT_WINDOW_MS)).toEqual({ lockedUntil: null, disabled: false });
      expect(await store.getLockout('bob', fifth)).toEqual({ lockedUntil: null, disabled: false });
      // The window starts afresh after a lock: four more failures do not lock again.
      for (let i = 1; i <= 4; i++) expect((await store.recordFailure('alice', fifth + LOCKOUT_WINDOW_MS + i)).lockedUntil).toBeNull();
    });

    it('does not lock for failures spread over more than 15 minutes', async () => {
      for (let i = 0; i < 4; i++) await store.recordFailure('alice', T0 + i * 1000);
      const later = T0 + 3000 + LOCKOUT_WINDOW_MS;
      expect(await store.recordFailure('alice', later)).toEqual({ lockedUntil: null, disabled: false });
    });

    it('counts failures recorded by several instances at once, one by one', async () => {
      const states = await Promise.all(Array.from({ length: 5 }, (_, i) => both[i % 2]!.recordFailure('alice', T0)));
      expect(states.filter((s) => s.lockedUntil === T0 + LOCKOUT_WINDOW_MS).length).toBeGreaterThanOrEqual(1);
      expect(await store.getLockout('alice', T0 + 1)).toEqual({ lockedUntil: T0 + LOCKOUT_WINDOW_MS, disabled: false });
      // 99 consecutive failures (in concurrent bursts) leave TOTP and recovery enabled; the 100th disables them.
      for (let burst = 0; burst < 4; burst++) await Promise.all(Array.from({ length: 20 }, (_, i) => both[i % 2]!.recordFailure('bob', T0 + burst)));
      await Promise.all(Array.from({ length: 19 }, (_, i) => both[i % 2]!.recordFailure('bob', T0 + 10)));
      expect((await store.getLockout('bob', T0 + 20 * MIN + 11)).disabled).toBe(false);
      expect((await store.recordFailure('bob', T0 + 20 * MIN + 11)).disabled).toBe(true);
    });

    it('disables after 100 consecutive failures until a passkey verification', async () => {
      let state = { lockedUntil: null as number | null, disabled: false };
      for (let i = 0; i < DISABLE_THRESHOLD; i++) {
        expect(state.disabled).toBe(false);
        state = await store.recordFailure('alice', T0 + i * 16 * MIN);
      }
      expect(state.disabled).toBe(true);
      // Time does not heal it, nor a TOTP/recovery success (which cannot happen while disabled anyway).
      expect((await store.getLockout('alice', T0 + 1000 * 24 * 3600_000)).disabled).toBe(true);
      await store.recordSuccess('alice', 'totp');
      expect((await store.getLockout('alice', T0)).disabled).toBe(false);
      for (let i = 0; i < DISABLE_THRESHOLD; i++) state = await store.recordFailure('alice', T0 + i * 16 * MIN);
      expect(state.disabled).toBe(true);
      await store.recordSuccess('alice', 'passkey');
      expect(await store.getLockout('alice', T0)).toEqual({ lockedUntil: null, disabled: false });
    });

    it('lifts a temporary lock on a passkey success; a TOTP success ends the streak', async () => {
      for (let i = 0; i < 5; i++) await store.recordFailure('alice', T0);
      expect((await store.getLockout('alice', T0)).lockedUntil).toBe(T0 + LOCKOUT_WINDOW_MS);
      await store.recordSuccess('alice', 'passkey');
      expect(await store.getLockout('alice', T0)).toEqual({ lockedUntil: null, disabled: false });
      // After a TOTP success the earlier failures no longer count towards the window.
      for (let i = 0; i < 4; i++) await store.recordFailure('bob', T0);
      await store.recordSuccess('bob', 'totp');
      expect((await store.recordFailure('bob', T0 + 1)).lockedUntil).toBeNull();
    });
  });

  describe('grants', () => {
    it('keeps one grant per session, found under any of its keys', async () => {
      expect(await store.getGrant(['sk1'])).toBeNull();
      await store.putGrant('sk1', { user: 'alice', factor: 'totp', verifiedAt: T0, onceConsumed: false }, []);
      expect(await store.getGrant(['other', 'sk1'])).toEqual({ user: 'alice', factor: 'totp', verifiedAt: T0, onceConsumed: false });
      // A new verification replaces it.
      await store.putGrant('sk1', { user: 'alice', factor: 'passkey', verifiedAt: T0 + 1000, onceConsumed: false }, []);
      expect(await store.getGrant(['sk1'])).toMatchObject({ factor: 'passkey', verifiedAt: T0 + 1000 });
      await store.putGrant('sk2', { user: 'alice', factor: 'recovery', verifiedAt: T0 + 2000, onceConsumed: false }, []);
      expect((await store.listGrants('alice')).map((g) => g.factor)).toEqual(['recovery', 'passkey']);
      expect(await store.listGrants('bob')).toEqual([]);
      // Re-keyed (a rotated secret): the stale key's row goes.
      await store.putGrant('sk1-new', { user: 'alice', factor: 'totp', verifiedAt: T0 + 3000, onceConsumed: false }, ['sk1', 'sk1-new']);
      expect(await store.getGrant(['sk1'])).toBeNull();
      expect(await store.getGrant(['sk1-new', 'sk1'])).toMatchObject({ verifiedAt: T0 + 3000 });
      await store.deleteGrant(['x', 'sk1-new']);
      expect(await store.getGrant(['sk1-new'])).toBeNull();
      expect(await store.getGrant(['sk2'])).not.toBeNull();
    });

    it('lets a once grant pass exactly once per verification, across instances', async () => {
      await store.putGrant('sk1', { user: 'alice', factor: 'totp', verifiedAt: T0, onceConsumed: false }, []);
      expect(await store.consumeOnce(['sk1'], T0 - 1)).toBe(false);
      expect(await race(both, 20, (s) => s.consumeOnce(['old', 'sk1'], T0))).toBe(1);
      expect(await store.consumeOnce(['sk1'], T0)).toBe(false);
      expect(await store.getGrant(['sk1'])).toMatchObject({ onceConsumed: true });
      // A new verification re-arms it.
      await store.putGrant('sk1', { user: 'alice', factor: 'totp', verifiedAt: T0 + 30_000, onceConsumed: false }, []);
      expect(await store.consumeOnce(['sk1'], T0)).toBe(false);
      expect(await race(both, 20, (s) => s.consumeOnce(['sk1'], T0 + 30_000))).toBe(1);
    });
  });

  describe('spent tickets', () => {
    it('spends a ticket once across instances, and never once it expired', async () => {
      expect(await store.isTicketSpent('t1')).toBe(false);
      // Expired: nothing to spend, and nothing recorded.
      expect(await store.spendTicket('t1', T0 + 5 * MIN, T0 + 5 * MIN)).toBe(false);
      expect(await store.isTicketSpent('t1')).toBe(false);
      expect(await race(both, 20, (s) => s.spendTicket('t1', T0 + 5 * MIN, T0))).toBe(1);
      expect(await store.isTicketSpent('t1')).toBe(true);
      expect(await both[1]!.isTicketSpent('t1')).toBe(true);
      expect(await store.spendTicket('t1', T0 + 5 * MIN, T0 + MIN)).toBe(false);
      expect(await store.isTicketSpent('t2')).toBe(false);
      expect(await store.spendTicket('t2', T0 + 5 * MIN, T0)).toBe(true);
    });

    it('upgrades data from before sealed tickets: the stored tickets go, spent ones are recorded', async () => {
      const old = await backend.withStoredTickets();
      try {
        expect(await old.tables()).toContain('tickets');
        const upgraded = await old.open();
        const tables = await old.tables();
        expect(tables).not.toContain('tickets');
        expect(tables).toContain('spent_tickets');
        expect(await upgraded.isTicketSpent('t-old')).toBe(false);
        expect(await upgraded.spendTicket('t-new', T0 + MIN, T0)).toBe(true);
        expect(await upgraded.isTicketSpent('t-new')).toBe(true);
      } finally {
        await old.cleanup();
      }
    });
  });

  describe('stashes', () => {
    it('hands a stash out once, to its own user and session, before it expires', async () => {
      const stash = { user: 'alice', sessionKey: 'sk1', payloadEnc: Buffer.from('payload'), expiresAt: T0 + 5 * MIN };
      await store.createStash('s1', stash);
      expect(await store.takeStash(['s1'], 'bob', ['sk1'], T0)).toBeNull();
      expect(await store.takeStash(['s1'], 'alice', ['sk2'], T0)).toBeNull();
      expect(await store.takeStash(['s1'], 'alice', ['sk1'], T0 + 5 * MIN)).toBeNull();
      expect(await store.takeStash(['x', 's1'], 'alice', ['y', 'sk1'], T0)).toEqual(stash);
      expect(await store.takeStash(['s1'], 'alice', ['sk1'], T0)).toBeNull();
      await store.createStash('s2', stash);
      const taken = await Promise.all(Array.from({ length: 20 }, (_, i) => both[i % 2]!.takeStash(['s2'], 'alice', ['sk1'], T0)));
      expect(taken.filter((t) => t !== null)).toHaveLength(1);
    });
  });

  describe('invites and resets', () => {
    it('validates and consumes an invite once', async () => {
      await store.createInvite('alice', 'i1', T0 + 24 * 60 * MIN);
      expect(await store.inviteValid('alice', ['x', 'i1'], T0)).toBe(true);
      expect(await store.inviteValid('bob', ['i1'], T0)).toBe(false);
      expect(await store.inviteValid('alice', ['i1'], T0 + 24 * 60 * MIN)).toBe(false);
      expect(await store.consumeInvite('bob', ['i1'], T0)).toBe(false);
      expect(await race(both, 20, (s) => s.consumeInvite('alice', ['i1'], T0))).toBe(1);
      expect(await store.inviteValid('alice', ['i1'], T0)).toBe(false);
      expect(await store.consumeInvite('alice', ['i1'], T0)).toBe(false);
    });

    it('resets a user completely and makes the next factor need an invite', async () => {
      await store.setPendingTotp('alice', Buffer.from('enc'), T0);
      await store.confirmPendingTotp('alice', 'f1', 'Phone', T0);
      await store.addPasskey('alice', passkey('p1', 'cred-1'), T0);
      await store.replaceRecoveryCodes('alice', ['h1', 'h2'], T0);
      await store.putGrant('sk1', { user: 'alice', factor: 'totp', verifiedAt: T0, onceConsumed: false }, []);
      await store.createWebauthnChallenge('ch1', 'alice', 'sk1', 'authenticate', T0 + MIN);
      await store.createStash('s1', { user: 'alice', sessionKey: 'sk1', payloadEnc: Buffer.from('p'), expiresAt: T0 + MIN });
      await store.setPendingTotp('alice', Buffer.from('enc-2'), T0);
      for (let i = 0; i < 5; i++) await store.recordFailure('alice', T0);
      await store.putGrant('sk-bob', { user: 'bob', factor: 'totp', verifiedAt: T0, onceConsumed: false }, []);
      expect(await store.needsInvite('alice')).toBe(false);

      await store.resetUser('alice');
      expect(await store.listFactors('alice')).toEqual([]);
      expect(await store.getPendingTotp('alice', 0)).toBeNull();
      expect(await store.countUnusedRecoveryCodes('alice')).toBe(0);
      expect(await store.getGrant(['sk1'])).toBeNull();
      expect(await store.consumeWebauthnChallenge('ch1', 'alice', ['sk1'], 'authenticate', T0)).toBe(false);
      expect(await store.takeStash(['s1'], 'alice', ['sk1'], T0)).toBeNull();
      expect(await store.getLockout('alice', T0)).toEqual({ lockedUntil: null, disabled: false });
      expect(await store.needsInvite('alice')).toBe(true);
      expect(await store.getGrant(['sk-bob'])).not.toBeNull();
      await store.resetUser('alice');

      // The first factor added afterwards clears the invite-only mark.
      await store.addPasskey('alice', passkey('p2', 'cred-2'), T0 + 1);
      expect(await store.needsInvite('alice')).toBe(false);
      await store.resetUser('alice');
      await store.setPendingTotp('alice', Buffer.from('enc'), T0);
      expect(await store.confirmPendingTotp('alice', 'f2', 'Phone', T0)).toEqual({ first: true });
      expect(await store.needsInvite('alice')).toBe(false);
    });
  });

  describe('audit', () => {
    it('stores events and lists them by user, time and limit, oldest first', async () => {
      const event = (at: number, user: string | null, e: string): AuditEvent => ({
        at,
        user,
        event: e,
        factor: e === 'verify' ? 'totp' : null,
        outcome: e === 'verify' ? 'failure' : 'info',
        ip: '127.0.0.1',
        userAgent: 'ua',
        requestId: `r-${at}`,
        detail: e === 'verify' ? 'wrong code' : null,
      });
      await store.audit(event(T0 + 2, 'alice', 'verify'));
      await store.audit(event(T0 + 1, 'bob', 'user.reset'));
      await store.audit(event(T0 + 3, null, 'user.invite'));
      await store.audit({ ...event(T0 + 3, 'alice', 'user.invite'), detail: undefined });
      const all = await store.listAudit({});
      expect(all.map((e) => [e.at, e.user, e.event])).toEqual([
        [T0 + 1, 'bob', 'user.reset'],
        [T0 + 2, 'alice', 'verify'],
        [T0 + 3, null, 'user.invite'],
        [T0 + 3, 'alice', 'user.invite'],
      ]);
      expect(all[1]).toEqual(event(T0 + 2, 'alice', 'verify'));
      expect((await store.listAudit({ user: 'alice' })).map((e) => e.at)).toEqual([T0 + 2, T0 + 3]);
      expect((await store.listAudit({ since: T0 + 2 })).map((e) => e.at)).toEqual([T0 + 2, T0 + 3, T0 + 3]);
      expect(await store.listAudit({ limit: 1 })).toHaveLength(1);
    });
  });

  it('sweeps what expired and keeps what did not', async () => {
    await store.spendTicket('t-old', T0, T0 - MIN);
    await store.spendTicket('t-live', T0 + MIN, T0 - MIN);
    await store.createInvite('alice', 'i-old', T0);
    await store.createInvite('alice', 'i-live', T0 + MIN);
    await store.createWebauthnChallenge('c-old', 'alice', 'sk', 'authenticate', T0);
    await store.createWebauthnChallenge('c-live', 'alice', 'sk', 'authenticate', T0 + MIN);
    await store.createStash('s-old', { user: 'alice', sessionKey: 'sk', payloadEnc: Buffer.from('p'), expiresAt: T0 });
    await store.createStash('s-live', { user: 'alice', sessionKey: 'sk', payloadEnc: Buffer.from('p'), expiresAt: T0 + MIN });
    await store.sweep(T0);
    // A spent ticket is forgotten once expired (an expired ticket never opens again).
    expect(await store.isTicketSpent('t-old')).toBe(false);
    // Even a clock going backwards does not bring the swept ones back.
    expect(await store.inviteValid('alice', ['i-old'], T0 - MIN)).toBe(false);
    expect(await store.consumeWebauthnChallenge('c-old', 'alice', ['sk'], 'authenticate', T0 - MIN)).toBe(false);
    expect(await store.takeStash(['s-old'], 'alice', ['sk'], T0 - MIN)).toBeNull();
    expect(await store.isTicketSpent('t-live')).toBe(true);
    expect(await store.inviteValid('alice', ['i-live'], T0)).toBe(true);
    expect(await store.consumeWebauthnChallenge('c-live', 'alice', ['sk'], 'authenticate', T0)).toBe(true);
    expect(await store.takeStash(['s-live'], 'alice', ['sk'], T0)).not.toBeNull();
  });

  it('keeps everything across close and reopen', async () => {
    await store.setPendingTotp('alice', Buffer.from('enc'), T0);
    await store.confirmPendingTotp('alice', 'f1', 'Phone', T0);
    await store.addPasskey('alice', passkey('p1', 'cred-1', 4), T0);
    await store.replaceRecoveryCodes('alice', ['h1', 'h2'], T0);
    await store.useRecoveryCode('alice', ['h1'], T0);
    await store.putGrant('sk1', { user: 'alice', factor: 'totp', verifiedAt: T0, onceConsumed: false }, []);
    await store.consumeOnce(['sk1'], T0);
    await store.advanceTotpStep('alice', 1234);
    for (let i = 0; i < 5; i++) await store.recordFailure('alice', T0);
    await store.audit({ at: T0, user: 'alice', event: 'verify', factor: 'totp', outcome: 'success', ip: null, userAgent: null, requestId: null });

    const again = await o.reopen();
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect((await again.listFactors('alice')).map((f) => f.id).sort()).toEqual(['f1', 'p1']);
    expect((await again.listPasskeys('alice'))[0]!.counter).toBe(4);
    expect(await again.countUnusedRecoveryCodes('alice')).toBe(1);
    expect(await again.getGrant(['sk1'])).toEqual({ user: 'alice', factor: 'totp', verifiedAt: T0, onceConsumed: true });
    expect(await again.advanceTotpStep('alice', 1234)).toBe(false);
    expect((await again.getLockout('alice', T0)).lockedUntil).toBe(T0 + LOCKOUT_WINDOW_MS);
    expect(await again.listAudit({ user: 'alice' })).toHaveLength(1);
  });

  it('refuses a schema newer than the code', async () => {
    await o.bumpSchema();
    await expect(o.open()).rejects.toThrow(SchemaTooNewError);
    await expect(o.open()).rejects.toThrow(/schema is version 99, newer than this stepgate/);
  });

  it('answers StoreUnavailableError once closed', async () => {
    await store.close();
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.getGrant(['sk'])).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

// ---------------------------------------------------------------------------------------------

/** A TCP relay in front of PostgreSQL that can start swallowing traffic (a network partition). */
async function blackholeRelay(port: number): Promise<{ port: number; blackhole(on: boolean): void; close(): Promise<void> }> {
  let swallow = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => !swallow && upstream.write(d));
    upstream.on('data', (d) => !swallow && client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    blackhole: (on) => (swallow = on),
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('postgres store availability', () => {
  let cluster: PgClusterInfo;

  beforeAll(async () => {
    cluster = await startCluster(requirePgBin());
  });
  afterAll(() => {
    if (cluster) destroyCluster(cluster);
  });

  it('answers StoreUnavailableError while PostgreSQL is stopped, and recovers by itself', async () => {
    const store = await PostgresStore.open(cluster.url);
    try {
      await store.putGrant('sk1', { user: 'alice', factor: 'totp', verifiedAt: T0, onceConsumed: false }, []);
      stopServer(cluster);
      const started = Date.now();
      await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.getGrant(['sk1'])).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.consumeOnce(['sk1'], T0)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.recordFailure('alice', T0)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(5_000);
      startServer(cluster);
      // The same store (pool) reconnects on demand.
      expect(await store.getGrant(['sk1'])).toMatchObject({ user: 'alice' });
      expect(await store.consumeOnce(['sk1'], T0)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('answers StoreUnavailableError when a call gets no answer within the timeout', async () => {
    const relay = await blackholeRelay(cluster.port);
    const url = cluster.url.replace(`:${cluster.port}/`, `:${relay.port}/`);
    const store = await PostgresStore.open(url, { timeoutMs: 400 });
    try {
      await store.ping();
      relay.blackhole(true);
      const started = Date.now();
      await expect(store.getGrant(['sk1'])).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.recordFailure('alice', T0)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(2_000);
      relay.blackhole(false);
      // Hung connections were discarded; fresh ones work.
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
      await relay.close();
    }
  });

  it('cannot open an unreachable database: StoreUnavailableError, and openStore names the host, never the password', async () => {
    const relay = await blackholeRelay(cluster.port);
    relay.blackhole(true);
    try {
      const silentUrl = cluster.url.replace(`:${cluster.port}/`, `:${relay.port}/`);
      const started = Date.now();
      await expect(PostgresStore.open(silentUrl, { timeoutMs: 300 })).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await relay.close();
    }
    const closedPort = relay.port; // nothing listens there any more
    const url = `postgres://stepgate:${cluster.password}@127.0.0.1:${closedPort}/stepgate`;
    const cfg = parseGatewayConfig(
      'upstream: http://127.0.0.1:1\npublic_origin: http://localhost:8080\nstore: postgres\n',
      'gateway.yaml',
      { STEPGATE_STORE: url, STEPGATE_SECRET: Buffer.alloc(32, 1).toString('base64') },
    );
    const err = (await openStore(cfg, { STEPGATE_STORE: url }, { exclusive: true }).catch((e: Error) => e)) as Error;
    expect(err.message).toContain(`cannot reach the PostgreSQL store at 127.0.0.1:${closedPort}/stepgate (STEPGATE_STORE)`);
    expect(err.message).not.toContain(cluster.password);
    // Wrong password: the server's answer, still without the password.
    const wrong = cluster.url.replace(cluster.password, 'wrong-password-123');
    const err2 = (await openStore(cfg, { STEPGATE_STORE: wrong }, { exclusive: true }).catch((e: Error) => e)) as Error;
    expect(err2.message).toMatch(/password authentication failed/);
    expect(err2.message).not.toContain('wrong-password-123');
  });

  it('measures the database clock: openStore hands out a clock that agrees with the database', async () => {
    const cfg = parseGatewayConfig('upstream: http://127.0.0.1:1\npublic_origin: http://localhost:8080\nstore: postgres\n', 'gateway.yaml', {
      STEPGATE_STORE: cluster.url,
      STEPGATE_SECRET: Buffer.alloc(32, 1).toString('base64'),
    });
    const { store, clock, where } = await openStore(cfg, { STEPGATE_STORE: cluster.url }, { exclusive: true });
    try {
      expect(where).toBe(`127.0.0.1:${cluster.port}/stepgate`);
      const db = await (store as PostgresStore).databaseNow();
      expect(Math.abs(clock!.now() - db)).toBeLessThan(250);
    } finally {
      await store.close();
    }
  });
});

describe('DatabaseClock', () => {
  it('applies the half-round-trip corrected offset and keeps the last one when a refresh fails', async () => {
    let skew = 60_000;
    let fail = false;
    const errors: Error[] = [];
    const clock = await DatabaseClock.start(
      async () => {
        if (fail) throw new Error('down');
        await new Promise((r) => setTimeout(r, 20));
        return Date.now() - 10 + skew; // read in the middle of the round trip
      },
      { onError: (e) => errors.push(e), intervalMs: 60_000 },
    );
    try {
      expect(Math.abs(clock.offset - 60_000)).toBeLessThan(15);
      expect(Math.abs(clock.now() - (Date.now() + 60_000))).toBeLessThan(15);
      skew = -5_000;
      await clock.refresh();
      expect(Math.abs(clock.offset + 5_000)).toBeLessThan(15);
      fail = true;
      await clock.refresh();
      expect(errors.map((e) => e.message)).toEqual(['down']);
      expect(Math.abs(clock.offset + 5_000)).toBeLessThan(15);
    } finally {
      clock.stop();
    }
  });

  it('refuses to start when the database cannot answer', async () => {
    await expect(DatabaseClock.start(() => Promise.reject(new StoreUnavailableError(new Error('down'))))).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
