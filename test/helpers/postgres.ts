// Throwaway PostgreSQL clusters for the tests: Debian's server binaries (`postgresql` package, in
// /usr/lib/postgresql/*/bin), initdb into a temp dir, listening only on 127.0.0.1 (unix socket
// inside the temp dir), with a password-authenticated role that owns its database and nothing
// else: exactly the permissions docs/operations.md asks of operators. PostgreSQL refuses to run as
// root, so under root every server command runs as the `postgres` OS user.
//
// test/setup/postgres.ts starts one shared cluster for the whole run; tests that stop the database
// on purpose start their own, so they never pull it from under another test file.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort } from './process.js';
import { processAlive } from '../../src/util/process.js';

export const PG_MISSING =
  'PostgreSQL server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or on PATH. ' +
  "The PostgreSQL store tests need them: install Debian's postgresql package (apt-get install -y postgresql; bash .ci/run does).";

/** What the global setup hands the test files (plain data: it crosses worker boundaries). */
export interface PgClusterInfo {
  bin: string;
  dir: string;
  port: number;
  socketDir: string;
  role: string;
  password: string;
  /** The role's own database. */
  url: string;
}

export type PgProvided = { ok: true; cluster: PgClusterInfo } | { ok: false; error: string };

// Type-level only (no runtime import of vitest, so the global setup can use this file too).
declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PgProvided;
  }
}

/** The directory holding initdb and pg_ctl, newest version first; null when PostgreSQL is not installed. */
export function pgBinDir(): string | null {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (has(join(root, v, 'bin'))) return join(root, v, 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && has(dir)) return dir;
  return null;
}

const isRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL server program, as the postgres OS user when we are root. */
function runPg(info: Pick<PgClusterInfo, 'bin'>, program: string, args: string[]): string {
  const exe = join(info.bin, program);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${program} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

function serverOptions(info: PgClusterInfo): string {
  // Durability is not what these tests check; visibility and locking are unaffected.
  return `-h 127.0.0.1 -p ${info.port} -k ${info.socketDir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
}

/** initdb + start + a role owning its database. */
export async function startCluster(bin: string): Promise<PgClusterInfo> {
  const dir = mkdtempSync(join(tmpdir(), 'stepgate-pg-'));
  const socketDir = join(dir, 'sock');
  mkdirSync(socketDir);
  if (isRoot()) {
    chownSync(dir, pgUid(), pgGid());
    chownSync(socketDir, pgUid(), pgGid());
  }
  // Who made it: a run killed before its teardown leaves a cluster behind, and the next run's
  // global setup removes the ones whose maker is gone (reapStaleClusters).
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const role = 'stepgate';
  const password = randomBytes(12).toString('hex');
  const port = await freePort();
  const info: PgClusterInfo = { bin, dir, port, socketDir, role, password, url: `postgres://${role}:${password}@127.0.0.1:${port}/stepgate` };
  try {
    runPg(info, 'initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '--auth-host=scram-sha-256', '--no-sync', '-E', 'UTF8', '--locale=C']);
    startServer(info);
    await admin(info, async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' NOSUPERUSER NOCREATEDB NOCREATEROLE`);
      await c.query(`CREATE DATABASE stepgate OWNER ${role}`);
    });
    return info;
  } catch (err) {
    destroyCluster(info);
    throw err;
  }
}

export function startServer(info: PgClusterInfo): void {
  runPg(info, 'pg_ctl', ['-D', join(info.dir, 'data'), '-l', join(info.dir, 'server.log'), '-w', '-t', '30', '-o', serverOptions(info), 'start']);
}

/** A fast shutdown: connections are terminated, as when an operator stops the database. */
export function stopServer(info: PgClusterInfo): void {
  runPg(info, 'pg_ctl', ['-D', join(info.dir, 'data'), '-m', 'fast', '-w', '-t', '30', 'stop']);
}

export function destroyCluster(info: PgClusterInfo): void {
  try {
    if (existsSync(join(info.dir, 'data', 'postmaster.pid'))) runPg(info, 'pg_ctl', ['-D', join(info.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  } catch {
    /* already stopped */
  }
  rmSync(info.dir, { recursive: true, force: true });
}

/** Stops and deletes clusters left behind by test runs that were killed before their teardown. */
export function reapStaleClusters(bin: string): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith('stepgate-pg-')) continue;
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue; // not one of ours, or still being made
    }
    if (!Number.isInteger(owner) || owner <= 0 || processAlive(owner)) continue;
    destroyCluster({ bin, dir, port: 0, socketDir: join(dir, 'sock'), role: '', password: '', url: '' });
  }
}

export function serverLog(info: PgClusterInfo): string {
  try {
    return readFileSync(join(info.dir, 'server.log'), 'utf8');
  } catch {
    return '';
  }
}

/** As the superuser over the cluster's unix socket (trust): set-up work the role itself may not do. */
export async function admin<T>(info: PgClusterInfo, fn: (client: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> {
  const client = new pg.Client({ host: info.socketDir, port: info.port, user: 'postgres', database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

let dbCounter = 0;

/** A new, empty database owned by the role; returns its URL (password auth over TCP). */
export async function createDatabase(info: PgClusterInfo): Promise<string> {
  const name = `sg_${process.pid}_${++dbCounter}_${randomBytes(3).toString('hex')}`;
  await admin(info, (c) => c.query(`CREATE DATABASE ${name} OWNER ${info.role}`));
  return `postgres://${info.role}:${info.password}@127.0.0.1:${info.port}/${name}`;
}

/**
 * A new, empty schema in the database at `url`, created by the role itself (it owns the database),
 * and a URL whose connections use it (search_path): an empty store in a few milliseconds, where
 * creating a database takes hundreds.
 */
export async function createSchema(url: string): Promise<string> {
  const name = `s_${process.pid}_${++dbCounter}_${randomBytes(3).toString('hex')}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${name}`);
  } finally {
    await client.end();
  }
  return `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${name}`)}`;
}

function pgUid(): number {
  return Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
}
function pgGid(): number {
  return Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
}
