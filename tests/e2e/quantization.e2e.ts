/**
 * Chapter 16 in Chromium: the page's numbers against Node runs that do not use the chapter's own quantizer —
 * the model written as a GGUF file by `glassbox quantize`'s writer (toGguf) and read back by the GGUF loader:
 * its bytes, its perplexity on the held-out excerpt, which of the reader's next-token predictions flip
 * (argmax written out here), and its greedy continuation; the histogram's counts by brute force; the model's
 * largest weight. The controls work from the keyboard (matrix, format, row, group-size slider), the question
 * reveals the measured answer, and the chapter is screenshot at 1280 and 375 px.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HELD_OUT_TEXT } from '../../src/analysis/held-out.ts';
import { perplexity } from '../../src/analysis/perplexity.ts';
import { forward } from '../../src/engine/forward.ts';
import { generateTokens } from '../../src/engine/generate.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import type { Model } from '../../src/engine/model.ts';
import { quantizeModel } from '../../src/engine/quant-matmul.ts';
import { XorShiftRng } from '../../src/engine/rng.ts';
import { rawTokenizerFromFile } from '../../src/formats/bundle.ts';
import { parseGgufLlama, toGguf, type GgufWriteType } from '../../src/formats/gguf-llama.ts';
import { defaultKernels } from '../helpers.ts';
import { denseModel } from '../../src/engine/quant-matmul.ts';
import {
  checkAppearances,
  e2eSkipReason,
  HOUSE,
  houseModel,
  keystrokeToDrawn,
  openPage,
  type Published,
  published,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';

const unavailable = e2eSkipReason();
const PROMPT = 'And God said, Let there be light: and there was light.';
const kernels = defaultKernels();

interface ModelFigure extends Published {
  evaluations: { type: string; bytes: number; perplexity: number; tokens: number }[];
  reference: number[];
  flips: { type: string; flipped: number[] }[];
}

/** The house model as a GGUF file of `type`, read back: the CLI's writer and loader, not the chapter's code. */
const fromGguf = new Map<string, { model: Model; bytes: number }>();
function ggufModel(type: GgufWriteType) {
  let entry = fromGguf.get(type);
  if (!entry) {
    const { model } = houseModel();
    const raw = rawTokenizerFromFile(
      { name: 'tokenizer.json', bytes: new Uint8Array(readFileSync(join(HOUSE, 'tokenizer.json'))) },
      model.config.vocabSize,
    );
    const written = toGguf(model, raw, type);
    entry = {
      // The loader keeps the blocks (the engine would multiply them as stored): the page's perplexities and
      // flips are of the weights read back as float32, so this is too.
      model: denseModel(parseGgufLlama(written.bytes, `house-${type}.gguf`).model),
      bytes: written.tensors.reduce((sum, tensor) => sum + tensor.bytes.length, 0),
    };
    fromGguf.set(type, entry);
  }
  return entry;
}

/** The most likely token of each row, written out. */
function argmaxRows(logits: Float32Array, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * width < logits.length; r++) {
    let best = 0;
    for (let i = 1; i < width; i++) if (logits[r * width + i] > logits[r * width + best]) best = i;
    out.push(best);
  }
  return out;
}

function greedy(model: Model, tokens: number[], steps: number): number[] {
  const { tokenizer } = houseModel();
  const out: number[] = [];
  for (const step of generateTokens(model, tokens, {
    steps: Math.min(model.config.seqLen, tokens.length - 1 + steps),
    sampling: { temperature: 0 },
    rng: new XorShiftRng(1),
    stopTokens: [tokenizer.bosId, tokenizer.eosId],
    kernels,
  })) {
    if (!step.fromPrompt && step.token !== tokenizer.bosId && step.token !== tokenizer.eosId)
      out.push(step.token);
  }
  return out;
}

describe.skipIf(unavailable !== undefined)('chapter 16 (quantization) in Chromium', () => {
  const session = sessionForSuite();

  it("measures the whole model as Node does from GGUF files, and flips the predictions Node's argmax flips", async () => {
    const { model, tokenizer } = houseModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/quantization?prompt=${encodeURIComponent(PROMPT)}`);
    const hook = await waitForAnalysis(page, PROMPT);
    const tokens = tokenizer.encode(PROMPT, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);

    const figure = await published<ModelFigure>(
      page,
      'quantization.model',
      tokens,
      (f) => f.evaluations.length === 6,
      120_000,
    );
    const held = tokenizer.encode(HELD_OUT_TEXT, { bos: false, eos: false });
    const f32 = perplexity(model, held, tokenizer.bosId, kernels);
    const shown = (type: string) => figure.evaluations.find((e) => e.type === type)!;
    expect(shown('f32').tokens).toBe(held.length);
    expect(Math.abs(shown('f32').perplexity / f32.perplexity - 1)).toBeLessThan(1e-4);
    for (const type of ['q8_0', 'q4_0', 'f16'] as const) {
      const gguf = ggufModel(type);
      expect(shown(type).bytes, type).toBe(gguf.bytes);
      const expected = perplexity(gguf.model, held, tokenizer.bosId, kernels).perplexity;
      expect(Math.abs(shown(type).perplexity / expected - 1), type).toBeLessThan(1e-4);
    }
    // q8 within 1% of f32 (the issue's bar for the house model).
    expect(shown('q8_0').perplexity / shown('f32').perplexity).toBeLessThan(1.01);

    // Flips on the reader's text: f32 and the GGUF models' argmax at every position.
    const V = model.config.vocabSize;
    const top = (m: Model, ids: number[]) =>
      argmaxRows(forward(m, ids, new KVCache(m.config), { logits: 'all', kernels }).logits, V);
    const checkFlips = (shownFigure: ModelFigure, ids: number[]) => {
      const reference = top(model, ids);
      expect(shownFigure.reference).toEqual(reference);
      for (const type of ['q8_0', 'q4_0'] as const) {
        const other = top(ggufModel(type).model, ids);
        const flipped = reference.flatMap((token, t) => (token === other[t] ? [] : [t]));
        expect(shownFigure.flips.find((f) => f.type === type)?.flipped, type).toEqual(flipped);
      }
    };
    checkFlips(figure, tokens);

    // Side by side: greedy continuations of f32 and of the q4_0 file.
    const side = await published<Published & { f32: number[]; q4: number[]; firstDifference?: number }>(
      page,
      'quantization.sideBySide',
      tokens,
    );
    expect(side.f32).toEqual(greedy(model, tokens, 24));
    expect(side.q4).toEqual(greedy(ggufModel('q4_0').model, tokens, 24));
    const differ = side.f32.findIndex((token, i) => token !== side.q4[i]);
    expect(side.firstDifference ?? -1).toBe(differ);

    // The question, answered by the measured rise.
    const rise = shown('q4_0').perplexity / shown('f32').perplexity - 1;
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect
      .poll(() => page.locator('.predict label.correct').textContent())
      .toMatch(
        rise < 0.01 ? /Less than 1%/ : rise < 0.05 ? /1% to 5%/ : rise < 0.2 ? /5% to 20%/ : /More than 20%/,
      );

    // A keystroke: the flips follow the new text.
    const text = 'In the beginning God created the heavens';
    await page.locator('#prompt').fill(text);
    await waitForAnalysis(page, text);
    const next = tokenizer.encode(text, { bos: true, eos: false });
    const again = await published<ModelFigure>(page, 'quantization.model', next);
    expect(again.flips).toHaveLength(5);
    checkFlips(again, next);

    expect({ console: problems.console, failed: problems.failed, foreign: problems.foreign }).toEqual({
      console: [],
      failed: [],
      foreign: [],
    });
    await page.close();
  });

  it('draws histograms, blocks and group sizes of the real weights, and every control works by keyboard', async () => {
    const { model } = houseModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/quantization?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);

    type Histogram = Published & { name: string; counts: number[]; maxAbs: number; count: number };
    const first = await published<Histogram>(page, 'quantization.histogram', undefined);
    expect(first.name).toBe('layers[0].wq');
    const bruteCounts = (values: Float32Array, bins: number) => {
      let maxAbs = 0;
      for (const v of values) maxAbs = Math.max(maxAbs, Math.abs(v));
      const counts = new Array<number>(bins).fill(0);
      for (const v of values) counts[Math.min(bins - 1, Math.floor(((v + maxAbs) / (2 * maxAbs)) * bins))]++;
      return { counts, maxAbs };
    };
    const wq = bruteCounts(model.weights.layers[0].wq.data, first.counts.length);
    expect(first.maxAbs).toBe(wq.maxAbs);
    expect(first.counts).toEqual(wq.counts);

    // The matrix, by keyboard: the next one in the list is layers[0].wk.
    await page.locator('#quant-histogram-title').scrollIntoViewIfNeeded();
    const matrix = page.locator('.figure:has(#quant-histogram-title) select').first();
    await matrix.focus();
    await page.keyboard.press('ArrowDown');
    const wk = await published<Histogram>(
      page,
      'quantization.histogram',
      undefined,
      (f) => f.name === 'layers[0].wk',
    );
    expect(wk.counts).toEqual(bruteCounts(model.weights.layers[0].wk.data, wk.counts.length).counts);

    // The block figure follows the same choice; the format by keyboard (arrow keys move between radio buttons).
    type Block = Published & {
      matrix: string;
      row: number;
      start: number;
      values: number[];
      scheme: string;
      q: number[];
    };
    const block = await published<Block>(
      page,
      'quantization.block',
      undefined,
      (f) => f.matrix === 'layers[0].wk',
    );
    expect(block.values).toEqual(Array.from(model.weights.layers[0].wk.data.subarray(0, 32)));
    expect(block.scheme).toBe('int4');
    await page.getByRole('radio', { name: /q4_0/ }).focus();
    await page.keyboard.press('ArrowUp');
    const q8 = await published<Block>(page, 'quantization.block', undefined, (f) => f.scheme === 'int8');
    expect(Math.max(...q8.q.map(Math.abs))).toBe(127);

    // A row typed in: row 5, block 2.
    const row = page.locator('#quant-block-row');
    await row.fill('5');
    await row.press('Enter');
    await page.locator('.figure:has(#quant-block-title) select').nth(1).selectOption('2');
    const moved = await published<Block>(
      page,
      'quantization.block',
      undefined,
      (f) => f.row === 5 && f.start === 64,
    );
    const columns = model.weights.layers[0].wk.shape[1];
    expect(moved.values).toEqual(
      Array.from(model.weights.layers[0].wk.data.subarray(5 * columns + 64, 5 * columns + 96)),
    );

    // The group-size slider, by keyboard: 32 → 64.
    type Groups = Published & { size: number; rows: { size: number }[] };
    await page.locator('#quant-group-size').focus();
    await page.keyboard.press('ArrowRight');
    const groups = await published<Groups>(page, 'quantization.groups', undefined, (f) => f.size === 64);
    expect(groups.rows.map((r) => r.size)).toEqual([8, 16, 32, 64, 128, 256]);

    // The outlier is the model's largest weight.
    const outlier = await published<Published & { value: number }>(page, 'quantization.outlier', undefined);
    let best = 0;
    const all = [
      model.weights.tokenEmbedding,
      ...model.weights.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]),
    ];
    for (const tensor of all) for (const v of tensor.data) best = Math.max(best, Math.abs(v));
    expect(Math.abs(outlier.value)).toBe(best);
    // The other pick, by keyboard: the weight that stands out most in its block is larger than its 31 neighbours.
    await page.getByRole('radio', { name: /the model's largest/ }).focus();
    await page.keyboard.press('ArrowDown');
    type Outlier = Published & { pick: string; value: number; othersRms: number[] };
    const standout = await published<Outlier>(
      page,
      'quantization.outlier',
      undefined,
      (f) => f.pick === 'standout',
    );
    expect(standout.othersRms[1]).toBeLessThan(standout.othersRms[0]);
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it('measures decode speed with the engine running the stored blocks, when asked by keyboard', async () => {
    const { model, tokenizer } = houseModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/quantization?prompt=${encodeURIComponent(PROMPT)}`);
    await waitForAnalysis(page, PROMPT);
    const tokens = tokenizer.encode(PROMPT, { bos: true, eos: false });
    const button = page.getByRole('button', { name: 'Measure decode speed' });
    await button.focus();
    await page.keyboard.press('Enter');
    type Speed = Published & {
      rows: {
        type: string;
        bytes: number;
        msPerToken: number;
        steps: number;
        tokens: number[];
        code: string;
      }[];
    };
    const speed = await published<Speed>(page, 'quantization.speed', tokens, undefined, 120_000);
    expect(speed.rows.map((row) => row.type)).toEqual(['f32', 'f16', 'bf16', 'q8_0', 'q4_1', 'q4_0']);
    for (const row of speed.rows) {
      expect(row.msPerToken, row.type).toBeGreaterThan(0);
      expect(row.steps).toBe(16);
      // The bytes the engine reads per token: the weights as a GGUF file of that type stores them.
      expect(row.bytes, row.type).toBe(ggufModel(row.type as GgufWriteType).bytes);
      // The greedy steps the stored model chose: the engine's quantized model in Node, argmax written out.
      const m = row.type === 'f32' ? model : quantizeModel(model, row.type as 'q4_0');
      const cache = new KVCache(m.config);
      let logits = forward(m, tokens, cache, { logits: 'last', kernels }).logits;
      const chosen: number[] = [];
      for (let i = 0; i < 16; i++) {
        const best = argmaxRows(logits, logits.length)[0];
        chosen.push(best);
        logits = forward(m, [best], cache, { logits: 'last', kernels }).logits;
      }
      expect(row.tokens, row.type).toEqual(chosen);
    }
    expect(speed.rows[0].bytes).toBe(ggufModel('f32').bytes);
    console.log(
      `[e2e] chapter 16 decode speed (ms per token): ${speed.rows.map((row) => `${row.type} ${row.msPerToken.toFixed(2)}`).join(', ')}; quantized products by ${speed.rows[5].code}`,
    );
    expect(problems.console).toEqual([]);
    await page.close();
  }, 240_000);

  it('redraws the flips within the page budget after a keystroke (one traced pass and five untraced ones)', async () => {
    const { tokenizer } = houseModel();
    const { page } = await openPage(session);
    await page.goto(`${session.origin}/quantization?prompt=${encodeURIComponent(PROMPT)}`);
    const hook = await waitForAnalysis(page, PROMPT);
    // Wait until the once-per-model measurements are done, so the keystrokes are not queued behind them.
    await published<ModelFigure>(
      page,
      'quantization.model',
      hook.tokens,
      (f) => f.evaluations.length === 6,
      120_000,
    );
    const verse =
      'And God said, Let there be light: and there was light. And God saw the light, that it was good. ';
    const long = tokenizer.decode(tokenizer.encode(verse.repeat(8), { bos: true, eos: false }).slice(0, 64));
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const text = i % 2 ? long : `${long.slice(0, -6)}`;
      times.push(await keystrokeToDrawn(page, text, 'quantization.model'));
      // Let the side-by-side (asked 150 ms after typing stops) finish before the next keystroke.
      await published(page, 'quantization.sideBySide', tokenizer.encode(text, { bos: true, eos: false }));
    }
    times.sort((a, b) => a - b);
    console.log(
      `[e2e] chapter 16: keystroke to flips drawn, 64 tokens: best ${times[0].toFixed(1)} ms, median ${times[2].toFixed(1)} ms`,
    );
    expect(times[0]).toBeLessThan(1000);
    await page.close();
  }, 180_000);

  it('passes axe in light and dark mode, and screenshots the chapter at 1280 and 375 px', async () => {
    await checkAppearances(session, 'quantization', PROMPT, async (page, hook) => {
      await published(
        page,
        'quantization.model',
        hook.tokens,
        (f) => (f as unknown as ModelFigure).evaluations.length === 6,
        120_000,
      );
      await published(page, 'quantization.sideBySide', hook.tokens);
      await published(page, 'quantization.groups', undefined);
      await published(page, 'quantization.outlier', undefined);
      // The speed table, measured, so that the screenshots show it.
      await page.getByRole('button', { name: 'Measure decode speed' }).click();
      await published(page, 'quantization.speed', hook.tokens, undefined, 120_000);
    });
  }, 300_000);
});
