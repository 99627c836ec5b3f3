/**
 * The element-wise and per-vector operations of a Llama block. Matrix products live in src/kernels/.
 * Each function writes into an output array the caller owns, so a forward pass allocates nothing per token.
 */
import type { RopeLayout } from './model.ts';

/** Copies row `token` of the embedding table into `out`: a token's vector is just a row lookup. */
export function embed(out: Float32Array, table: Float32Array, token: number, dim: number): void {
  out.set(table.subarray(token * dim, (token + 1) * dim));
}

/**
 * RMSNorm: divide x by its root-mean-square, then multiply by a learned gain per dimension.
 * Unlike LayerNorm it does not subtract the mean; eps keeps a zero vector from dividing by zero.
 */
export function rmsNorm(out: Float32Array, x: Float32Array, gain: Float32Array, eps: number): void {
  let sumOfSquares = 0;
  for (let i = 0; i < x.length; i++) sumOfSquares += x[i] * x[i];
  const inverseRms = 1 / Math.sqrt(sumOfSquares / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = gain[i] * (x[i] * inverseRms);
}

/** RMSNorm applied to each of the `rows` rows of `x` ([rows, dim], row-major). */
export function rmsNormRows(
  out: Float32Array,
  x: Float32Array,
  gain: Float32Array,
  rows: number,
  dim: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    rmsNorm(out.subarray(r * dim, (r + 1) * dim), x.subarray(r * dim, (r + 1) * dim), gain, eps);
  }
}

/** Numerically safe softmax in place over x[0..length): subtracting the max keeps exp() from overflowing. */
export function softmax(x: Float32Array, length = x.length): void {
  let max = -Infinity;
  for (let i = 0; i < length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < length; i++) {
    const e = Math.exp(x[i] - max);
    x[i] = e;
    sum += e;
  }
  for (let i = 0; i < length; i++) x[i] /= sum;
}

/** SiLU (also called swish): x·σ(x). Smooth, and lets small negative values through. */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** SwiGLU's element-wise step: silu(gate) · up. The gate decides how much of each "up" feature passes. */
export function swiglu(out: Float32Array, gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = silu(gate[i]) * up[i];
}

/**
 * The angle RoPE turns pair `pair` of a head by at position `pos`: pos · theta^(−2·pair/headDim).
 * Low pairs spin fast (fine position), high pairs slowly (coarse position).
 */
export function ropeFrequency(pair: number, headDim: number, theta: number): number {
  return 1 / Math.pow(theta, (2 * pair) / headDim);
}

/**
 * Where the two members of RoPE pair `pair` sit within a head: neighbours (2i, 2i+1) in llama2.c's
 * interleaved layout, i and i + headDim/2 in Hugging Face's split halves.
 */
export function ropePairMembers(pair: number, headDim: number, layout: RopeLayout): [number, number] {
  return layout === 'interleaved' ? [2 * pair, 2 * pair + 1] : [pair, pair + headDim / 2];
}

/**
 * Rotary position embedding, in place, on `nHeads` consecutive heads of size `headDim` in `vec`.
 * Each pair of dimensions is rotated by an angle proportional to the position, so the dot product of a
 * rotated query and key depends on their positions only through their difference.
 * `layout` says which dimensions form a pair: adjacent ones (llama2.c) or i and i + headDim/2 (Hugging Face).
 */
export function applyRope(
  vec: Float32Array,
  pos: number,
  nHeads: number,
  headDim: number,
  layout: RopeLayout,
  theta: number,
): void {
  const half = headDim / 2;
  for (let pair = 0; pair < half; pair++) {
    const angle = pos * ropeFrequency(pair, headDim, theta);
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const [first, second] = ropePairMembers(pair, headDim, layout);
    for (let h = 0; h < nHeads; h++) {
      const base = h * headDim;
      const a = vec[base + first];
      const b = vec[base + second];
      vec[base + first] = a * cos - b * sin;
      vec[base + second] = a * sin + b * cos;
    }
  }
}

/**
 * RoPE on `rows` consecutive rows of `nHeads` heads each ([rows, nHeads·headDim]), row r being the token at
 * position startPos + r.
 */
export function applyRopeRows(
  vec: Float32Array,
  startPos: number,
  rows: number,
  nHeads: number,
  headDim: number,
  layout: RopeLayout,
  theta: number,
): void {
  const width = nHeads * headDim;
  for (let r = 0; r < rows; r++) {
    applyRope(vec.subarray(r * width, (r + 1) * width), startPos + r, nHeads, headDim, layout, theta);
  }
}

/** Index of the largest value (the first one on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
