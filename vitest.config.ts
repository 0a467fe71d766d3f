import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes on ephemeral ports; two cores do not like many at once.
    maxWorkers: 2,
    // A throwaway PostgreSQL cluster for the PostgreSQL store tests (test/helpers/postgres.ts).
    globalSetup: ['test/setup/postgres.ts'],
  },
});
