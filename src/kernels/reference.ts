/**
 * The readable matrix kernels: every product the engine and the trainer need, in plain TypeScript.
 *
 * These are the reference. Faster kernels (WebAssembly SIMD, several threads) may replace them, and tests
 * hold those to these results. All matrices are row-major Float32Arrays; sums are accumulated in float64
 * (a JavaScript number), so each output is the exactly-rounded float32 of a sum with one rounding per term
 * at most 2^-53 — more precise than a float32 accumulator, and independent of loop order to ~1e-7.
 */

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
 * x·wᵀ, four rows of x at a time: each row of w is read once per four token vectors instead of once per
 * vector, which is what makes a batched prefill cheaper than M separate matrix×vector products.
 */
function matmulTransposedB(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  M: number,
  K: number,
  N: number,
) {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const x0 = i * K,
      x1 = x0 + K,
      x2 = x1 + K,
      x3 = x2 + K;
    for (let n = 0; n < N; n++) {
      const wRow = n * K;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let k = 0; k < K; k++) {
        const wk = w[wRow + k];
        s0 += x[x0 + k] * wk;
        s1 += x[x1 + k] * wk;
        s2 += x[x2 + k] * wk;
        s3 += x[x3 + k] * wk;
      }
      out[i * N + n] = s0;
      out[(i + 1) * N + n] = s1;
      out[(i + 2) * N + n] = s2;
      out[(i + 3) * N + n] = s3;
    }
  }
  for (; i < M; i++) {
    const xRow = i * K;
    for (let n = 0; n < N; n++) {
      const wRow = n * K;
      let sum = 0;
      for (let k = 0; k < K; k++) sum += x[xRow + k] * w[wRow + k];
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
