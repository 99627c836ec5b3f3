/**
 * Chapters 9 (the feed-forward block) and 10 (the residual stream) in Chromium: the numbers the figures
 * publish equal a Node run of the same engine and analyses on the files the site serves; every control
 * works by keyboard (the lens grid's arrows, the neuron and factor sliders, the token pickers); the
 * questions reveal the engine's answers. Screenshots at 1280 and 375 px land in test-artifacts/.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { contextSimilarity, logitLens, rmsNormSteps } from '../../src/analysis/lens.ts';
import { neuronValue, scaleNeuronEffect, swigluSteps, topNeurons } from '../../src/analysis/neurons.ts';
import {
  ARTIFACTS,
  e2eSkipReason,
  figureShowing,
  HOUSE,
  keystrokeToDrawn,
  nodeRun,
  openPage,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';
import { runCli } from '../cli-helpers.ts';

/** `glassbox inspect <view> … --json` on the model folder the site serves. */
async function inspect<T>(view: string, prompt: string, ...extra: string[]): Promise<T> {
  const result = await runCli(['inspect', view, '--model', HOUSE, '--prompt', prompt, '--json', ...extra]);
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout.toString()) as T;
}

const unavailable = e2eSkipReason();

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(tolerance);
}

async function screenshots(page: Page, name: string) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 900 });
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

describe.skipIf(unavailable !== undefined)('chapters 9 and 10 in Chromium', () => {
  const session = sessionForSuite();

  it("chapter 10: the lens, the norms and the contexts are the engine's, and move by keyboard", async () => {
    const prompt = 'Let there be light: and there was light';
    const node = nodeRun(prompt);
    const { page, problems } = await openPage(session);
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.goto(`${session.origin}/residual-stream?prompt=${encodeURIComponent(prompt)}`);
    const hook = await waitForAnalysis(page, prompt);
    expect(hook.tokens).toEqual(node.tokens);
    const T = node.tokens.length;
    const L = node.model.config.nLayers;

    // The logit lens: every cell's top 5 as Node computes them; the last row is the model's prediction.
    const lens = await figureShowing<{ ids: number[]; probabilities: number[]; rows: number; k: number }>(
      page,
      'residual.lens',
      { tokens: node.tokens },
    );
    const expected = logitLens(node.model, node.trace, node.kernels, 5);
    expect([lens.rows, lens.k]).toEqual([L + 1, 5]);
    expect(lens.ids).toEqual(Array.from(expected.ids));
    expectClose(lens.probabilities, expected.probabilities, 1e-5);
    // … and as `glassbox inspect lens` prints them.
    const cli = await inspect<{ rows: { cells: { ids: number[]; probabilities: number[] }[] }[] }>(
      'lens',
      prompt,
    );
    expect(cli.rows.flatMap((row) => row.cells.flatMap((cell) => cell.ids))).toEqual(lens.ids);
    expectClose(
      cli.rows.flatMap((row) => row.cells.flatMap((cell) => cell.probabilities)),
      lens.probabilities,
      1e-5,
    );
    const lastLogits = node.trace.logits.data.subarray((T - 1) * node.model.config.vocabSize);
    const argmax = lastLogits.indexOf(Math.max(...lastLogits));
    expect(lens.ids[(L * T + T - 1) * 5]).toBe(argmax);

    // Keyboard: the grid starts on the last row and last position; ↑ and Home move the chosen cell.
    const grid = page.getByRole('application', { name: /^Logit lens/ });
    await grid.focus();
    await page.keyboard.press('ArrowUp');
    await figureShowing(page, 'residual.lens', { selected: { row: L - 1, position: T - 1 } });
    await page.keyboard.press('Home');
    await figureShowing(page, 'residual.lens', { selected: { row: L - 1, position: 0 } });
    await expect
      .poll(() => page.locator('figure:has(#res-lens-title) .detail code').first().textContent())
      .toBe(`layers[${L - 1}].input[0]`);

    // RMSNorm: the default is layers[0].attnNorm at the last token; the steps give the Trace's value.
    const norm = await figureShowing<{ meanSquare: number; output: number[]; maxAbsDifference: number }>(
      page,
      'residual.norm',
      { tokens: node.tokens, outputName: 'layers[0].attnNorm', position: T - 1 },
    );
    const dim = node.model.config.dim;
    const x = node.trace.layers[0].input.data.subarray((T - 1) * dim, T * dim);
    const steps = rmsNormSteps(x, node.model.weights.layers[0].attnNorm.data, node.model.config.normEps);
    expect(norm.meanSquare).toBeCloseTo(steps.meanSquare, 10);
    expectClose(norm.output, node.trace.layers[0].attnNorm.data.subarray((T - 1) * dim, T * dim), 1e-5);
    expect(norm.maxAbsDifference).toBeLessThan(1e-5);
    // Another norm, by keyboard: the drop-down's last option is the final norm.
    const select = page.getByRole('combobox', { name: 'Norm' });
    await select.focus();
    await page.keyboard.press('End');
    await figureShowing(page, 'residual.norm', { outputName: 'finalNorm', position: T - 1 });

    // The same token in two contexts: "light" twice, 1 at the embedding, then Node's cosines.
    const light = node.tokens.lastIndexOf(node.tokens[T - 1], T - 2);
    const contexts = await figureShowing<{ a: number; b: number; cosines: number[] }>(
      page,
      'residual.contexts',
      {
        tokens: node.tokens,
      },
    );
    expect([contexts.a, contexts.b]).toEqual([light, T - 1]);
    const cosines = contextSimilarity(
      { trace: node.trace, position: light },
      { trace: node.trace, position: T - 1 },
    );
    expectClose(contexts.cosines, cosines, 1e-6);
    expect(contexts.cosines[0]).toBeCloseTo(1, 6);

    // The question, answered by keyboard: its reveal names the lens's own numbers.
    const question = page.locator('section.predict');
    await question.getByRole('radio').first().focus();
    await page.keyboard.press('Space');
    await question.getByRole('button', { name: 'Reveal' }).click();
    await expect.poll(() => question.getByRole('status').textContent()).toMatch(/top guess from the/);

    // A keystroke on this page: a 64-token text, from the input event to the lens drawn for it.
    const verse =
      'And God said, Let there be light: and there was light. And God saw the light, that it was good. ';
    const long = node.tokenizer.decode(
      node.tokenizer.encode(verse.repeat(8), { bos: true, eos: false }).slice(0, 64),
    );
    const keystrokeMs = await keystrokeToDrawn(page, long, 'residual.lens');
    const lensMs = (await figureShowing<{ lensMs: number; tokens: number[] }>(page, 'residual.lens', {}))
      .lensMs;
    const forwardMs = (await waitForAnalysis(page, long)).timings.forwardMs;
    console.log(
      `[e2e] chapter 10, 64-token text: keystroke to lens drawn ${keystrokeMs.toFixed(1)} ms (in the worker: the traced pass ${forwardMs.toFixed(1)} ms, the lens ${lensMs.toFixed(1)} ms)`,
    );
    expect(keystrokeMs).toBeLessThan(5_000);
    // Typing on at its end, one character at a time: the lens recomputes only the positions that changed.
    const typed: number[] = [];
    let text = long;
    for (const character of ' and') {
      text += character;
      typed.push(await keystrokeToDrawn(page, text, 'residual.lens'));
    }
    const typedLens = await figureShowing<{ ids: number[]; probabilities: number[]; tokens: number[] }>(
      page,
      'residual.lens',
      {},
    );
    const typedRun = nodeRun(text);
    expect(typedLens.tokens).toEqual(typedRun.tokens);
    const typedExpected = logitLens(typedRun.model, typedRun.trace, typedRun.kernels, 5);
    expect(typedLens.ids).toEqual(Array.from(typedExpected.ids));
    expectClose(typedLens.probabilities, typedExpected.probabilities, 1e-5);
    console.log(
      `[e2e] chapter 10, typing at the end of it: each keystroke to the lens drawn ${typed.map((ms) => ms.toFixed(0)).join(', ')} ms`,
    );

    await screenshots(page, 'residual-stream');
    expect(problems.console).toEqual([]);
    await page.close();
  }, 120_000);

  it("chapter 9: SwiGLU's steps, the top neurons, a neuron's value and its ablation are the engine's", async () => {
    const prompt = 'And God said, Let there be light';
    const node = nodeRun(prompt);
    const { page, problems } = await openPage(session);
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.goto(`${session.origin}/feed-forward?prompt=${encodeURIComponent(prompt)}`);
    const hook = await waitForAnalysis(page, prompt);
    expect(hook.tokens).toEqual(node.tokens);
    const T = node.tokens.length;
    const last = node.model.config.nLayers - 1;

    // The defaults: the last layer, the last token, its most active neuron.
    const top = topNeurons(node.trace, last, T - 1, 10);
    const shownTop = await figureShowing<{ top: { neuron: number; activation: number }[] }>(
      page,
      'feed-forward.top',
      { tokens: node.tokens, layer: last, position: T - 1 },
    );
    expect(shownTop.top.map((n) => n.neuron)).toEqual(top.map((n) => n.neuron));
    expectClose(
      shownTop.top.map((n) => n.activation),
      top.map((n) => n.activation),
      1e-5,
    );
    // … and as `glassbox inspect neurons` prints them, with the first one's promoted tokens.
    const cli = await inspect<{
      layers: { neurons: { neuron: number; activation: number; promoted: { id: number }[] }[] }[];
    }>('neurons', prompt, '--layer', String(last), '--position', String(T - 1), '--top', '10');
    expect(cli.layers[0].neurons.map((n) => n.neuron)).toEqual(shownTop.top.map((n) => n.neuron));
    expectClose(
      cli.layers[0].neurons.map((n) => n.activation),
      shownTop.top.map((n) => n.activation),
      1e-5,
    );
    const firstMemory = await figureShowing<{ promoted: { token: number }[] }>(page, 'feed-forward.memory', {
      tokens: node.tokens,
      layer: last,
      neuron: top[0].neuron,
    });
    expect(cli.layers[0].neurons[0].promoted.map((p) => p.id)).toEqual(
      firstMemory.promoted.slice(0, 5).map((p) => p.token),
    );
    const steps = swigluSteps(node.trace, last, T - 1);
    const shownSteps = await figureShowing<{ gate: number; up: number; product: number; output: number[] }>(
      page,
      'feed-forward.steps',
      { tokens: node.tokens, layer: last, neuron: top[0].neuron },
    );
    expect(shownSteps.gate).toBeCloseTo(steps.gate[top[0].neuron], 5);
    expect(shownSteps.up).toBeCloseTo(steps.up[top[0].neuron], 5);
    expect(shownSteps.product).toBeCloseTo(steps.activation[top[0].neuron], 5);
    expectClose(shownSteps.output, steps.output, 1e-5);

    // The neuron slider, by keyboard: one step right follows the next neuron through every figure.
    const slider = page.getByRole('slider', { name: /^Neuron/ });
    await slider.focus();
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowRight');
    await figureShowing(page, 'feed-forward.steps', { neuron: 1 });
    const memory = await figureShowing<{
      promoted: { token: number; score: number }[];
      activations: number[];
    }>(page, 'feed-forward.memory', { tokens: node.tokens, layer: last, neuron: 1 });
    const value = neuronValue(node.model, last, 1, 8);
    expect(memory.promoted.map((p) => p.token)).toEqual(value.promoted.map((p) => p.token));
    expectClose(
      memory.activations,
      Array.from(
        { length: T },
        (_, t) =>
          steps.activation.length &&
          node.trace.layers[last].ffnActivation.data[t * node.model.config.hiddenDim + 1],
      ),
      1e-5,
    );

    // Ablation: the factor slider by keyboard (End = × 3), the distribution as Node's intervention gives it.
    const factor = page.getByRole('slider', { name: /^Factor/ });
    await factor.focus();
    await page.keyboard.press('End');
    const scaled = await figureShowing<{ rows: { token: number; before: number; after: number }[] }>(
      page,
      'feed-forward.scale',
      { tokens: node.tokens, layer: last, neuron: 1, factor: 3 },
    );
    const effect = scaleNeuronEffect(node.model, node.trace, node.kernels, {
      layer: last,
      neuron: 1,
      factor: 3,
    });
    for (const row of scaled.rows) {
      expect(row.before).toBeCloseTo(effect.before[row.token], 5);
      expect(row.after).toBeCloseTo(effect.after[row.token], 5);
    }
    expect(scaled.rows[0].token).toBe(effect.topBefore[0]);
    // Silence it with the preset button (keyboard: Enter).
    await page.getByRole('button', { name: 'Silence it (× 0)' }).focus();
    await page.keyboard.press('Enter');
    await figureShowing(page, 'feed-forward.scale', { neuron: 1, factor: 0 });

    // The question: answered, it reveals what silencing the strongest neuron did.
    const question = page.locator('section.predict');
    await question.getByRole('button', { name: 'Just show me' }).click();
    await expect.poll(() => question.getByRole('status').textContent()).toMatch(/Silenced, /);

    await screenshots(page, 'feed-forward');
    expect(problems.console).toEqual([]);
    await page.close();
  }, 120_000);

  it('shows no NaN, Infinity or undefined for an empty text or an odd token in the link', async () => {
    const { page, problems } = await openPage(session);
    for (const slug of ['feed-forward', 'residual-stream']) {
      for (const query of [
        'prompt=',
        'prompt=Let%20there%20be%20light&token=1e400',
        'prompt=light&token=NaN',
      ]) {
        await page.goto(`${session.origin}/${slug}?${query}`);
        await waitForAnalysis(page);
        await page.waitForFunction(
          (names) => {
            const figures = (globalThis as { __glassbox?: { figures?: Record<string, unknown> } }).__glassbox
              ?.figures;
            return names.every((name) => figures?.[name] !== undefined);
          },
          slug === 'feed-forward'
            ? ['feed-forward.steps', 'feed-forward.top', 'feed-forward.memory', 'feed-forward.scale']
            : ['residual.norm', 'residual.stream', 'residual.lens', 'residual.contexts'],
          { timeout: 20_000 },
        );
        const text = await page.evaluate(() => {
          const main = document.querySelector('main')!.cloneNode(true) as HTMLElement;
          main.querySelectorAll('figure.code').forEach((listing) => listing.remove());
          return main.textContent ?? '';
        });
        const bad = /NaN|Infinity|undefined/.exec(text);
        expect(
          bad,
          `/${slug}?${query}: …${bad ? text.slice(Math.max(0, bad.index - 100), bad.index + 40) : ''}…`,
        ).toBeNull();
      }
    }
    expect(problems.console).toEqual([]);
    await page.close();
  }, 120_000);
});
