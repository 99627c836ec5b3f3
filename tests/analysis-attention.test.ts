/**
 * src/analysis/attention.ts, held to brute-force recomputation from the Trace of real passes (a random model,
 * stories260K, the house model): each score rebuilt from its products, each weight from its scores, each
 * head output from its values; the √d toy against the statistics it claims; the distribution comparison
 * against a direct sum.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { headDim, kvHeadOf, type Model } from '../src/engine/model.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import {
  compareDistributions,
  dotBreakdown,
  headMatrix,
  headRows,
  scaleExperiment,
  softmaxBreakdown,
  unmaskedScores,
  weightedSum,
} from '../src/analysis/attention.ts';
import { defaultKernels, loadModelFolder, seededRandom } from './helpers.ts';
import { haveShared, STORIES260K } from './shared.ts';

const HOUSE = resolve(import.meta.dirname, '..', 'models', 'house');
const haveHouse = existsSync(join(HOUSE, 'model.safetensors'));
if (!haveHouse)
  console.warn('[glassbox tests] models/house is absent: skipping the house-model attention checks');

function traceOf(model: Model, tokens: number[]) {
  return forward(model, tokens, new KVCache(model.config), { trace: true, kernels: defaultKernels() }).trace;
}

const random = randomModel(
  {
    dim: 48,
    hiddenDim: 64,
    nLayers: 2,
    nHeads: 6,
    nKvHeads: 2,
    vocabSize: 40,
    seqLen: 32,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeLayout: 'interleaved',
    sharedClassifier: false,
  },
  3,
  0.3,
);

const cases: [string, () => { model: Model; tokens: number[] }][] = [
  ['a random model', () => ({ model: random, tokens: [1, 5, 9, 9, 33, 2, 17, 39, 0, 4, 12, 8] })],
];
if (haveShared)
  cases.push([
    'stories260K',
    () => ({
      model: parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin'),
      tokens: [1, 403, 407, 261, 378, 30, 266],
    }),
  ]);
if (haveHouse)
  cases.push([
    'the house model',
    () => {
      const { model, tokenizer } = loadModelFolder(HOUSE);
      return {
        model,
        tokens: tokenizer.encode('In the beginning God created the heavens and the', {
          bos: true,
          eos: false,
        }),
      };
    },
  ]);
if (!haveShared)
  console.warn('[glassbox tests] ../shared is absent: skipping the stories260K attention checks');

describe.each(cases)('one head taken apart, on %s', (_, load) => {
  const { model, tokens } = load();
  const { nLayers, nHeads, nKvHeads } = model.config;
  const D = headDim(model.config);
  const T = tokens.length;
  const trace = traceOf(model, tokens);

  it('slices one head out of the Trace as the Trace lays it out', () => {
    const layer = trace.layers[nLayers - 1];
    const h = nHeads - 1;
    const g = kvHeadOf(h, nHeads, nKvHeads);
    const q = headRows(layer.qRope.data, T, nHeads, D, h);
    const k = headRows(layer.kRope.data, T, nKvHeads, D, g);
    const weights = headMatrix(layer.weights.data, T, T, h);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < D; i++) {
        expect(q[t * D + i]).toBe(layer.qRope.data[t * nHeads * D + h * D + i]);
        expect(k[t * D + i]).toBe(layer.kRope.data[t * nKvHeads * D + g * D + i]);
      }
      for (let s = 0; s < T; s++) expect(weights[t * T + s]).toBe(layer.weights.data[(h * T + t) * T + s]);
    }
  });

  it('rebuilds every score from its d products, and every weight and output from the scores and values', () => {
    for (let l = 0; l < nLayers; l++) {
      const layer = trace.layers[l];
      for (let h = 0; h < nHeads; h++) {
        const g = kvHeadOf(h, nHeads, nKvHeads);
        const q = headRows(layer.qRope.data, T, nHeads, D, h);
        const k = headRows(layer.kRope.data, T, nKvHeads, D, g);
        const v = headRows(layer.v.data, T, nKvHeads, D, g);
        const scores = headMatrix(layer.scores.data, T, T, h);
        const weights = headMatrix(layer.weights.data, T, T, h);
        const output = headRows(layer.attnOutput.data, T, nHeads, D, h);
        const everyPair = unmaskedScores(q, k, T, D);
        for (let t = 0; t < T; t++) {
          for (let s = 0; s < T; s++) {
            const parts = dotBreakdown(q.subarray(t * D, (t + 1) * D), k.subarray(s * D, (s + 1) * D));
            // Brute force: the products one by one, the sum, the scale.
            let dot = 0;
            for (let i = 0; i < D; i++) {
              expect(parts.terms[i]).toBe(q[t * D + i] * k[s * D + i]);
              dot += q[t * D + i] * k[s * D + i];
            }
            expect(parts.sum).toBeCloseTo(dot, 12);
            expect(parts.score).toBeCloseTo(dot / Math.sqrt(D), 12);
            expect(everyPair[t * T + s]).toBeCloseTo(parts.score, 12);
            if (s <= t)
              expect(Math.abs(parts.score - scores[t * T + s])).toBeLessThan(
                1e-5 * Math.max(1, Math.abs(parts.score)),
              );
            else expect(scores[t * T + s]).toBe(-Infinity);
          }
          const row = softmaxBreakdown(scores.subarray(t * T, (t + 1) * T), t + 1);
          let total = 0;
          for (let s = 0; s <= t; s++) {
            // Independently: w_s = 1 / Σ_s' e^(score_s' − score_s), with no max subtracted.
            let inverse = 0;
            for (let r = 0; r <= t; r++) inverse += Math.exp(scores[t * T + r] - scores[t * T + s]);
            expect(row.weights[s]).toBeCloseTo(1 / inverse, 12);
            expect(row.numerators[s] / row.denominator).toBeCloseTo(row.weights[s], 14);
            expect(Math.abs(row.weights[s] - weights[t * T + s])).toBeLessThan(1e-6);
            total += row.weights[s];
          }
          expect(total).toBeCloseTo(1, 12);
          expect(row.numerators.some((n) => n === 1)).toBe(true); // e^(max − max)
          const sum = weightedSum(weights.subarray(t * T, (t + 1) * T), v, t + 1, D);
          for (let i = 0; i < D; i++) {
            let expected = 0;
            for (let s = 0; s <= t; s++) {
              expect(sum.contributions[s * D + i]).toBe(weights[t * T + s] * v[s * D + i]);
              expected += weights[t * T + s] * v[s * D + i];
            }
            expect(sum.output[i]).toBeCloseTo(expected, 12);
            expect(Math.abs(sum.output[i] - output[t * D + i])).toBeLessThan(1e-5);
          }
        }
      }
    }
  });
});

describe('the √d toy', () => {
  it('gives q·k a variance near the width, near 1 once scaled, and the same numbers for the same seed', () => {
    for (const width of [4, 32, 256]) {
      const row = scaleExperiment(width, 400, 8, 7);
      expect(Math.abs(row.rawVariance / width - 1)).toBeLessThan(0.15);
      expect(Math.abs(row.scaledVariance - 1)).toBeLessThan(0.15);
      expect(row.scaledVariance).toBeCloseTo(row.rawVariance / width, 12);
      expect(scaleExperiment(width, 400, 8, 7)).toEqual(row);
    }
  });
  it('shows softmax saturating without the scale: the top weight of 8 keys nears 1 when wide, not when scaled', () => {
    const wide = scaleExperiment(1024, 200, 8, 7);
    expect(wide.rawPeak).toBeGreaterThan(0.9);
    expect(wide.scaledPeak).toBeLessThan(0.6);
    expect(wide.scaledPeak).toBeGreaterThan(1 / 8);
    const narrow = scaleExperiment(4, 200, 8, 7);
    expect(narrow.rawPeak).toBeLessThan(wide.rawPeak);
  });
});

describe('comparing two next-token distributions', () => {
  it('lists the likeliest after, then the likeliest before, and measures the moved probability directly', () => {
    const next = seededRandom(5);
    const normalise = (values: number[]) => {
      const total = values.reduce((a, b) => a + b, 0);
      return values.map((v) => v / total);
    };
    const before = normalise(Array.from({ length: 50 }, () => next() ** 4));
    const after = normalise(Array.from({ length: 50 }, () => next() ** 4));
    const change = compareDistributions(before, after, 5);
    const order = (p: number[]) => p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
    expect(change.rows.slice(0, 5).map((r) => r.token)).toEqual(order(after).slice(0, 5));
    const extra = order(before)
      .slice(0, 5)
      .filter((token) => !order(after).slice(0, 5).includes(token));
    expect(change.rows.slice(5).map((r) => r.token)).toEqual(extra);
    for (const r of change.rows) expect([r.before, r.after]).toEqual([before[r.token], after[r.token]]);
    expect(change.topBefore).toBe(order(before)[0]);
    expect(change.topAfter).toBe(order(after)[0]);
    let moved = 0;
    for (let i = 0; i < 50; i++) if (after[i] > before[i]) moved += after[i] - before[i];
    expect(change.totalVariation).toBeCloseTo(moved, 12); // what one side gains, the other loses
    expect(compareDistributions(before, before, 5).totalVariation).toBe(0);
  });
});
