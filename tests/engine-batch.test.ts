/**
 * Batched passes (forwardBatch) and the continuous-batching scheduler (src/engine/batching.ts): several
 * sequences in one pass must give each the logits, cache and tokens it gets alone.
 */
import { describe, expect, it } from 'vitest';
import { forward, forwardBatch } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { ModelConfig } from '../src/engine/model.ts';
import { referenceKernels, type MatrixKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { maxAbsDiff } from './helpers.ts';

const config: ModelConfig = {
  dim: 32,
  hiddenDim: 56,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 50,
  seqLen: 32,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeLayout: 'interleaved',
  sharedClassifier: false,
};
const model = randomModel(config, 5, 0.3);

const KERNEL_SETS: [string, MatrixKernels][] = [
  ['readable TypeScript', referenceKernels],
  ['WebAssembly', selectKernels('wasm')],
];

/** A cache that already holds `prefix` (run alone), so sequences in a batch start at different positions. */
function cacheHolding(prefix: number[], kernels: MatrixKernels): KVCache {
  const cache = new KVCache(config);
  if (prefix.length > 0) forward(model, prefix, cache, { kernels });
  return cache;
}

describe.each(KERNEL_SETS)('forwardBatch with the %s kernels', (_, kernels) => {
  // Three sequences: a fresh prompt, a decode step after 5 cached positions, 3 new tokens after 9.
  const cases = [
    { prefix: [], tokens: [1, 7, 30, 2, 2, 41, 9] },
    { prefix: [1, 4, 4, 19, 33], tokens: [12] },
    { prefix: [1, 8, 3, 47, 20, 11, 6, 6, 39], tokens: [25, 0, 13] },
  ];

  it('gives every sequence the logits and the cache it gets alone (≤ 1e-5)', () => {
    const alone = cases.map(({ prefix, tokens }) => {
      const cache = cacheHolding(prefix, kernels);
      return { cache, logits: forward(model, tokens, cache, { kernels }).logits };
    });
    const batch = cases.map(({ prefix, tokens }) => ({ tokens, cache: cacheHolding(prefix, kernels) }));
    const logits = forwardBatch(model, batch, { kernels });
    cases.forEach((_, i) => {
      expect(logits[i].length).toBe(cases[i].tokens.length * config.vocabSize);
      expect(maxAbsDiff(logits[i], alone[i].logits)).toBeLessThan(1e-5);
      expect(batch[i].cache.length).toBe(alone[i].cache.length);
      for (let l = 0; l < config.nLayers; l++) {
        expect(maxAbsDiff(batch[i].cache.keys[l], alone[i].cache.keys[l])).toBeLessThan(1e-5);
        expect(maxAbsDiff(batch[i].cache.values[l], alone[i].cache.values[l])).toBeLessThan(1e-5);
      }
    });
  });

  it("with logits: 'last' gives each sequence its last row", () => {
    const batch = cases.map(({ prefix, tokens }) => ({ tokens, cache: cacheHolding(prefix, kernels) }));
    const last = forwardBatch(model, batch, { kernels, logits: 'last' });
    cases.forEach(({ prefix, tokens }, i) => {
      const alone = forward(model, tokens, cacheHolding(prefix, kernels), { kernels, logits: 'last' }).logits;
      expect(last[i].length).toBe(config.vocabSize);
      expect(maxAbsDiff(last[i], alone)).toBeLessThan(1e-5);
    });
  });
});

describe('forwardBatch refuses what it cannot run', () => {
  const kernels = referenceKernels;
  it('an empty batch, a cache shared by two sequences, a sequence past its context', () => {
    expect(() => forwardBatch(model, [], { kernels })).toThrow(/the batch is empty/);
    const shared = new KVCache(config);
    expect(() =>
      forwardBatch(
        model,
        [
          { tokens: [1], cache: shared },
          { tokens: [2], cache: shared },
        ],
        { kernels },
      ),
    ).toThrow(/two sequences share one KV cache/);
    const full = cacheHolding(
      Array.from({ length: 30 }, (_, i) => i % 50),
      kernels,
    );
    expect(() =>
      forwardBatch(
        model,
        [
          { tokens: [1], cache: new KVCache(config) },
          { tokens: [1, 2, 3], cache: full },
        ],
        { kernels },
      ),
    ).toThrow(/30 cached \+ 3 new positions exceed the context of 32/);
  });
});
