// The PostgreSQL cluster that test/setup/postgres.ts started for this run (vitest `provide`).
import { inject } from 'vitest';
import { pgBinDir, PG_MISSING, type PgClusterInfo, type PgProvided } from './postgres.js';

/** The shared cluster. Throws — the test FAILS, it is never silently skipped — when PostgreSQL is not installed. */
export function sharedCluster(): PgClusterInfo {
  const provided = inject('postgres');
  if (!provided) throw new Error('test/setup/postgres.ts did not run: check test.globalSetup in vitest.config.ts');
  if (!provided.ok) throw new Error(provided.error);
  return provided.cluster;
}

/** The server binaries, for tests that run a cluster of their own (to stop it); throws when missing. */
export function requirePgBin(): string {
  const bin = pgBinDir();
  if (!bin) throw new Error(PG_MISSING);
  return bin;
}
