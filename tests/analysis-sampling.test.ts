/**
 * src/analysis/sampling.ts against the engine's sampler and an independent float64 recomputation: the
 * survivors it shows are the only tokens sampleToken ever picks, the renormalised probabilities match the
 * sampler's frequencies over many seeded draws, and the filter counts agree with the definitions of top-k,
 * min-p and top-p applied by brute force. On random models, stories260K (from ../shared) and the house model.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { removedBy, seededDraw, sortedDistribution } from '../src/analysis/sampling.ts';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import {
  filterCandidates,
  sampleToken,
  temperatureSoftmax,
  type SamplingSettings,
} from '../src/engine/sampling.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { defaultKernels, loadModelFolder, seededRandom, smallConfig } from './helpers.ts';
import { haveShared, STORIES260K } from './shared.ts';

const kernels = defaultKernels();

function lastLogits(model: Model, tokens: number[]): Float32Array {
  return forward(model, tokens, new KVCache(model.config), { logits: 'last', kernels }).logits;
}

const config = smallConfig({ vocabSize: 300 });

/** Rows of logits to test on: a random model with large weights (peaked) and small ones (flat). */
function randomRows(): Float32Array[] {
  const random = seededRandom(11);
  const rows: Float32Array[] = [];
  for (const [seed, std] of [
    [3, 0.5],
    [4, 0.15],
  ]) {
    const model = randomModel(config, seed, std);
    for (let r = 0; r < 2; r++) {
      const tokens = Array.from({ length: 6 }, () => Math.floor(random() * config.vocabSize));
      rows.push(lastLogits(model, tokens));
    }
  }
  return rows;
}

const SETTINGS: SamplingSettings[] = [
  { temperature: 1 },
  { temperature: 0.7, topP: 0.9 },
  { temperature: 1.3, topK: 20 },
  { temperature: 1, minP: 0.1 },
  { temperature: 0.8, topK: 40, minP: 0.05, topP: 0.8 },
  { temperature: 2, topP: 0.5 },
  { temperature: 0.5, topK: 1 },
  { temperature: 1, topP: 1 }, // 1 turns top-p off
];

/** The definitions, in float64, with no code shared with the engine: sort, then each filter in turn. */
function bruteForce(logits: Float32Array, s: SamplingSettings) {
  const scaled = Array.from(logits, (z) => z / s.temperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((z) => Math.exp(z - max));
  const total = exps.reduce((a, b) => a + b, 0);
  const p = exps.map((e) => e / total);
  const order = p.map((_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  let kept = order.length;
  if ((s.topK ?? 0) > 0) kept = Math.min(kept, s.topK!);
  const afterTopK = kept;
  if ((s.minP ?? 0) > 0) kept = order.slice(0, kept).filter((t) => p[t] >= s.minP! * p[order[0]]).length;
  const afterMinP = kept;
  const topP = s.topP ?? 0;
  if (topP > 0 && topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < kept; i++) {
      cumulative += p[order[i]];
      if (cumulative > topP) {
        kept = i + 1;
        break;
      }
    }
  }
  const mass = order.slice(0, kept).reduce((sum, t) => sum + p[t], 0);
  return { p, order, afterTopK, afterMinP, kept, mass };
}

function checkAgainstBruteForce(logits: Float32Array, settings: SamplingSettings) {
  const view = sortedDistribution(logits, settings);
  const brute = bruteForce(logits, settings);
  expect(Array.from(view.order)).toEqual(brute.order);
  expect([view.afterTopK, view.afterMinP, view.kept]).toEqual([brute.afterTopK, brute.afterMinP, brute.kept]);
  for (let i = 0; i < view.sorted.length; i++) {
    expect(Math.abs(view.sorted[i] - brute.p[brute.order[i]])).toBeLessThan(1e-6);
  }
  const filtered = view.active.topK || view.active.minP || view.active.topP;
  if (filtered) {
    // The survivors are exactly, in order, the candidates the engine's filter hands to the sampler.
    const candidates = filterCandidates(temperatureSoftmax(logits, settings.temperature), settings);
    expect(Array.from(view.order.subarray(0, view.kept))).toEqual(candidates.map((c) => c.token));
  }
  for (let i = 0; i < view.kept; i++) {
    const expected = brute.p[brute.order[i]] / (filtered ? brute.mass : 1);
    expect(Math.abs(view.renormalised[i] - expected)).toBeLessThan(1e-5);
  }
  return view;
}

describe('sortedDistribution: the sorted distribution and what each filter keeps', () => {
  it('agrees with the definitions recomputed in float64 (random models, many settings)', () => {
    for (const logits of randomRows())
      for (const settings of SETTINGS) checkAgainstBruteForce(logits, settings);
  });

  it('survivors are a prefix of the sorted order; every other token names the filter that removed it', () => {
    const [logits] = randomRows();
    const view = sortedDistribution(logits, { temperature: 1, topK: 50, minP: 0.02, topP: 0.6 });
    expect(view.kept).toBeLessThanOrEqual(view.afterMinP);
    expect(view.afterMinP).toBeLessThanOrEqual(view.afterTopK);
    expect(view.afterTopK).toBe(50);
    const reasons = Array.from(view.order, (_, rank) => removedBy(view, rank));
    expect(reasons.slice(0, view.kept).every((r) => r === 'kept')).toBe(true);
    expect(reasons.slice(view.afterTopK).every((r) => r === 'top-k')).toBe(true);
    expect(reasons.slice(view.kept, view.afterMinP).every((r) => r === 'top-p')).toBe(true);
    expect(reasons.slice(view.afterMinP, view.afterTopK).every((r) => r === 'min-p')).toBe(true);
    expect(view.kept).toBeLessThan(view.afterMinP); // the nucleus did cut something here
    // The engine's rules for "off": top-k 0, min-p 0, top-p 0 or 1 keep the whole vocabulary.
    for (const off of [{}, { topK: 0, minP: 0, topP: 0 }, { topP: 1 }]) {
      const all = sortedDistribution(logits, { temperature: 1, ...off });
      expect(all.kept).toBe(logits.length);
      expect(Array.from(all.renormalised)).toEqual(Array.from(all.sorted));
    }
  });

  it('greedy below MIN_SAMPLING_TEMPERATURE: one survivor, the argmax, with all the probability', () => {
    const [logits] = randomRows();
    for (const temperature of [0, 1e-4]) {
      const view = sortedDistribution(logits, { temperature, topP: 0.9 });
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      expect([view.greedy, view.kept, view.order[0], view.renormalised[0]]).toEqual([true, 1, best, 1]);
      expect(removedBy(view, 1)).toBe('greedy');
      expect(sampleToken(logits, { temperature, topP: 0.9 }, new XorShiftRng(5))).toBe(best);
    }
  });
});

describe('the sampler draws only survivors, as often as their renormalised probabilities say', () => {
  function checkDraws(logits: Float32Array, settings: SamplingSettings, DRAWS = 10_000) {
    const view = sortedDistribution(logits, settings);
    const survivor = new Map<number, number>();
    for (let i = 0; i < view.kept; i++) survivor.set(view.order[i], i);
    const counts = new Float64Array(view.kept);
    for (let seed = 1; seed <= DRAWS; seed++) {
      const token = sampleToken(logits, settings, new XorShiftRng(seed));
      const rank = survivor.get(token);
      // The sampler never picks a token the analysis shows as filtered out.
      if (rank === undefined) expect.fail(`seed ${seed} drew token ${token}, shown as removed`);
      counts[rank]++;
    }
    // Each survivor's frequency within 5 standard errors of its renormalised probability.
    for (let i = 0; i < view.kept; i++) {
      const p = view.renormalised[i];
      const tolerance = 5 * Math.sqrt((p * (1 - p)) / DRAWS) + 1 / DRAWS;
      expect(Math.abs(counts[i] / DRAWS - p), `rank ${i}: p ${p}`).toBeLessThan(tolerance);
    }
    return view;
  }

  it('on a random model, for every setting', () => {
    const rows = randomRows();
    for (const settings of SETTINGS.slice(0, 6)) checkDraws(rows[1], settings);
  });

  it('on the house model, for the reader-facing defaults and a narrow nucleus', () => {
    const { model, tokenizer } = loadModelFolder('models/house');
    const logits = lastLogits(
      model,
      tokenizer.encode('In the beginning God created the', { bos: true, eos: false }),
    );
    const view = checkDraws(logits, { temperature: 0.8, topP: 0.9 }, 3000);
    expect(view.kept).toBeLessThan(model.config.vocabSize);
    checkAgainstBruteForce(logits, { temperature: 0.8, topP: 0.9 });
    checkAgainstBruteForce(logits, { temperature: 1.5, topK: 200, minP: 0.01 });
    checkDraws(logits, { temperature: 1.2, minP: 0.05 }, 3000);
  });

  it.skipIf(!haveShared)('on stories260K (from ../shared)', () => {
    const model = parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin');
    const logits = lastLogits(model, [1, 403, 407, 261, 378]);
    checkDraws(logits, { temperature: 1, topP: 0.9 }, 5000);
    checkAgainstBruteForce(logits, { temperature: 1, topK: 10, topP: 0.95 });
  });
});

describe('seededDraw', () => {
  it("is the engine's pick for the seed, and its coin lands inside that token's interval", () => {
    const [, logits] = randomRows();
    for (const settings of [
      { temperature: 1 },
      { temperature: 0.9, topP: 0.8 },
      { temperature: 1.1, topK: 5, minP: 0.1 },
    ]) {
      const view = sortedDistribution(logits, settings);
      for (let seed = 1; seed <= 200; seed++) {
        const draw = seededDraw(logits, settings, seed, view);
        expect(draw.token).toBe(sampleToken(logits, settings, new XorShiftRng(seed)));
        expect(draw.coin).toBe(new XorShiftRng(seed).nextFloat());
        expect(view.order[draw.rank]).toBe(draw.token);
        if (!view.active.topK && !view.active.topP && !view.active.minP) continue;
        // Filtered: the landing point falls in the token's slice of the survivors' cumulative sum.
        let before = 0;
        for (let i = 0; i < draw.rank; i++) before = Math.fround(before + view.sorted[i]);
        const after = Math.fround(before + view.sorted[draw.rank]);
        expect(draw.landing!).toBeGreaterThanOrEqual(before);
        if (draw.rank < view.kept - 1) expect(draw.landing!).toBeLessThan(after);
      }
    }
  });

  it('the same seed gives the same token, and different seeds spread over the survivors', () => {
    const [, logits] = randomRows();
    const settings = { temperature: 1.5 };
    const tokens = new Set<number>();
    for (let seed = 1; seed <= 50; seed++) {
      const a = seededDraw(logits, settings, seed);
      expect(seededDraw(logits, settings, seed)).toEqual(a);
      tokens.add(a.token);
    }
    expect(tokens.size).toBeGreaterThan(10);
  });
});

describe('the sorted order', () => {
  it('is the comparator order (probability down, then id up), ties and zeros included', () => {
    const random = seededRandom(3);
    // Repeated values and exact zeros, as a float32 softmax at a low temperature gives them.
    const probabilities = Float32Array.from({ length: 3000 }, () =>
      random() < 0.3 ? 0 : Math.fround(Math.floor(random() * 50) / 1000),
    );
    const logits = Float32Array.from(probabilities, (p) => (p === 0 ? -1e9 : Math.log(p)));
    const view = sortedDistribution(logits, { temperature: 1 });
    const expected = Array.from(view.probabilities.keys()).sort(
      (a, b) => view.probabilities[b] - view.probabilities[a] || a - b,
    );
    expect(Array.from(view.order)).toEqual(expected);
  });
});
