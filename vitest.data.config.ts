import { defineConfig } from 'vitest/config';

/**
 * `npm run test:data`: the checks on the full data sets (counts, ink ratios, the converter on the
 * sample zips). They need the files listed in test/full_data/setup.ts, found the usual way
 * (`VMM_DATA`, the `vmm data get` cache, `../shared/data`). Otherwise as vitest.config.ts.
 */
export default defineConfig({
  test: {
    include: ['test/full_data/**/*.test.ts'],
    globalSetup: ['test/full_data/setup.ts'],
    setupFiles: ['test/setup/yield_event_loop.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { OPENBLAS_NUM_THREADS: '1' },
  },
});
