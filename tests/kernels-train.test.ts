/**
 * Training's softmax and SwiGLU kernels (src/kernels/train.as, and layer.as's swiglu) against the readable loops they replace
 * (src/engine/train/ops.ts), on both WebAssembly builds: random rows whose widths are and are not multiples
 * of four, masks from one visible entry to all of them, and a real training step's size.
 */
import { describe, expect, it } from 'vitest';
import {
  causalSoftmax,
  causalSoftmaxBackward,
  logSumExpRows,
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
