/**
 * The kernels against the readable reference inside Chromium — the browser path the app runs: Chromium's
 * WebAssembly engine, relaxed SIMD on by default, Web Workers sharing memory on a cross-origin-isolated
 * page. scripts/browser/page/check.ts runs the checks in the page's worker; this test builds the page
 * with Vite, serves it, drives Debian's /usr/bin/chromium through playwright-core, and expects every
 * check to pass. It skips, saying so, when Chromium is missing (`apt-get install -y chromium`).
 */
import { describe, expect, it } from 'vitest';
import { chromiumMissing, runInChromium } from '../scripts/browser/chromium.ts';
import type { CheckResult } from '../scripts/browser/page/check.ts';

const missing = chromiumMissing();
if (missing) console.warn(`[kernels-browser test] skipped: ${missing}`);

describe.skipIf(missing !== undefined)('the kernels in Chromium', () => {
  it('agree with the reference: products, layer operations, two threads, a forward pass', async () => {
    const result = await runInChromium<CheckResult>({ task: 'check', quick: true }, { timeoutMs: 90_000 });
    expect(result.failed).toEqual([]);
    expect(result.passed.length).toBeGreaterThanOrEqual(119); // 2 builds × (21 products + 30 layer checks) + 17 more
    expect(result.kernels).toMatch(/^matrix kernels: wasm-relaxed-simd /);
    // Every group of checks ran: both builds, the layer operations, two threads, a forward pass.
    for (const name of [
      'wasm-simd matmul 255×256×255',
      'wasm-relaxed-simd attention',
      '2 threads',
      'forward pass',
    ]) {
      expect(
        result.passed.some((check) => check.includes(name)),
        name,
      ).toBe(true);
    }
  }, 120_000);
});
