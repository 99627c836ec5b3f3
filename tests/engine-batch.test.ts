/**
 * Batched passes (forwardBatch) and the continuous-batching scheduler (src/engine/batching.ts): several
 * sequences in one pass must give each the logits, cache and tokens it gets alone.
 */
import { describe, expect, it } from 'vitest';
import { ContinuousBatcher } from '../src/engine/batching.ts';
import { forward, forwardBatch } from '../src/engine/forward.ts';
import { generateTokens } from '../src/engine/generate.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import { referenceKernels, type MatrixKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { loadModelFolder, maxAbsDiff, smallConfig } from './helpers.ts';

const config = smallConfig();
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

describe('ContinuousBatcher on the house model', () => {
  const { model: house, tokenizer } = loadModelFolder('models/house');
  const kernels = selectKernels('auto');
  const prompts = [
    'In the beginning',
    'And the LORD said unto Moses,',
    'Blessed are',
    'The',
    'Then Jesus answered and said unto them, Verily, verily, I say unto you,',
    'Love is patient',
  ].map((text) => tokenizer.encode(text, { bos: true, eos: false }));
  const stopTokens = [tokenizer.bosId, tokenizer.eosId];
  const settings = (i: number) => ({
    steps: 20 + 7 * i,
    sampling: { temperature: i % 3 === 0 ? 0 : 0.8, topP: 0.9, topK: 0, minP: 0 },
    seed: BigInt(1000 + i),
  });

  /** The tokens generateTokens samples for prompt i alone (the prompt's own tokens left out). */
  function alone(i: number): number[] {
    const { steps, sampling, seed } = settings(i);
    const sampled = [];
    for (const { token, fromPrompt } of generateTokens(house, prompts[i], {
      steps,
      sampling,
      rng: new XorShiftRng(seed),
      kernels,
      stopTokens,
    }))
      if (!fromPrompt) sampled.push(token);
    return sampled;
  }

  it('gives every request the tokens it gets alone, while requests join, wait and leave', () => {
    const batcher = new ContinuousBatcher(house, { kernels, maxBatch: 4 });
    const request = (i: number) => {
      const { steps, sampling, seed } = settings(i);
      return { id: i, promptTokens: prompts[i], steps, sampling, rng: new XorShiftRng(seed), stopTokens };
    };
    const sampled = new Map<number, number[]>(prompts.map((_, i) => [i, []]));
    const finished = new Map<number, string>();
    let largestBatch = 0;
    let step = 0;
    // Three requests now, the other three joining at steps 3, 5 and 9 (some must wait for a place).
    batcher.submit(request(0));
    batcher.submit(request(1));
    batcher.submit(request(2));
    while (batcher.size > 0 || step < 10) {
      if (step === 3) batcher.submit(request(3));
      if (step === 5) batcher.submit(request(4));
      if (step === 9) batcher.submit(request(5));
      const result = batcher.step();
      largestBatch = Math.max(largestBatch, result.sequences);
      for (const { id, token } of result.tokens) sampled.get(id)!.push(token);
      for (const { id, reason } of result.finished) finished.set(id, reason);
      step++;
    }
    expect(largestBatch).toBe(4);
    prompts.forEach((_, i) => {
      const expected = alone(i);
      expect(expected.length, `request ${i} samples something`).toBeGreaterThan(5);
      expect(sampled.get(i), `request ${i}`).toEqual(expected);
      expect(['steps', 'stop token']).toContain(finished.get(i));
    });
  });

  it('a cancelled request leaves at once and the others go on unchanged', () => {
    const batcher = new ContinuousBatcher(house, { kernels });
    const { sampling } = settings(0);
    batcher.submit({ id: 7, promptTokens: prompts[0], steps: 30, sampling, rng: new XorShiftRng(1n) });
    batcher.submit({ id: 8, promptTokens: prompts[3], steps: 30, sampling, rng: new XorShiftRng(1n) });
    batcher.step();
    expect(batcher.cancel(7)).toBe(true);
    expect(batcher.cancel(99)).toBe(false);
    const next = batcher.step();
    expect(next.finished).toEqual([{ id: 7, reason: 'cancelled' }]);
    expect(next.sequences).toBe(1);
    expect(next.tokens.map(({ id }) => id)).toEqual([8]);
  });

  it('refuses a repeated id, an empty prompt and a prompt longer than the context', () => {
    const batcher = new ContinuousBatcher(house, { kernels });
    const base = { steps: 10, sampling: settings(0).sampling, rng: new XorShiftRng(1n) };
    batcher.submit({ id: 1, promptTokens: prompts[0], ...base });
    expect(() => batcher.submit({ id: 1, promptTokens: prompts[1], ...base })).toThrow(
      /already running or waiting/,
    );
    expect(() => batcher.submit({ id: 2, promptTokens: [], ...base })).toThrow(/no prompt tokens/);
    const long = Array.from({ length: house.config.seqLen + 1 }, () => 5);
    expect(() => batcher.submit({ id: 3, promptTokens: long, ...base })).toThrow(/the context holds/);
  });
});
