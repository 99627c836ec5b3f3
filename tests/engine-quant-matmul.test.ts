/**
 * Quantized weights run directly (src/engine/quant-matmul.ts): every readable quantized product against an
 * independent float64 recomputation from the dequantized weights and the dequantized quantized activations,
 * and whole quantized models against their float32 originals.
 */
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { BlockWeight, Model, RunqWeight } from '../src/engine/model.ts';
import { dequantize, quantize, readFloat16, type QuantType } from '../src/engine/quant.ts';
import {
  dequantizeWeight,
  quantizedMatmul,
  quantizeActivationsQ8_0,
  quantizeActivationsQ8_1,
  quantizeModel,
  quantizeRunq,
  weightBytes,
  type ModelQuantType,
} from '../src/engine/quant-matmul.ts';
import { TrainingModel } from '../src/engine/train/model.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { loadModelFolder, randomArray, seededRandom, smallConfig } from './helpers.ts';

const F32_EPS = 2 ** -24; // half an ulp of 1 in float32: the relative error of one float32 rounding

/**
 * Float32 accumulation of G terms in order, each term itself a product of two or three float32 roundings:
 * every partial sum is off by at most F32_EPS of the sum of |terms| so far, every term by 3·F32_EPS of itself.
 * So |ours − exact| ≤ (G + 3)·F32_EPS·Σ|terms| (plus float64 noise, far below).
 */
const accumulationBound = (groups: number, absoluteTerms: number) => (groups + 3) * F32_EPS * absoluteTerms;

const SHAPES = [
  { M: 1, K: 64, N: 5 },
  { M: 3, K: 96, N: 13 },
  { M: 7, K: 32, N: 9 },
];

describe('readable quantized products against a float64 recomputation', () => {
  for (const type of ['q8_0', 'q4_0'] as const) {
    it(`${type} weights × Q8_0 activations`, () => {
      const random = seededRandom(type === 'q8_0' ? 11 : 12);
      for (const { M, K, N } of SHAPES) {
        const W = randomArray(N * K, random);
        const x = randomArray(M * K, random, 3);
        const w = quantize(W, [N, K], type) as BlockWeight;
        const out = new Float32Array(M * N);
        quantizedMatmul(out, x, w, M, K, N);

        // Independent: both operands as the numbers their blocks stand for, multiplied in float64.
        const wValues = dequantize(w);
        const xValues = dequantize(quantizeActivationsQ8_0(x, M, K));
        for (let i = 0; i < M; i++) {
          for (let n = 0; n < N; n++) {
            let exact = 0;
            let blockAbs = 0;
            for (let b = 0; b < K / 32; b++) {
              let block = 0;
              for (let j = b * 32; j < b * 32 + 32; j++) block += xValues[i * K + j] * wValues[n * K + j];
              exact += block;
              blockAbs += Math.abs(block);
            }
            expect(Math.abs(out[i * N + n] - exact)).toBeLessThanOrEqual(accumulationBound(K / 32, blockAbs));
          }
        }
        // And the quantization itself is what it claims: x within half a step of its Q8_0 value.
        const xBlocks = quantizeActivationsQ8_0(x, M, K);
        for (let b = 0; b < (M * K) / 32; b++) {
          const d = readFloat16(xBlocks.bytes, b * 34);
          for (let j = 0; j < 32; j++) {
            // d is the float16 of max|x|/127: a step of d, plus the float16 rounding of d itself (≤ 2^-11·127d).
            expect(Math.abs(x[b * 32 + j] - xValues[b * 32 + j])).toBeLessThanOrEqual(
              d / 2 + 127 * d * 2 ** -11,
            );
          }
        }
      }
    });
  }

  it('q4_1 weights × Q8_1 activations', () => {
    const random = seededRandom(13);
    for (const { M, K, N } of SHAPES) {
      // Offset weights, so that the minimum matters.
      const W = randomArray(N * K, random).map((v) => v + 0.7);
      const x = randomArray(M * K, random, 3);
      const w = quantize(W, [N, K], 'q4_1') as BlockWeight;
      const out = new Float32Array(M * N);
      quantizedMatmul(out, x, w, M, K, N);

      const wValues = dequantize(w);
      const { blocks, sums } = quantizeActivationsQ8_1(x, M, K);
      const xValues = dequantize(blocks);
      for (let i = 0; i < M; i++) {
        for (let n = 0; n < N; n++) {
          let exact = 0;
          let blockAbs = 0;
          let sumsBound = 0;
          for (let b = 0; b < K / 32; b++) {
            let block = 0;
            let sumq = 0;
            for (let j = b * 32; j < b * 32 + 32; j++) {
              block += xValues[i * K + j] * wValues[n * K + j];
              sumq += xValues[i * K + j];
            }
            exact += block;
            blockAbs += Math.abs(block);
            // ggml carries d·Σq as one float16 s (from the float32 d): the minimum m multiplies s, not the exact
            // Σ of the dequantized activations — off by the float16 rounding of s and of d: ≤ 2^-10 of |Σq·d|.
            const m = readFloat16(w.bytes, (n * (K / 32) + b) * 20 + 2);
            sumsBound += Math.abs(m) * Math.max(Math.abs(sumq), Math.abs(sums[i * (K / 32) + b])) * 2 ** -10;
          }
          expect(Math.abs(out[i * N + n] - exact)).toBeLessThanOrEqual(
            accumulationBound(K / 32, blockAbs) + sumsBound + 1e-12,
          );
        }
      }
    }
  });

  for (const type of ['f16', 'bf16'] as const) {
    it(`${type} weights: widened rows, float64 sums`, () => {
      const random = seededRandom(type === 'f16' ? 14 : 15);
      for (const { M, K, N } of [...SHAPES, { M: 2, K: 17, N: 3 }]) {
        const W = randomArray(N * K, random);
        const x = randomArray(M * K, random);
        const w = quantize(W, [N, K], type) as BlockWeight;
        const out = new Float32Array(M * N);
        quantizedMatmul(out, x, w, M, K, N);
        const wValues = dequantize(w);
        for (let i = 0; i < M; i++) {
          for (let n = 0; n < N; n++) {
            let exact = 0;
            for (let k = 0; k < K; k++) exact += x[i * K + k] * wValues[n * K + k];
            // One float64 sum rounded once to float32.
            expect(Math.abs(out[i * N + n] - exact)).toBeLessThanOrEqual(Math.abs(exact) * F32_EPS + 1e-12);
          }
        }
      }
    });
  }

  it('runq int8 groups, including rows that are not whole groups (runq.c leaves the tail out)', () => {
    const random = seededRandom(16);
    for (const { M, K, N, GS } of [
      { M: 1, K: 64, N: 5, GS: 8 },
      { M: 3, K: 64, N: 7, GS: 32 },
      { M: 2, K: 20, N: 6, GS: 8 }, // 20 = 2 groups of 8 and a tail of 4; rows straddle the weight's groups
    ]) {
      const W = randomArray(N * K, random);
      const x = randomArray(M * K, random, 2);
      const q = quantizeRunq(W, N * K, GS);
      const w: RunqWeight = {
        type: 'runq',
        shape: [N, K],
        groupSize: GS,
        values: q.values,
        scales: q.scales,
      };
      const out = new Float32Array(M * N);
      quantizedMatmul(out, x, w, M, K, N);
      for (let i = 0; i < M; i++) {
        const xq = quantizeRunq(x.subarray(i * K, (i + 1) * K), K, GS);
        for (let n = 0; n < N; n++) {
          let exact = 0;
          let groupAbs = 0;
          const groups = Math.floor(K / GS);
          for (let g = 0; g < groups; g++) {
            // runq.c's scale for this stretch of the weight: the group of its first element, n·K + g·GS.
            const wScale = w.scales[Math.floor((n * K + g * GS) / GS)];
            let group = 0;
            for (let j = g * GS; j < (g + 1) * GS; j++) {
              group += xq.values[j] * xq.scales[g] * (w.values[n * K + j] * wScale);
            }
            exact += group;
            groupAbs += Math.abs(group);
          }
          expect(Math.abs(out[i * N + n] - exact)).toBeLessThanOrEqual(accumulationBound(groups, groupAbs));
        }
      }
      // The activation grid: every value of a whole group within half a step of its int8 value.
      const xq = quantizeRunq(x, K, GS);
      for (let j = 0; j < Math.floor(K / GS) * GS; j++) {
        const scale = xq.scales[Math.floor(j / GS)];
        expect(Math.abs(x[j] - xq.values[j] * scale)).toBeLessThanOrEqual(scale * 0.5 * (1 + 1e-6));
      }
    }
  });

  it('refuses a weight whose shape is not the product', () => {
    const w = quantize(new Float32Array(64), [2, 32], 'q8_0') as BlockWeight;
    expect(() => quantizedMatmul(new Float32Array(4), new Float32Array(64), w, 2, 32, 3)).toThrow(
      /the weight is \[2, 32\], the product needs \[3, 32\]/,
    );
  });
});

/** Logits of every position of `tokens`, from one pass of the readable kernels. */
function logitsOf(model: Model, tokens: number[]): Float32Array {
  return forward(model, tokens, new KVCache(model.config), { kernels: referenceKernels }).logits;
}

/** max |a − b| over max |b|: how far the logits moved, relative to their own scale. */
function relativeChange(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

describe('a quantized model', () => {
  const { model: house, tokenizer } = loadModelFolder('models/house');
  const tokens = tokenizer.encode(
    'In the beginning God created the heaven and the earth. And the earth was without form, and void; and ' +
      'darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And ' +
      'God said, Let there be light: and there was light. And God saw the light, that it was good: and God ' +
      "divided the light from the darkness. The jury said it did find that many of the city's " +
      'problems were the result of a lack of money, and that the mayor had done what he could.',
    {
      bos: true,
      eos: false,
    },
  );
  const reference = logitsOf(house, tokens);

  // Measured on the house model (9,000 steps) and these 114 positions, a Bible passage and a Brown-like one
  // (largest logit change over the largest logit): f16 0.07%, bf16 0.6%, q8_0 2.0% (its activations are rounded
  // to int8 too), q4_0 26%, q4_1 18%; the top token stayed the same at 100% of positions for f16 and bf16, 98%
  // for q8_0, 76% for q4_0 and 82% for q4_1 (on the first 16 positions alone q8_0 flipped 2, too few
  // positions for a share). Bounds leave room (q4_0's least, 1.4×).
  const BOUNDS: Record<ModelQuantType, number> = {
    f16: 1.5e-3,
    bf16: 1e-2,
    q8_0: 5e-2,
    q4_0: 0.35,
    q4_1: 0.35,
  };
  for (const type of Object.keys(BOUNDS) as ModelQuantType[]) {
    it(`${type}: logits near the float32 model's, argmax mostly kept, smaller weights`, () => {
      const quantized = quantizeModel(house, type);
      const logits = logitsOf(quantized, tokens);
      const change = relativeChange(logits, reference);
      expect(change).toBeGreaterThan(0); // it really ran the quantized weights
      expect(change).toBeLessThan(BOUNDS[type]);
      const { vocabSize } = house.config;
      let sameTop = 0;
      for (let t = 0; t < tokens.length; t++) {
        const top = (l: Float32Array) => {
          let best = 0;
          for (let v = 1; v < vocabSize; v++) if (l[t * vocabSize + v] > l[t * vocabSize + best]) best = v;
          return best;
        };
        if (top(logits) === top(reference)) sameTop++;
      }
      expect(sameTop / tokens.length).toBeGreaterThanOrEqual(type.startsWith('q4') ? 0.6 : 0.9);
      const bytesPerWeight = { f16: 2, bf16: 2, q8_0: 34 / 32, q4_0: 18 / 32, q4_1: 20 / 32 }[type];
      // Matrices shrink by their format; the f32 norms are a rounding error of the total.
      expect(weightBytes(quantized) / weightBytes(house)).toBeCloseTo(bytesPerWeight / 4, 2);
    });
  }

  it('stores what quantize stores, and dequantizes to it on demand', () => {
    const quantized = quantizeModel(house, 'q4_0');
    const wq = quantized.weights.layers[1].wq;
    expect(wq.quantized?.type).toBe('q4_0');
    const expected = dequantize(quantize(house.weights.layers[1].wq.data, wq.shape, 'q4_0'));
    expect(wq.data).toEqual(expected);
    // The shared classifier multiplies the stored embedding blocks; the lookup reads their widened rows.
    expect(quantized.weights.classifier.quantized?.type).toBe('q4_0');
    expect(quantized.weights.tokenEmbedding.data).toEqual(quantized.weights.classifier.data);
  });

  it('keeps matrices whose rows are not whole blocks at f16 (the rule glassbox quantize uses)', () => {
    const model = randomModel(smallConfig({ dim: 32, hiddenDim: 56 }), 3);
    const quantized = quantizeModel(model, 'q8_0');
    expect(quantized.weights.layers[0].wq.quantized?.type).toBe('q8_0');
    expect(quantized.weights.layers[0].wDown.quantized?.type).toBe('f16'); // rows of 56
    expect(quantized.weights.layers[0].attnNorm.data).toBe(model.weights.layers[0].attnNorm.data);
  });

  it('traces and takes interventions like any model', () => {
    const quantized = quantizeModel(house, 'q8_0');
    const plain = forward(quantized, tokens, new KVCache(house.config), {
      kernels: referenceKernels,
      trace: true,
    });
    expect(plain.trace.layers).toHaveLength(house.config.nLayers);
    expect(plain.trace.logits.data).toEqual(plain.logits);
    const ablated = forward(quantized, tokens, new KVCache(house.config), {
      kernels: referenceKernels,
      interventions: [{ kind: 'ablateHead', layer: 1, head: 0, mode: 'zero' }],
    });
    expect(relativeChange(ablated.logits, plain.logits)).toBeGreaterThan(1e-4);
  });

  it('cannot be trained', () => {
    const quantized = quantizeModel(house, 'q8_0');
    expect(() => new TrainingModel(quantized.config, quantized.weights)).toThrow(
      /layers\.0\.wq is quantized \(q8_0\); a quantized model is for inference/,
    );
  });

  it('dequantizes a runq weight as runq.c does (q · scale)', () => {
    const w: RunqWeight = {
      type: 'runq',
      shape: [2, 4],
      groupSize: 4,
      values: Int8Array.from([1, -2, 127, 0, 5, 6, 7, -127]),
      scales: Float32Array.from([0.5, 0.25]),
    };
    expect([...dequantizeWeight(w)]).toEqual([0.5, -1, 63.5, 0, 1.25, 1.5, 1.75, -31.75]);
  });
});

// Keep the QuantType import honest: every type quantizeModel takes is a QuantType.
const _types: QuantType[] = ['f16', 'bf16', 'q8_0', 'q4_0', 'q4_1'] satisfies ModelQuantType[];
void _types;
