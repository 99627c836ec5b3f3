/**
 * A faster TypeScript matrix product: the readable triple loop of reference.ts (`matmulTransposedB`),
 * tiled and unrolled so that each number loaded serves several sums. Each sum is the same float64 sum in
 * the same order as the plain loop, so the results are bit for bit the same (tests/kernels.test.ts checks
 * this on awkward shapes). The 'ts' kernel choice (select.ts) runs this; readers are shown the plain loop.
 */
import { referenceKernels, type MatrixKernels } from './reference.ts';

/**
 * x·wᵀ, bit-identical to the plain loop in reference.ts: every output is still one dot product over K
 * summed in order of k in a float64. Speed comes from reuse: in a 4×2 tile, each loaded x value
 * meets two rows of w and each w value four rows of x, so there are 8 multiply-adds per 6 loads instead of
 * 1 per 2; a lone row of x (decode) is instead paired with four rows of w.
 */
export function tiledMatmulTransposedB(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  M: number,
  K: number,
  N: number,
) {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    let n = 0;
    for (; n + 2 <= N; n += 2) tile4x2(out, x, w, i, n, K, N);
    for (; n < N; n++) for (let r = i; r < i + 4; r++) out[r * N + n] = dot(x, r * K, w, n * K, K);
  }
  for (; i < M; i++) rowTimesTransposed(out, x, w, i, K, N);
}

function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, length: number): number {
  let sum = 0;
  for (let k = 0; k < length; k++) sum += a[aOffset + k] * b[bOffset + k];
  return sum;
}

/** Rows i…i+3 of x against rows n, n+1 of w: eight running sums. */
function tile4x2(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  i: number,
  n: number,
  K: number,
  N: number,
) {
  const x0 = i * K,
    x1 = x0 + K,
    x2 = x1 + K,
    x3 = x2 + K;
  const w0 = n * K,
    w1 = w0 + K;
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    b0 = 0,
    b1 = 0,
    b2 = 0,
    b3 = 0;
  for (let k = 0; k < K; k++) {
    const p = w[w0 + k],
      q = w[w1 + k];
    const c0 = x[x0 + k],
      c1 = x[x1 + k],
      c2 = x[x2 + k],
      c3 = x[x3 + k];
    a0 += c0 * p;
    a1 += c1 * p;
    a2 += c2 * p;
    a3 += c3 * p;
    b0 += c0 * q;
    b1 += c1 * q;
    b2 += c2 * q;
    b3 += c3 * q;
  }
  out[i * N + n] = a0;
  out[(i + 1) * N + n] = a1;
  out[(i + 2) * N + n] = a2;
  out[(i + 3) * N + n] = a3;
  out[i * N + n + 1] = b0;
  out[(i + 1) * N + n + 1] = b1;
  out[(i + 2) * N + n + 1] = b2;
  out[(i + 3) * N + n + 1] = b3;
}

/** One row of x against four rows of w at a time (the matrix×vector product of decoding). */
function rowTimesTransposed(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  i: number,
  K: number,
  N: number,
) {
  const xRow = i * K;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const w0 = n * K,
      w1 = w0 + K,
      w2 = w1 + K,
      w3 = w2 + K;
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    for (let k = 0; k < K; k++) {
      const xk = x[xRow + k];
      s0 += xk * w[w0 + k];
      s1 += xk * w[w1 + k];
      s2 += xk * w[w2 + k];
      s3 += xk * w[w3 + k];
    }
    out[i * N + n] = s0;
    out[i * N + n + 1] = s1;
    out[i * N + n + 2] = s2;
    out[i * N + n + 3] = s3;
  }
  for (; n < N; n++) out[i * N + n] = dot(x, xRow, w, n * K, K);
}

/** The reference kernels with the tiled product in place of the plain loop: the same numbers, sooner. */
export const tiledReferenceKernels: MatrixKernels = {
  ...referenceKernels,
  matmulTransposedB: tiledMatmulTransposedB,
};
