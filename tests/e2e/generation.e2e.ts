/**
 * Chapter 12 in Chromium: the loop stepped from the keyboard samples the tokens the engine's loop and
 * `glassbox generate` give in Node for the same text, settings and seed, with the KV cache growing by the
 * prompt at the prefill and by one row per decode step; it ends live at a stop token and at a full context;
 * the per-token surprise and perplexity of the reader's text and of its shuffled copy are Node's. Screenshots
 * at 1280 and 375 px.
 */
import { describe, expect, it } from 'vitest';
import { sortedDistribution } from '../../src/analysis/sampling.ts';
import { shuffledTokens, textSurprise } from '../../src/analysis/surprise.ts';
import { forward } from '../../src/engine/forward.ts';
import { GenerationLoop } from '../../src/engine/generate.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { XorShiftRng } from '../../src/engine/rng.ts';
import type { SamplingSettings } from '../../src/engine/sampling.ts';
import { runCli } from '../cli-helpers.ts';
import { defaultKernels } from '../helpers.ts';
import {
  checkAppearances,
  e2eSkipReason,
  HOUSE,
  houseModel,
  openPage,
  type Published,
  published,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';

const unavailable = e2eSkipReason();

const PROMPT = 'In the beginning God created the heavens and the earth.';
const SEED = 7;
/** The page's sampler defaults (chapter 11's filters) at the course's temperature. */
const SETTINGS: SamplingSettings = { temperature: 0.8, topK: 0, topP: 0.9, minP: 0 };

const node = houseModel;
const kernels = defaultKernels();

interface LoopFigure extends Published {
  settings: SamplingSettings;
  seed: number;
  steps: {
    step: number;
    kind: string;
    read: number;
    cacheRows: number;
    token: number;
    position: number;
    probability: number;
    stopped?: string;
    stopChance: number;
  }[];
  bytesPerPosition: number;
  cacheBytes: number;
}

/** The engine's loop in Node: each step's token, its renormalised chance, and whether it is a stop token. */
function nodeSteps(tokens: number[], settings: SamplingSettings, seed: number, count: number) {
  const { model, tokenizer } = node();
  const loop = new GenerationLoop(model, tokens, { sampling: settings, rng: new XorShiftRng(seed), kernels });
  const stops = [tokenizer.bosId, tokenizer.eosId];
  const steps: { token: number; probability: number; stop: boolean }[] = [];
  while (steps.length < count && loop.canStep) {
    const step = loop.step();
    const view = sortedDistribution(step.logits, settings);
    const rank = view.order.indexOf(step.token);
    steps.push({ token: step.token, probability: view.renormalised[rank], stop: stops.includes(step.token) });
    if (stops.includes(step.token)) break;
  }
  return { steps, full: !loop.canStep };
}

describe.skipIf(unavailable !== undefined)('chapter 12 (generation) in Chromium', () => {
  const session = sessionForSuite();

  it("steps the engine's loop by keyboard, equal to Node and the CLI; surprise and perplexity are Node's", async () => {
    const { model, tokenizer } = node();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/generation?prompt=${encodeURIComponent(PROMPT)}&seed=${SEED}`);
    const hook = await waitForAnalysis(page, PROMPT);
    const tokens = tokenizer.encode(PROMPT, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);

    // Surprise: the reader's text from one pass's logits; the shuffled copy (seed 7) likewise.
    type SurpriseFigure = Published & {
      seed: number;
      real: { tokens: number[]; surprise: number[]; meanNll: number; perplexity: number };
      shuffled: { tokens: number[]; surprise: number[]; meanNll: number; perplexity: number };
    };
    const surprise = await published<SurpriseFigure>(page, 'generation.surprise', tokens);
    const allLogits = (ids: number[]) =>
      forward(model, ids, new KVCache(model.config), { logits: 'all', kernels }).logits;
    const real = textSurprise(tokens, allLogits(tokens), model.config.vocabSize);
    const shuffledIds = shuffledTokens(tokens, SEED);
    const shuffled = textSurprise(shuffledIds, allLogits(shuffledIds), model.config.vocabSize);
    expect(surprise.seed).toBe(SEED);
    expect(surprise.shuffled.tokens).toEqual(shuffledIds);
    surprise.real.surprise.forEach((s, i) => expect(s).toBeCloseTo(real.surprise[i], 4));
    surprise.shuffled.surprise.forEach((s, i) => expect(s).toBeCloseTo(shuffled.surprise[i], 4));
    expect(surprise.real.perplexity / real.perplexity).toBeCloseTo(1, 4);
    expect(surprise.shuffled.perplexity / shuffled.perplexity).toBeCloseTo(1, 4);

    // The question, answered from those perplexities.
    const ratio = shuffled.perplexity / real.perplexity;
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect
      .poll(() => page.locator('.predict label.correct').textContent())
      .toMatch(ratio > 2 ? /over twice/ : ratio > 1.2 ? /up to twice/ : ratio >= 1 / 1.2 ? /About/ : /Less/);

    // The loop from the keyboard: Step (Enter) five times.
    const stepButton = page.getByRole('button', { name: 'Step', exact: true });
    await stepButton.focus();
    for (let i = 1; i <= 5; i++) {
      await page.keyboard.press('Enter');
      await published<LoopFigure>(page, 'generation.loop', tokens, (f) => f.steps.length === i);
      await expect.poll(() => stepButton.isEnabled()).toBe(true);
    }
    const loop = await published<LoopFigure>(page, 'generation.loop', tokens, (f) => f.steps.length === 5);
    expect(loop.settings).toEqual(SETTINGS);
    const expected = nodeSteps(tokens, SETTINGS, SEED, 5);
    expect(loop.steps.map((s) => s.token)).toEqual(expected.steps.map((s) => s.token));
    loop.steps.forEach((s, i) => expect(s.probability).toBeCloseTo(expected.steps[i].probability, 5));
    // Prefill reads the whole text and fills T rows; each decode step reads one token and adds one row.
    expect(loop.steps.map((s) => [s.kind, s.read, s.cacheRows, s.position])).toEqual(
      loop.steps.map((_, i) =>
        i === 0
          ? ['prefill', tokens.length, tokens.length, tokens.length]
          : ['decode', 1, tokens.length + i, tokens.length + i],
      ),
    );
    const { nLayers, nKvHeads, dim, nHeads } = model.config;
    expect(loop.bytesPerPosition).toBe(2 * nLayers * nKvHeads * (dim / nHeads) * 4);
    expect(loop.cacheBytes).toBe((tokens.length + 4) * loop.bytesPerPosition);
    // The CLI with the same settings and seed prints the same tokens.
    const cli = await runCli([
      'generate',
      '--model',
      HOUSE,
      '--prompt',
      PROMPT,
      '--temperature',
      '0.8',
      '--top-p',
      '0.9',
      '--seed',
      String(SEED),
      '--steps',
      String(tokens.length - 1 + 5),
    ]);
    expect(cli.stdout.toString('utf8')).toBe(
      tokenizer.decode([...tokens, ...loop.steps.map((s) => s.token)]) + '\n',
    );

    // Start over: the same seed gives the same first token again.
    await page.getByRole('button', { name: 'Start over' }).click();
    await stepButton.click();
    const again = await published<LoopFigure>(page, 'generation.loop', tokens, (f) => f.steps.length === 1);
    expect(again.steps[0].token).toBe(loop.steps[0].token);

    expect({ console: problems.console, failed: problems.failed, foreign: problems.foreign }).toEqual({
      console: [],
      failed: [],
      foreign: [],
    });
    await page.close();
  });

  it('ends live: at a sampled stop token, and when the context is full', async () => {
    const { model, tokenizer } = node();
    // A chapter's last verse: find, in Node, a seed whose loop samples a stop token within 40 steps.
    const ending = 'The grace of the Lord Jesus Christ be with you all. Amen.\n';
    const endingTokens = tokenizer.encode(ending, { bos: true, eos: false });
    const settings = { ...SETTINGS, temperature: 1 };
    let stopSeed: number | undefined;
    let stopAt = 0;
    for (let seed = 1; seed <= 300 && stopSeed === undefined; seed++) {
      const run = nodeSteps(endingTokens, settings, seed, 40);
      if (run.steps.at(-1)?.stop) {
        stopSeed = seed;
        stopAt = run.steps.length;
      }
    }
    expect(stopSeed, 'no seed in 1…300 samples a stop token after a closing verse').toBeDefined();
    const { page, problems } = await openPage(session);
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.goto(
      `${session.origin}/generation?prompt=${encodeURIComponent(ending)}&seed=${stopSeed}&temperature=1`,
    );
    await waitForAnalysis(page, ending);
    await page.getByRole('button', { name: 'Run to the end' }).click();
    const stopped = await published<LoopFigure>(page, 'generation.loop', endingTokens, (f) =>
      f.steps.some((s) => s.stopped !== undefined),
    );
    expect(stopped.steps).toHaveLength(stopAt);
    expect(stopped.steps.at(-1)?.stopped).toBe('stop token');
    expect([tokenizer.bosId, tokenizer.eosId]).toContain(stopped.steps.at(-1)?.token);
    expect(stopped.steps.at(-1)?.stopChance).toBeGreaterThan(0);
    await expect.poll(() => page.locator('#gen-loop-summary').textContent()).toMatch(/a stop token/);

    // A full context: greedy from a long text runs until all seqLen positions are cached.
    const long = 'And God said, Let there be light: and there was light. '.repeat(8);
    const longTokens = tokenizer.encode(long, { bos: true, eos: false });
    const greedy = nodeSteps(longTokens, { temperature: 0 }, 1, model.config.seqLen);
    expect(greedy.full, 'greedy from the long text should fill the context without a stop token').toBe(true);
    await page.goto(`${session.origin}/generation?prompt=${encodeURIComponent(long)}&temperature=0`);
    await waitForAnalysis(page, long);
    await page.getByRole('button', { name: 'Run to the end' }).click();
    const full = await published<LoopFigure>(
      page,
      'generation.loop',
      longTokens,
      (f) => f.steps.some((s) => s.stopped !== undefined),
      30_000,
    );
    expect(full.steps.at(-1)?.stopped).toBe('context full');
    expect(full.steps.at(-1)?.cacheRows).toBe(model.config.seqLen);
    expect(full.steps.map((s) => s.token)).toEqual(greedy.steps.map((s) => s.token));
    await expect.poll(() => page.locator('#gen-loop-summary').textContent()).toMatch(/context is full/);
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it('passes axe in light and dark mode, and screenshots the chapter at 1280 and 375 px', async () => {
    // Seed 7 samples no stop token in its first steps (the first test checks five).
    const query = `&seed=${SEED}`;
    await checkAppearances(
      session,
      'generation',
      PROMPT,
      async (page, hook) => {
        await published(page, 'generation.surprise', hook.tokens);
        const step = page.getByRole('button', { name: 'Step', exact: true });
        for (let i = 1; i <= 3; i++) {
          await step.click();
          await published<LoopFigure>(page, 'generation.loop', hook.tokens, (f) => f.steps.length === i);
          await expect.poll(() => step.isEnabled()).toBe(true);
        }
      },
      { query },
    );
  });
});
