// vitest globalSetup: one throwaway PostgreSQL cluster for the whole run (see test/helpers/postgres.ts),
// stopped and deleted at teardown. Without PostgreSQL installed the run goes on, and every test
// that needs it fails with a message saying what to install (never a silent skip).
import type { TestProject } from 'vitest/node';
import { destroyCluster, pgBinDir, PG_MISSING, reapStaleClusters, startCluster, type PgClusterInfo } from '../helpers/postgres.js';

export default async function setup(project: TestProject): Promise<() => void> {
  const bin = pgBinDir();
  if (!bin) {
    project.provide('postgres', { ok: false, error: PG_MISSING });
    return () => undefined;
  }
  reapStaleClusters(bin);
  let cluster: PgClusterInfo;
  try {
    cluster = await startCluster(bin);
  } catch (err) {
    project.provide('postgres', { ok: false, error: `could not start a throwaway PostgreSQL cluster: ${(err as Error).message}` });
    return () => undefined;
  }
  project.provide('postgres', { ok: true, cluster });
  return () => destroyCluster(cluster);
}
