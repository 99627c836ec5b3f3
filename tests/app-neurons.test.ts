/**
 * Chapter 5: the toy neuron's activations against independent formulas and published values, and the
 * row-by-row matrix × vector product against the engine's kernels and against the house model's Trace.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  activate,
  erf,
  gelu,
  kernelsInWords,
  largestTerms,
  magnitudeQuantile,
  MATRIX_NAMES,
  MATRIX_ROLES,
  matrixTimesVector,
  maxAbsDifference,
  multiplyAdds,
  neuron,
  relu,
  rowProducts,
  rowSum,
  scientific,
} from '../src/app/chapters/05-neurons/neurons.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { parameterCount } from '../src/engine/model.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { loadModelFolder } from './helpers.ts';

/** erf by its Maclaurin series, in float64: an independent algorithm (exact to ~1e-15 for |x| ≤ 3). */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function randomArray(rng: XorShiftRng, length: number): Float32Array {
  return Float32Array.from({ length }, () => rng.nextFloat() * 2 - 1);
}

describe('chapter 5: the toy neuron', () => {
  it("computes erf within Abramowitz & Stegun's bound (1.5e-7) of a float64 series, and GELU from it", () => {
    for (let x = -3; x <= 3; x += 0.05) {
      expect(Math.abs(erf(x) - erfSeries(x))).toBeLessThan(1.5e-7);
      // GELU's error is erf's, times |x|/2.
      const exact = 0.5 * x * (1 + erfSeries(x / Math.SQRT2));
      expect(Math.abs(gelu(x) - exact)).toBeLessThanOrEqual(0.5 * Math.abs(x) * 1.5e-7 + 1e-15);
    }
  });

  it('matches published values of the standard normal CDF: GELU(z) = z·Φ(z)', () => {
    // Φ(1), Φ(2), Φ(−0.5) from standard tables.
    expect(gelu(1)).toBeCloseTo(0.8413447461, 6);
    expect(gelu(2)).toBeCloseTo(2 * 0.9772498681, 6);
    expect(gelu(-0.5)).toBeCloseTo(-0.5 * 0.3085375387, 6);
    expect(gelu(0)).toBe(0);
    // GELU's minimum is about −0.170 near z = −0.752.
    let lowest = Infinity;
    for (let z = -3; z <= 0; z += 0.001) lowest = Math.min(lowest, gelu(z));
    expect(lowest).toBeCloseTo(-0.16997, 4);
  });

  it('computes SiLU as z·σ(z) and ReLU as max(0, z)', () => {
    for (const z of [-6, -1.3, -0.2, 0, 0.7, 2.5, 8]) {
      expect(activate('silu', z)).toBeCloseTo(z * (1 / (1 + Math.exp(-z))), 14);
      expect(relu(z)).toBe(Math.max(0, z));
      expect(activate('none', z)).toBe(z);
    }
    expect(activate('silu', 1)).toBeCloseTo(0.7310585786, 9); // σ(1) = e/(1+e)
  });

  it('adds the weighted inputs and the bias, then applies the activation', () => {
    const result = neuron([1, -0.5, 0.8], [0.6, 1.2, -0.4], 0.1, 'relu');
    expect(result.products).toEqual([0.6, -0.6, 1.0 * -0.4 * 0.8]);
    expect(result.sum).toBeCloseTo(1 * 0.6 + -0.5 * 1.2 + 0.8 * -0.4 + 0.1, 14);
    expect(result.output).toBe(0);
    expect(neuron([2], [1.5], -1, 'silu').output).toBeCloseTo(2 / (1 + Math.exp(-2)), 14);
    expect(() => neuron([1, 2], [1], 0, 'none')).toThrow();
  });
});

describe('chapter 5: the matrix × vector product, row by row', () => {
  it("equals the engine's reference kernel bit for bit, and the WebAssembly kernels within 1e-5", async () => {
    const rng = new XorShiftRng(7);
    const wasm = selectKernels('auto');
    await wasm.ready();
    for (const [rows, cols] of [
      [1, 1],
      [5, 3],
      [384, 128],
      [129, 67],
    ]) {
      const w = randomArray(rng, rows * cols);
      const x = randomArray(rng, cols);
      const reference = new Float32Array(rows);
      referenceKernels.matmulTransposedB(reference, x, w, 1, cols, rows);
      const fast = new Float32Array(rows);
      wasm.matmulTransposedB(fast, x, w, 1, cols, rows);
      const ours = matrixTimesVector(w, x, rows, cols);
      expect(Array.from(ours)).toEqual(Array.from(reference));
      expect(maxAbsDifference(ours, fast)).toBeLessThan(1e-5);
      // Each row, by brute force: the sum of its products.
      for (const r of [0, rows - 1, rows >> 1]) {
        const products = rowProducts(w, x, cols, r);
        let sum = 0;
        for (let k = 0; k < cols; k++) sum += w[r * cols + k] * x[k];
        expect(rowSum(w, x, cols, r)).toBe(Math.fround(sum));
        expect(products.reduce((a, b) => a + b, 0)).toBeCloseTo(sum, 10);
      }
    }
    expect(() => matrixTimesVector(new Float32Array(6), new Float32Array(2), 2, 3)).toThrow();
  });

  it('finds the largest terms and a colour scale from the magnitudes', () => {
    expect(largestTerms([0.1, -3, 2, 0.5], 2)).toEqual([
      { index: 1, value: -3 },
      { index: 2, value: 2 },
    ]);
    const values = Float32Array.from({ length: 101 }, (_, i) => (i % 2 ? -i : i));
    expect(magnitudeQuantile(values, 0.99)).toBe(99);
    expect(magnitudeQuantile(values, 1)).toBe(100);
    expect(scientific(0)).toBe('0');
    expect(scientific(2.4e-7)).toBe('2.4 × 10⁻⁷');
    expect(
      kernelsInWords('matrix kernels: ts — the readable TypeScript reference (float64 sums); threads: 1'),
    ).toBe('the readable TypeScript reference (float64 sums)');
  });
});

const HOUSE = resolve(import.meta.dirname, '..', 'models', 'house');
const present = existsSync(join(HOUSE, 'model.safetensors'));
if (!present) console.warn(`[glassbox tests] ${HOUSE} has no model: skipping chapter 5's house-model checks`);

describe.skipIf(!present)("chapter 5 on the house model's Trace", () => {
  const load = () => loadModelFolder(HOUSE);

  it("redoes every matrix of every layer, row by row, exactly as the Trace's values", () => {
    const { model, tokenizer } = load();
    const tokens = tokenizer.encode('In the beginning God created the heavens and the', {
      bos: true,
      eos: false,
    });
    const { trace } = forward(model, tokens, new KVCache(model.config), {
      trace: true,
      kernels: referenceKernels,
    });
    const fast = forward(model, tokens, new KVCache(model.config), {
      trace: true,
      kernels: selectKernels('auto'),
    }).trace;
    for (let l = 0; l < model.config.nLayers; l++) {
      for (const name of MATRIX_NAMES) {
        const { input, output } = MATRIX_ROLES[name];
        const weight = model.weights.layers[l][name];
        const [rows, cols] = weight.shape;
        for (const t of [0, tokens.length - 1]) {
          const x = trace.layers[l][input].data.subarray(t * cols, (t + 1) * cols);
          const expected = trace.layers[l][output].data.subarray(t * rows, (t + 1) * rows);
          const ours = matrixTimesVector(weight.data, x, rows, cols);
          // The same float64 sums in the same order as the reference kernels: identical.
          expect(Array.from(ours), `layers[${l}].${name} at ${t}`).toEqual(Array.from(expected));
          // Against the default (WebAssembly) kernels' pass, as in the browser: agreement to float32 precision.
          const fastInput = fast.layers[l][input].data.subarray(t * cols, (t + 1) * cols);
          const fastOutput = fast.layers[l][output].data.subarray(t * rows, (t + 1) * rows);
          expect(
            maxAbsDifference(matrixTimesVector(weight.data, fastInput, rows, cols), fastOutput),
          ).toBeLessThan(1e-4);
        }
      }
    }
  });

  it("counts one multiply-add per weight: the per-token total is the model's matrix parameters", () => {
    const { model } = load();
    const counts = multiplyAdds(model.config);
    for (const name of MATRIX_NAMES) {
      expect(counts.perMatrix[name]).toBe(model.weights.layers[0][name].data.length);
    }
    // Every parameter except the embedding table (looked up, not multiplied) and the norm gains is one
    // multiply-add; with tied embeddings the classifier is that same table, multiplied once.
    const gains = model.config.nLayers * 2 * model.config.dim + model.config.dim;
    const embedding = model.weights.tokenEmbedding.data.length;
    expect(counts.weights).toBe(
      parameterCount(model) - gains - (model.config.sharedClassifier ? 0 : embedding),
    );
    expect(counts.attentionAt(0)).toBe(model.config.nLayers * 2 * model.config.dim);
  });
});
