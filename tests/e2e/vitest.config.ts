import { defineConfig } from 'vitest/config';

// The end-to-end suite: the built site (dist/app) in Debian's Chromium. `npm run test:e2e` builds first.
export default defineConfig({
  test: {
    root: import.meta.dirname + '/../..',
    include: ['tests/e2e/**/*.e2e.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
