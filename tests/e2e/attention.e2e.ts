/**
 * Chapter 7 in Chromium: q, k, v, the scores (each built from its products), the mask, the softmax (numerator
 * over denominator) and the weighted sum show the numbers a Node run of the engine gives on the same files;
 * the head picker, the matrix cursor and the override work from the keyboard; the override's next-token
 * distribution is the engine's run with that intervention; the question's answer is the Trace's; axe and
 * screenshots at 1280 and 375 px.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forward } from '../../src/engine/forward.ts';
import type { Intervention } from '../../src/engine/interventions.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { headDim, kvHeadOf } from '../../src/engine/model.ts';
import { temperatureSoftmax } from '../../src/engine/sampling.ts';
import {
  ARTIFACTS,
  axeViolations,
  checkAppearances,
  e2eSkipReason,
  houseModel,
  openPage,
  type Published,
  published,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';
import { defaultKernels } from '../helpers.ts';

const unavailable = e2eSkipReason();

const PROMPT = 'In the beginning God created the heavens and the earth.';
const TOKEN = 6;

function nodeModel() {
  const { model, tokenizer } = houseModel();
  const trace = (tokens: number[], interventions: Intervention[] = []) =>
    forward(model, tokens, new KVCache(model.config), {
      trace: true,
      logits: 'all',
      kernels: defaultKernels(),
      interventions,
    }).trace;
  return { model, tokenizer, trace };
}

type Cell = Published & {
  layer: number;
  head: number;
  query: number;
  key: number;
  terms: number[];
  sum: number;
  score: number;
  traceScore: number;
  mask: number;
  max: number;
  numerator: number;
  denominator: number;
  weight: number;
  traceWeight: number;
  rowSum: number;
  largestDifference: number;
};

describe.skipIf(unavailable !== undefined)('chapter 7 (attention) in Chromium', () => {
  const session = sessionForSuite();

  it("shows one head's real arithmetic, equal to a Node run, and works by keyboard", async () => {
    const node = nodeModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/attention?prompt=${encodeURIComponent(PROMPT)}&token=${TOKEN}`);
    const hook = await waitForAnalysis(page, PROMPT);
    const tokens = node.tokenizer.encode(PROMPT, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);
    const T = tokens.length;
    const { nHeads, nKvHeads, vocabSize } = node.model.config;
    const D = headDim(node.model.config);
    const plain = node.trace(tokens);
    const near = (a: number, b: number, tolerance = 1e-5) =>
      expect(Math.abs(a - b)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(b)));

    // q, k, v of token 6 in layer 0, head 0.
    const qkv = await published<Published & { q: number[]; k: number[]; v: number[]; token: number }>(
      page,
      'attention.qkv',
      tokens,
      (f) => f.token === TOKEN && f.layer === 0 && f.head === 0,
    );
    for (let i = 0; i < D; i++) {
      near(qkv.q[i], plain.layers[0].qRope.data[TOKEN * nHeads * D + i]);
      near(qkv.k[i], plain.layers[0].kRope.data[TOKEN * nKvHeads * D + i]);
      near(qkv.v[i], plain.layers[0].v.data[TOKEN * nKvHeads * D + i]);
    }

    // The head picker of the first figure chooses layer 2, head 3 for every figure.
    const qkvFigure = page.locator('figure', { has: page.locator('#att-qkv-title') });
    await qkvFigure.getByRole('combobox', { name: /^Layer/ }).selectOption('2');
    await qkvFigure.getByRole('combobox', { name: /^Head/ }).selectOption('3');
    const [layer, head] = [2, 3];
    const g = kvHeadOf(head, nHeads, nKvHeads);
    const trace = plain.layers[layer];
    const score = (t: number, s: number) => trace.scores.data[(head * T + t) * T + s];
    const weightOf = (t: number, s: number) => trace.weights.data[(head * T + t) * T + s];
    const scores = await published<Cell>(
      page,
      'attention.scores',
      tokens,
      (f) => f.layer === layer && f.head === head,
    );
    expect(scores.query).toBe(TOKEN);
    // The cursor by keyboard: one query up, two keys left.
    await page.locator('figure:has(#att-scores-title) [role=slider]').focus();
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowLeft');

    await page.keyboard.press('ArrowLeft');
    const moved = await published<Cell>(
      page,
      'attention.scores',
      tokens,
      (f) => f.layer === layer && f.query === TOKEN - 1 && f.key === Math.max(0, scores.key - 2),
    );
    const [t, s] = [moved.query, moved.key];
    for (let i = 0; i < D; i++) {
      const q = trace.qRope.data[(t * nHeads + head) * D + i];
      const k = trace.kRope.data[(s * nKvHeads + g) * D + i];
      near(moved.terms[i], q * k);
    }
    near(moved.score, score(t, s));
    near(moved.traceScore, score(t, s));
    expect(moved.largestDifference).toBeLessThan(1e-4);
    // Right past the diagonal: the scores figure shows the future key, the mask figure says it is hidden.
    await page.keyboard.press('End');
    const future = await published<Cell>(page, 'attention.scores', tokens, (f) => f.key === T - 1);
    expect(future.traceScore).toBe(-Infinity); // the mask's −∞, as the Trace stores it
    let dot = 0;
    for (let i = 0; i < D; i++)
      dot +=
        trace.qRope.data[(future.query * nHeads + head) * D + i] *
        trace.kRope.data[((T - 1) * nKvHeads + g) * D + i];
    near(future.score, dot / Math.sqrt(D));

    // The mask figure's cursor, moved past the diagonal too.
    await page.locator('figure:has(#att-mask-title) [role=slider]').focus();
    await page.keyboard.press('End');
    const masked = await published<Cell>(page, 'attention.mask', tokens, (f) => f.key === T - 1);
    expect(masked.mask).toBe(masked.key > masked.query ? 0 : 1);
    expect(await page.locator('figure:has(#att-mask-title) .inspector').textContent()).toContain('−∞');

    // Softmax: the numerator and denominator of the chosen cell, recomputed here from the Trace's scores.
    const weights = await published<Cell>(
      page,
      'attention.weights',
      tokens,
      (f) => f.layer === layer && f.head === head,
    );
    const row = Array.from({ length: weights.query + 1 }, (_, k) => score(weights.query, k));
    const max = Math.max(...row);
    const denominator = row.reduce((sum, x) => sum + Math.exp(x - max), 0);
    near(weights.max, max);
    near(weights.numerator, Math.exp(score(weights.query, weights.key) - max));
    near(weights.denominator, denominator);
    near(weights.weight, weightOf(weights.query, weights.key), 1e-6);
    near(weights.rowSum, 1, 1e-5);

    // The weighted sum is the Trace's attnOutput for this head.
    const values = await published<Published & { output: number[]; query: number }>(
      page,
      'attention.values',
      tokens,
      (f) => f.layer === layer && f.head === head,
    );
    for (let i = 0; i < D; i++)
      near(values.output[i], trace.attnOutput.data[values.query * nHeads * D + head * D + i]);

    // The override: back to the text's last token, then the weight slider's End key puts all of it on key 0.
    const overrideFigure = page.locator('figure', { has: page.locator('#att-override-title') });
    await overrideFigure.getByRole('combobox', { name: /^Query/ }).selectOption(String(T - 1));
    await page.focus('#att-override-weight');
    await page.keyboard.press('End');
    type Override = Published & {
      query: number;
      key: number;
      weight: number;
      result?: {
        rows: { token: number; before: number; after: number }[];
        weightsAfter: number[];
        topAfter: number;
      };
    };
    const overridden = await published<Override>(
      page,
      'attention.override',
      tokens,
      (f) => f.query === T - 1 && f.weight === 1 && f.result !== undefined,
    );
    expect(overridden.key).toBe(0);
    const changed = node.trace(tokens, [
      {
        kind: 'overrideAttention',
        layer,
        head,
        position: T - 1,
        set: [{ key: 0, weight: 1 }],
        renormalise: true,
      },
    ]);
    const rows = (logits: Float32Array) =>
      temperatureSoftmax(logits.subarray((T - 1) * vocabSize, T * vocabSize), 1);
    const [was, now] = [rows(plain.logits.data), rows(changed.logits.data)];
    for (const entry of overridden.result!.rows) {
      near(entry.before, was[entry.token], 1e-5);
      near(entry.after, now[entry.token], 1e-5);
    }
    expect(overridden.result!.weightsAfter[0]).toBe(1);
    expect(overridden.result!.weightsAfter.slice(1).every((w) => w === 0)).toBe(true);
    // Arrow keys move the weight down by a hundredth; the engine answers for that setting.
    await page.keyboard.press('ArrowLeft');
    const lower = await published<Override>(
      page,
      'attention.override',
      tokens,
      (f) => f.weight === 0.99 && f.result !== undefined,
    );
    expect(lower.result!.weightsAfter[0]).toBeCloseTo(0.99, 6);
    // Dragging: press on the bar of key 1 near the bottom, then drag it to the top: all the weight on key 1.
    const bars = await overrideFigure.locator('.bars').boundingBox();
    if (!bars) throw new Error('the override bars are not on the page');
    const left = 30; // LEFT in AttOverride.svelte: the weight axis's room
    const columnX = bars.x + left + ((bars.width - left) / T) * 1.5;
    await page.mouse.move(columnX, bars.y + bars.height - 30);
    await page.mouse.down();
    await page.mouse.move(columnX, bars.y + bars.height / 2, { steps: 3 });
    await page.mouse.move(columnX, bars.y + 2, { steps: 3 });
    await page.mouse.up();
    const dragged = await published<Override>(
      page,
      'attention.override',
      tokens,
      (f) => f.key === 1 && f.weight === 1 && f.result !== undefined,
    );
    expect(dragged.result!.weightsAfter[1]).toBe(1);
    expect(await page.locator('#att-override-weight').inputValue()).toBe('1');
    // Back to the model's weights: no override, the plain prediction.
    await overrideFigure.getByRole('button', { name: "Back to the model's" }).click();
    await published(page, 'attention.override', tokens, (f) => f.changed === false);

    // Predict, then reveal (in layer 2, head 3, as chosen): the answer is the Trace's largest weight.
    const last = Array.from({ length: T }, (_, k) => weightOf(T - 1, k));
    const best = last.indexOf(Math.max(...last));
    const expected =
      best === T - 1 ? /Itself/ : best === 0 ? /first token/ : best === T - 2 ? /just before/ : /Another/;
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect.poll(() => page.locator('.predict label.correct').textContent()).toMatch(expected);

    // A keystroke: every figure of the chapter shows the new text's numbers. Timed inside the page, frame by
    // frame, from the moment the text changes to the frame in which the last figure has published.
    const FIGURES = ['qkv', 'scores', 'mask', 'weights', 'values', 'override'].map(
      (name) => `attention.${name}`,
    );
    const typed = `${PROMPT} And`;
    const newTokens = node.tokenizer.encode(typed, { bos: true, eos: false });
    await page.evaluate(
      ([names, wanted]) => {
        type Hook = { drawnFor: Record<string, number[] | undefined> };
        const probe = globalThis as unknown as { __glassbox: Hook; __redrawn?: number; __typed?: number };
        probe.__typed = undefined;
        probe.__redrawn = undefined;
        document
          .querySelector('#prompt')
          ?.addEventListener('input', () => (probe.__typed = performance.now()), {
            once: true,
          });
        const tick = () => {
          // drawnFor, not figures: reading a figure's numbers makes their copy, which the reader never pays for.
          const drawnFor = probe.__glassbox.drawnFor;
          if (names.every((name) => drawnFor[name]?.join(',') === wanted))
            probe.__redrawn = performance.now();
          else requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      },
      [FIGURES, newTokens.join(',')] as const,
    );
    await page.fill('#prompt', typed);
    for (const name of FIGURES) await published(page, name, newTokens);
    const elapsed = await page.evaluate(() => {
      const probe = globalThis as unknown as { __redrawn: number; __typed: number };
      return probe.__redrawn - probe.__typed;
    });
    console.log(`[e2e] attention: keystroke to every figure redrawn in ${elapsed.toFixed(0)} ms`);
    expect(elapsed).toBeLessThan(2_000); // the aim is 100 ms on an idle machine; this only catches a figure left behind

    expect({ console: problems.console, failed: problems.failed, foreign: problems.foreign }).toEqual({
      console: [],
      failed: [],
      foreign: [],
    });
    await page.close();
  });

  it('passes axe in light and dark mode, and screenshots the chapter at 1280 and 375 px', async () => {
    await checkAppearances(
      session,
      'attention',
      PROMPT,
      async (page, hook) => {
        await published(page, 'attention.values', hook.tokens);
        await published(page, 'attention.override', hook.tokens, (f) => f.plain !== undefined);
      },
      {
        // The override figure with all of the last token's weight on the first token.
        more: async (page, hook, [width, scheme]) => {
          const overrideFigure = page.locator('figure', { has: page.locator('#att-override-title') });
          await overrideFigure.getByRole('button', { name: 'All of it on this key' }).click();
          await published(
            page,
            'attention.override',
            hook.tokens,
            (f) => f.weight === 1 && f.result !== undefined,
          );
          if (width === 1280) expect(await axeViolations(page), `${scheme}, overridden`).toEqual([]);
          await overrideFigure.screenshot({
            path: join(ARTIFACTS, `attention-override-${width}-${scheme}.png`),
          });
        },
      },
    );
  });
});
