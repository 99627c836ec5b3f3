/**
 * Chapter 15 in Chromium: every measurement runs from the keyboard and shows what the engine gives in Node on
 * the same files and tokens — the greedy tokens generated with and without the cache, the paged cache's block
 * tables after a prefill, a fork and decode steps (a Node run of BlockPool/PagedKVCache), the speculative text
 * (equal to the house model's greedy text in Node, whatever the draft guessed), the cache's bytes per token
 * (kvCacheBytes, and what a real KVCache allocates). Times are never compared with numbers, only checked to be
 * positive and finite. With a model other than the house model the speculative figure says there is no draft.
 * Screenshots at 1280 and 375 px, with every figure measured.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { kvCacheBytes, kvCacheTable, kvShapeOf } from '../../src/analysis/heads.ts';
import { forward, forwardBatch } from '../../src/engine/forward.ts';
import { generateTokens } from '../../src/engine/generate.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { BlockPool, PagedKVCache } from '../../src/engine/paged-kv-cache.ts';
import { XorShiftRng } from '../../src/engine/rng.ts';
import { defaultKernels } from '../helpers.ts';
import { haveShared, STORIES260K, TOK512 } from '../shared.ts';
import {
  checkAppearances,
  e2eSkipReason,
  houseModel,
  openPage,
  published,
  sessionForSuite,
  waitForAnalysis,
  type Published,
} from './harness.ts';

const unavailable = e2eSkipReason();
const PROMPT = 'In the beginning God created the heavens and the earth.';
const kernels = defaultKernels();

const positive = (value: number) => Number.isFinite(value) && value > 0;
const argmax = (row: Float32Array) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);

/** Presses the Measure button of figure `id` from the keyboard. */
async function measure(page: Page, id: string): Promise<void> {
  const button = page
    .locator(`#${id}-title`)
    .locator('xpath=ancestor::figure')
    .getByRole('button', {
      name: /^Measure/,
    });
  await button.focus();
  await page.keyboard.press('Enter');
}

/** The house model's greedy tokens after `tokens` in Node, as generateTokens gives them (no stop token). */
function nodeGreedy(tokens: number[], steps: number): number[] {
  const { model } = houseModel();
  const out: number[] = [];
  for (const step of generateTokens(model, tokens, {
    steps,
    sampling: { temperature: 0 },
    rng: new XorShiftRng(1),
    kernels,
  }))
    if (!step.fromPrompt) out.push(step.token);
  return out;
}

/** The paged figure's run in Node: prefill, fork, runner-up for the second, then greedy batched steps. */
function nodePaged(tokens: number[], blockSize: number, steps: number) {
  const { model } = houseModel();
  const pool = new BlockPool(model.config, blockSize, 2 * Math.ceil(model.config.seqLen / blockSize));
  const first = new PagedKVCache(pool);
  const { logits } = forward(model, tokens, first, { kernels, logits: 'last' });
  const second = first.fork();
  const best = argmax(logits);
  const masked = Float32Array.from(logits, (v, i) => (i === best ? -Infinity : v));
  const pending = [best, argmax(masked)];
  const generated = pending.map((token) => [token]);
  const caches = [first, second];
  const afterFork = caches.map((cache) => [...cache.blockTable]);
  for (let s = 0; s < steps; s++) {
    const rows = forwardBatch(
      model,
      caches.map((cache, i) => ({ tokens: [pending[i]], cache })),
      { kernels, logits: 'last' },
    );
    rows.forEach((row, i) => {
      pending[i] = argmax(row);
      generated[i].push(pending[i]);
    });
  }
  return {
    afterFork,
    tables: caches.map((cache) => [...cache.blockTable]),
    generated,
    blocksInUse: pool.blocksInUse,
  };
}

describe.skipIf(unavailable !== undefined)('chapter 15 (inference) in Chromium', () => {
  const session = sessionForSuite();

  it("measures every figure from the keyboard and shows the engine's tokens, tables and bytes", async () => {
    const { model, tokenizer } = houseModel();
    const { page, problems } = await openPage(session);
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.goto(`${session.origin}/inference?prompt=${encodeURIComponent(PROMPT)}`);
    const hook = await waitForAnalysis(page, PROMPT);
    const tokens = tokenizer.encode(PROMPT, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);

    // Bytes per token: chapter 8's function for every row, and a real KVCache's allocation for this model.
    type BytesFigure = {
      rows: { name: string; bytesPerToken: number; bytesAtContext: number; context: number }[];
      allocatedPerPosition: number;
    };
    const bytesFigure = await published<BytesFigure & Published>(
      page,
      'inference.bytes',
      undefined,
      (f) => (f as unknown as BytesFigure).allocatedPerPosition !== undefined,
    );
    const cache = new KVCache(model.config);
    const allocated =
      [...cache.keys, ...cache.values].reduce((sum, layer) => sum + layer.byteLength, 0) / cache.capacity;
    expect(bytesFigure.allocatedPerPosition).toBe(allocated);
    expect(bytesFigure.rows[0].bytesPerToken).toBe(kvCacheBytes(kvShapeOf(model.config), 1, 4));
    const table = kvCacheTable(model.config, 'x');
    expect(bytesFigure.rows.map((r) => [r.bytesPerToken, r.bytesAtContext, r.context])).toEqual(
      table.map((r) => [r.bytesPerToken, r.bytesAtContext, r.context]),
    );
    // Llama 2 7B: 32 layers × 32 heads × 128 × 2 × 2 bytes = 512 KiB per token, 2 GiB at 4096 positions.
    const llama = bytesFigure.rows.find((r) => r.name === 'Llama 2 7B')!;
    expect(llama.bytesPerToken).toBe(512 * 1024);
    expect(llama.bytesAtContext).toBe(2 * 1024 ** 3);

    // Prefill against decode.
    await measure(page, 'inf-prefill');
    type PrefillFigure = Published & {
      rows: { name: string; tokensPerSecond: number; flops: number; bytes: number }[];
      largestDifference: number;
    };
    const prefill = await published<PrefillFigure>(page, 'inference.prefill', tokens);
    expect(prefill.rows.map((r) => r.name)).toEqual(['prefill', 'decode']);
    prefill.rows.forEach((r) => expect(positive(r.tokensPerSecond)).toBe(true));
    // The same products through the layers either way; decoding also scores the vocabulary at every step.
    const { dim, vocabSize } = model.config;
    expect(prefill.rows[1].flops - prefill.rows[0].flops).toBe((tokens.length - 1) * 2 * dim * vocabSize);
    expect(prefill.rows[1].bytes).toBeGreaterThan((tokens.length - 1) * prefill.rows[0].bytes * 0.9);
    expect(prefill.largestDifference).toBeLessThan(1e-3);

    // With and without the cache: the greedy tokens of Node's generateTokens, the same both ways.
    await measure(page, 'inf-curve');
    type CurveFigure = Published & {
      generated: number[];
      sameTokens: boolean;
      steps: { position: number; cachedMs: number; uncachedMs: number }[];
      cachedTotalMs: number;
      uncachedTotalMs: number;
    };
    const curve = await published<CurveFigure>(page, 'inference.curve', tokens, undefined, 60_000);
    expect(curve.sameTokens).toBe(true);
    expect(curve.generated).toEqual(nodeGreedy(tokens, tokens.length - 1 + curve.generated.length));
    expect(curve.steps.map((s) => s.position)).toEqual(curve.generated.map((_, i) => tokens.length + i));
    curve.steps.forEach((s) => expect(positive(s.cachedMs) && positive(s.uncachedMs)).toBe(true));
    expect(positive(curve.cachedTotalMs) && positive(curve.uncachedTotalMs)).toBe(true);

    // A measurement stops when asked (Enter again on the same button, now Stop); the last answer stays.
    await measure(page, 'inf-curve');
    await page.keyboard.press('Enter');
    await expect
      .poll(() => page.locator('#inf-curve-summary').locator('xpath=..').textContent())
      .toMatch(/Stopped/);
    expect((await published<CurveFigure>(page, 'inference.curve', tokens)).generated).toEqual(
      curve.generated,
    );

    // The paged cache: prefill and fork, then 12 steps by the keyboard; the block tables of a Node run.
    const stepButton = page.getByRole('button', { name: 'Prefill and fork' });
    await stepButton.focus();
    await page.keyboard.press('Enter');
    type PagedFigure = Published & {
      blockSize: number;
      step: number;
      tables: number[][];
      generated: number[][];
      shared: number[];
      blocksInUse: number;
      copies: { sequence: number; index: number; from: number; to: number }[];
    };
    const forked = await published<PagedFigure>(page, 'inference.paged', tokens, (f) => f.step === 0);
    const expectedFork = nodePaged(tokens, 8, 0);
    expect(forked.tables).toEqual(expectedFork.afterFork);
    expect(forked.tables[0]).toEqual(forked.tables[1]); // the fork shares every block
    expect(forked.shared).toEqual(forked.tables[0]);
    for (let i = 1; i <= 12; i++) {
      await page.keyboard.press('Enter'); // the same button, now Step
      await published<PagedFigure>(page, 'inference.paged', tokens, (f) => f.step === i);
    }
    const paged = await published<PagedFigure>(page, 'inference.paged', tokens, (f) => f.step === 12);
    const expectedPaged = nodePaged(tokens, 8, 12);
    expect(paged.tables).toEqual(expectedPaged.tables);
    expect(paged.generated).toEqual(expectedPaged.generated);
    expect(paged.blocksInUse).toBe(expectedPaged.blocksInUse);
    // The prompt's full blocks stay shared; a partly filled last block was copied on the first write.
    const fullBlocks = Math.floor(tokens.length / 8);
    expect(paged.shared).toEqual(forked.tables[0].slice(0, fullBlocks));
    if (tokens.length % 8 !== 0) {
      expect(paged.copies.length).toBeGreaterThanOrEqual(1);
      expect(paged.copies[0].index).toBe(fullBlocks);
    }

    // Batching: 1 … 8 sequences, every rate positive and finite.
    await measure(page, 'inf-batch');
    type BatchFigure = Published & { rows: { batch: number; stepMs: number; tokensPerSecond: number }[] };
    const batch = await published<BatchFigure>(page, 'inference.batch', tokens, undefined, 60_000);
    expect(batch.rows.map((r) => r.batch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    batch.rows.forEach((r) => expect(positive(r.stepMs) && positive(r.tokensPerSecond)).toBe(true));

    // Speculative decoding with k = 3 (the slider moved by the keyboard): the house model's greedy text.
    const slider = page.locator('#inf-spec-k');
    await slider.focus();
    await page.keyboard.press('ArrowLeft');
    expect(await slider.inputValue()).toBe('3');
    await measure(page, 'inf-speculative');
    type SpecFigure = Published & {
      draftTokens: number;
      plainGenerated: number[];
      speculativeGenerated: number[];
      identical: boolean;
      stats: { proposed: number; accepted: number; targetPasses: number; draftPasses: number };
      plainTokensPerSecond: number;
      speculativeTokensPerSecond: number;
    };
    const spec = await published<SpecFigure>(page, 'inference.speculative', tokens, undefined, 60_000);
    expect(spec.draftTokens).toBe(3);
    const greedy = nodeGreedy(tokens, Math.min(model.config.seqLen, tokens.length - 1 + 48));
    expect(greedy).toHaveLength(48);
    expect(spec.plainGenerated).toEqual(greedy);
    expect(spec.speculativeGenerated).toEqual(greedy);
    expect(spec.identical).toBe(true);
    expect(spec.stats.accepted).toBeLessThanOrEqual(spec.stats.proposed);
    expect(spec.stats.proposed).toBeGreaterThan(0);
    expect(positive(spec.plainTokensPerSecond) && positive(spec.speculativeTokensPerSecond)).toBe(true);

    // The roofline, with every workload measured above on it.
    await measure(page, 'inf-roofline');
    type RoofFigure = {
      peakGflops: number;
      bandwidthGBs: number;
      ridge: number;
      workloads: { name: string; intensity: number; gflops: number }[];
    };
    const roof = await published<RoofFigure & Published>(
      page,
      'inference.roofline',
      undefined,
      undefined,
      60_000,
    );
    expect(positive(roof.peakGflops) && positive(roof.bandwidthGBs)).toBe(true);
    expect(roof.ridge).toBeCloseTo(roof.peakGflops / roof.bandwidthGBs, 9);
    expect(roof.workloads).toHaveLength(2 + 2 + 8);
    roof.workloads.forEach((w) => expect(positive(w.intensity) && positive(w.gflops)).toBe(true));
    await expect.poll(() => page.locator('#inf-roofline-summary').textContent()).toMatch(/GFLOP\/s/);

    // The question's answer is the count of the figure's own run.
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect.poll(() => page.locator('.predict label.correct').count()).toBe(1);

    expect({ console: problems.console, failed: problems.failed, foreign: problems.foreign }).toEqual({
      console: [],
      failed: [],
      foreign: [],
    });
    await page.close();
  });

  it.skipIf(!haveShared)('says there is no draft for a model other than the house model', async () => {
    const { page } = await openPage(session);
    await page.goto(`${session.origin}/inference?prompt=Lily`);
    await waitForAnalysis(page, 'Lily');
    await page.locator('input[type=file]').setInputFiles([STORIES260K, TOK512]);
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { __glassbox: { model: { id: string } } }).__glassbox.model.id === 'local',
    );
    await expect
      .poll(() => page.locator('#inf-speculative-summary').textContent())
      .toMatch(/No draft model for this model/);
    expect(await page.locator('#inf-spec-k').count()).toBe(0);
    await page.close();
  });

  it('passes axe in light and dark mode, and screenshots the measured chapter at 1280 and 375 px', async () => {
    await checkAppearances(session, 'inference', PROMPT, async (page, hook) => {
      await published(page, 'inference.bytes', undefined);
      await measure(page, 'inf-prefill');
      await published(page, 'inference.prefill', hook.tokens);
      await measure(page, 'inf-curve');
      await published(page, 'inference.curve', hook.tokens, undefined, 60_000);
      await page.getByRole('button', { name: 'Prefill and fork' }).click();
      await published(page, 'inference.paged', hook.tokens);
      for (let i = 1; i <= 6; i++) {
        await page.getByRole('button', { name: 'Step', exact: true }).click();
        await published<Published & { step: number }>(
          page,
          'inference.paged',
          hook.tokens,
          (f) => f.step === i,
        );
      }
      await measure(page, 'inf-batch');
      await published(page, 'inference.batch', hook.tokens, undefined, 60_000);
      await measure(page, 'inf-speculative');
      await published(page, 'inference.speculative', hook.tokens, undefined, 60_000);
      await measure(page, 'inf-roofline');
      await published(page, 'inference.roofline', undefined, undefined, 60_000);
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
    });
  }, 300_000);
});
