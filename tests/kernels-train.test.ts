/**
 * Training's softmax and SwiGLU kernels (src/kernels/train.as, and layer.as's swiglu) against the readable loops they replace
 * (src/engine/train/ops.ts), on both WebAssembly builds: random rows whose widths are and are not multiples
 * of four, masks from one visible entry to all of them, and a real training step's size. Then one attention
 * group's fused chain (wasm.ts) against the same chain run step by step.
 */
import { describe, expect, it } from 'vitest';
import {
  attentionGroupBackward,
  attentionGroupForward,
  causalSoftmax,
  causalSoftmaxBackward,
  float64Kernels,
  logSumExpRows,
  type AttentionGroupBackwardArgs,
  type FloatArray,
  softmaxGradientRows,
  swigluBackwardLoop,
  swigluLoop,
} from '../src/engine/train/ops.ts';
import { mulberry32 } from '../src/engine/init.ts';
import { setFlagsFromString } from 'node:v8';
import { wasmKernels } from '../src/kernels/select.ts';
import { wasmVariantSupported, type WasmVariant } from '../src/kernels/wasm.ts';

// Node 20 has relaxed SIMD behind a flag (Node 22 turns it on): turn it on so its build is tested too.
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');
const VARIANTS: WasmVariant[] = ['wasm-relaxed-simd', 'wasm-simd'];

function normals(length: number, seed: number, spread: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length }, () => (random() * 2 - 1) * spread);
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe.each(VARIANTS)('training softmax kernels (%s)', (variant) => {
  const kernels = wasmKernels(variant);
  if (!kernels) throw new Error(`${variant} is not supported by this runtime`);

  it.each([
    [1, 1],
    [7, 7],
    [3 * 13, 13],
    [2 * 64, 64],
  ])('causalSoftmax and its backward on %i rows of %i positions', (rows, T) => {
    const scale = 1 / Math.sqrt(32);
    const scores = normals(rows * T, rows + T, 6);
    const readable = scores.slice();
    const fast = scores.slice();
    causalSoftmax(readable, rows, T, scale);
    kernels.causalSoftmax!(fast, rows, T, scale);
    expect(maxDifference(fast, readable)).toBeLessThan(2e-6);
    for (let r = 0; r < rows; r++) {
      const visible = (r % T) + 1;
      expect(fast.subarray(r * T + visible, (r + 1) * T).every((p) => p === 0)).toBe(true);
    }

    const dProbs = normals(rows * T, 99 + T, 1);
    const readableGradient = dProbs.slice();
    const fastGradient = dProbs.slice();
    causalSoftmaxBackward(readableGradient, readable, rows, T, scale);
    kernels.causalSoftmaxBackward!(fastGradient, readable, rows, T, scale);
    expect(maxDifference(fastGradient, readableGradient)).toBeLessThan(1e-6);
  });

  it.each([
    [3, 5],
    [4, 4096],
    [33, 301],
  ])("the cross-entropy's log-sum-exp and softmax gradient on %i rows of %i logits", (rows, width) => {
    const logits = normals(rows * width, width, 12);
    const readable = new Float64Array(rows);
    const fast = new Float64Array(rows);
    logSumExpRows(readable, logits, rows, width);
    kernels.logSumExpRows!(fast, logits, rows, width);
    // log-sum-exp is about max + log(width) ≈ 20: float32 keeps it to ~2e-6.
    expect(maxDifference(fast, readable)).toBeLessThan(4e-6);

    const scale = 1 / rows;
    const readableGradient = new Float32Array(rows * width);
    const fastGradient = new Float32Array(rows * width);
    softmaxGradientRows(readableGradient, logits, readable, rows, width, scale);
    kernels.softmaxGradientRows!(fastGradient, logits, readable, rows, width, scale);
    // Each entry is a probability times 1/rows; exp4 is within a few float32 ulps of exp.
    for (let i = 0; i < fastGradient.length; i++) {
      expect(Math.abs(fastGradient[i] - readableGradient[i])).toBeLessThanOrEqual(
        2e-6 * readableGradient[i] + 1e-12,
      );
    }
  });
});

describe.each(VARIANTS)('training SwiGLU kernels (%s)', (variant) => {
  const kernels = wasmKernels(variant);
  if (!kernels) throw new Error(`${variant} is not supported by this runtime`);

  it.each([1, 7, 4 * 384 + 3])('forward and backward over %i values', (length) => {
    const gate = normals(length, length, 8);
    const up = normals(length, length + 1, 2);
    const dOut = normals(length, length + 2, 1);
    const readable = new Float32Array(length);
    const fast = new Float32Array(length);
    swigluLoop(readable, gate, up);
    kernels.swigluForward!(fast, gate, up);
    // Relative to |up|·|gate|, the size of what silu(gate)·up multiplies.
    for (let i = 0; i < length; i++) {
      expect(Math.abs(fast[i] - readable[i])).toBeLessThanOrEqual(2e-6 * Math.abs(gate[i] * up[i]) + 1e-7);
    }
    const [dGate, dUp, fastDGate, fastDUp] = Array.from({ length: 4 }, () => new Float32Array(length));
    swigluBackwardLoop(dGate, dUp, dOut, gate, up);
    kernels.swigluBackward!(fastDGate, fastDUp, dOut, gate, up);
    for (let i = 0; i < length; i++) {
      const size = Math.abs(dOut[i]) * (Math.abs(up[i]) * (1 + Math.abs(gate[i])) + Math.abs(gate[i]));
      expect(Math.abs(fastDGate[i] - dGate[i])).toBeLessThanOrEqual(2e-6 * size + 1e-7);
      expect(Math.abs(fastDUp[i] - dUp[i])).toBeLessThanOrEqual(2e-6 * size + 1e-7);
    }
  });
});

describe.each(VARIANTS)('one attention group, fused (%s)', (variant) => {
  const kernels = wasmKernels(variant);
  if (!kernels) throw new Error(`${variant} is not supported by this runtime`);
  // The same kernel set without the fused paths: attentionGroupForward/Backward then run their steps one by
  // one through the set's products and softmaxes, each copied in and out of the kernels' memory.
  const stepByStep = {
    matmul: kernels.matmul.bind(kernels),
    matmulTransposedA: kernels.matmulTransposedA.bind(kernels),
    matmulTransposedB: kernels.matmulTransposedB.bind(kernels),
    causalSoftmax: kernels.causalSoftmax!.bind(kernels),
    causalSoftmaxBackward: kernels.causalSoftmaxBackward!.bind(kernels),
  };
  const float64 = (array: Float32Array) => Float64Array.from(array);

  it.each([
    [1, 1, 4],
    [1, 7, 3],
    [2, 13, 8],
    [1, 64, 32],
    [2, 100, 16],
  ])('%i query heads per key/value head, %i positions, head size %i', (heads, T, D) => {
    const rows = heads * T;
    const queries = normals(rows * D, 1 + T, 1);
    const keysTransposed = normals(D * T, 2 + T, 1);
    const keys = new Float32Array(T * D);
    for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) keys[t * D + d] = keysTransposed[d * T + t];
    const values = normals(T * D, 3 + T, 1);
    const valuesTransposed = new Float32Array(D * T);
    for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) valuesTransposed[d * T + t] = values[t * D + d];
    const dOutput = normals(rows * D, 4 + T, 1);

    const forward = () => ({ output: new Float32Array(rows * D), probs: new Float32Array(rows * T) });
    const fused = forward();
    kernels.attentionGroupForward!(fused.output, fused.probs, queries, keysTransposed, values, rows, T, D);
    const steps = forward();
    attentionGroupForward(stepByStep, steps.output, steps.probs, queries, keysTransposed, values, rows, T, D);
    expect(fused.probs).toEqual(steps.probs);
    expect(fused.output).toEqual(steps.output);
    // And near the float64 reference: the steps' own tests hold them to it; this catches a wrong wiring.
    const exact = { output: new Float64Array(rows * D), probs: new Float64Array(rows * T) };
    attentionGroupForward(
      float64Kernels,
      exact.output,
      exact.probs,
      float64(queries),
      float64(keysTransposed),
      float64(values),
      rows,
      T,
      D,
    );
    expect(maxDifference(fused.output, exact.output)).toBeLessThan(1e-5);

    // The backward pass's arguments: where its three gradients go, then dOutput, P, Q, K and Vᵀ.
    const backwardArgs = <A extends FloatArray>(
      inputs: [A, A, A, A, A],
      newArray: (length: number) => A,
    ): { gradients: { dQueries: A; dKeys: A; dValues: A }; args: AttentionGroupBackwardArgs<A> } => {
      const gradients = { dQueries: newArray(rows * D), dKeys: newArray(T * D), dValues: newArray(T * D) };
      return {
        gradients,
        args: [gradients.dQueries, gradients.dKeys, gradients.dValues, ...inputs, rows, T, D],
      };
    };
    const inputs: [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array] = [
      dOutput,
      steps.probs,
      queries,
      keys,
      valuesTransposed,
    ];
    const fusedBackward = backwardArgs(inputs, (n) => new Float32Array(n));
    kernels.attentionGroupBackward!(...fusedBackward.args);
    const stepsBackward = backwardArgs(inputs, (n) => new Float32Array(n));
    attentionGroupBackward(stepByStep, ...stepsBackward.args);
    const [fusedGrad, stepsGrad] = [fusedBackward.gradients, stepsBackward.gradients];
    expect(fusedGrad).toEqual(stepsGrad);
    const exactBackward = backwardArgs(
      [float64(dOutput), exact.probs, float64(queries), float64(keys), float64(valuesTransposed)],
      (n) => new Float64Array(n),
    );
    attentionGroupBackward(float64Kernels, ...exactBackward.args);
    const exactGrad = exactBackward.gradients;
    expect(maxDifference(fusedGrad.dQueries, exactGrad.dQueries)).toBeLessThan(1e-4);
    expect(maxDifference(fusedGrad.dKeys, exactGrad.dKeys)).toBeLessThan(1e-4);
    expect(maxDifference(fusedGrad.dValues, exactGrad.dValues)).toBeLessThan(1e-4);
  });
});
