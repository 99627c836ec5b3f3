/**
 * Chapter 6 in Chromium: the q/k pairs, the relative-distance check and the reversed-text comparison show
 * the numbers a Node run of the engine gives on the same files; the position slider, the pair list, the
 * shift slider and the sinusoidal table work from the keyboard; screenshots at 1280 and 375 px.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forward } from '../../src/engine/forward.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { headDim, kvHeadOf } from '../../src/engine/model.ts';
import {
  compareOrders,
  headPairs,
  headVector,
  reversedTokens,
  type RopeGeometry,
} from '../../src/app/chapters/06-position/position.ts';
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
import { defaultKernels } from '../helpers.ts';

const unavailable = e2eSkipReason();

const FIRST = 'The LORD is my shepherd';
const PROMPT = 'In the beginning God created the heavens and the earth.';
const TOKEN = 4;

function nodeModel() {
  const { model, tokenizer } = houseModel();
  const trace = (tokens: number[]) =>
    forward(model, tokens, new KVCache(model.config), {
      trace: true,
      logits: 'last',
      kernels: defaultKernels(),
    }).trace;
  const geometry: RopeGeometry = {
    headDim: headDim(model.config),
    layout: model.config.ropeLayout,
    theta: model.config.ropeTheta,
  };
  return { model, tokenizer, trace, geometry };
}

function expectPairsClose(actual: number[][], expected: { x: number; y: number }[], digits = 5) {
  expect(actual).toHaveLength(expected.length);
  actual.forEach(([x, y], i) => {
    expect(x).toBeCloseTo(expected[i].x, digits);
    expect(y).toBeCloseTo(expected[i].y, digits);
  });
}

describe.skipIf(unavailable !== undefined)('chapter 6 (position) in Chromium', () => {
  const session = sessionForSuite();

  it("shows the reader's real q/k pairs and scores, equal to a Node Trace, and works by keyboard", async () => {
    const node = nodeModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/position?prompt=${encodeURIComponent(FIRST)}&token=${TOKEN}`);
    await waitForAnalysis(page, FIRST);
    await page.fill('#prompt', PROMPT);
    const hook = await waitForAnalysis(page, PROMPT);
    const tokens = node.tokenizer.encode(PROMPT, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);
    const trace = node.trace(tokens);
    const { nHeads, nKvHeads } = node.model.config;
    const D = node.geometry.headDim;

    // The pairs figure: layer 0, head 0, the query of token 4 (from the link), at its real position.
    const pairs = await published<Published & { before: number[][]; after: number[][]; trace: number[][] }>(
      page,
      'position.pairs',
      tokens,
      (f) => f.token === TOKEN && f.position === TOKEN,
    );
    expect([pairs.layer, pairs.head, pairs.kind, pairs.layout]).toEqual([0, 0, 'q', 'half']);
    const q = headVector(trace.layers[0].q.data, nHeads, D, TOKEN, 0);
    expectPairsClose(pairs.before, headPairs(q, node.geometry));
    expectPairsClose(
      pairs.trace,
      headPairs(headVector(trace.layers[0].qRope.data, nHeads, D, TOKEN, 0), node.geometry),
    );
    expectPairsClose(
      pairs.after,
      headPairs(headVector(trace.layers[0].qRope.data, nHeads, D, TOKEN, 0), node.geometry),
    );

    // The position slider by keyboard: three steps right, then the rotated pairs follow the 2-D formula.
    await page.focus('#pos-pairs-position');
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
    const moved = await published<Published & { before: number[][]; after: number[][] }>(
      page,
      'position.pairs',
      tokens,
      (f) => f.position === TOKEN + 3,
    );
    const turned = headPairs(q, node.geometry).map(({ x, y }, i) => {
      const angle = (TOKEN + 3) * Math.pow(node.geometry.theta, (-2 * i) / D);
      return { x: x * Math.cos(angle) - y * Math.sin(angle), y: x * Math.sin(angle) + y * Math.cos(angle) };
    });
    expectPairsClose(moved.after, turned);
    await page.keyboard.press('End');
    await published(page, 'position.pairs', tokens, (f) => f.position === node.model.config.seqLen - 1);
    // The pair list: arrow keys choose a pair.
    await page.locator('ul.dials [role=option]').first().click();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await published(page, 'position.pairs', tokens, (f) => f.selected === 2);
    expect(await page.locator('ul.dials [aria-selected=true]').textContent()).toContain('pair 2');

    // The key of layer 2, head 3 (kv head 1): chosen with the form controls.
    const pairsFigure = page.locator('figure', { has: page.locator('#pos-pairs-title') });
    await pairsFigure.getByRole('combobox', { name: /^Layer/ }).selectOption('2');
    await pairsFigure.getByRole('combobox', { name: /^Head/ }).selectOption('3');
    await pairsFigure.getByLabel('key k').check();
    const key = await published<Published & { before: number[][]; trace: number[][] }>(
      page,
      'position.pairs',
      tokens,
      (f) => f.layer === 2 && f.head === 3 && f.kind === 'k',
    );
    expect(key.shownHead).toBe(kvHeadOf(3, nHeads, nKvHeads));
    expectPairsClose(
      key.before,
      headPairs(headVector(trace.layers[2].k.data, nKvHeads, D, TOKEN, 1), node.geometry),
    );
    expectPairsClose(
      key.trace,
      headPairs(headVector(trace.layers[2].kRope.data, nKvHeads, D, TOKEN, 1), node.geometry),
    );

    // The relative check: the query of token 4 against the key of token 3, layer 0, head 0.
    type Shifted = { shift: number; queryPos: number; keyPos: number; score: number };
    const relative = await published<
      Published & {
        traceScore: number;
        computed: number;
        shifted: Shifted[];
        moved: Shifted[];
        shiftedScore: number;
      }
    >(page, 'position.relative', tokens);
    expect([relative.query, relative.key, relative.layer, relative.head]).toEqual([TOKEN, TOKEN - 1, 0, 0]);
    const T = tokens.length;
    expect(relative.traceScore).toBeCloseTo(trace.layers[0].scores.data[(0 * T + TOKEN) * T + TOKEN - 1], 5);
    expect(relative.computed).toBeCloseTo(relative.traceScore, 4);
    expect(relative.shifted.map((s) => s.shift)).toEqual([0, 1, 10, 100, 1000]);
    for (const s of relative.shifted) expect(s.score).toBeCloseTo(relative.computed, 4);
    for (const s of relative.moved) expect(Math.abs(s.score - relative.computed)).toBeGreaterThan(1e-3);
    // The shift slider by keyboard: the score does not move.
    await page.focus('#pos-rel-shift');
    await page.keyboard.press('PageUp');
    const slid = await published<Published & { shift: number; shiftedScore: number }>(
      page,
      'position.relative',
      tokens,
      (f) => f.shift > 10,
    );
    expect(slid.shiftedScore).toBeCloseTo(relative.computed, 4);

    // The reversed text: same scores before RoPE, different after, as Node finds.
    const order = await published<Published & { maxBefore: number; changedAfter: number; pairs: number }>(
      page,
      'position.order',
      tokens,
    );
    const reversed = node.trace(reversedTokens(tokens));
    const qk = (t: typeof trace) => ({
      q: t.layers[0].q.data,
      k: t.layers[0].k.data,
      qRope: t.layers[0].qRope.data,
      kRope: t.layers[0].kRope.data,
    });
    const expected = compareOrders(qk(trace), qk(reversed), { T, nHeads, nKvHeads, headDim: D }, 0);
    expect(order.reversed).toEqual(reversedTokens(tokens));
    expect(order.pairs).toBe(T * T);
    expect(order.maxBefore).toBeLessThan(1e-6);
    expect(order.changedAfter).toBe(expected.changedAfter);

    // The sinusoidal table's cursor by keyboard.
    const before = await page.evaluate(
      () =>
        (globalThis as unknown as { __glassbox: { figures: Record<string, { position: number }> } })
          .__glassbox.figures['position.sinusoid'].position,
    );
    await page.getByRole('slider', { name: /Cursor on the sinusoidal table/ }).focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    const cell = await page.evaluate(
      () =>
        (
          globalThis as unknown as {
            __glassbox: {
              figures: Record<string, { position: number; dimension: number; dim: number; value: number }>;
            };
          }
        ).__glassbox.figures['position.sinusoid'],
    );
    expect(cell.position).toBe(before + 1);
    const i = Math.floor(cell.dimension / 2);
    const angle = cell.position / Math.pow(10000, (2 * i) / cell.dim);
    expect(cell.value).toBeCloseTo(cell.dimension % 2 === 0 ? Math.sin(angle) : Math.cos(angle), 6);

    // Predict, then reveal: the computed answer is that the score stays.
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect
      .poll(() => page.locator('.predict label.correct').textContent())
      .toMatch(/It stays the same/);

    expect({ console: problems.console, failed: problems.failed, foreign: problems.foreign }).toEqual({
      console: [],
      failed: [],
      foreign: [],
    });
    await page.close();
  });

  it('passes axe in light and dark mode, and screenshots the chapter at 1280 and 375 px', async () => {
    await checkAppearances(session, 'position', PROMPT, async (page, hook) => {
      await published(page, 'position.relative', hook.tokens);
      await published(page, 'position.order', hook.tokens);
      // Reduced motion: no Play button.
      expect(await page.getByRole('button', { name: /^Play/ }).count()).toBe(0);
    });
  });

  it('a model with a 2^20-position context: the figures stay quick and follow a new text', async () => {
    const folder = HOUSE;
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    config.max_position_embeddings = 2 ** 20;
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/position?prompt=${encodeURIComponent(FIRST)}`);
    await waitForAnalysis(page, FIRST);
    await page.locator('input[type=file]').setInputFiles([
      { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(config)) },
      {
        name: 'model.safetensors',
        mimeType: 'application/octet-stream',
        buffer: readFileSync(join(folder, 'model.safetensors')),
      },
      {
        name: 'tokenizer.json',
        mimeType: 'application/json',
        buffer: readFileSync(join(folder, 'tokenizer.json')),
      },
    ]);
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { __glassbox: { model: { config: { seqLen: number } } } }).__glassbox?.model
          ?.config.seqLen ===
        2 ** 20,
      undefined,
      { timeout: 30_000 },
    );
    const node = nodeModel();
    for (const prompt of [FIRST, PROMPT]) {
      const started = Date.now();
      await page.fill('#prompt', prompt);
      await waitForAnalysis(page, prompt);
      const tokens = node.tokenizer.encode(prompt, { bos: true, eos: false });
      const relative = await published<
        Published & { traceScore: number; computed: number; curveLength: number }
      >(page, 'position.relative', tokens);
      // The figure shows this text's numbers (not the previous text's), in well under the 28–34 s of before.
      expect(relative.curveLength).toBe(1024);
      expect(relative.computed).toBeCloseTo(relative.traceScore, 4);
      expect(Date.now() - started).toBeLessThan(5_000);
    }
    const sinusoid = await page.evaluate(
      () =>
        (
          globalThis as unknown as {
            __glassbox: { figures: Record<string, { positions: number; contextLength: number }> };
          }
        ).__glassbox.figures['position.sinusoid'],
    );
    expect(sinusoid).toMatchObject({ positions: 1024, contextLength: 2 ** 20 });
    expect(await page.locator('#pos-rel-summary').textContent()).toMatch(
      /first 1,024 of the model's 1,048,576 positions/,
    );
    expect(problems.console).toEqual([]);
    await page.close();
  });
});
