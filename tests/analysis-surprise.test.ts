/**
 * src/analysis/surprise.ts against a float64 brute force: −ln p of every token from a forward pass's logits
 * (softmax written out directly, in float64, without the max shift), the mean NLL and the perplexity, on
 * random models, stories260K (from ../shared) and the house model; and the seeded shuffle keeps BOS first,
 * keeps the tokens, and repeats for a seed.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { shuffledTokens, textSurprise } from '../src/analysis/surprise.ts';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { defaultKernels, loadModelFolder, seededRandom } from './helpers.ts';
import { haveShared, STORIES260K } from './shared.ts';

const kernels = defaultKernels();

function allLogits(model: Model, tokens: number[]): Float32Array {
  return forward(model, tokens, new KVCache(model.config), { logits: 'all', kernels }).logits;
}

/** p(token t | before) = e^z / Σ e^z in float64, straight from the definition; −ln of it. */
function bruteSurprise(model: Model, tokens: number[]): number[] {
  const V = model.config.vocabSize;
  const surprises: number[] = [];
  for (let t = 1; t < tokens.length; t++) {
    // An independent pass over the prefix alone: its last row is the prediction of token t.
    const row = forward(model, tokens.slice(0, t), new KVCache(model.config), {
      logits: 'last',
      kernels,
    }).logits;
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(row[i]);
    surprises.push(-Math.log(Math.exp(row[tokens[t]]) / sum));
  }
  return surprises;
}

function check(model: Model, tokens: number[]) {
  const result = textSurprise(tokens, allLogits(model, tokens), model.config.vocabSize);
  const expected = bruteSurprise(model, tokens);
  expect(result.surprise).toHaveLength(tokens.length - 1);
  result.surprise.forEach((s, i) => expect(Math.abs(s - expected[i])).toBeLessThan(1e-4));
  result.probability.forEach((p, i) => expect(p).toBeCloseTo(Math.exp(-expected[i]), 6));
  const mean = expected.reduce((a, b) => a + b, 0) / expected.length;
  expect(result.meanNll).toBeCloseTo(mean, 5);
  expect(Math.abs(result.perplexity / Math.exp(mean) - 1)).toBeLessThan(1e-5);
  return result;
}

describe('textSurprise: −ln p per token, mean NLL and perplexity', () => {
  it('equals the float64 softmax of independent prefix passes, on random models', () => {
    const random = seededRandom(5);
    for (const [seed, std] of [
      [1, 0.3],
      [2, 0.05],
    ]) {
      const model = randomModel(
        {
          dim: 32,
          hiddenDim: 56,
          nLayers: 2,
          nHeads: 4,
          nKvHeads: 2,
          vocabSize: 97,
          seqLen: 24,
          normEps: 1e-5,
          ropeTheta: 10000,
          ropeLayout: 'interleaved',
          sharedClassifier: false,
        },
        seed,
        std,
      );
      const tokens = Array.from({ length: 12 }, () => Math.floor(random() * 97));
      const result = check(model, tokens);
      // A model with tiny weights is nearly uniform: its perplexity is close to the vocabulary size.
      if (std === 0.05) expect(Math.abs(result.perplexity - 97)).toBeLessThan(10);
    }
  });

  it('on the house model: a real sentence is far less surprising than its shuffled copy', () => {
    const { model, tokenizer } = loadModelFolder('models/house');
    const tokens = tokenizer.encode('In the beginning God created the heavens and the earth.', {
      bos: true,
      eos: false,
    });
    const real = check(model, tokens);
    const shuffled = check(model, shuffledTokens(tokens, 42));
    expect(shuffled.perplexity).toBeGreaterThan(2 * real.perplexity);
  });

  it.skipIf(!haveShared)('on stories260K (from ../shared)', () => {
    const model = parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin');
    check(model, [1, 403, 407, 261, 378, 365, 261, 418, 283]);
  });

  it('a single token predicts nothing: no surprises, NaN mean; wrong shapes are refused', () => {
    const result = textSurprise([1], new Float32Array(5), 5);
    expect(result.surprise).toHaveLength(0);
    expect(result.meanNll).toBeNaN();
    expect(() => textSurprise([1, 2], new Float32Array(5), 5)).toThrow(/are not 2 rows of 5/);
  });
});

describe('shuffledTokens', () => {
  it('keeps the first token first and every token once; the same seed gives the same order', () => {
    const tokens = Array.from({ length: 40 }, (_, i) => 100 + i);
    const a = shuffledTokens(tokens, 7);
    expect(a[0]).toBe(100);
    expect([...a].sort((x, y) => x - y)).toEqual(tokens);
    expect(shuffledTokens(tokens, 7)).toEqual(a);
    expect(shuffledTokens(tokens, 8)).not.toEqual(a);
    expect(a).not.toEqual(tokens);
    expect(shuffledTokens([1], 3)).toEqual([1]);
    expect(shuffledTokens([1, 5], 3)).toEqual([1, 5]);
  });

  it('puts every later token at every later place about equally often (a uniform shuffle)', () => {
    const n = 6;
    const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    const runs = 6000;
    for (let seed = 1; seed <= runs; seed++) {
      shuffledTokens([0, 1, 2, 3, 4, 5], seed).forEach((token, place) => counts[token][place]++);
    }
    const expected = runs / (n - 1);
    for (let token = 1; token < n; token++) {
      for (let place = 1; place < n; place++) {
        expect(Math.abs(counts[token][place] - expected)).toBeLessThan(5 * Math.sqrt(expected));
      }
    }
  });
});
