/**
 * Chapter 14 in Chromium: the page's trainer against Node's. A short seeded run in the page (a tiny
 * configuration on a book of the corpus, WebAssembly SIMD kernels on both sides) gives the same losses,
 * step by step, and the same model.safetensors, byte for byte, as `glassbox train` run in this test process
 * on the same text, seed and settings (the losses within V8's last-bit differences, see expectSameLosses). A reload in the middle resumes from the checkpoint in IndexedDB and
 * ends with the same bits as the uninterrupted run.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TRAIN_SETTINGS, trainModel, type TrainSettings } from '../../src/cli/train/run.ts';
import type { RunShape } from '../../src/engine/train/prepare.ts';
import { e2eSkipReason, openPage, sessionForSuite, SITE } from './harness.ts';

const unavailable = e2eSkipReason();

/** The book both sides train on, as the site serves it. */
const BOOK = 'web-ruth';

/** A configuration small enough for a test: a few seconds of training on either side. */
const TINY: Partial<RunShape> = {
  layers: 1,
  dim: 32,
  heads: 2,
  kvHeads: 1,
  hidden: 64,
  seqLen: 32,
  vocabSize: 300,
  batchSize: 8,
  steps: 16,
  learningRate: 0.005,
};

interface TrainerHook {
  phase: string;
  step: number;
  losses: number[];
  valLosses: [number, number][];
  problem: string | undefined;
  saved: { step: number; saved: boolean; lastGoodStep?: number } | undefined;
  info: { threads: number; kernels: string } | undefined;
  modelSha256(): Promise<string>;
}

/** The settings the page's fields make of TINY (the rest from the default preset, as the page has them). */
async function pageSettings(page: Page): Promise<RunShape> {
  return page.evaluate(() => {
    const hook = (globalThis as unknown as { __glassboxTrainerSettings?: () => RunShape })
      .__glassboxTrainerSettings;
    if (!hook) throw new Error('no settings hook');
    return hook();
  });
}

/** Opens chapter 14, chooses the book, the tiny settings and the kernels by the page's own controls. */
async function setUp(page: Page, origin: string, steps = TINY.steps!): Promise<void> {
  await page.goto(`${origin}/training`);
  await page.getByRole('combobox', { name: 'Book' }).selectOption(BOOK);
  for (const [key, value] of Object.entries({ ...TINY, steps })) {
    const label = {
      layers: 'layers',
      dim: 'width (dim)',
      heads: 'heads',
      kvHeads: 'key/value heads',
      hidden: 'FFN width',
      seqLen: 'context (tokens)',
      vocabSize: 'vocabulary',
      batchSize: 'batch (sequences)',
      steps: 'steps',
      learningRate: 'learning rate',
    }[key]!;
    const field = page.getByLabel(label, { exact: true });
    await field.fill(String(value));
    await field.dispatchEvent('change');
  }
  await page.getByRole('combobox', { name: 'Kernels' }).selectOption('wasm-simd');
}

function hook(page: Page): Promise<Omit<TrainerHook, 'modelSha256'>> {
  return page.evaluate(() => {
    const h = (globalThis as unknown as { __glassboxTrainer: TrainerHook }).__glassboxTrainer;
    return {
      phase: h.phase,
      step: h.step,
      losses: h.losses,
      valLosses: h.valLosses,
      problem: h.problem,
      saved: h.saved,
      info: h.info,
    };
  });
}

async function waitForPhase(page: Page, phase: string, timeout = 120_000): Promise<void> {
  await page.waitForFunction(
    (wanted) =>
      (globalThis as unknown as { __glassboxTrainer?: TrainerHook }).__glassboxTrainer?.phase === wanted,
    phase,
    { timeout },
  );
}

function modelSha256(page: Page): Promise<string> {
  return page.evaluate(() =>
    (globalThis as unknown as { __glassboxTrainer: TrainerHook }).__glassboxTrainer.modelSha256(),
  );
}

/** `glassbox train` on the same text and settings, in this process: its losses and model file's hash. */
async function nodeRun(settings: RunShape): Promise<{ losses: number[]; sha256: string }> {
  const folder = mkdtempSync(join(tmpdir(), 'glassbox-train-e2e-'));
  try {
    const input = join(folder, 'text.txt');
    writeFileSync(input, readFileSync(join(SITE, 'corpus', 'books', `${BOOK}.txt`)));
    const out = join(folder, 'out');
    const full: TrainSettings = { ...DEFAULT_TRAIN_SETTINGS, ...settings, input };
    const result = await trainModel(
      full,
      out,
      { resume: false, kernels: 'wasm-simd', threads: 1 },
      { log: () => {}, stopRequested: () => false },
    );
    const sha256 = createHash('sha256')
      .update(readFileSync(join(out, 'model.safetensors')))
      .digest('hex');
    return { losses: result.losses, sha256 };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * The losses are float64 sums of Math.exp and Math.log, which V8 computes differently in the last bit from
 * one version to another: Node 20's and Chromium 156's Math.exp differ on about 10% of arguments and Math.log
 * on about 2% (measured here on 200,000 of each). The gradients are float32, and those last-bit differences
 * vanish in their rounding (the weights above are the same file, byte for byte); the float64 loss can keep
 * one. So each loss must equal Node's or be its neighbour within 2 units in the last place.
 */
function expectSameLosses(page: number[], node: number[]): void {
  expect(page).toHaveLength(node.length);
  page.forEach((loss, i) => {
    const ulp = Math.abs(node[i]) * Number.EPSILON;
    expect(Math.abs(loss - node[i]), `step ${i + 1}: page ${loss}, Node ${node[i]}`).toBeLessThanOrEqual(
      2 * ulp,
    );
  });
  // Most are bit-identical; a last-bit difference is the exception, not the rule.
  expect(page.filter((loss, i) => loss === node[i]).length).toBeGreaterThanOrEqual(node.length / 2);
}

describe.skipIf(unavailable !== undefined)('chapter 14 (training) in Chromium', () => {
  const session = sessionForSuite();

  it('a seeded run in the page gives Node’s weights byte for byte (and its losses to V8’s last bit), on two shard workers', async () => {
    const { page, problems } = await openPage(session);
    await setUp(page, session.origin);
    const settings = await pageSettings(page);
    expect(settings).toMatchObject(TINY);
    const node = await nodeRun(settings);
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await waitForPhase(page, 'finished');
    const done = await hook(page);
    expect(done.problem).toBeUndefined();
    // The page is cross-origin isolated: the shards ran on two workers, and still gave Node's one-thread bits.
    expect(done.info?.threads).toBe(2);
    expect(done.info?.kernels).toBe('wasm-simd');
    expect(done.losses).toHaveLength(TINY.steps!);
    expect(await modelSha256(page)).toBe(node.sha256);
    expectSameLosses(done.losses, node.losses);
    expect(problems.console).toEqual([]);
    await page.close();
  });
});
