/**
 * src/analysis/lens.ts against brute force: every lens cell recomputed in float64 from the Trace (RMSNorm
 * with the final gain, the classifier, softmax), its last row equal to the model's own logits, RMSNorm's
 * steps equal to the Trace's norms, the stream's norms and the context similarity recomputed from the
 * tensors, on random models (with random gains, so a missing or wrong gain shows) and on stories260K and
 * the house model.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  boundaries,
  contextSimilarity,
  cosine,
  firstSettledRow,
  logitLens,
  normSite,
  repeatedPair,
  rmsNormSteps,
  streamNorms,
  topIndices,
} from '../src/analysis/lens.ts';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import type { Trace } from '../src/engine/trace.ts';
import { temperatureSoftmax } from '../src/engine/sampling.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { withLayerKernels } from '../src/kernels/layer-reference.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { defaultKernels, loadModelFolder, seededRandom, smallConfig } from './helpers.ts';
import { describeShared, STORIES260K } from './shared.ts';

const CONFIG = smallConfig({ dim: 24, hiddenDim: 40, nLayers: 3, seqLen: 16 });

/** A random model whose norm gains are random too (randomModel leaves them at 1). */
function modelWithGains(seed: number): Model {
  const model = randomModel(CONFIG, seed, 0.3);
  const random = seededRandom(seed + 100);
  const shake = (gain: Float32Array) => gain.forEach((_, i) => (gain[i] = 0.2 + 2 * random()));
  shake(model.weights.finalNorm.data);
  for (const layer of model.weights.layers) {
    shake(layer.attnNorm.data);
    shake(layer.ffnNorm.data);
  }
  return model;
}

function traced(model: Model, tokens: number[], kernels = referenceKernels): Trace {
  return forward(model, tokens, new KVCache(model.config), { trace: true, kernels }).trace;
}

/** The lens of one cell in float64: (g ⊙ x / rms(x)) · classifierᵀ, then softmax. */
function bruteCell(model: Model, x: ArrayLike<number>): Float64Array {
  const { dim, vocabSize, normEps } = model.config;
  let squares = 0;
  for (let i = 0; i < dim; i++) squares += x[i] * x[i];
  const scale = 1 / Math.sqrt(squares / dim + normEps);
  const logits = new Float64Array(vocabSize);
  for (let v = 0; v < vocabSize; v++) {
    let sum = 0;
    for (let i = 0; i < dim; i++)
      sum += model.weights.classifier.data[v * dim + i] * model.weights.finalNorm.data[i] * x[i] * scale;
    logits[v] = sum;
  }
  const max = Math.max(...logits);
  const exp = logits.map((l) => Math.exp(l - max));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp.map((e) => e / total);
}

/** Every cell of the lens against bruteCell: the top ids (where the brute force's gap is clear) and probabilities. */
function checkLens(model: Model, trace: Trace, kernels: Parameters<typeof logitLens>[2], k: number) {
  const lens = logitLens(model, trace, kernels, k);
  const T = trace.tokens.length;
  const L = model.config.nLayers;
  const { dim } = model.config;
  expect([lens.rows, lens.positions, lens.k]).toEqual([L + 1, T, k]);
  const sources = [...trace.layers.map((l) => l.input), trace.layers[L - 1].residualAfterFfn];
  for (let r = 0; r <= L; r++) {
    for (let t = 0; t < T; t++) {
      const p = bruteCell(model, sources[r].data.subarray(t * dim, (t + 1) * dim));
      const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
      for (let j = 0; j < k; j++) {
        const id = lens.ids[(r * T + t) * k + j];
        // The lens adds its softmax in float32, as the engine's sampling does (bit for bit, checked below):
        // in a near-certain cell the tiniest terms fall below the sum's last bit, up to about 1e-4 of it.
        expect(Math.abs(lens.probabilities[(r * T + t) * k + j] - p[id])).toBeLessThan(1e-4);
        // The order: where two probabilities are too close for float32 to tell apart, either order is right.
        if (Math.abs(p[order[j]] - p[id]) > 1e-6) expect(id).toBe(order[j]);
      }
      const finalTop = lens.ids[(L * T + t) * k];
      expect(Math.abs(lens.finalTopProbability[r * T + t] - p[finalTop])).toBeLessThan(1e-4);
      // Its rank, where float32 cannot tell near-equal probabilities apart: between those surely above it
      // and those not surely below it.
      const target = p[finalTop];
      const surelyAbove = Array.from(p).filter((q) => q > target * (1 + 1e-4)).length;
      const notBelow = Array.from(p).filter((q) => q >= target * (1 - 1e-4)).length;
      expect(lens.finalTopRank[r * T + t]).toBeGreaterThanOrEqual(surelyAbove);
      expect(lens.finalTopRank[r * T + t]).toBeLessThan(notBelow);
    }
  }
  return lens;
}

/**
 * Probabilities from the lens against the engine's softmax: bit for bit with the readable kernels; with the
 * WebAssembly ones (their exponentials from a polynomial good to ~2 float32 ulp), within 1e-6 of themselves.
 */
function expectProbability(actual: number, expected: number, exact: boolean) {
  if (exact) expect(actual).toBe(expected);
  else expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-6 * expected);
}

const exactFor = (kernels: Parameters<typeof logitLens>[2]) => kernels === referenceKernels;

/** The last row is the model itself: its top k and probabilities are softmax(trace.logits). */
function checkLastRow(model: Model, trace: Trace, lens: ReturnType<typeof logitLens>, exact: boolean) {
  const { vocabSize } = model.config;
  const T = trace.tokens.length;
  const last = lens.rows - 1;
  for (let t = 0; t < T; t++) {
    const logits = trace.logits.data.subarray(t * vocabSize, (t + 1) * vocabSize);
    const max = Math.max(...logits);
    let sum = 0;
    for (const l of logits) sum += Math.exp(l - max);
    const best = Array.from(logits.keys())
      .sort((a, b) => logits[b] - logits[a] || a - b)
      .slice(0, lens.k);
    for (let j = 0; j < lens.k; j++) {
      expect(lens.ids[(last * T + t) * lens.k + j]).toBe(best[j]);
      expect(lens.probabilities[(last * T + t) * lens.k + j]).toBeCloseTo(
        Math.exp(logits[best[j]] - max) / sum,
        5,
      );
      // What sampling computes from the model's own logits (so the lens's logits are the model's).
      expectProbability(
        lens.probabilities[(last * T + t) * lens.k + j],
        temperatureSoftmax(logits, 1)[best[j]],
        exact,
      );
    }
  }
}

/**
 * Every cell is what the engine's own softmax (sampling.ts's temperatureSoftmax) gives for that cell's
 * logits computed with the same kernels — bit for bit with the readable kernels: the lens's shortcuts (only
 * the top entries written, the negligible terms skipped) change no bit. Also its ranks against a count.
 */
function checkBitForBit(model: Model, trace: Trace, kernels: Parameters<typeof logitLens>[2], k: number) {
  const lens = logitLens(model, trace, kernels, k);
  const { dim, vocabSize, normEps } = model.config;
  const T = trace.tokens.length;
  const run = withLayerKernels(kernels);
  const sources = boundaries(trace).map((b) => b.tensor);
  const normed = new Float32Array(T * dim);
  const logits = new Float32Array(T * vocabSize);
  const lastIds = lens.ids.subarray((lens.rows - 1) * T * k);
  sources.forEach((tensor, r) => {
    run.rmsNormRows(normed, tensor.data, model.weights.finalNorm.data, T, dim, normEps);
    run.matmulTransposedB(logits, normed, model.weights.classifier.data, T, dim, vocabSize);
    for (let t = 0; t < T; t++) {
      const row = logits.subarray(t * vocabSize, (t + 1) * vocabSize);
      const p = temperatureSoftmax(row, 1);
      for (let j = 0; j < k; j++) {
        const id = lens.ids[(r * T + t) * k + j];
        expectProbability(lens.probabilities[(r * T + t) * k + j], p[id], exactFor(kernels));
      }
      const target = lastIds[t * k];
      expectProbability(lens.finalTopProbability[r * T + t], p[target], exactFor(kernels));
      const above = Array.from(row).filter(
        (v, i) => v > row[target] || (v === row[target] && i < target),
      ).length;
      expect(lens.finalTopRank[r * T + t]).toBe(above);
    }
  });
}

describe('logit lens on random models', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: every cell equals a float64 recomputation; the last row is the model's logits`, () => {
      const model = modelWithGains(seed);
      const random = seededRandom(seed);
      const tokens = Array.from({ length: 9 }, () => Math.floor(random() * CONFIG.vocabSize));
      const trace = traced(model, tokens);
      const lens = checkLens(model, trace, referenceKernels, 4);
      checkLastRow(model, trace, lens, true);
      checkBitForBit(model, trace, referenceKernels, 4);
    });
  }

  it('uses the final norm: with that gain replaced by ones, the cells change', () => {
    const model = modelWithGains(4);
    const trace = traced(model, [1, 2, 3, 4]);
    const lens = logitLens(model, trace, referenceKernels, 3);
    const plain = { ...model, weights: { ...model.weights, finalNorm: { ...model.weights.finalNorm } } };
    plain.weights.finalNorm = { data: new Float32Array(CONFIG.dim).fill(1), shape: [CONFIG.dim] };
    const other = logitLens(plain, trace, referenceKernels, 3);
    expect(Array.from(other.probabilities)).not.toEqual(Array.from(lens.probabilities));
  });

  it('reuses an earlier lens at the positions the two texts share, giving the same cells bit for bit', async () => {
    const model = modelWithGains(6);
    const kernels = selectKernels('auto');
    await kernels.ready();
    const fresh = (trace: Trace) => logitLens(model, trace, kernels, 4);
    const before = [1, 7, 3, 9, 4, 11, 2, 8];
    const earlierTrace = traced(model, before, kernels);
    const earlier = { model, kernels, trace: earlierTrace, lens: fresh(earlierTrace) };
    const texts = [
      [...before, 5], // one more token, as typing at the end gives
      [...before.slice(0, 5), 12, 6, 2, 9, 10], // the same start, then different
      before.slice(0, 4), // shorter
      before, // the same text
      [2, ...before.slice(1)], // different from the first token on
    ];
    for (const tokens of texts) {
      const trace = traced(model, tokens, kernels);
      expect(logitLens(model, trace, kernels, 4, earlier), tokens.join()).toEqual(fresh(trace));
    }
    // The shared positions really are copied, not recomputed: marked cells come back marked.
    const marked = {
      ...earlier,
      lens: { ...earlier.lens, probabilities: earlier.lens.probabilities.map(() => -1) },
    };
    const extended = logitLens(model, traced(model, [...before, 5], kernels), kernels, 4, marked);
    const T = before.length + 1;
    for (let r = 0; r < extended.rows; r++) {
      expect(extended.probabilities[(r * T + T - 2) * 4]).toBe(-1);
      expect(extended.probabilities[(r * T + T - 1) * 4]).toBeGreaterThan(0);
    }
    // An earlier pass with an intervention (its streams differ from the ablated head's layer on) is not reused.
    const ablated = forward(model, before, new KVCache(model.config), {
      trace: true,
      kernels,
      interventions: [{ kind: 'ablateHead', layer: 0, head: 1, mode: 'zero' }],
    }).trace;
    const trace = traced(model, [...before, 5], kernels);
    const fromAblated = { ...earlier, trace: ablated, lens: logitLens(model, ablated, kernels, 4) };
    expect(fromAblated.lens.ids).not.toEqual(earlier.lens.ids);
    expect(logitLens(model, trace, kernels, 4, fromAblated)).toEqual(fresh(trace));
    // Nor one of another k, another model (even of the same shape) or another kernel set: marked cells
    // never come back.
    expect(logitLens(model, trace, kernels, 3, earlier)).toEqual(logitLens(model, trace, kernels, 3));
    const other = modelWithGains(7);
    const otherTrace = traced(other, [...before, 5], kernels);
    expect(logitLens(other, otherTrace, kernels, 4, marked)).toEqual(
      logitLens(other, otherTrace, kernels, 4),
    );
    const readable = logitLens(model, trace, referenceKernels, 4, marked);
    expect(readable.probabilities.every((p) => p >= 0)).toBe(true);
    expect(readable).toEqual(logitLens(model, trace, referenceKernels, 4));
  });

  it('refuses k < 1 and caps k at the vocabulary', () => {
    const model = modelWithGains(5);
    const trace = traced(model, [1, 2]);
    expect(() => logitLens(model, trace, referenceKernels, 0)).toThrow(/k must be/);
    expect(logitLens(model, trace, referenceKernels, 500).k).toBe(CONFIG.vocabSize);
  });
});

describe('RMSNorm steps, stream norms, context similarity', () => {
  const model = modelWithGains(7);
  const tokens = [1, 5, 9, 5, 12, 9, 3];
  const trace = traced(model, tokens);

  it("gives every norm of the pass bit for bit (the TypeScript kernels' arithmetic)", () => {
    const { dim } = CONFIG;
    const sites = [
      ...[0, 1, 2].flatMap((layer) => [
        { kind: 'attnNorm' as const, layer },
        { kind: 'ffnNorm' as const, layer },
      ]),
      { kind: 'finalNorm' as const },
    ];
    for (const site of sites) {
      const { input, gain, output } = normSite(model, trace, site);
      for (let t = 0; t < tokens.length; t++) {
        const x = input.data.subarray(t * dim, (t + 1) * dim);
        const steps = rmsNormSteps(x, gain, CONFIG.normEps);
        expect(Array.from(steps.output)).toEqual(Array.from(output.data.subarray(t * dim, (t + 1) * dim)));
        // Independently: the mean square, and the normalized vector's root mean square of 1.
        const meanSquare = Array.from(x).reduce((s, v) => s + v * v, 0) / dim;
        expect(steps.meanSquare).toBeCloseTo(meanSquare, 12);
        expect(steps.inverseRms).toBeCloseTo(1 / Math.sqrt(meanSquare + CONFIG.normEps), 10);
        const rms = Math.sqrt(Array.from(steps.normalized).reduce((s, v) => s + v * v, 0) / dim);
        expect(rms).toBeCloseTo(Math.sqrt(meanSquare / (meanSquare + CONFIG.normEps)), 6);
      }
    }
  });

  it('measures the stream and what each block adds', () => {
    const norms = streamNorms(trace);
    const T = tokens.length;
    const length = (data: ArrayLike<number>) => Math.sqrt(Array.from(data).reduce((s, v) => s + v * v, 0));
    const { dim } = CONFIG;
    expect(norms.names).toEqual(boundaries(trace).map((b) => b.name));
    expect(norms.names[0]).toBe('layers[0].input');
    expect(norms.names[3]).toBe('layers[2].residualAfterFfn');
    for (let t = 0; t < T; t++) {
      // Boundary 0 is the embedding row itself.
      const embedding = model.weights.tokenEmbedding.data.subarray(tokens[t] * dim, (tokens[t] + 1) * dim);
      expect(norms.stream[t]).toBeCloseTo(length(embedding), 6);
      for (let l = 0; l < 3; l++) {
        const layer = trace.layers[l];
        expect(norms.attention[l * T + t]).toBeCloseTo(
          length(layer.attnProjected.data.subarray(t * dim, (t + 1) * dim)),
          6,
        );
        expect(norms.feedForward[l * T + t]).toBeCloseTo(
          length(layer.ffnOutput.data.subarray(t * dim, (t + 1) * dim)),
          6,
        );
        expect(norms.stream[(l + 1) * T + t]).toBeCloseTo(
          length(layer.residualAfterFfn.data.subarray(t * dim, (t + 1) * dim)),
          6,
        );
      }
    }
  });

  it('compares a token in two contexts: 1 at the embedding, then what attention made of each', () => {
    expect(repeatedPair(tokens)).toEqual([2, 5]); // the last repeated token, 9, at positions 2 and 5
    expect(repeatedPair([1, 2, 3])).toBeUndefined();
    expect(repeatedPair([1, 1])).toBeUndefined(); // BOS-like position 0 is left out
    const similarity = contextSimilarity({ trace, position: 2 }, { trace, position: 5 });
    expect(similarity).toHaveLength(4);
    expect(similarity[0]).toBeCloseTo(1, 12);
    const { dim } = CONFIG;
    const at = (tensor: { data: Float32Array }, t: number) =>
      Array.from(tensor.data.subarray(t * dim, (t + 1) * dim));
    for (let l = 1; l <= 3; l++) {
      const tensor = l < 3 ? trace.layers[l].input : trace.layers[2].residualAfterFfn;
      const a = at(tensor, 2);
      const b = at(tensor, 5);
      const dot = a.reduce((s, v, i) => s + v * b[i], 0);
      const na = Math.hypot(...a);
      const nb = Math.hypot(...b);
      expect(similarity[l]).toBeCloseTo(dot / (na * nb), 10);
    }
    expect(similarity[1]).toBeLessThan(1 - 1e-4); // the contexts differ after one layer
    // Two texts: the same token after different prefixes.
    const other = traced(model, [1, 7, 7, 9]);
    const across = contextSimilarity({ trace, position: 2 }, { trace: other, position: 3 });
    expect(across[0]).toBeCloseTo(1, 12);
    expect(() => contextSimilarity({ trace, position: 9 }, { trace, position: 1 })).toThrow(/outside/);
    expect(cosine([0, 0], [1, 2])).toBe(0);
  });

  it('finds the top entries and the first row that settles on the answer', () => {
    expect(topIndices([3, 9, 9, 1, 7], 3)).toEqual([1, 2, 4]);
    // Against a full sort (value descending, then index ascending), with many ties, for every count.
    const random = seededRandom(11);
    const values = Array.from({ length: 300 }, () => Math.floor(random() * 40) - 20);
    const sorted = values.map((_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
    for (const count of [0, 1, 2, 5, 17, 299, 300, 400])
      expect(topIndices(values, count), `count ${count}`).toEqual(sorted.slice(0, count));
    expect(topIndices([1, 2], 5)).toEqual([1, 0]);
    const fake = {
      rows: 4,
      positions: 1,
      k: 1,
      names: [],
      ids: Int32Array.from([7, 3, 7, 7]),
      probabilities: new Float32Array(4),
      finalTopProbability: new Float32Array(4),
      finalTopRank: new Int32Array(4),
    };
    expect(firstSettledRow(fake, 0)).toBe(2); // row 0 agrees by chance, row 1 does not: settled from 2 on
  });
});

describeShared('logit lens on stories260K', () => {
  it('matches float64 everywhere, with the WebAssembly kernels too', () => {
    const model = parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin');
    const tokens = [1, 403, 407, 261, 378, 275, 395, 278];
    for (const kernels of [referenceKernels, selectKernels('wasm')]) {
      const trace = traced(model, tokens, kernels);
      const lens = checkLens(model, trace, kernels, 3);
      checkLastRow(model, trace, lens, exactFor(kernels));
      checkBitForBit(model, trace, kernels, 3);
    }
  });
});

describe('logit lens on the house model', () => {
  it('matches float64, ends on the model, and the final row predicts what forward predicts', () => {
    const { model, tokenizer } = loadModelFolder('models/house');
    const tokens = tokenizer.encode('In the beginning God created the heaven', { bos: true, eos: false });
    const kernels = defaultKernels();
    const trace = traced(model, tokens, kernels);
    const lens = checkLens(model, trace, kernels, 5);
    checkLastRow(model, trace, lens, exactFor(kernels));
    checkBitForBit(model, trace, kernels, 5);
    const T = tokens.length;
    const settled = firstSettledRow(lens, T - 1);
    expect(settled).toBeGreaterThanOrEqual(0);
    expect(settled).toBeLessThanOrEqual(model.config.nLayers);
    // Every row from `settled` on has the final answer on top.
    for (let r = settled; r < lens.rows; r++)
      expect(lens.ids[(r * T + T - 1) * 5]).toBe(lens.ids[((lens.rows - 1) * T + T - 1) * 5]);
  });
});
