/**
 * The readable matrix kernels: every product the engine and the trainer need, in plain TypeScript.
 *
 * These are the reference. Faster kernels (WebAssembly SIMD, several threads) may replace them, and tests
 * hold those to these results. All matrices are row-major Float32Arrays; sums are accumulated in float64
 * (a JavaScript number), so each output is the exactly-rounded float32 of a sum with one rounding per term
 * at most 2^-53 — more precise than a float32 accumulator, and independent of loop order to ~1e-7.
 */
import type { QuantizedWeight } from '../engine/model.ts';

/** The operations a kernel set provides. `out` is always written, never accumulated into. */
export interface MatrixKernels {
  readonly name: string;
  /**
   * out[M,N] = x[M,K] · w[N,K]ᵀ. The forward pass of a linear layer applied to M token vectors at once
   * (w in the [outFeatures, inFeatures] layout); with M = 1 it is the matrix×vector product of decoding.
   */
  matmulTransposedB(
    out: Float32Array,
    x: Float32Array,
    w: Float32Array,
    M: number,
    K: number,
    N: number,
  ): void;
  /**
   * out[M,N] = x[M,K] · Wᵀ with W stored quantized: a faster twin of src/engine/quant-matmul.ts's readable
   * `quantizedMatmul` (which the engine uses when a kernel set has none).
   */
  quantizedMatmul?(
    out: Float32Array,
    x: Float32Array,
    w: QuantizedWeight,
    M: number,
    K: number,
    N: number,
  ): void;
  /** out[M,N] = a[M,K] · b[K,N]. The gradient with respect to a linear layer's input: dX = dY · W. */
  matmul(out: Float32Array, a: Float32Array, b: Float32Array, M: number, K: number, N: number): void;
  /** out[M,N] = a[K,M]ᵀ · b[K,N]. The gradient with respect to a linear layer's weight: dW = dYᵀ · X. */
  matmulTransposedA(
    out: Float32Array,
    a: Float32Array,
    b: Float32Array,
    M: number,
    K: number,
    N: number,
  ): void;
}

/**
 * x·wᵀ: each output is the dot product of one row of x with one row of w, its terms added up in order of k.
 * Because every output is summed in the same order whatever M is, prefill (M > 1) and decode (M = 1) give
 * bit-identical results. (tiled.ts adds up exactly these sums faster; tests hold it to this loop.)
 */
export function matmulTransposedB(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  M: number,
  K: number,
  N: number,
) {
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += x[i * K + k] * w[n * K + k];
      out[i * N + n] = sum;
    }
  }
}

/** a·b in i-k-j order, so the inner loop walks a row of b and a row of the float64 accumulator. */
function matmul(out: Float32Array, a: Float32Array, b: Float32Array, M: number, K: number, N: number) {
  const rowSum = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    rowSum.fill(0);
    for (let k = 0; k < K; k++) {
      const aik = a[i * K + k];
      if (aik === 0) continue;
      const bRow = k * N;
      for (let n = 0; n < N; n++) rowSum[n] += aik * b[bRow + n];
    }
    out.set(rowSum, i * N);
  }
}

/** aᵀ·b: out row i collects a[k,i]·(row k of b) over k, again walking rows contiguously. */
function matmulTransposedA(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  M: number,
  K: number,
  N: number,
) {
  const sums = new Float64Array(M * N);
  for (let k = 0; k < K; k++) {
    const bRow = k * N;
    for (let i = 0; i < M; i++) {
      const aki = a[k * M + i];
      if (aki === 0) continue;
      const outRow = i * N;
      for (let n = 0; n < N; n++) sums[outRow + n] += aki * b[bRow + n];
    }
  }
  out.set(sums);
}

export const referenceKernels: MatrixKernels = {
  name: 'ts',
  matmulTransposedB,
  matmul,
  matmulTransposedA,
};
