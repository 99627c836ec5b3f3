/**
 * Chapter 11 in Chromium: the sorted distribution and each filter's survivors are the numbers the engine's
 * sampler gives in Node for the same text and settings; the sliders work from the keyboard; a draw with seed
 * S is the token `glassbox generate --seed S` prints, and the same seed gives it again; the twenty
 * continuations are the CLI's, seed by seed, and the greedy one is its temperature-0 run. Screenshots at
 * 1280 and 375 px.
 */
import { describe, expect, it } from 'vitest';
import { sortedDistribution } from '../../src/analysis/sampling.ts';
import { forward } from '../../src/engine/forward.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { XorShiftRng } from '../../src/engine/rng.ts';
import { sampleToken, type SamplingSettings } from '../../src/engine/sampling.ts';
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

const PROMPT = 'And God said, Let there be light: and there was';
const SEED = 7;

function nodeModel() {
  const { model, tokenizer } = houseModel();
  const lastLogits = (tokens: number[]) =>
    forward(model, tokens, new KVCache(model.config), { logits: 'last', kernels: defaultKernels() }).logits;
  return { model, tokenizer, lastLogits };
}

/** What `glassbox generate` prints for these settings: the text of the prompt and the sampled tokens. */
async function cliGenerate(settings: SamplingSettings, seed: number, steps: number): Promise<string> {
  const result = await runCli([
    'generate',
    '--model',
    HOUSE,
    '--prompt',
    PROMPT,
    '--temperature',
    String(settings.temperature),
    '--top-k',
    String(settings.topK ?? 0),
    '--top-p',
    String(settings.topP ?? 0),
    '--min-p',
    String(settings.minP ?? 0),
    '--seed',
    String(seed),
    '--steps',
    String(steps),
  ]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.toString('utf8');
}

interface Distribution extends Published {
  greedy: boolean;
  settings: SamplingSettings;
  order: number[];
  top: number[];
  afterTopK: number;
  afterMinP: number;
  kept: number;
  keptMass: number;
  renormalised: number[];
}

describe.skipIf(unavailable !== undefined)('chapter 11 (sampling) in Chromium', () => {
  const session = sessionForSuite();

  it("shows the engine's sorted distribution, filters and seeded draws; the CLI draws the same tokens", async () => {
    const node = nodeModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/sampling?prompt=${encodeURIComponent(PROMPT)}&seed=${SEED}`);
    const hook = await waitForAnalysis(page, PROMPT);
    const tokens = node.tokenizer.encode(PROMPT, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);
    const logits = node.lastLogits(tokens);

    // The defaults: temperature 0.8 (the course's), top-p 0.9, top-k and min-p off.
    const checkDistribution = (shown: Distribution) => {
      const expected = sortedDistribution(logits, shown.settings);
      expect(shown.order).toEqual(Array.from(expected.order.subarray(0, 8)));
      // The page's kernels need not be Node's here (relaxed SIMD's fused multiply-adds, the threads' split of
      // the sums): float32 rounding then moves a probability near 0.5 by about 1e-6, so five decimals.
      shown.top.forEach((p, i) => expect(p).toBeCloseTo(expected.sorted[i], 5));
      expect([shown.afterTopK, shown.afterMinP, shown.kept]).toEqual([
        expected.afterTopK,
        expected.afterMinP,
        expected.kept,
      ]);
      expect(shown.keptMass).toBeCloseTo(expected.keptMass, 5);
      shown.renormalised.forEach((p, i) => expect(p).toBeCloseTo(expected.renormalised[i], 5));
      return expected;
    };
    const first = await published<Distribution>(page, 'sampling.distribution', tokens);
    expect(first.settings).toEqual({ temperature: 0.8, topK: 0, topP: 0.9, minP: 0 });
    const firstView = checkDistribution(first);
    expect(firstView.kept).toBeLessThan(node.model.config.vocabSize);

    // Keyboard: top-p down by 0.2, top-k up to 5, min-p up to 0.05; each time the page agrees with Node.
    await page.focus('#samp-top-p');
    for (let i = 0; i < 20; i++) await page.keyboard.press('ArrowLeft');
    const narrower = await published<Distribution>(
      page,
      'sampling.distribution',
      tokens,
      (f) => Math.abs(f.settings.topP! - 0.7) < 1e-9,
    );
    expect(checkDistribution(narrower).kept).toBeLessThanOrEqual(firstView.kept);
    await page.focus('#samp-top-k');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
    await page.focus('#samp-min-p');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
    const filtered = await published<Distribution>(
      page,
      'sampling.distribution',
      tokens,
      (f) => f.settings.topK === 5 && Math.abs(f.settings.minP! - 0.05) < 1e-9,
    );
    expect(checkDistribution(filtered).afterTopK).toBe(5);
    // The settings travel in the link, and a link restores them.
    await expect.poll(() => new URL(page.url()).searchParams.get('top-k')).toBe('5');
    const link = new URL(page.url()).searchParams;
    expect([link.get('top-p'), link.get('min-p')].map(Number)).toEqual([
      filtered.settings.topP,
      filtered.settings.minP,
    ]);
    const linked = await openPage(session);
    await linked.page.goto(`${session.origin}/sampling?${link.toString()}`);
    await waitForAnalysis(linked.page, PROMPT);
    const restored = await published<Distribution>(linked.page, 'sampling.distribution', tokens);
    expect(restored.settings).toEqual(filtered.settings);
    await linked.page.close();
    // Temperature to 0 with Home: greedy, one survivor.
    await page.focus('#samp-temperature');
    await page.keyboard.press('Home');
    const greedy = await published<Distribution>(
      page,
      'sampling.distribution',
      tokens,
      (f) => f.settings.temperature === 0,
    );
    expect([greedy.greedy, greedy.kept]).toEqual([true, 1]);
    checkDistribution(greedy);
    // Back to 1.0 (End is 2; five steps of 0.05 down from 1.25 would do too: type it through the URL instead).
    await page.goto(
      `${session.origin}/sampling?prompt=${encodeURIComponent(PROMPT)}&seed=${SEED}&temperature=1`,
    );
    await waitForAnalysis(page, PROMPT);

    // The draw: seed 7, temperature 1, and the filters back at their defaults (top-p 0.9) after the reload.
    type Draw = Published & { settings: SamplingSettings; seed: number; token: number; coin: number };
    const draw = await published<Draw>(page, 'sampling.draw', tokens, (f) => f.seed === SEED);
    expect(draw.settings.temperature).toBe(1);
    expect(draw.token).toBe(sampleToken(logits, draw.settings, new XorShiftRng(SEED)));
    expect(draw.coin).toBe(new XorShiftRng(SEED).nextFloat());
    expect(await cliGenerate(draw.settings, SEED, tokens.length)).toBe(
      node.tokenizer.decode([...tokens, draw.token]) + '\n',
    );
    // Same seed, same draw: next seed, then back.
    await page.getByRole('button', { name: 'Next seed' }).click();
    const next = await published<Draw>(page, 'sampling.draw', tokens, (f) => f.seed === SEED + 1);
    expect(next.token).toBe(sampleToken(logits, next.settings, new XorShiftRng(SEED + 1)));
    await page.getByRole('button', { name: 'Previous seed' }).click();
    const again = await published<Draw>(page, 'sampling.draw', tokens, (f) => f.seed === SEED);
    expect(again.token).toBe(draw.token);

    // Twenty continuations: each the CLI's output for its seed; the greedy one the CLI's at temperature 0.
    type Many = Published & {
      settings: SamplingSettings;
      seed: number;
      newTokens: number;
      sampled: { seed: number; tokens: number[]; ended: string }[];
      greedy: { tokens: number[] };
      elapsedMs: number;
    };
    const many = await published<Many>(
      page,
      'sampling.continuations',
      tokens,
      (f) => f.seed === SEED && f.settings.temperature === 1,
      60_000,
    );
    expect(many.sampled.map((c) => c.seed)).toEqual(Array.from({ length: 20 }, (_, i) => SEED + i));
    expect(many.elapsedMs).toBeGreaterThan(0);
    const steps = tokens.length - 1 + many.newTokens;
    for (const c of [many.sampled[0], many.sampled[9], many.sampled[19]]) {
      expect(await cliGenerate(many.settings, c.seed, steps)).toBe(
        node.tokenizer.decode([...tokens, ...c.tokens]) + '\n',
      );
    }
    expect(await cliGenerate({ temperature: 0 }, SEED, steps)).toBe(
      node.tokenizer.decode([...tokens, ...many.greedy.tokens]) + '\n',
    );
    expect(new Set(many.sampled.map((c) => c.tokens.join())).size).toBeGreaterThan(1);

    // Predict, then reveal: the nucleus count at temperature 1, top-p 0.9.
    const nucleus = sortedDistribution(logits, { temperature: 1, topP: 0.9 }).kept;
    const expectedChoice =
      nucleus < 10 ? /1 to 9/ : nucleus < 100 ? /10 to 99/ : nucleus < 1000 ? /100 to 999/ : /1,000/;
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect.poll(() => page.locator('.predict label.correct').textContent()).toMatch(expectedChoice);

    expect({ console: problems.console, failed: problems.failed, foreign: problems.foreign }).toEqual({
      console: [],
      failed: [],
      foreign: [],
    });
    await page.close();
  });

  it('passes axe in light and dark mode, and screenshots the chapter at 1280 and 375 px', async () => {
    await checkAppearances(session, 'sampling', PROMPT, async (page, hook) => {
      await published(page, 'sampling.distribution', hook.tokens);
      await published(page, 'sampling.continuations', hook.tokens, () => true, 60_000);
    });
  });
});
