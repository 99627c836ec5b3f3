/**
 * Chapter 7's worker handlers in Node, against the engine: `head` slices exactly the Trace of a plain pass;
 * `override` gives the row the renormalise rule says (checked by a direct float64 computation from the
 * model's row) and the next-token distribution of the engine run with that intervention; `prediction` is the
 * plain pass's distribution; bad layers, heads, positions and keys get a specific message.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import type { Intervention } from '../src/engine/interventions.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { headDim, kvHeadOf } from '../src/engine/model.ts';
import { temperatureSoftmax } from '../src/engine/sampling.ts';
import { handlers, COMPARED_TOKENS } from '../src/app/chapters/07-attention/worker.ts';
import { defaultKernels, loadIntoWorker, loadModelFolder } from './helpers.ts';

const HOUSE = resolve(import.meta.dirname, '..', 'models', 'house');
const describeHouse = existsSync(join(HOUSE, 'model.safetensors'))
  ? describe
  : describe.skip.bind(describe, '(skipped: models/house is absent)');

describeHouse('chapter 7: the attention worker on the house model', () => {
  const { model, tokenizer } = loadModelFolder(HOUSE);
  const tokens = tokenizer.encode('In the beginning God created the heavens and the', {
    bos: true,
    eos: false,
  });
  const T = tokens.length;
  const { nHeads, nKvHeads, vocabSize } = model.config;
  const D = headDim(model.config);
  const run = (interventions: Intervention[] = []) =>
    forward(model, tokens, new KVCache(model.config), {
      trace: true,
      logits: 'all',
      kernels: defaultKernels(),
      interventions,
    }).trace;
  const plain = run();

  beforeAll(() => loadIntoWorker(model, tokenizer));

  it("slices one head's q, k, v, scores, mask, weights and output out of the text's Trace", () => {
    for (const [layer, head] of [
      [0, 0],
      [2, 3],
    ]) {
      const answer = handlers.head(tokens, layer, head);
      const g = kvHeadOf(head, nHeads, nKvHeads);
      expect([answer.kvHead, answer.headDim, answer.tokens]).toEqual([g, D, tokens]);
      const trace = plain.layers[layer];
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < D; i++) {
          expect(answer.q[t * D + i]).toBe(trace.qRope.data[(t * nHeads + head) * D + i]);
          expect(answer.k[t * D + i]).toBe(trace.kRope.data[(t * nKvHeads + g) * D + i]);
          expect(answer.v[t * D + i]).toBe(trace.v.data[(t * nKvHeads + g) * D + i]);
          expect(answer.output[t * D + i]).toBe(trace.attnOutput.data[t * nHeads * D + head * D + i]);
        }
        for (let s = 0; s < T; s++) {
          expect(answer.scores[t * T + s]).toBe(trace.scores.data[(head * T + t) * T + s]);
          expect(answer.weights[t * T + s]).toBe(trace.weights.data[(head * T + t) * T + s]);
          expect(answer.mask[t * T + s]).toBe(s <= t ? 1 : 0);
        }
      }
    }
  });

  it('overrides one row with the renormalise rule and returns the engine’s distribution with it', () => {
    const [layer, head, position, key, weight] = [3, 1, T - 1, 0, 0.9];
    const answer = handlers.override(tokens, layer, head, position, key, weight);
    const before = plain.layers[layer].weights.data.subarray(
      (head * T + position) * T,
      (head * T + position) * T + T,
    );
    // The rule, in float64: key gets `weight`, the others share 1 − weight in proportion to their own.
    const others = 1 - before[key];
    for (let s = 0; s <= position; s++) {
      expect(answer.weightsBefore[s]).toBe(before[s]);
      const expected = s === key ? weight : (before[s] * (1 - weight)) / others;
      expect(answer.weightsAfter[s]).toBeCloseTo(expected, 6);
    }
    expect(answer.weightsAfter.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    // The distribution after: the engine run with the same intervention, softmax of its logits at `position`.
    const changed = run([
      { kind: 'overrideAttention', layer, head, position, set: [{ key, weight }], renormalise: true },
    ]);
    const after = temperatureSoftmax(
      changed.logits.data.subarray(position * vocabSize, (position + 1) * vocabSize),
      1,
    );
    const was = temperatureSoftmax(
      plain.logits.data.subarray(position * vocabSize, (position + 1) * vocabSize),
      1,
    );
    expect(answer.rows.length).toBeGreaterThanOrEqual(COMPARED_TOKENS);
    for (const row of answer.rows) {
      expect(row.after).toBe(after[row.token]);
      expect(row.before).toBe(was[row.token]);
      expect(row.piece).toBe(tokenizer.pieceLabel(row.token));
    }
    let moved = 0;
    for (let i = 0; i < vocabSize; i++) moved += Math.abs(after[i] - was[i]);
    expect(answer.totalVariation).toBeCloseTo(moved / 2, 9);
    expect(answer.totalVariation).toBeGreaterThan(1e-4); // moving 90% of a late head's attention changes something
    expect(answer.intervention).toMatchObject({
      kind: 'overrideAttention',
      layer,
      head,
      position,
      renormalise: true,
    });
  });

  it("changes nothing when the weight set is the model's own", () => {
    const [layer, head, position, key] = [1, 2, T - 1, 3];
    const own = plain.layers[layer].weights.data[(head * T + position) * T + key];
    const answer = handlers.override(tokens, layer, head, position, key, own);
    expect(answer.totalVariation).toBeLessThan(1e-5);
    expect(answer.topAfter).toBe(answer.topBefore);
  });

  it('predicts from the plain pass without running another', () => {
    const position = 4;
    const answer = handlers.prediction(tokens, position);
    const expected = temperatureSoftmax(
      plain.logits.data.subarray(position * vocabSize, (position + 1) * vocabSize),
      1,
    );
    const order = Array.from(expected.keys()).sort((a, b) => expected[b] - expected[a]);
    expect(answer.top.map((row) => row.token)).toEqual(order.slice(0, COMPARED_TOKENS));
    for (const row of answer.top) expect(row.probability).toBe(expected[row.token]);
  });

  it('refuses what the model does not have, saying what', () => {
    expect(() => handlers.head(tokens, 4, 0)).toThrow(/layer 4 does not exist: the model has layers 0…3/);
    expect(() => handlers.head(tokens, 0, 7)).toThrow(/head 7 does not exist: the model has heads 0…3/);
    expect(() => handlers.override(tokens, 0, 0, T, 0, 1)).toThrow(/position .* is not in the text/);
    expect(() => handlers.override(tokens, 0, 0, 2, 3, 1)).toThrow(
      /sets key 3, but position 2 sees keys 0…2/,
    );
    expect(() => handlers.override(tokens, 0, 0, 2, 1, 1.5)).toThrow(/summing to 1.5/);
  });
});
