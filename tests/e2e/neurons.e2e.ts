/**
 * Chapter 5 in Chromium: the row-by-row product shows the values of the engine's Trace (checked against a
 * Node run of the engine on the files the site serves), the keyboard steps rows, columns, tokens and
 * matrices, and the toy neuron's sliders give what the formula gives. Screenshots land in test-artifacts/.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  ARTIFACTS,
  e2eSkipReason,
  figureShowing,
  nodeRun,
  openPage,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';

const unavailable = e2eSkipReason();

interface Product {
  tokens: number[];
  position: number;
  layer: number;
  matrix: string;
  rows: number;
  cols: number;
  row: number;
  rowValue: number;
  traceRowValue: number;
  computed: number[];
  trace: number[];
  maxAbsDifference: number;
}

interface Neuron {
  inputs: number[];
  weights: number[];
  bias: number;
  activation: string;
  sum: number;
  output: number;
}

const figure = <T>(page: Page, name: string) =>
  page.evaluate(
    (key) =>
      (globalThis as unknown as { __glassbox: { figures: Record<string, unknown> } }).__glassbox.figures[key],
    name,
  ) as Promise<T>;

/** Waits until the product figure shows `expected` (a partial match) and returns what it published. */
const product = (page: Page, expected: Partial<Product>) =>
  figureShowing<Product>(page, 'neurons.product', expected, 15_000);

/** erf by its series (float64), independent of the page's formula. */
function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function expectClose(actual: number[], expected: ArrayLike<number>, tolerance: number) {
  expect(actual).toHaveLength(expected.length);
  let worst = 0;
  actual.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - expected[i]))));
  expect(worst).toBeLessThan(tolerance);
}

describe.skipIf(unavailable !== undefined)('chapter 5 (neurons) in Chromium', () => {
  const session = sessionForSuite();

  it("redoes a real product row by row, equal to the engine's Trace, and steps with the keyboard", async () => {
    const prompt = 'And God said, Let there be light';
    const node = nodeRun(prompt);
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/neurons?prompt=${encodeURIComponent(prompt)}&token=3`);
    const hook = await waitForAnalysis(page, prompt);
    expect(hook.tokens).toEqual(node.tokens);

    // The default: layers[0].wGate × layers[0].ffnNorm[3] = layers[0].ffnGate[3], row 0.
    const first = await product(page, { position: 3, matrix: 'wGate', row: 0 });
    expect(first.tokens).toEqual(node.tokens);
    const gate = node.trace.layers[0].ffnGate.data;
    const [rows, cols] = [first.rows, first.cols];
    expect([rows, cols]).toEqual([384, 128]);
    const expectedGate = gate.subarray(3 * rows, 4 * rows);
    expectClose(first.trace, expectedGate, 1e-5);
    expectClose(first.computed, expectedGate, 1e-5);
    expect(first.maxAbsDifference).toBeLessThan(1e-5);
    expect(first.rowValue).toBeCloseTo(expectedGate[0], 5);
    await expect
      .poll(() => page.locator('.figure-head .tensor-name').filter({ hasText: 'wGate' }).textContent())
      .toBe('layers[0].wGate × layers[0].ffnNorm[3] = layers[0].ffnGate[3]');

    // Keyboard: the row slider steps rows; End jumps to the last one.
    const slider = page.getByRole('slider', { name: /^Row/ });
    await slider.focus();
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
    const third = await product(page, { row: 3 });
    expect(third.rowValue).toBeCloseTo(expectedGate[3], 5);
    expect(third.traceRowValue).toBeCloseTo(expectedGate[3], 5);
    await page.keyboard.press('End');
    await product(page, { row: rows - 1 });
    await page.screenshot({ path: join(ARTIFACTS, 'neurons-product-1280.png'), fullPage: false });

    // The products strip is a slider over the columns.
    const strip = page.getByRole('slider', { name: /^Products of row/ });
    await strip.focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    expect(await strip.getAttribute('aria-valuenow')).toBe('2');

    // The token picker: arrow keys move the focus token, and the link follows.
    await page.getByRole('radio', { checked: true, name: /^3/ }).focus();
    await page.keyboard.press('ArrowLeft');
    const second = await product(page, { position: 2, row: rows - 1 });
    expectClose(second.trace, gate.subarray(2 * rows, 3 * rows), 1e-5);
    await expect.poll(() => new URL(page.url()).searchParams.get('token')).toBe('2');

    // Another matrix: layer 1's down projection, 128 rows of 384.
    await page.getByRole('combobox', { name: 'Layer' }).selectOption('1');
    await page.getByRole('combobox', { name: 'Matrix' }).selectOption('wDown');
    const down = await product(page, { layer: 1, matrix: 'wDown', position: 2, row: 0 });
    expect([down.rows, down.cols]).toEqual([128, 384]);
    const expectedDown = node.trace.layers[1].ffnOutput.data.subarray(2 * 128, 3 * 128);
    expectClose(down.trace, expectedDown, 1e-5);
    expectClose(down.computed, expectedDown, 1e-5);
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it("gives the toy neuron's formula as the sliders move, and screenshots the chapter", async () => {
    const { page, problems } = await openPage(session);
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.goto(`${session.origin}/neurons`);
    await waitForAnalysis(page);
    const bias = page.getByRole('slider', { name: 'bias b' });
    await bias.focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(
      () =>
        Math.abs(
          ((globalThis as unknown as { __glassbox: { figures: Record<string, Neuron> } }).__glassbox.figures[
            'neurons.neuron'
          ]?.bias ?? 0) - 0.3,
        ) < 1e-9,
    );
    let shown = await figure<Neuron>(page, 'neurons.neuron');
    const z = (n: Neuron) => n.inputs.reduce((sum, x, i) => sum + x * n.weights[i], n.bias);
    expect(shown.activation).toBe('silu');
    expect(shown.sum).toBeCloseTo(1 * 0.6 + -0.5 * 1.2 + 0.8 * -0.4 + 0.3, 10);
    expect(shown.output).toBeCloseTo(z(shown) / (1 + Math.exp(-z(shown))), 10);
    // Down arrow on the first weight, then GELU (arrow key from SiLU in the radio group).
    await page.getByRole('slider', { name: 'weight w1' }).focus();
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
    await page.getByRole('radio', { name: 'SiLU' }).focus();
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { __glassbox: { figures: Record<string, Neuron> } }).__glassbox.figures[
          'neurons.neuron'
        ].activation === 'gelu',
    );
    shown = await figure<Neuron>(page, 'neurons.neuron');
    expect(shown.weights[0]).toBeCloseTo(0.1, 10);
    const s = z(shown);
    expect(shown.sum).toBeCloseTo(s, 12);
    expect(s).toBeLessThan(0);
    expect(shown.output).toBeCloseTo(0.5 * s * (1 + erf(s / Math.SQRT2)), 6);
    await expect.poll(() => page.locator('#neurons-toy-summary').textContent()).toContain('GELU');

    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 900 });
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
      await page.screenshot({ path: join(ARTIFACTS, `neurons-${width}.png`), fullPage: true });
    }
    await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: join(ARTIFACTS, 'neurons-1280-dark.png'), fullPage: true });
    expect(problems.console).toEqual([]);
    await page.close();
  });
});
