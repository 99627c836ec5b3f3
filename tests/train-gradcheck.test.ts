/**
 * Gradient checks: every backward pass of src/engine/train against central finite differences, in float64.
 *
 * For an op with output `out`, a fixed random upstream gradient `up` turns it into the scalar
 * L = Σ up ⊙ out, whose exact gradient is what the backward pass computes from dOut = up. The numeric
 * gradient is (L(θ + h) − L(θ − h)) / 2h for each input or parameter element θ in turn.
 *
 * Agreement is measured as |analytic − numeric| / max(|analytic|, |numeric|, FLOOR) < 1e-4 for every element.
 *
 * Why FLOOR = 1e-6. The numeric gradient has two errors of its own: truncation, h²·|L‴|/6, and rounding,
 * about ε·|L|/h in absolute terms (ε = 1.1e-16, |L| ≈ 4). Measured on the tiny model below, the absolute
 * difference from the analytic gradient is ~1e-9 at h = 1e-6 (rounding: it grows as h shrinks) and up to
 * 1.4e-7 at h = 1e-4, falling 100× for each 10× smaller h (truncation); at h = 1e-5 rounding contributes
 * ~1e-10. A relative error of 1e-4 cannot be certified for a gradient smaller than that noise / 1e-4 =
 * 1e-6, so the floor is that bound and no looser. And it decides nothing: the tests also require that no
 * non-zero gradient falls below it (the smallest in the model is ~8e-6, in wDown). Gradients that are
 * exactly zero on both sides (embedding rows of tokens absent from the batch) compare as 0 / FLOOR = 0.
 * Weights are drawn large (std 0.5) and norm gains spread around 1 so every path carries real gradient.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32, randomModel } from '../src/engine/init.ts';
import type { ModelConfig, RopeLayout } from '../src/engine/model.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import type { Batch } from '../src/engine/train/data.ts';
import { TrainingModel } from '../src/engine/train/model.ts';
import {
  attentionBackward,
  attentionForward,
  crossEntropyBackward,
  crossEntropyForward,
  embeddingBackward,
  embeddingForward,
  float64Kernels,
  linearBackward,
  linearForward,
  rmsNormBackward,
  rmsNormForward,
  ropeBackward,
  ropeForward,
  ropeTable,
  swigluBackward,
  swigluForward,
  type AttentionShape,
} from '../src/engine/train/ops.ts';
import {
  addScaled,
  namedParameters,
  toFloat32,
  toFloat64,
  zerosLike,
} from '../src/engine/train/parameters.ts';
import { smallConfig } from './helpers.ts';

const H = 1e-5;
const FLOOR = 1e-6;
const TOLERANCE = 1e-4;

function normals(count: number, seed: number, std = 1, mean = 0): Float64Array {
  const uniform = mulberry32(seed);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const u = 1 - uniform();
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  }
  return out;
}

function dotProduct(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

interface Comparison {
  worst: number;
  /** Non-zero gradients smaller than FLOOR (where the floor, not the gradient, would set the scale). */
  belowFloor: number;
}

/** Compares `analytic` with the central difference of `loss` in every element of `theta`. */
function compare(loss: () => number, theta: Float64Array, analytic: Float64Array): Comparison {
  let worst = 0;
  let belowFloor = 0;
  for (let i = 0; i < theta.length; i++) {
    const saved = theta[i];
    theta[i] = saved + H;
    const plus = loss();
    theta[i] = saved - H;
    const minus = loss();
    theta[i] = saved;
    const numeric = (plus - minus) / (2 * H);
    const scale = Math.max(Math.abs(analytic[i]), Math.abs(numeric));
    if (scale > 0 && scale < FLOOR) belowFloor++;
    worst = Math.max(worst, Math.abs(analytic[i] - numeric) / Math.max(scale, FLOOR));
  }
  return { worst, belowFloor };
}

function expectClose(result: Comparison): void {
  expect(result.worst).toBeLessThan(TOLERANCE);
  expect(result.belowFloor).toBe(0);
}

describe('each op’s backward pass matches finite differences (float64)', () => {
  it('embedding', () => {
    const dim = 3;
    const tokens = new Int32Array([2, 0, 2, 4]);
    const table = normals(5 * dim, 1);
    const up = normals(tokens.length * dim, 2);
    const out = new Float64Array(tokens.length * dim);
    const loss = () => (embeddingForward(out, table, tokens, dim), dotProduct(up, out));
    const dTable = new Float64Array(table.length);
    embeddingBackward(dTable, up, tokens, dim);
    expectClose(compare(loss, table, dTable));
  });

  it('RMSNorm (input and gain)', () => {
    const rows = 3;
    const dim = 6;
    const x = normals(rows * dim, 3);
    const gain = normals(dim, 4, 0.5, 1);
    const up = normals(rows * dim, 5);
    const out = new Float64Array(rows * dim);
    const invRms = new Float64Array(rows);
    const loss = () => (rmsNormForward(out, invRms, x, gain, rows, dim, 1e-5), dotProduct(up, out));
    loss();
    const dx = new Float64Array(x.length);
    const dGain = new Float64Array(dim);
    rmsNormBackward(dx, dGain, up, x, invRms, gain, rows, dim);
    expectClose(compare(loss, x, dx));
    expectClose(compare(loss, gain, dGain));
  });

  it('linear (input and weight)', () => {
    const [rows, inF, outF] = [4, 5, 3];
    const x = normals(rows * inF, 6);
    const w = normals(outF * inF, 7);
    const up = normals(rows * outF, 8);
    const out = new Float64Array(rows * outF);
    const loss = () => (linearForward(float64Kernels, out, x, w, rows, inF, outF), dotProduct(up, out));
    const dx = new Float64Array(x.length);
    const dW = new Float64Array(w.length);
    linearBackward(float64Kernels, dx, dW, up, x, w, rows, inF, outF);
    expectClose(compare(loss, x, dx));
    expectClose(compare(loss, w, dW));

    // The float32 kernels the training run uses compute the same products from the same arguments.
    const dx32 = new Float32Array(x.length);
    const dW32 = new Float32Array(w.length);
    const f32 = (a: Float64Array) => Float32Array.from(a);
    linearBackward(referenceKernels, dx32, dW32, f32(up), f32(x), f32(w), rows, inF, outF);
    for (let i = 0; i < dx.length; i++) expect(dx32[i]).toBeCloseTo(dx[i], 5);
    for (let i = 0; i < dW.length; i++) expect(dW32[i]).toBeCloseTo(dW[i], 5);
  });

  for (const layout of ['interleaved', 'half'] as const) {
    it(`RoPE, ${layout} layout`, () => {
      const [B, T, nHeads, headDim] = [2, 5, 2, 6];
      const rows = B * T;
      const table = ropeTable(T, headDim, 10000, layout);
      const x = normals(rows * nHeads * headDim, 9);
      const up = normals(x.length, 10);
      const out = new Float64Array(x.length);
      const loss = () => (out.set(x), ropeForward(out, table, rows, nHeads), dotProduct(up, out));
      const dx = Float64Array.from(up);
      ropeBackward(dx, table, rows, nHeads);
      expectClose(compare(loss, x, dx));
    });
  }

  it('causal attention with grouped-query heads (queries, keys, values)', () => {
    const shape: AttentionShape = { batchSize: 2, seqLen: 5, nHeads: 4, nKvHeads: 2, headDim: 3 };
    const rows = shape.batchSize * shape.seqLen;
    const q = normals(rows * shape.nHeads * shape.headDim, 11);
    const k = normals(rows * shape.nKvHeads * shape.headDim, 12);
    const v = normals(rows * shape.nKvHeads * shape.headDim, 13);
    const up = normals(q.length, 14);
    const out = new Float64Array(q.length);
    const probs = new Float64Array(shape.batchSize * shape.nHeads * shape.seqLen * shape.seqLen);
    const loss = () => (attentionForward(float64Kernels, out, probs, q, k, v, shape), dotProduct(up, out));
    loss();
    const [dq, dk, dv] = [new Float64Array(q.length), new Float64Array(k.length), new Float64Array(v.length)];
    attentionBackward(float64Kernels, dq, dk, dv, up, probs, q, k, v, shape);
    expectClose(compare(loss, q, dq));
    expectClose(compare(loss, k, dk));
    expectClose(compare(loss, v, dv));
  });

  it('SwiGLU (gate and up)', () => {
    const gate = normals(20, 15, 2);
    const upInput = normals(20, 16);
    const upstream = normals(20, 17);
    const out = new Float64Array(20);
    const loss = () => (swigluForward(float64Kernels, out, gate, upInput), dotProduct(upstream, out));
    const [dGate, dUp] = [new Float64Array(20), new Float64Array(20)];
    swigluBackward(float64Kernels, dGate, dUp, upstream, gate, upInput);
    expectClose(compare(loss, gate, dGate));
    expectClose(compare(loss, upInput, dUp));
  });

  it('cross-entropy (logits)', () => {
    const [rows, vocab] = [4, 7];
    const logits = normals(rows * vocab, 18, 2);
    const targets = new Int32Array([3, 0, 6, 3]);
    const logSumExp = new Float64Array(rows);
    const loss = () => crossEntropyForward(float64Kernels, logSumExp, logits, targets, rows, vocab);
    loss();
    const dLogits = new Float64Array(logits.length);
    crossEntropyBackward(float64Kernels, dLogits, logSumExp, logits, targets, rows, vocab);
    expectClose(compare(loss, logits, dLogits));
  });
});

const tinyConfig = (layout: RopeLayout, shared: boolean): ModelConfig =>
  smallConfig({
    dim: 8,
    hiddenDim: 12,
    nHeads: 2,
    nKvHeads: 1,
    vocabSize: 11,
    seqLen: 8,
    ropeLayout: layout,
    sharedClassifier: shared,
  });

const tinyBatch: Batch = {
  batchSize: 2,
  seqLen: 5,
  inputs: new Int32Array([1, 4, 4, 9, 0, 7, 2, 10, 3, 4]),
  targets: new Int32Array([4, 4, 9, 0, 6, 2, 10, 3, 4, 1]),
};

/** A float64 tiny model with large weights and norm gains spread around 1, so every path carries gradient. */
function tinyModel(config: ModelConfig) {
  const weights = toFloat64(randomModel(config, 3, 0.5).weights);
  let seed = 100;
  for (const { tensor } of namedParameters(weights)) {
    if (tensor.shape.length === 1) tensor.data.set(normals(tensor.data.length, seed++, 0.3, 1));
  }
  return new TrainingModel(config, weights);
}

describe('the whole model’s gradients match finite differences, for every parameter (float64)', () => {
  for (const layout of ['interleaved', 'half'] as const) {
    for (const shared of [false, true]) {
      it(`${layout} RoPE, ${shared ? 'tied' : 'untied'} classifier, GQA 2 heads / 1 kv head`, () => {
        const model = tinyModel(tinyConfig(layout, shared));
        const gradients = zerosLike(model.weights);
        model.forward(tinyBatch);
        model.backward(gradients);
        expect(gradients.classifier === gradients.tokenEmbedding).toBe(shared);

        const analytic = namedParameters(gradients);
        namedParameters(model.weights).forEach(({ name, tensor }, i) => {
          expect(analytic[i].name).toBe(name);
          const result = compare(() => model.forward(tinyBatch), tensor.data, analytic[i].tensor.data);
          expect(result.worst, name).toBeLessThan(TOLERANCE);
          expect(result.belowFloor, name).toBe(0);
        });
      });
    }
  }

  it('float32 training gradients (readable and fast kernels) agree with the float64 ones', () => {
    const model64 = tinyModel(tinyConfig('half', true));
    const g64 = zerosLike(model64.weights);
    model64.forward(tinyBatch);
    model64.backward(g64);
    for (const kernels of [referenceKernels, selectKernels('auto')]) {
      const model32 = new TrainingModel(model64.config, toFloat32(model64.weights), { kernels });
      const g32 = zerosLike(model32.weights);
      model32.forward(tinyBatch);
      model32.backward(g32);
      const float32 = namedParameters(g32);
      namedParameters(g64).forEach(({ name, tensor }, i) => {
        let worst = 0;
        let largest = 0;
        for (let j = 0; j < tensor.data.length; j++) {
          worst = Math.max(worst, Math.abs(tensor.data[j] - float32[i].tensor.data[j]));
          largest = Math.max(largest, Math.abs(tensor.data[j]));
        }
        expect(worst / largest, `${kernels.name} ${name}`).toBeLessThan(1e-4);
      });
    }
  });

  it('the gradient of a batch is the mean of the gradients of its halves (data-parallel workers)', () => {
    const model = tinyModel(tinyConfig('interleaved', false));
    const half = (b: number): Batch => ({
      batchSize: 1,
      seqLen: 5,
      inputs: tinyBatch.inputs.subarray(b * 5, b * 5 + 5),
      targets: tinyBatch.targets.subarray(b * 5, b * 5 + 5),
    });
    const [whole, combined, share] = [
      zerosLike(model.weights),
      zerosLike(model.weights),
      zerosLike(model.weights),
    ];
    model.forward(tinyBatch);
    model.backward(whole);
    for (const b of [0, 1]) {
      model.forward(half(b));
      model.backward(share);
      addScaled(combined, share, 0.5);
    }
    const expected = namedParameters(whole);
    namedParameters(combined).forEach(({ name, tensor }, i) => {
      for (let j = 0; j < tensor.data.length; j++) {
        expect(tensor.data[j], name).toBeCloseTo(expected[i].tensor.data[j], 12);
      }
    });
  });
});
