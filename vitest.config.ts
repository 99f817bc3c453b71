import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The checks on the full data sets need ../shared/data (or VMM_DATA): `npm run test:data`
    // (vitest.data.config.ts). `npm test` reads only test/fixtures, so a fresh clone passes it.
    exclude: ['test/full_data/**', '**/node_modules/**'],
    setupFiles: ['test/setup/yield_event_loop.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // tfjs keeps global engine state; one fork per file keeps backends from leaking between files.
    pool: 'forks',
    // Two test files run at once on two cores: one OpenBLAS thread each (when the optional
    // native products are built), not two fighting for a core. vitest's default on 2 cores is one
    // fork (cores - 1): 606 s for the suite against 346 s with two (2026-12-06).
    maxWorkers: 2,
    minWorkers: 1,
    env: { OPENBLAS_NUM_THREADS: '1' },
  },
});
