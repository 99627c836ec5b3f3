/**
 * Speculative decoding (src/engine/speculative.ts): greedy text identical to the target alone, on many prompts
 * and draft lengths; with sampling, the tokens distributed as the target's own (a χ² test against the exact
 * joint distribution of two tokens, computed by the engine); the statistics add up; bad pairs refused.
 */
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { generateTokens } from '../src/engine/generate.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import { samplingDistribution, type SamplingSettings } from '../src/engine/sampling.ts';
import { speculativeGenerate, type SpeculativeStats } from '../src/engine/speculative.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { loadModelFolder, smallConfig } from './helpers.ts';

const kernels = selectKernels('auto');

/** Runs a generator to its end: the tokens it yielded that were sampled, and what it returned. */
function run(generator: Generator<{ token: number; fromPrompt: boolean }, SpeculativeStats | void>) {
  const tokens: number[] = [];
  let next = generator.next();
  while (!next.done) {
    if (!next.value.fromPrompt) tokens.push(next.value.token);
    next = generator.next();
  }
  return { tokens, stats: next.value };
}

describe('greedy speculative decoding on the house model', () => {
  const { model: house, tokenizer } = loadModelFolder('models/house');
  // A draft that shares the vocabulary: a small random model (poor guesses), and the target itself (perfect ones).
  const randomDraft = randomModel(
    { ...house.config, nLayers: 1, dim: 32, hiddenDim: 64, nHeads: 2, nKvHeads: 1 },
    3,
  );
  const greedy: SamplingSettings = { temperature: 0 };
  const stopTokens = [tokenizer.bosId, tokenizer.eosId];
  const prompts = [
    'In the beginning God created',
    'And it came to pass',
    'The LORD is my shepherd',
    'Blessed are the poor in spirit',
    'Jesus wept.',
    'For God so loved the world',
    'Then said he unto them',
    'a',
    'Behold, I stand at the door',
    'And the earth was without form',
  ].map((text) => tokenizer.encode(text, { bos: true, eos: false }));

  it.each([1, 3, 5])('with %i guesses per round, every prompt gives the target’s own text', (draftTokens) => {
    for (const prompt of prompts) {
      const alone = run(
        generateTokens(house, prompt, {
          steps: 60,
          sampling: greedy,
          rng: new XorShiftRng(1n),
          kernels,
          stopTokens,
        }),
      );
      for (const draft of [randomDraft, house]) {
        const speculative = run(
          speculativeGenerate(house, prompt, {
            steps: 60,
            sampling: greedy,
            rng: new XorShiftRng(1n),
            kernels,
            stopTokens,
            draft,
            draftTokens,
          }),
        );
        expect(speculative.tokens).toEqual(alone.tokens);
        const stats = speculative.stats as SpeculativeStats;
        expect(stats.accepted).toBeLessThanOrEqual(stats.proposed);
        if (draft === house) expect(stats.accepted).toBe(stats.proposed); // a perfect draft is always right
      }
    }
  });

  it('a perfect draft needs one target pass per k + 1 tokens', () => {
    const prompt = prompts[0];
    const { tokens, stats } = run(
      speculativeGenerate(house, prompt, {
        steps: 64,
        sampling: greedy,
        rng: new XorShiftRng(1n),
        kernels,
        draft: house,
        draftTokens: 4,
      }),
    );
    expect(tokens.length).toBe(64 - prompt.length + 1);
    expect((stats as SpeculativeStats).targetPasses).toBe(Math.ceil(tokens.length / 5));
  });
});

describe('sampled speculative decoding keeps the target’s distribution', () => {
  const config = smallConfig({ dim: 16, hiddenDim: 32, nHeads: 2, nKvHeads: 1, vocabSize: 6, seqLen: 16 });
  // Large weights make peaked, different distributions (the draft's flatter), so the rule both keeps and refuses.
  const target = randomModel(config, 21, 1.0);
  const draft = randomModel(config, 23, 1.0);
  const prompt = [1, 4, 2];
  const V = config.vocabSize;

  /** The target's exact probability of each pair (a, b) as its next two tokens, from the engine. */
  function exactPairs(sampling: SamplingSettings): Float64Array {
    const pairs = new Float64Array(V * V);
    const first = samplingDistribution(
      forward(target, prompt, new KVCache(config), { kernels: referenceKernels, logits: 'last' }).logits,
      sampling,
    );
    for (let a = 0; a < V; a++) {
      const second = samplingDistribution(
        forward(target, [...prompt, a], new KVCache(config), { kernels: referenceKernels, logits: 'last' })
          .logits,
        sampling,
      );
      for (let b = 0; b < V; b++) pairs[a * V + b] = first[a] * second[b];
    }
    return pairs;
  }

  it.each<[string, SamplingSettings, number]>([
    ['temperature 1', { temperature: 1 }, 3],
    ['temperature 0.7, top-k 4', { temperature: 0.7, topK: 4 }, 3],
    ['temperature 1.5, top-p 0.95', { temperature: 1.5, topP: 0.95 }, 1],
  ])('%s (χ² over every pair of two tokens, 6,000 seeded runs)', (_, sampling, draftTokens) => {
    const runs = 6000;
    const counts = new Float64Array(V * V);
    let proposed = 0;
    let accepted = 0;
    for (let seed = 1; seed <= runs; seed++) {
      const { tokens, stats } = run(
        speculativeGenerate(target, prompt, {
          steps: prompt.length + 3,
          sampling,
          rng: new XorShiftRng(BigInt(seed)),
          kernels: referenceKernels,
          draft,
          draftTokens,
        }),
      );
      counts[tokens[0] * V + tokens[1]]++;
      proposed += (stats as SpeculativeStats).proposed;
      accepted += (stats as SpeculativeStats).accepted;
    }
    const expected = exactPairs(sampling);
    let chiSquare = 0;
    let cells = 0;
    for (let i = 0; i < V * V; i++) {
      if (expected[i] === 0) {
        expect(counts[i], `pair ${i} is impossible for the target`).toBe(0);
        continue;
      }
      chiSquare += (counts[i] - runs * expected[i]) ** 2 / (runs * expected[i]);
      cells++;
    }
    // The 99.9th percentile of χ² with (cells − 1) degrees of freedom is below (cells − 1) + 4.5·√(2(cells − 1)) + 10.
    const dof = cells - 1;
    expect(chiSquare).toBeLessThan(dof + 4.5 * Math.sqrt(2 * dof) + 10);
    // The rule must have had work to do: some guesses refused, some kept.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(proposed);
  });
});

describe('speculative decoding refuses a pair that cannot work', () => {
  const base = smallConfig({
    dim: 16,
    hiddenDim: 32,
    nLayers: 1,
    nHeads: 2,
    nKvHeads: 1,
    vocabSize: 10,
    seqLen: 16,
  });
  const target: Model = randomModel(base, 1);
  const options = { steps: 8, sampling: { temperature: 0 }, rng: new XorShiftRng(1n), kernels };
  it('different vocabularies, no guesses, a shorter context', () => {
    const draw =
      (draft: Model, draftTokens = 2) =>
      () =>
        run(speculativeGenerate(target, [1], { ...options, draft, draftTokens }));
    expect(draw(randomModel({ ...base, vocabSize: 11 }, 2))).toThrow(
      /the draft's vocabulary has 11 tokens, the target's 10/,
    );
    expect(draw(randomModel(base, 2), 0)).toThrow(/guess a whole number ≥ 1 of tokens, got 0/);
    expect(draw(randomModel({ ...base, seqLen: 8 }, 2))).toThrow(
      /the draft reads 8 positions, fewer than the target's 16/,
    );
  });
});
