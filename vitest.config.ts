import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    // The oracle and fuzz suites are CPU-bound; two workers match the two cores we have.
    maxWorkers: 2,
  },
});
