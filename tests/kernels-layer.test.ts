/**
 * The WebAssembly layer operations (src/kernels/layer.as) agree with their readable twins — the engine's
 * own rmsNormRows, swiglu, applyRopeRows (src/engine/ops.ts), causalSelfAttention
 * (src/engine/attention.ts) and softmaxSumsRows (src/engine/sampling.ts) — on random inputs of awkward
 * sizes, in every build this runtime can run.
 *
 * Agreement is relative, to 1e-5 of the scale of what each output sums or rotates: the WebAssembly code
 * computes in float32 lanes (e^x by a polynomial), the twins mostly in float64.
 */
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { causalSelfAttention, type AttentionShape } from '../src/engine/attention.ts';
import type { RopeLayout } from '../src/engine/model.ts';
import { applyRopeRows, rmsNormRows, swiglu } from '../src/engine/ops.ts';
import { softmaxSumsRows, temperatureSoftmax } from '../src/engine/sampling.ts';
import { referenceLayerKernels, type LayerKernels } from '../src/kernels/layer-reference.ts';
import { wasmKernels } from '../src/kernels/select.ts';
import { wasmVariantSupported, type WasmVariant } from '../src/kernels/wasm.ts';
import { randomArray, seededRandom } from './helpers.ts';

// Node 20 has relaxed SIMD behind a flag (Node 22 turns it on): turn it on so its build is tested too.
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');

const WASM_VARIANTS: WasmVariant[] = ['wasm-relaxed-simd', 'wasm-simd'];
const fast = WASM_VARIANTS.flatMap((variant) => {
  const kernels = wasmKernels(variant);
  if (!kernels) console.warn(`[kernels-layer test] ${variant} is not supported by this runtime: not tested`);
  return kernels ? [kernels] : [];
});

/** |actual − expected| ≤ 1e-5 · scale[i] + floor, element by element. */
function expectClose(
  actual: Float32Array,
  expected: Float32Array,
  scale: ArrayLike<number>,
  what: string,
  floor = 0,
): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const allowed = 1e-5 * scale[i] + floor;
    if (!(Math.abs(actual[i] - expected[i]) <= allowed)) {
      throw new Error(
        `${what}: element ${i} is ${actual[i]}, reference ${expected[i]} (allowed ±${allowed})`,
      );
    }
  }
}

const AWKWARD = [1, 3, 4, 17, 255, 288];

describe('layer kernels agree with their readable twins', () => {
  it('runs both builds here', () => {
    expect(fast.map((kernels) => kernels.variant)).toEqual(WASM_VARIANTS);
  });

  it('the reference set is the engine functions themselves', () => {
    expect(referenceLayerKernels).toEqual({
      rmsNormRows,
      swiglu,
      applyRopeRows,
      causalSelfAttention,
      softmaxSumsRows,
    });
  });

  it('rmsNormRows', () => {
    const random = seededRandom(1);
    for (const dim of AWKWARD) {
      for (const rows of [1, 3, 7]) {
        const x = randomArray(rows * dim, random, 3);
        const gain = randomArray(dim, random);
        const expected = new Float32Array(rows * dim);
        rmsNormRows(expected, x, gain, rows, dim, 1e-5);
        for (const kernels of fast) {
          const out = new Float32Array(rows * dim).fill(Number.NaN);
          kernels.rmsNormRows(out, x, gain, rows, dim, 1e-5);
          expectClose(out, expected, expected.map(Math.abs), `${kernels.name} rmsNormRows ${rows}×${dim}`);
        }
      }
    }
  });

  it('swiglu, including gates far into both tails of the sigmoid', () => {
    const random = seededRandom(2);
    for (const length of [...AWKWARD, 1000]) {
      const gate = randomArray(length, random, 12);
      if (length > 4) gate.set([-100, 100, -87.5, 88.5, 0].slice(0, length));
      const up = randomArray(length, random, 2);
      const expected = new Float32Array(length);
      swiglu(expected, gate, up);
      for (const kernels of fast) {
        const out = new Float32Array(length).fill(Number.NaN);
        kernels.swiglu(out, gate, up);
        // Beyond e^±87 the fast exp saturates where float32 underflows: both are 0 for every purpose.
        expectClose(out, expected, expected.map(Math.abs), `${kernels.name} swiglu ${length}`, 1e-30);
      }
    }
  });

  it("softmaxSumsRows: the readable sums are temperatureSoftmax's, the fast ones within exp4's error", () => {
    const random = seededRandom(9);
    for (const width of [...AWKWARD, 4096]) {
      const rows = 5;
      // Spreads from flat (every term counts) to peaked (most terms far below the largest).
      const logits = new Float32Array(rows * width);
      for (let r = 0; r < rows; r++)
        logits.set(randomArray(width, random, [0.1, 1, 5, 20, 60][r]), r * width);
      const max = new Float32Array(rows);
      const sum = new Float32Array(rows);
      softmaxSumsRows(max, sum, logits, rows, width);
      for (let r = 0; r < rows; r++) {
        const row = logits.subarray(r * width, (r + 1) * width);
        // The readable version: e^(x − max)/sum is the engine's probability, bit for bit.
        const probabilities = temperatureSoftmax(row, 1);
        for (let i = 0; i < width; i += Math.ceil(width / 50))
          expect(Math.fround(Math.fround(Math.exp(row[i] - max[r])) / sum[r])).toBe(probabilities[i]);
        expect(max[r]).toBe(Math.max(...row));
      }
      for (const kernels of fast) {
        const fastMax = new Float32Array(rows).fill(Number.NaN);
        const fastSum = new Float32Array(rows).fill(Number.NaN);
        kernels.softmaxSumsRows(fastMax, fastSum, logits, rows, width);
        expect(Array.from(fastMax), `${kernels.name} max ${width}`).toEqual(Array.from(max));
        // Each term within exp4's ~2 float32 ulp (2.4e-7 relative) of e^x, added in the same order: the sums
        // agree to a few 1e-7 of themselves.
        expectClose(
          fastSum,
          sum,
          Array.from(sum, (s) => s / 20),
          `${kernels.name} softmaxSumsRows ${width}`,
        );
      }
    }
  });

  it('applyRopeRows, both pair layouts, odd pair counts, far positions', () => {
    const random = seededRandom(3);
    const layouts: RopeLayout[] = ['interleaved', 'half'];
    for (const layout of layouts) {
      for (const headDim of [2, 6, 8, 18, 48, 64]) {
        for (const [nHeads, rows, startPos] of [
          [1, 1, 0],
          [3, 5, 7],
          [2, 3, 1000],
        ]) {
          for (const theta of [10000, 500000]) {
            const width = nHeads * headDim;
            const input = randomArray(rows * width, random);
            const expected = input.slice();
            applyRopeRows(expected, startPos, rows, nHeads, headDim, layout, theta);
            // Each rotated value combines its pair's two inputs: that pair's |a| + |b| is the scale.
            const scale = pairMagnitudes(input, headDim, layout);
            for (const kernels of fast) {
              const out = input.slice();
              kernels.applyRopeRows(out, startPos, rows, nHeads, headDim, layout, theta);
              const what = `${kernels.name} rope ${layout} hd ${headDim} heads ${nHeads} at ${startPos}`;
              expectClose(out, expected, scale, what);
            }
          }
        }
      }
    }
  });

  it('causalSelfAttention: grouped-query shapes, awkward head sizes, prefill and decode', () => {
    const random = seededRandom(4);
    const shapes: AttentionShape[] = [
      { nHeads: 1, nKvHeads: 1, headDim: 1 },
      { nHeads: 3, nKvHeads: 1, headDim: 3 },
      { nHeads: 4, nKvHeads: 2, headDim: 17 },
      { nHeads: 8, nKvHeads: 4, headDim: 8 },
      { nHeads: 6, nKvHeads: 6, headDim: 48 },
      { nHeads: 2, nKvHeads: 2, headDim: 64 },
    ];
    for (const shape of shapes) {
      for (const [startPos, T] of [
        [0, 1],
        [0, 5],
        [3, 1],
        [0, 17],
        [250, 1],
        [60, 7],
      ]) {
        checkAttention(shape, startPos, T, random, 1);
      }
      // Peaked softmax: larger q·k gives weights near 0 and 1.
      checkAttention(shape, 20, 3, random, 4);
    }
  });

  it('causalSelfAttention records the scores and weights it used, masked like the reference', () => {
    const random = seededRandom(5);
    checkAttention({ nHeads: 4, nKvHeads: 2, headDim: 12 }, 5, 6, random, 1, true);
    checkAttention({ nHeads: 6, nKvHeads: 6, headDim: 48 }, 0, 17, random, 2, true);
  });

  it('leaves nothing to do for zero rows', () => {
    for (const kernels of fast) {
      const empty = new Float32Array(0);
      kernels.rmsNormRows(empty, empty, new Float32Array(4), 0, 4, 1e-5);
      kernels.swiglu(empty, empty, empty);
      kernels.applyRopeRows(empty, 3, 0, 2, 8, 'interleaved', 10000);
    }
  });

  it('rejects inputs shorter than their shape', () => {
    for (const kernels of fast) {
      expect(() =>
        kernels.rmsNormRows(new Float32Array(8), new Float32Array(7), new Float32Array(4), 2, 4, 1e-5),
      ).toThrow(/x has 7 elements, the shape needs 8/);
      expect(() =>
        kernels.causalSelfAttention(
          new Float32Array(8),
          new Float32Array(8),
          new Float32Array(7),
          new Float32Array(8),
          1,
          1,
          { nHeads: 2, nKvHeads: 1, headDim: 4 },
        ),
      ).toThrow(/keys has 7 elements/);
    }
  });
});

function pairMagnitudes(input: Float32Array, headDim: number, layout: RopeLayout): Float64Array {
  const scale = new Float64Array(input.length);
  const half = headDim / 2;
  for (let i = 0; i < input.length; i++) {
    const j = i % headDim;
    const partner = layout === 'interleaved' ? j ^ 1 : j < half ? j + half : j - half;
    scale[i] = Math.abs(input[i]) + Math.abs(input[i - j + partner]);
  }
  return scale;
}

/** Compares every fast attention with the reference on random q, k, v (q scaled by `peak`). */
function checkAttention(
  shape: AttentionShape,
  startPos: number,
  T: number,
  random: () => number,
  peak: number,
  recording = false,
): void {
  const { nHeads, nKvHeads, headDim } = shape;
  const S = startPos + T;
  const queries = randomArray(T * nHeads * headDim, random, peak);
  // A cache longer than what is visible, as in the engine: only the first S positions may be read.
  const capacity = S + 3;
  const keys = randomArray(capacity * nKvHeads * headDim, random);
  const values = randomArray(capacity * nKvHeads * headDim, random);
  const reference = run(referenceLayerKernels);
  // The output is a weighted average of values: the largest |value| bounds its scale.
  const valueScale = new Float32Array(reference.out.length).fill(Math.max(...values.map(Math.abs)));
  const what = `heads ${nHeads}/${nKvHeads} hd ${headDim} at ${startPos}+${T}`;
  for (const kernels of fast) {
    const result = run(kernels);
    expectClose(result.out, reference.out, valueScale, `${kernels.name} attention ${what}`);
    if (!recording) continue;
    // Each score is a dot product over headDim: its scale is Σ|q·k|/√headDim, here at most headDim·peak.
    const scoreScale = new Float32Array(nHeads * T * S).fill((headDim * peak) / Math.sqrt(headDim));
    const finite = (scores: Float32Array) => scores.map((s) => (s === -Infinity ? 0 : s));
    expectClose(
      finite(result.scores!),
      finite(reference.scores!),
      scoreScale,
      `${kernels.name} scores ${what}`,
    );
    expectClose(result.weights!, reference.weights!, scoreScale, `${kernels.name} weights ${what}`);
    // Masked positions are exactly −∞ (scores) and exactly 0 (weights), as in the reference.
    for (let i = 0; i < reference.scores!.length; i++) {
      if (reference.scores![i] === -Infinity) {
        expect(result.scores![i]).toBe(-Infinity);
        expect(result.weights![i]).toBe(0);
      }
    }
  }

  function run(kernels: LayerKernels) {
    const out = new Float32Array(T * nHeads * headDim).fill(Number.NaN);
    const record = recording
      ? { scores: new Float32Array(nHeads * T * S), weights: new Float32Array(nHeads * T * S) }
      : undefined;
    kernels.causalSelfAttention(out, queries, keys, values, startPos, T, shape, record);
    return { out, scores: record?.scores, weights: record?.weights };
  }
}
