/**
 * The loop one turn at a time (GenerationLoop, src/engine/generate.ts) against generateTokens, which is built
 * on it, and against a loop written out here from forward and sampleToken: the same tokens for the same seed;
 * a prefill that reads the prompt, then one row of the KV cache per layer per decode step; the context's end.
 */
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { GenerationLoop, generateTokens } from '../src/engine/generate.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import { sampleToken } from '../src/engine/sampling.ts';
import { defaultKernels, loadModelFolder } from './helpers.ts';

const kernels = defaultKernels();
const { model, tokenizer } = loadModelFolder('models/house');
const prompt = tokenizer.encode('And God said, Let there be', { bos: true, eos: false });
const sampling = { temperature: 0.9, topP: 0.9 };

describe('GenerationLoop', () => {
  it('gives the tokens of generateTokens and of a hand-written loop, for several seeds', () => {
    for (const seed of [1, 42, 133742]) {
      const loop = new GenerationLoop(model, prompt, { sampling, rng: new XorShiftRng(seed), kernels });
      const stepped = Array.from({ length: 12 }, () => loop.step().token);

      const generated = [
        ...generateTokens(model, prompt, {
          steps: prompt.length - 1 + 12,
          sampling,
          rng: new XorShiftRng(seed),
          kernels,
        }),
      ]
        .filter((step) => !step.fromPrompt)
        .map((step) => step.token);
      expect(stepped).toEqual(generated);

      // By hand: one pass over the prompt, then one pass per sampled token, one coin per sample.
      const cache = new KVCache(model.config);
      const rng = new XorShiftRng(seed);
      let logits = forward(model, prompt, cache, { logits: 'last', kernels }).logits;
      const byHand: number[] = [];
      for (let i = 0; i < 12; i++) {
        byHand.push(sampleToken(logits, sampling, rng));
        logits = forward(model, [byHand[i]], cache, { logits: 'last', kernels }).logits;
      }
      expect(stepped).toEqual(byHand);
    }
  });

  it('prefills the prompt, then grows the cache by one position per step, until the context is full', () => {
    const loop = new GenerationLoop(model, prompt, { sampling, rng: new XorShiftRng(3), kernels });
    expect(loop.cache.length).toBe(0);
    const first = loop.step();
    expect([first.kind, first.read, first.position, loop.cache.length]).toEqual([
      'prefill',
      prompt,
      prompt.length,
      prompt.length,
    ]);
    expect(first.logits).toHaveLength(model.config.vocabSize);
    const second = loop.step();
    expect([second.kind, second.read, second.position, loop.cache.length]).toEqual([
      'decode',
      [first.token],
      prompt.length + 1,
      prompt.length + 1,
    ]);
    while (loop.canStep) loop.step();
    expect(loop.cache.length).toBe(model.config.seqLen);
    expect(() => loop.step()).toThrow(new RegExp(`context of ${model.config.seqLen} positions is full`));
    expect(() => new GenerationLoop(model, [], { sampling, rng: new XorShiftRng(1), kernels })).toThrow(
      /at least one token/,
    );
  });
});
