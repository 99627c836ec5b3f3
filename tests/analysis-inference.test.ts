/**
 * Chapter 15's arithmetic (src/analysis/inference.ts) held to brute force: the FLOPs and weight bytes of a
 * pass are counted by wrapping the kernels a real forward pass calls (every product's 2·M·K·N, every distinct
 * weight array it reads, every query-key pair attention visits), never by the formulas under test; the cache's
 * bytes per token are what a real KVCache allocates; the generation and batch totals are sums of real passes.
 */
import { describe, expect, it } from 'vitest';
import {
  attainable,
  batchDecodeCost,
  CURVE_FLOP_BUDGET,
  CURVE_MAX_TOKENS,
  CURVE_ROOM,
  curvePlan,
  generationPasses,
  passCost,
  ridgePoint,
  summarize,
  totalCost,
} from '../src/analysis/inference.ts';
import { kvCacheBytes, kvShapeOf } from '../src/analysis/heads.ts';
import { causalSelfAttention } from '../src/engine/attention.ts';
import { forward, forwardBatch } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { ModelConfig } from '../src/engine/model.ts';
import { referenceLayerKernels } from '../src/kernels/layer-reference.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { smallConfig } from './helpers.ts';

/** Kernels that do the real work and count it: product FLOPs, the weights read, attention's dot products. */
function countingKernels() {
  const weights = new Set<Float32Array>();
  const tally = { matmulFlops: 0, attentionFlops: 0, weightArrays: weights };
  const kernels = {
    ...referenceKernels,
    ...referenceLayerKernels,
    name: 'counting',
    matmulTransposedB(out: Float32Array, x: Float32Array, w: Float32Array, M: number, K: number, N: number) {
      tally.matmulFlops += 2 * M * K * N;
      weights.add(w);
      referenceKernels.matmulTransposedB(out, x, w, M, K, N);
    },
    rmsNormRows(...args: Parameters<typeof referenceLayerKernels.rmsNormRows>) {
      weights.add(args[2]);
      referenceLayerKernels.rmsNormRows(...args);
    },
    causalSelfAttention(...args: Parameters<typeof causalSelfAttention>) {
      const [, , , , startPos, T, shape] = args;
      // Walk the causal mask: every visible (query, key) pair costs a q·k and a weighted v, headDim each.
      for (let t = 0; t < T; t++)
        for (let s = 0; s <= startPos + t; s++) tally.attentionFlops += shape.nHeads * 2 * 2 * shape.headDim;
      causalSelfAttention(...args);
    },
  };
  return { kernels, tally };
}

const configs: [string, ModelConfig][] = [
  ['GQA, separate classifier', smallConfig({ seqLen: 40 })],
  ['MHA, tied embeddings', smallConfig({ seqLen: 40, nKvHeads: 4, sharedClassifier: true })],
];

describe.each(configs)('passCost on a %s model', (_, config) => {
  const model = randomModel(config, 3, 0.2);
  const weightBytesOf = (arrays: Set<Float32Array>) =>
    [...arrays].reduce((sum, array) => sum + array.byteLength, 0);

  it.each([
    [7, 0],
    [1, 0],
    [1, 12],
    [5, 9],
  ])('counts the FLOPs and weights of %i rows after %i cached positions', (rows, startPos) => {
    const { kernels, tally } = countingKernels();
    const cache = new KVCache(config);
    if (startPos > 0)
      forward(
        model,
        Array.from({ length: startPos }, (_, i) => (i * 5) % 50),
        cache,
        { kernels: referenceKernels },
      );
    const tokens = Array.from({ length: rows }, (_, i) => (i * 3 + 1) % config.vocabSize);
    forward(model, tokens, cache, { kernels, logits: 'last' });
    const cost = passCost(config, rows, startPos, 1);
    expect(cost.matmulFlops).toBe(tally.matmulFlops);
    expect(cost.attentionFlops).toBe(tally.attentionFlops);
    // The weight matrices and norm gains the pass touched, plus the embedding rows when not shared.
    const embedded = config.sharedClassifier ? 0 : rows * config.dim * 4;
    expect(cost.weightBytes).toBe(weightBytesOf(tally.weightArrays) + embedded);
    // Attention reads every cached key and value once per layer and writes the new rows.
    const kvRow = 2 * config.nKvHeads * (config.dim / config.nHeads) * 4;
    expect(cost.cacheBytes).toBe(config.nLayers * kvRow * (startPos + 2 * rows));
    expect(cost.intensity).toBeCloseTo(cost.flops / cost.bytes, 12);
  });

  it('counts a pass with every row’s logits', () => {
    const { kernels, tally } = countingKernels();
    forward(model, [1, 2, 3, 4], new KVCache(config), { kernels, logits: 'all' });
    expect(passCost(config, 4, 0, 4).matmulFlops).toBe(tally.matmulFlops);
  });

  it('counts a decode step of a batch as forwardBatch does it', () => {
    const { kernels, tally } = countingKernels();
    const caches = [0, 1, 2].map(() => new KVCache(config));
    caches.forEach((cache) => forward(model, [1, 5, 9, 2, 7, 3], cache, { kernels: referenceKernels }));
    forwardBatch(
      model,
      caches.map((cache, i) => ({ tokens: [i + 4], cache })),
      { kernels, logits: 'last' },
    );
    const cost = batchDecodeCost(config, 3, 6);
    expect(cost.matmulFlops).toBe(tally.matmulFlops);
    expect(cost.attentionFlops).toBe(tally.attentionFlops);
    // The weights are read once for the whole batch: the same arrays as one sequence's step.
    const embedded = config.sharedClassifier ? 0 : 3 * config.dim * 4;
    expect(cost.weightBytes).toBe(weightBytesOf(tally.weightArrays) + embedded);
    const single = passCost(config, 1, 6);
    expect(cost.intensity).toBeGreaterThan(2.5 * single.intensity);
  });

  it('sums generation with and without the cache pass by pass, as the loops run them', () => {
    const prompt = [1, 8, 4, 4, 19];
    const count = 9;
    for (const cached of [true, false]) {
      const { kernels, tally } = countingKernels();
      const text = [...prompt];
      const cache = new KVCache(config);
      for (let i = 0; i < count; i++) {
        if (!cached) cache.reset();
        forward(model, cached ? text.slice(cache.length) : text, cache, { kernels, logits: 'last' });
        text.push((i * 11) % config.vocabSize);
      }
      const total = totalCost(generationPasses(config, prompt.length, count, cached));
      const counted = tally.matmulFlops + tally.attentionFlops;
      expect(total.flops).toBe(counted);
    }
    const withCache = totalCost(generationPasses(config, prompt.length, count, true));
    const without = totalCost(generationPasses(config, prompt.length, count, false));
    // Without the cache each step redoes the prefix: about (mean prefix length) times the work.
    expect(without.flops / withCache.flops).toBeGreaterThan(5);
  });
});

describe('the cache’s bytes per token', () => {
  it.each(configs)('equal what a real KVCache allocates per position (%s)', (_, config) => {
    const cache = new KVCache(config);
    const allocated =
      cache.keys.reduce((sum, layer) => sum + layer.byteLength, 0) +
      cache.values.reduce((sum, layer) => sum + layer.byteLength, 0);
    expect(allocated / cache.capacity).toBe(kvCacheBytes(kvShapeOf(config), 1, 4));
    expect(cache.byteSize).toBe(allocated);
  });
});

describe('the roofline and the statistics', () => {
  it('takes the lower roof: bandwidth × intensity below the ridge, the peak above', () => {
    expect(ridgePoint(50e9, 20e9)).toBe(2.5);
    expect(attainable(0.5, 50e9, 20e9)).toBe(10e9);
    expect(attainable(2.5, 50e9, 20e9)).toBe(50e9);
    expect(attainable(100, 50e9, 20e9)).toBe(50e9);
  });

  it('gives the median and the range', () => {
    expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, count: 3 });
    expect(summarize([4, 1, 3, 10])).toEqual({ median: 3.5, min: 1, max: 10, count: 4 });
    expect(() => summarize([])).toThrow(/no samples/);
  });
});

describe('the plan of the with-and-without-cache comparison', () => {
  it('leaves room after a long text, fills the context otherwise, and keeps the uncached work bounded', () => {
    const config = smallConfig({ seqLen: 40 });
    expect(curvePlan(config, 5)).toEqual({ promptLength: 5, count: 36 }); // positions 5 … 40
    expect(curvePlan(config, 60).promptLength).toBe(40 - CURVE_ROOM);
    const big = {
      ...smallConfig(),
      dim: 768,
      hiddenDim: 2048,
      nLayers: 12,
      nHeads: 12,
      nKvHeads: 12,
      vocabSize: 32000,
      seqLen: 1024,
    };
    const plan = curvePlan(big, 10);
    expect(plan.count).toBeLessThan(CURVE_MAX_TOKENS);
    const cost = (count: number) => totalCost(generationPasses(big, 10, count, false)).flops;
    expect(cost(plan.count)).toBeLessThanOrEqual(CURVE_FLOP_BUDGET);
    expect(cost(plan.count + 1)).toBeGreaterThan(CURVE_FLOP_BUDGET);
  });
});
