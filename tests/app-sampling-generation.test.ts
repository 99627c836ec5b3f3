/**
 * Chapters 11 and 12's worker handlers, in Node on the house model: the twenty continuations are the
 * engine's generateTokens run per seed (greedy at temperature 0), and a newer request cancels an older one;
 * the stepped loop gives generateTokens' tokens, grows the cache by the prompt then one row per step, and
 * says when the context is full; the surprise answer is textSurprise of the text and of its shuffled copy.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { handlers as sampling } from '../src/app/chapters/11-sampling/worker.ts';
import { handlers as generation } from '../src/app/chapters/12-generation/worker.ts';
import { shuffledTokens, textSurprise } from '../src/analysis/surprise.ts';
import { forward } from '../src/engine/forward.ts';
import { generateTokens } from '../src/engine/generate.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import type { SamplingSettings } from '../src/engine/sampling.ts';
import { defaultKernels, loadIntoWorker, loadModelFolder } from './helpers.ts';

const { model, tokenizer } = loadModelFolder('models/house');
const kernels = defaultKernels();
const tokens = tokenizer.encode('And the earth was without form, and', { bos: true, eos: false });
const settings: SamplingSettings = { temperature: 0.9, topK: 0, topP: 0.9, minP: 0 };

beforeAll(() => {
  loadIntoWorker(model, tokenizer, { id: 'house', label: 'house', kernels: 'auto' });
});

/** generateTokens' sampled tokens, cut at a stop token as the CLI cuts them. */
function generated(sampling: SamplingSettings, seed: number, newTokens: number): number[] {
  return [
    ...generateTokens(model, tokens, {
      steps: tokens.length - 1 + newTokens,
      sampling,
      rng: new XorShiftRng(seed),
      kernels,
      stopTokens: [tokenizer.bosId, tokenizer.eosId],
    }),
  ]
    .filter((step) => !step.fromPrompt)
    .map((step) => step.token);
}

describe('chapter 11: continuations', () => {
  it("are generateTokens' for each seed, and the greedy one its temperature-0 run", async () => {
    const answer = await sampling.continuations(tokens, settings, 40, 4, 12);
    expect(answer.sampled.map((c) => c.seed)).toEqual([40, 41, 42, 43]);
    for (const c of answer.sampled) {
      expect(c.tokens).toEqual(generated(settings, c.seed, 12));
      expect(c.text).toBe(tokenizer.decode([...tokens, ...c.tokens]).slice(tokenizer.decode(tokens).length));
      expect(c.meanSurprise).toBeGreaterThan(0);
    }
    expect(answer.greedy.tokens).toEqual(generated({ temperature: 0 }, 1, 12));
  });

  it('a newer request cancels the one still running', async () => {
    const older = sampling.continuations(tokens, settings, 1, 20, 20);
    const newer = sampling.continuations(tokens, settings, 2, 2, 4);
    await expect(older).rejects.toThrow('cancelled');
    expect((await newer).sampled).toHaveLength(2);
    const stopped = sampling.continuations(tokens, settings, 3, 20, 20);
    sampling.cancelContinuations();
    await expect(stopped).rejects.toThrow('cancelled');
  });

  it('lastLogits is the last row of the pass', () => {
    const { logits } = sampling.lastLogits(tokens);
    const expected = forward(model, tokens, new KVCache(model.config), { logits: 'last', kernels }).logits;
    expect(Array.from(logits)).toEqual(Array.from(expected));
  });
});

describe('chapter 12: the stepped loop and the surprise', () => {
  it("steps generateTokens' tokens, prefill then one cache row per decode step", () => {
    const start = generation.loopStart(tokens, settings, 9);
    const expected = generated(settings, 9, 6);
    const steps = Array.from({ length: expected.length }, () => generation.loopStep(start.id));
    expect(steps.map((s) => s.token)).toEqual(expected);
    expect(steps.map((s) => [s.kind, s.read, s.cacheRows])).toEqual(
      steps.map((_, i) =>
        i === 0 ? ['prefill', tokens.length, tokens.length] : ['decode', 1, tokens.length + i],
      ),
    );
    expect(start.bytesPerPosition).toBe(
      2 * model.config.nLayers * model.config.nKvHeads * (model.config.dim / model.config.nHeads) * 4,
    );
    const top = steps[0].top.map((t) => t.probability);
    expect(top).toEqual([...top].sort((a, b) => b - a));
    // A new loop replaces this one.
    const next = generation.loopStart(tokens, settings, 9);
    expect(() => generation.loopStep(start.id)).toThrow(/replaced/);
    expect(generation.loopStep(next.id).token).toBe(expected[0]);
  });

  it('ends when the context is full: the token sampled at position seqLen is never read', () => {
    const { seqLen } = model.config;
    const long = [
      tokens[0],
      ...Array.from({ length: seqLen - 2 }, (_, i) => tokens[1 + (i % (tokens.length - 1))]),
    ];
    const start = generation.loopStart(long, { temperature: 0 }, 1);
    const first = generation.loopStep(start.id);
    expect([first.cacheRows, first.position, first.stopped]).toEqual([seqLen - 1, seqLen - 1, undefined]);
    const second = generation.loopStep(start.id);
    if (second.stopped !== 'stop token') {
      expect([second.cacheRows, second.position, second.stopped]).toEqual([seqLen, seqLen, 'context full']);
    }
    expect(() => generation.loopStep(start.id)).toThrow(/ended/);
  });

  it('surprise is textSurprise of the text and of its shuffled copy', () => {
    const answer = generation.surprise(tokens, 5);
    const all = (ids: number[]) =>
      forward(model, ids, new KVCache(model.config), { logits: 'all', kernels }).logits;
    const real = textSurprise(tokens, all(tokens), model.config.vocabSize);
    const copy = shuffledTokens(tokens, 5);
    const shuffled = textSurprise(copy, all(copy), model.config.vocabSize);
    expect(answer.shuffled.tokens).toEqual(copy);
    answer.real.surprise.forEach((s, i) => expect(s).toBeCloseTo(real.surprise[i], 5));
    answer.shuffled.surprise.forEach((s, i) => expect(s).toBeCloseTo(shuffled.surprise[i], 5));
    expect(answer.real.perplexity).toBeCloseTo(real.perplexity, 3);
    expect(answer.shuffled.perplexity).toBeCloseTo(shuffled.perplexity, 2);
  });
});
