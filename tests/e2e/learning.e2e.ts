/**
 * Chapter 13 in Chromium: the loss of each token of the reader's text and its mean are Node's (a forward pass
 * of the engine), and the trainer's loss on the same tokens is Node's trainer's; one weight's gradient, chosen
 * from the keyboard, is the gradient Node's trainer computes, beside finite differences that match Node's
 * central differences; the tiny block's walk, stepped by keyboard, is Node's walk, every check under 1e-4;
 * the race shows the shipped paths, and run live in the page it retraces them; a learning rate chosen from
 * the keyboard sends SGD off the map as Node's first step predicts. Screenshots at 1280 and 375 px (and dark).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  centralDifference,
  FINITE_DIFFERENCE_STEPS,
  LossPlane,
  OPTIMISERS,
  parameterNamed,
  textBatch,
  tinyBlockWalk,
} from '../../src/analysis/learning.ts';
import { textSurprise } from '../../src/analysis/surprise.ts';
import { LANDSCAPE_SETTINGS, VALLEY_MARGIN } from '../../src/app/chapters/13-learning/landscape-settings.ts';
import { forward } from '../../src/engine/forward.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { TrainingModel } from '../../src/engine/train/model.ts';
import { zerosLike } from '../../src/engine/train/parameters.ts';
import { defaultKernels } from '../helpers.ts';
import {
  ARTIFACTS,
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

interface LossFigure extends Published {
  losses: number[];
  mean: number;
  trainerLoss?: number;
}
interface GradientFigure extends Published {
  parameter: string;
  row: number;
  col: number;
  value: number;
  backprop: number;
  trainerLoss: number;
  differences: { h: number; plus: number; minus: number; estimate: number }[];
  backwardMs: number;
  differencesMs: number;
}
interface BlockFigure extends Published {
  loss: number;
  step: number;
  op: string;
  phase: string;
  shown: { label: string; values: number[]; check?: number }[];
  checks: Record<string, number>;
}
interface Point {
  a: number;
  b: number;
  loss: number;
}
interface RaceFigure extends Published {
  source: string;
  learningRate: number;
  start: [number, number];
  steps: number;
  paths: Record<string, Point[]>;
  diverged: Record<string, boolean>;
  running: boolean;
  shown: number;
  elapsedMs?: number;
}

const landscape = JSON.parse(readFileSync('src/app/chapters/13-learning/landscape.json', 'utf8'));

describe.skipIf(unavailable !== undefined)('chapter 13 (learning) in Chromium', () => {
  const session = sessionForSuite();

  it("shows Node's per-token losses, the trainer's loss, and one weight's gradient chosen by keyboard", async () => {
    const { model, tokenizer } = houseModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/learning?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    const tokens = tokenizer.encode(PROMPT, { bos: true, eos: false });

    const { logits } = forward(model, tokens, new KVCache(model.config), { logits: 'all', kernels });
    const expected = textSurprise(tokens, logits, model.config.vocabSize);
    const loss = await published<LossFigure>(
      page,
      'learning.loss',
      tokens,
      (f) => f.trainerLoss !== undefined,
    );
    loss.losses.forEach((value, i) => expect(value).toBeCloseTo(expected.surprise[i], 4));
    expect(loss.mean).toBeCloseTo(expected.meanNll, 5);

    // Node's trainer on the same tokens: its loss, and its gradient for the weight the page shows.
    const trainer = new TrainingModel(model.config, model.weights, { kernels });
    const batch = textBatch(tokens);
    const trainerLoss = trainer.forward(batch);
    const gradients = zerosLike(model.weights);
    trainer.backward(gradients);
    expect(loss.trainerLoss).toBeCloseTo(trainerLoss, 5);
    expect(loss.trainerLoss).toBeCloseTo(loss.mean, 5);

    const checkGradient = (figure: GradientFigure) => {
      const tensor = parameterNamed(model.weights, figure.parameter);
      const width = tensor.shape.length > 1 ? tensor.shape[1] : tensor.shape[0];
      const index = figure.row * width + figure.col;
      const backprop = parameterNamed(gradients, figure.parameter).data[index];
      expect(figure.value).toBe(tensor.data[index]);
      // Two float32 backward passes (Node's and Chromium's kernels may differ in summation order).
      expect(Math.abs(figure.backprop - backprop)).toBeLessThan(1e-6 + 1e-3 * Math.abs(backprop));
      const node = FINITE_DIFFERENCE_STEPS.map((h) =>
        centralDifference(
          () => trainer.forward(batch),
          tensor.data,
          index,
          h,
          () => kernels.invalidate?.(tensor.data),
        ),
      );
      figure.differences.forEach((difference, i) => {
        expect(difference.h).toBe(node[i].h);
        expect(difference.plus).toBeCloseTo(node[i].plus, 5);
        expect(difference.minus).toBeCloseTo(node[i].minus, 5);
      });
      // At h = 1e-3 the difference quotient is within truncation and rounding of the gradient.
      const at = figure.differences.find((d) => d.h === 1e-3)!;
      expect(Math.abs(at.estimate - backprop)).toBeLessThan(2e-3 + 2e-2 * Math.abs(backprop));
      console.log(
        `[learning] ${figure.parameter}[${figure.row}, ${figure.col}]: backprop ${figure.backprop.toExponential(4)}; ` +
          `in the page: backward ${figure.backwardMs.toFixed(1)} ms, ${figure.differences.length * 2} forward passes ` +
          `${figure.differencesMs.toFixed(1)} ms`,
      );
    };
    checkGradient(await published<GradientFigure>(page, 'learning.gradient', tokens));

    // The keyboard: another matrix from the select, then row 5 and column 7 typed into their fields.
    const matrix = page.getByLabel('Weight matrix');
    await matrix.focus();
    await matrix.selectOption('layers.2.wDown');
    const row = page.getByLabel('Row', { exact: true });
    await row.focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('5');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('7');
    await page.keyboard.press('Tab');
    checkGradient(
      await published<GradientFigure>(
        page,
        'learning.gradient',
        tokens,
        (f) => f.parameter === 'layers.2.wDown' && f.row === 5 && f.col === 7,
      ),
    );
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it("steps the tiny block's forward and backward passes by keyboard, equal to Node's walk", async () => {
    const walk = tinyBlockWalk();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/learning?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    const first = await published<BlockFigure>(page, 'learning.block', walk.tokens);
    expect(first.step).toBe(0);
    expect(first.loss).toBeCloseTo(walk.loss, 12);
    // The checks are differences at the level of rounding (1e-7 and below), which the two JavaScript engines'
    // Math.exp may round apart; what must hold in both is that every one is under 1e-4.
    expect(Object.keys(first.checks).sort()).toEqual(Object.keys(walk.checks).sort());
    for (const [name, worst] of Object.entries(first.checks)) expect(worst, name).toBeLessThan(1e-4);
    const next = page.getByRole('button', { name: 'Next', exact: true });
    await next.focus();
    for (let i = 0; i < 3; i++) await page.keyboard.press('Enter');
    const qkv = await published<BlockFigure>(page, 'learning.block', walk.tokens, (f) => f.step === 3);
    expect(qkv.op).toBe('rope');
    qkv.shown[0].values.forEach((value, i) =>
      expect(value).toBeCloseTo(walk.forward['layers[0].qRope'].values[i], 12),
    );
    // The slider: End jumps to the last backward step (the embedding lookup's gradient).
    const slider = page.getByRole('slider', { name: 'Step', exact: true });
    await slider.focus();
    await page.keyboard.press('End');
    const last = await published<BlockFigure>(page, 'learning.block', walk.tokens, (f) => f.step === 25);
    expect(last.phase).toBe('backward');
    expect(last.op).toBe('embedding');
    last.shown[0].values.forEach((value, i) =>
      expect(value).toBeCloseTo(walk.weightGradients.tokenEmbedding.values[i], 12),
    );
    await page.setViewportSize({ width: 1280, height: 900 });
    await page
      .locator('figure[aria-labelledby="learning-block-title"]')
      .screenshot({ path: join(ARTIFACTS, 'learning-block-backward-1280.png') });
    await page.keyboard.press('ArrowLeft');
    const norm = await published<BlockFigure>(page, 'learning.block', walk.tokens, (f) => f.step === 24);
    expect(norm.op).toBe('attn-norm');
    norm.shown[0].values.forEach((value, i) =>
      expect(value).toBeCloseTo(walk.gradients.embeddings.values[i], 12),
    );
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it('draws the shipped race, retraces it live, and sends SGD off the map at a learning rate of 0.3', async () => {
    const { model } = houseModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/learning?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    const shipped = await published<RaceFigure>(page, 'learning.race', landscape.tokens);
    expect(shipped.source).toBe('shipped');
    expect(shipped.paths.sgd.map((p) => [p.a, p.b, p.loss])).toEqual(landscape.race.paths.sgd);
    // The steps drawn: Home on the slider shows the start alone, Play draws the race to its end.
    const drawn = page.getByRole('slider', { name: 'Steps drawn' });
    await drawn.focus();
    await page.keyboard.press('Home');
    await published<RaceFigure>(page, 'learning.race', landscape.tokens, (f) => f.shown === 0);
    await page.getByRole('button', { name: 'Play' }).click();
    await published<RaceFigure>(page, 'learning.race', landscape.tokens, (f) => f.shown === shipped.steps);
    // The question's answer is the shipped race's first optimiser on the floor: the first whose loss comes
    // within the margin of the grid's lowest, counted here from the file itself.
    const floor = Math.min(...(landscape.losses as number[])) + VALLEY_MARGIN;
    const reached = OPTIMISERS.map(({ name }) =>
      (landscape.race.paths[name] as number[][]).findIndex(([, , loss]) => loss <= floor),
    );
    const firstStep = Math.min(...reached.filter((step) => step >= 0));
    expect(Number.isFinite(firstStep)).toBe(true);
    const winner = OPTIMISERS[reached.indexOf(firstStep)].label;
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect
      .poll(() => page.locator('.predict label.correct').textContent())
      .toMatch(new RegExp(`\\b${winner}\\b`));

    // Run it live from the keyboard; three steps are enough to compare, then stop.
    const run = page.getByRole('button', { name: 'Run the race' });
    await run.focus();
    await page.keyboard.press('Enter');
    const live = await published<RaceFigure>(
      page,
      'learning.race',
      landscape.tokens,
      (f) => f.source === 'live' && f.steps >= 3,
      120_000,
    );
    await page.getByRole('button', { name: 'Stop' }).click();
    console.log(
      `[learning] one live race step (a forward and a backward pass) in the page: ${live.elapsedMs?.toFixed(0)} ms`,
    );
    for (const name of Object.keys(live.paths)) {
      live.paths[name].slice(0, 4).forEach((point, k) => {
        const [a, b, loss] = landscape.race.paths[name][k];
        expect(point.a).toBeCloseTo(a, 5);
        expect(point.b).toBeCloseTo(b, 5);
        expect(point.loss).toBeCloseTo(loss, 3);
      });
    }

    // Learning rate 0.3 chosen by keyboard: SGD's first step is 0.3 × the gradient at the start (Node's).
    const rate = page.getByLabel('Learning rate');
    await rate.focus();
    await rate.selectOption('0.3');
    await run.focus();
    await page.keyboard.press('Enter');
    const fast = await published<RaceFigure>(
      page,
      'learning.race',
      landscape.tokens,
      (f) => f.source === 'live' && f.learningRate === 0.3 && f.steps >= 1,
      120_000,
    );
    const plane = new LossPlane(model.config, model.weights, textBatch(landscape.tokens), kernels);
    const [a0, b0] = LANDSCAPE_SETTINGS.race.start;
    const { gradient } = plane.gradient(a0, b0);
    expect(fast.paths.sgd[1].a).toBeCloseTo(a0 - 0.3 * gradient[0], 3);
    expect(fast.paths.sgd[1].b).toBeCloseTo(b0 - 0.3 * gradient[1], 3);
    const done = await published<RaceFigure>(
      page,
      'learning.race',
      landscape.tokens,
      (f) => f.learningRate === 0.3 && f.diverged.sgd,
      120_000,
    );
    expect(done.diverged.sgd).toBe(true);
    await page
      .getByRole('button', { name: 'Default race' })
      .click()
      .catch(() => undefined);
    expect(problems.console).toEqual([]);
    await page.close();
  }, 300_000);

  it('looks right at 1280 and 375 px, light and dark, with no axe violations', async () => {
    await checkAppearances(session, 'learning', PROMPT, async (page, hook) => {
      await published(page, 'learning.loss', hook.tokens);
      await published(page, 'learning.gradient', hook.tokens);
      await published(page, 'learning.block', undefined);
      await published(page, 'learning.race', undefined);
    });
  }, 300_000);
});
