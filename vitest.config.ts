import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/yield_event_loop.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // tfjs keeps global engine state; one fork per file keeps backends from leaking between files.
    pool: 'forks',
  },
});
