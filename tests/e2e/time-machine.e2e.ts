/**
 * The time-machine in Chromium (chapter 14, and its option beside chapter 10's logit lens): the site fetches
 * nothing of the house model's history on a chapter that does not show it, and no checkpoint file until the
 * reader picks one; the scrubber works by keyboard; a checkpoint made the course's model computes every
 * figure on that checkpoint (chapter 10's logit lens equals a Node run of the engine on the same GGUF file
 * with the house tokenizer, and step 0 equals randomModel with the run's seed); `?model=house@N` restores
 * it, a step the run did not keep gets a clear message and the house model, and "back" returns to the house
 * model; a site without a history offers no time-machine at all. Screenshots of chapter 14's section at
 * 1280 and 375 px, light and dark, land in test-artifacts/.
 *
 * It needs a site built with a house model that has checkpoints/ (scripts/house-checkpoints.ts), e.g.
 * `GLASSBOX_MODEL_DIR=/path/to/house-with-checkpoints npm run build:app`: the build copies the folder, and
 * this test reads the model, its checkpoints and its index from the built site (dist/app/models/house), as
 * the page does. Without checkpoints there, it is skipped with a message.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { logitLens } from '../../src/analysis/lens.ts';
import { parseCheckpointIndex, type CheckpointStep } from '../../src/app/lib/checkpoints.ts';
import { forward } from '../../src/engine/forward.ts';
import { randomModel } from '../../src/engine/init.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import type { Model } from '../../src/engine/model.ts';
import { parseGgufLlama } from '../../src/formats/gguf-llama.ts';
import { defaultKernels } from '../helpers.ts';
import {
  APPEARANCES,
  ARTIFACTS,
  axeViolations,
  e2eSkipReason,
  figureShowing,
  HOUSE,
  houseModel,
  openPage,
  published,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';

const CHECKPOINTS = join(HOUSE, 'checkpoints');
const unavailable = e2eSkipReason();
const noHistory =
  unavailable === undefined && !existsSync(join(CHECKPOINTS, 'index.json'))
    ? `${HOUSE} has no checkpoints/index.json: build the site with a house model that has a history ` +
      '(GLASSBOX_MODEL_DIR=<folder with checkpoints/> npm run build:app) to test the time-machine'
    : undefined;
if (noHistory) console.warn(`[e2e] time-machine skipped: ${noHistory}`);

const PROMPT = 'In the beginning God created the heaven and the earth. And the earth was';

/** The house model at `entry`'s step as Node builds it from the files the site serves. */
function nodeCheckpoint(entry: CheckpointStep, seed: number, last: number): Model {
  const house = houseModel().model;
  if (entry.step === last) return house;
  if (entry.file === null) return randomModel(house.config, seed);
  return parseGgufLlama(new Uint8Array(readFileSync(join(CHECKPOINTS, entry.file))), entry.file).model;
}

/** Chapter 10's logit lens of PROMPT on that model, in Node. */
function nodeLens(model: Model) {
  const { tokenizer } = houseModel();
  const tokens = tokenizer.encode(PROMPT, { bos: true, eos: false });
  const kernels = defaultKernels();
  const { trace } = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
  return { tokens, lens: logitLens(model, trace, kernels, 5) };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(tolerance);
}

/** Waits for the page's model to be `id` and returns its label. */
async function modelIs(page: Page, id: string): Promise<string> {
  await page.waitForFunction(
    (want) => (globalThis as { __glassbox?: { model?: { id: string } } }).__glassbox?.model?.id === want,
    id,
    { timeout: 30_000 },
  );
  return page.evaluate(
    () => (globalThis as unknown as { __glassbox: { model: { label: string } } }).__glassbox.model.label,
  );
}

/** Chapter 10's lens as the page shows it, checked against Node on the model at `entry`. */
async function expectLensOf(page: Page, entry: CheckpointStep, seed: number, last: number) {
  const node = nodeLens(nodeCheckpoint(entry, seed, last));
  const shown = await figureShowing<{ ids: number[]; probabilities: number[] }>(page, 'residual.lens', {
    tokens: node.tokens,
  });
  // figureShowing waits for the tokens only: the lens of the previous model has the same tokens, so wait
  // until the ids are this model's (or fail with the last ones shown).
  await expect
    .poll(
      async () =>
        (await figureShowing<{ ids: number[] }>(page, 'residual.lens', { tokens: node.tokens })).ids.join(),
      { timeout: 20_000 },
    )
    .toBe(Array.from(node.lens.ids).join());
  const now = await figureShowing<{ ids: number[]; probabilities: number[] }>(page, 'residual.lens', {
    tokens: node.tokens,
  });
  expect(now.ids).toEqual(Array.from(node.lens.ids));
  expectClose(now.probabilities, node.lens.probabilities, 1e-4);
  return shown;
}

describe.skipIf(unavailable !== undefined || noHistory !== undefined)('the time-machine in Chromium', () => {
  const session = sessionForSuite();
  const index = noHistory
    ? undefined
    : parseCheckpointIndex(readFileSync(join(CHECKPOINTS, 'index.json'), 'utf8'));
  const steps = index?.steps ?? [];
  const last = steps.at(-1)?.step ?? 0;
  const seed = index?.seed ?? 0;
  /** A checkpoint with a file, about halfway through the history. */
  const middleAt = Math.max(1, Math.floor(steps.length / 2));
  const middle = steps[middleAt];

  it('fetches nothing of the history where it is not shown, and no checkpoint until one is chosen', async () => {
    const { page } = await openPage(session);
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`${session.origin}/whole-machine?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    await page.waitForTimeout(300);
    expect(requests.filter((url) => /checkpoints\/|train-log\.jsonl/.test(url))).toEqual([]);

    requests.length = 0;
    await page.goto(`${session.origin}/training?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    await published(page, 'training.time-machine', undefined);
    const logFigure = await published<{ steps: number; restarts: number[] }>(
      page,
      'training.house-log',
      undefined,
    );
    // The served log's own learning rates: the steps where the rate rose after the warm-up are the legs the
    // figure marks (the house run was resumed once with a longer schedule).
    const rates = readFileSync(join(HOUSE, 'train-log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { step: number; lr: number });
    const peak = rates.reduce((top, line, i) => (line.lr > rates[top].lr ? i : top), 0);
    const rises = rates.filter((line, i) => i > peak && line.lr > rates[i - 1].lr).map((line) => line.step);
    expect(logFigure.steps).toBe(last);
    expect(logFigure.restarts).toEqual(rises);
    expect(requests.filter((url) => url.endsWith('/checkpoints/index.json'))).toHaveLength(1);
    expect(requests.filter((url) => url.endsWith('/train-log.jsonl'))).toHaveLength(1);
    expect(requests.filter((url) => url.endsWith('.gguf'))).toEqual([]);
    await page.close();
  });

  it('scrubs by keyboard, shows the index’s numbers, and makes a checkpoint the course’s model', async () => {
    const { page, problems } = await openPage(session);
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.goto(`${session.origin}/training?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    const slider = page.locator('#time-machine-step');
    await slider.focus();
    await page.keyboard.press('End');
    await figureShowing(page, 'training.time-machine', { step: last });
    await page.keyboard.press('Home');
    await figureShowing(page, 'training.time-machine', { step: 0, file: null });
    for (let i = 0; i < middleAt; i++) await page.keyboard.press('ArrowRight');
    const shown = await figureShowing<{ valLoss: object; samples: string[]; tokensSeen: number }>(
      page,
      'training.time-machine',
      { step: middle.step },
    );
    expect(shown.valLoss).toEqual(middle.valLoss);
    expect(shown.samples).toEqual(middle.samples);
    expect(shown.tokensSeen).toBe(middle.tokensSeen);
    await expect
      .poll(() => slider.getAttribute('aria-valuetext'))
      .toMatch(new RegExp(`^step ${middle.step.toLocaleString('en')} of`));

    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page
      .getByRole('button', { name: `Use step ${middle.step.toLocaleString('en')} in every chapter` })
      .click();
    const label = await modelIs(page, `house@${middle.step}`);
    expect(label).toBe(
      `the house model at step ${middle.step.toLocaleString('en')} of ${last.toLocaleString('en')}`,
    );
    expect(requests.filter((url) => url.endsWith(`/checkpoints/${middle.file}`))).toHaveLength(1);
    await expect.poll(() => new URL(page.url()).searchParams.get('model')).toBe(`house@${middle.step}`);
    await figureShowing(page, 'training.time-machine', { step: middle.step, inUse: true });
    await expect(page.locator('.prompt-bar .counts').textContent()).resolves.toContain(label);

    // Screenshots of the section, at both widths, light and dark.
    for (const [width, scheme] of [...APPEARANCES, [375, 'dark'] as const]) {
      await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
      await page.setViewportSize({ width, height: 900 });
      // At the top of the page, so that the sticky prompt bar is not drawn over the section.
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
      const top = await page
        .locator('h2#the-time-machine, h2:has-text("The time-machine")')
        .first()
        .boundingBox();
      const end = await page.locator('figure[aria-labelledby="house-log-title"]').boundingBox();
      const scrolled = await page.evaluate(() => window.scrollY);
      if (!top || !end) throw new Error('the time-machine section is not on the page');
      await page.screenshot({
        path: join(ARTIFACTS, `time-machine-${width}-${scheme}.png`),
        fullPage: true,
        clip: { x: 0, y: top.y + scrolled - 10, width, height: end.y + end.height - top.y + 20 },
      });
      if (width === 1280) expect(await axeViolations(page), scheme).toEqual([]);
    }
    expect(problems.console).toEqual([]);
    await page.close();
  }, 120_000);

  it('restores house@N from a link; the figures run on that checkpoint, the option scrubs, and back works', async () => {
    const { page, problems } = await openPage(session);
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.goto(
      `${session.origin}/residual-stream?prompt=${encodeURIComponent(PROMPT)}&model=house@${middle.step}`,
    );
    await waitForAnalysis(page, PROMPT);
    await modelIs(page, `house@${middle.step}`);
    await expectLensOf(page, middle, seed, last);

    // The option beside the lens: folded, then the slider moves one checkpoint per arrow.
    const option = page.locator('#residual-lens-time-machine');
    await expect(option.getAttribute('open')).resolves.toBeNull();
    await option.locator('summary').click();
    const slider = page.locator('#residual-lens-time-machine-step');
    await slider.focus();
    await page.keyboard.press('Home');
    await modelIs(page, 'house@0');
    await expectLensOf(page, steps[0], seed, last);
    await page.keyboard.press('ArrowRight');
    await modelIs(page, `house@${steps[1].step}`);
    await expectLensOf(page, steps[1], seed, last);
    await expect.poll(() => new URL(page.url()).searchParams.get('model')).toBe(`house@${steps[1].step}`);
    await page.setViewportSize({ width: 375, height: 900 });
    await option.screenshot({ path: join(ARTIFACTS, 'time-machine-option-residual-375.png') });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Back to the finished model, from the prompt bar's settings.
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByRole('button', { name: 'Back to the house model' }).click();
    await modelIs(page, 'house');
    await expectLensOf(page, steps[steps.length - 1], seed, last);
    await expect.poll(() => new URL(page.url()).searchParams.get('model')).toBeNull();
    expect(problems.console).toEqual([]);
    await page.close();
  }, 120_000);

  it('says so when a link names a step the run did not keep, and loads the house model', async () => {
    const missing = last + 1;
    const { page } = await openPage(session);
    await page.goto(
      `${session.origin}/whole-machine?prompt=${encodeURIComponent(PROMPT)}&model=house@${missing}`,
    );
    await waitForAnalysis(page, PROMPT);
    await modelIs(page, 'house');
    await expect(page.locator('.prompt-bar .error').first().textContent()).resolves.toMatch(
      new RegExp(
        `step ${missing.toLocaleString('en')}.*kept no checkpoint at step ${missing.toLocaleString('en')}.*you are seeing the house model`,
      ),
    );
    await page.close();
  });

  it('offers the option only while the course runs the house model or one of its checkpoints', async () => {
    const { page } = await openPage(session);
    await page.goto(`${session.origin}/residual-stream?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    await expect.poll(() => page.locator('#residual-lens-time-machine').count()).toBe(1);
    // A link made with a model from its sender's disk: the page runs the house model but the course's model
    // is that other one, so the house model's history is not offered for it.
    await page.goto(`${session.origin}/residual-stream?prompt=${encodeURIComponent(PROMPT)}&model=local`);
    await waitForAnalysis(page, PROMPT);
    await published(page, 'residual.lens', undefined);
    await page.waitForTimeout(300);
    await expect(page.locator('.time-machine-option').count()).resolves.toBe(0);
    await page.close();
  });

  it('offers no time-machine on a site without a history (nothing, not an error)', async () => {
    const { page } = await openPage(session);
    await page.route('**/checkpoints/index.json', (route) =>
      route.fulfill({ status: 404, body: 'not found' }),
    );
    await page.goto(`${session.origin}/residual-stream?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    await published(page, 'residual.lens', undefined);
    await page.waitForTimeout(300);
    await expect(page.locator('.time-machine-option').count()).resolves.toBe(0);
    await page.goto(`${session.origin}/training?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    await page.waitForTimeout(500);
    // The heading and its definition of the term stay (the glossary links there); nothing more.
    await expect(page.getByRole('heading', { name: 'The time-machine' }).count()).resolves.toBe(1);
    await expect(page.locator('#time-machine-title, #house-log-title').count()).resolves.toBe(0);
    await expect(page.locator('[role="alert"]').count()).resolves.toBe(0);
    await page.close();
  });
});
