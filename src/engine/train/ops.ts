/**
 * The training ops: each forward step of the Llama block with its backward pass written right below it,
 * as llm.c does. A backward pass receives the gradient of the loss with respect to the op's output (dOut)
 * and returns, by writing into arrays the caller owns, the gradients with respect to its inputs and its
 * parameters. Every backward function *writes* its outputs (it never adds to what was there), except
 * `embeddingBackward`, whose scatter is a sum by nature; the model adds the branches where they meet.
 *
 * Layouts: activations are row-major [rows, width] with rows = B·T (batch × positions, the batch's
 * sequences one after another), so every linear layer is one matrix product over all the batch's tokens.
 * The loops here accumulate in float64 (JavaScript numbers) whatever the array type; the matrix products
 * accumulate as the kernel set does.
 *
 * The arrays are Float32Array (training) or Float64Array (gradient checks, where finite differences need
 * the extra digits), hence FloatArray.
 */
import type { RopeLayout } from '../model.ts';
import { ropeFrequency, silu } from '../ops.ts';

export type FloatArray = Float32Array | Float64Array;

/**
 * The three matrix products of training, over one array type. The float32 kernel sets of src/kernels/
 * (MatrixKernels) are Kernels<Float32Array>; `float64Kernels` below are the float64 ones.
 */
export interface Kernels<A extends FloatArray> {
  /** out[M,N] = x[M,K] · w[N,K]ᵀ — a linear layer's forward pass. */
  matmulTransposedB(out: A, x: A, w: A, M: number, K: number, N: number): void;
  /** out[M,N] = a[M,K] · b[K,N] — the gradient with respect to a linear layer's input. */
  matmul(out: A, a: A, b: A, M: number, K: number, N: number): void;
  /** out[M,N] = a[K,M]ᵀ · b[K,N] — the gradient with respect to a linear layer's weight. */
  matmulTransposedA(out: A, a: A, b: A, M: number, K: number, N: number): void;
}

/**
 * Fast paths a float32 kernel set may offer for the element-wise loops below — the softmaxes and SwiGLU —
 * and for one attention group's chain of products and softmax (the WebAssembly set does: src/kernels/
 * train.as, and src/kernels/wasm.ts, which runs the chain without copying its T×T matrices out between
 * steps). Each has the signature of the function of the same name in this file (less its `kernels`), which
 * stays the reference: where a kernel set lacks one (the readable set, float64), that function runs.
 */
export interface TrainingFastPaths {
  swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array): void;
  swigluBackward(
    dGate: Float32Array,
    dUp: Float32Array,
    dOut: Float32Array,
    gate: Float32Array,
    up: Float32Array,
  ): void;
  causalSoftmax(scores: Float32Array, rows: number, T: number, scale: number): void;
  causalSoftmaxBackward(
    dProbs: Float32Array,
    probs: Float32Array,
    rows: number,
    T: number,
    scale: number,
  ): void;
  logSumExpRows(out: Float64Array, logits: Float32Array, rows: number, width: number): void;
  softmaxGradientRows(
    out: Float32Array,
    logits: Float32Array,
    logSumExp: Float64Array,
    rows: number,
    width: number,
    scale: number,
  ): void;
  /** attentionGroupForward's three steps without leaving the kernels' memory between them. */
  attentionGroupForward(...args: AttentionGroupForwardArgs<Float32Array>): void;
  /** attentionGroupBackward's five steps without leaving the kernels' memory between them. */
  attentionGroupBackward(...args: AttentionGroupBackwardArgs<Float32Array>): void;
}

/**
 * The kernel set's fast path `name` when it has one and the arrays are float32 (every array of a model is
 * of one type, so `like` stands for all of them); else `loop`, the readable function it replaces.
 */
export function fastPath<Loop extends (...args: never[]) => void>(
  kernels: Partial<TrainingFastPaths>,
  name: keyof TrainingFastPaths,
  like: FloatArray,
  loop: Loop,
): Loop {
  const fast = kernels[name];
  return fast && like instanceof Float32Array ? (fast.bind(kernels) as unknown as Loop) : loop;
}

/** The same three products as src/kernels/reference.ts, as the plainest loops, for float64 arrays. */
export const float64Kernels: Kernels<Float64Array> = {
  matmulTransposedB(out, x, w, M, K, N) {
    for (let i = 0; i < M; i++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += x[i * K + k] * w[n * K + k];
        out[i * N + n] = sum;
      }
    }
  },
  matmul(out, a, b, M, K, N) {
    out.fill(0, 0, M * N);
    for (let i = 0; i < M; i++) {
      for (let k = 0; k < K; k++) {
        const aik = a[i * K + k];
        for (let n = 0; n < N; n++) out[i * N + n] += aik * b[k * N + n];
      }
    }
  },
  matmulTransposedA(out, a, b, M, K, N) {
    out.fill(0, 0, M * N);
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < M; i++) {
        const aki = a[k * M + i];
        for (let n = 0; n < N; n++) out[i * N + n] += aki * b[k * N + n];
      }
    }
  },
};

/** target += delta, element by element: where two branches of the network meet, their gradients add. */
export function addInto(target: FloatArray, delta: FloatArray): void {
  for (let i = 0; i < target.length; i++) target[i] += delta[i];
}

// ---------------------------------------------------------------------------------------------------------
// Embedding: out[row] = table[token[row]]

export function embeddingForward(out: FloatArray, table: FloatArray, tokens: Int32Array, dim: number): void {
  for (let row = 0; row < tokens.length; row++) {
    out.set(table.subarray(tokens[row] * dim, (tokens[row] + 1) * dim), row * dim);
  }
}

/** dTable[token] += dOut[row] for every row that looked the token up. Adds (a token may appear many times). */
export function embeddingBackward(
  dTable: FloatArray,
  dOut: FloatArray,
  tokens: Int32Array,
  dim: number,
): void {
  for (let row = 0; row < tokens.length; row++) {
    const tableRow = tokens[row] * dim;
    for (let i = 0; i < dim; i++) dTable[tableRow + i] += dOut[row * dim + i];
  }
}

// ---------------------------------------------------------------------------------------------------------
// RMSNorm, per row: out = gain ⊙ x · r, with r = 1/√(mean(x²) + eps) (kept in invRms for the backward pass)

export function rmsNormForward(
  out: FloatArray,
  invRms: FloatArray,
  x: FloatArray,
  gain: FloatArray,
  rows: number,
  dim: number,
  eps: number,
): void {
  for (let row = 0; row < rows; row++) {
    const base = row * dim;
    let sumOfSquares = 0;
    for (let i = 0; i < dim; i++) sumOfSquares += x[base + i] * x[base + i];
    const r = 1 / Math.sqrt(sumOfSquares / dim + eps);
    invRms[row] = r;
    for (let i = 0; i < dim; i++) out[base + i] = gain[i] * (x[base + i] * r);
  }
}

/**
 * dx = (gain ⊙ dOut)·r − x·r³·(Σ gain ⊙ dOut ⊙ x)/dim, and dGain = Σ_rows dOut ⊙ x·r.
 * (r depends on every x_j: ∂r/∂x_j = −x_j·r³/dim, which gives the second term.) Writes dx and dGain.
 */
export function rmsNormBackward(
  dx: FloatArray,
  dGain: FloatArray,
  dOut: FloatArray,
  x: FloatArray,
  invRms: FloatArray,
  gain: FloatArray,
  rows: number,
  dim: number,
): void {
  dGain.fill(0);
  for (let row = 0; row < rows; row++) {
    const base = row * dim;
    const r = invRms[row];
    let gainDOutX = 0;
    for (let i = 0; i < dim; i++) gainDOutX += gain[i] * dOut[base + i] * x[base + i];
    const correction = (r * r * r * gainDOutX) / dim;
    for (let i = 0; i < dim; i++) {
      dx[base + i] = gain[i] * dOut[base + i] * r - x[base + i] * correction;
      dGain[i] += dOut[base + i] * x[base + i] * r;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Linear layer over all rows at once: out[rows, outF] = x[rows, inF] · Wᵀ, W stored [outF, inF]

export function linearForward<A extends FloatArray>(
  kernels: Kernels<A>,
  out: A,
  x: A,
  weight: A,
  rows: number,
  inFeatures: number,
  outFeatures: number,
): void {
  kernels.matmulTransposedB(out, x, weight, rows, inFeatures, outFeatures);
}

/** dW = dOutᵀ · x (each weight meets every row's input), dx = dOut · W. Writes both. */
export function linearBackward<A extends FloatArray>(
  kernels: Kernels<A>,
  dx: A,
  dWeight: A,
  dOut: A,
  x: A,
  weight: A,
  rows: number,
  inFeatures: number,
  outFeatures: number,
): void {
  kernels.matmulTransposedA(dWeight, dOut, x, outFeatures, rows, inFeatures);
  kernels.matmul(dx, dOut, weight, rows, outFeatures, inFeatures);
}

// ---------------------------------------------------------------------------------------------------------
// RoPE: pair (a, b) of every head at position pos turns by angle pos·freq(pair):
//   a' = a·cos − b·sin,  b' = a·sin + b·cos

/** cos and sin of every (position, pair) angle for positions 0 … T−1: [T, headDim/2] each. */
export interface RopeTable {
  positions: number;
  headDim: number;
  layout: RopeLayout;
  cos: Float64Array;
  sin: Float64Array;
}

export function ropeTable(positions: number, headDim: number, theta: number, layout: RopeLayout): RopeTable {
  const half = headDim / 2;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let pos = 0; pos < positions; pos++) {
    for (let pair = 0; pair < half; pair++) {
      // The same expression as the inference engine's applyRope, so both turn by identical angles.
      const angle = pos * ropeFrequency(pair, headDim, theta);
      cos[pos * half + pair] = Math.cos(angle);
      sin[pos * half + pair] = Math.sin(angle);
    }
  }
  return { positions, headDim, layout, cos, sin };
}

/**
 * Rotates, in place, every head of every row of x ([rows, nHeads·headDim], row = b·T + t at position t)
 * by +angle (direction 1) or −angle (direction −1).
 */
function rotate(x: FloatArray, table: RopeTable, rows: number, nHeads: number, direction: 1 | -1): void {
  const { positions: T, headDim, layout } = table;
  const half = headDim / 2;
  for (let row = 0; row < rows; row++) {
    const angles = (row % T) * half;
    for (let h = 0; h < nHeads; h++) {
      const head = (row * nHeads + h) * headDim;
      for (let pair = 0; pair < half; pair++) {
        const cos = table.cos[angles + pair];
        const sin = direction * table.sin[angles + pair];
        const first = head + (layout === 'interleaved' ? 2 * pair : pair);
        const second = head + (layout === 'interleaved' ? 2 * pair + 1 : pair + half);
        const a = x[first];
        const b = x[second];
        x[first] = a * cos - b * sin;
        x[second] = a * sin + b * cos;
      }
    }
  }
}

export function ropeForward(x: FloatArray, table: RopeTable, rows: number, nHeads: number): void {
  rotate(x, table, rows, nHeads, 1);
}

/** A rotation's Jacobian is the rotation itself, and its transpose turns back: dx = R(−angle)·dOut. In place. */
export function ropeBackward(dx: FloatArray, table: RopeTable, rows: number, nHeads: number): void {
  rotate(dx, table, rows, nHeads, -1);
}

// ---------------------------------------------------------------------------------------------------------
// Causal multi-head attention with grouped-query heads, for B sequences of T positions. Per head, as
// matrices over the T positions (Q, K, V: [T, D]):
//   S = Q·Kᵀ/√D,  P = softmax of each row of S over the positions s ≤ t (the causal mask),  out = P·V
// Query head h reads key/value head ⌊h·nKvHeads/nHeads⌋ (as src/engine/attention.ts), so the query heads
// of one group are consecutive: stacking their Q's gives one [heads·T, D] matrix, and each product below
// serves the whole group at once. Written as matrix products, attention runs on the same fast kernels as
// the linear layers (computing the masked half of S too, which costs less than slower loops would).

export interface AttentionShape {
  batchSize: number;
  seqLen: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/** An empty array of the same type as `like`. */
function newLike<A extends FloatArray>(like: A, length: number): A {
  return new (like.constructor as new (length: number) => A)(length);
}

/**
 * Copies heads first … first+count−1 of sequence b out of src ([B·T, width], heads side by side in each row)
 * into dst as a stack of [T, D] matrices, one per head: dst[(j·T + t)·D + i] = src[(b·T + t)·width + (first+j)·D + i].
 */
function gatherHeads(
  dst: FloatArray,
  src: FloatArray,
  b: number,
  T: number,
  width: number,
  first: number,
  count: number,
  D: number,
): void {
  for (let j = 0; j < count; j++) {
    for (let t = 0; t < T; t++) {
      const from = (b * T + t) * width + (first + j) * D;
      dst.set(src.subarray(from, from + D), (j * T + t) * D);
    }
  }
}

/** The inverse of gatherHeads: writes the stacked heads back into their places in the rows of dst. */
function scatterHeads(
  dst: FloatArray,
  src: FloatArray,
  b: number,
  T: number,
  width: number,
  first: number,
  count: number,
  D: number,
): void {
  for (let j = 0; j < count; j++) {
    for (let t = 0; t < T; t++) {
      const to = (b * T + t) * width + (first + j) * D;
      dst.set(src.subarray((j * T + t) * D, (j * T + t + 1) * D), to);
    }
  }
}

/** Head `head` of sequence b, transposed: dst[i·T + t] = src[(b·T + t)·width + head·D + i] ([D, T]). */
function gatherHeadTransposed(
  dst: FloatArray,
  src: FloatArray,
  b: number,
  T: number,
  width: number,
  head: number,
  D: number,
): void {
  for (let t = 0; t < T; t++) {
    const from = (b * T + t) * width + head * D;
    for (let i = 0; i < D; i++) dst[i * T + t] = src[from + i];
  }
}

/**
 * Row r of scores ([rows, T]) belongs to position t = r mod T: scales it, then replaces entries s ≤ t by
 * their softmax and zeroes the masked ones (s > t), in place.
 */
export function causalSoftmax(scores: FloatArray, rows: number, T: number, scale: number): void {
  for (let r = 0; r < rows; r++) {
    const row = r * T;
    const visible = (r % T) + 1;
    let max = -Infinity;
    for (let s = 0; s < visible; s++) {
      scores[row + s] *= scale;
      if (scores[row + s] > max) max = scores[row + s];
    }
    // Subtracting the max keeps exp() from overflowing.
    let sum = 0;
    for (let s = 0; s < visible; s++) {
      const e = Math.exp(scores[row + s] - max);
      scores[row + s] = e;
      sum += e;
    }
    for (let s = 0; s < visible; s++) scores[row + s] /= sum;
    scores.fill(0, row + visible, row + T);
  }
}

/**
 * Softmax backward, in place: turns dP into dS, the gradient with respect to Q·Kᵀ before scaling,
 * dS[s] = P[s]·(dP[s] − Σ_j P[j]·dP[j])·scale. Masked entries have P = 0, so their gradient is 0.
 */
export function causalSoftmaxBackward(
  dProbs: FloatArray,
  probs: FloatArray,
  rows: number,
  T: number,
  scale: number,
): void {
  for (let r = 0; r < rows; r++) {
    const row = r * T;
    const visible = (r % T) + 1;
    let expected = 0;
    for (let s = 0; s < visible; s++) expected += probs[row + s] * dProbs[row + s];
    for (let s = 0; s < visible; s++) dProbs[row + s] = probs[row + s] * (dProbs[row + s] - expected) * scale;
    dProbs.fill(0, row + visible, row + T);
  }
}

/**
 * Writes out [B·T, nHeads·D] and probs [B, nHeads, T, T] (row t holds P over s ≤ t, zeros after), which
 * the backward pass needs. q is [B·T, nHeads·D]; k and v are [B·T, nKvHeads·D].
 */
export function attentionForward<A extends FloatArray>(
  kernels: Kernels<A> & Partial<TrainingFastPaths>,
  out: A,
  probs: A,
  q: A,
  k: A,
  v: A,
  shape: AttentionShape,
): void {
  const { batchSize: B, seqLen: T, nHeads, nKvHeads, headDim: D } = shape;
  const heads = nHeads / nKvHeads; // query heads per key/value head
  const [qDim, kvDim] = [nHeads * D, nKvHeads * D];
  const queries = newLike(q, heads * T * D);
  const keysTransposed = newLike(q, D * T);
  const values = newLike(q, T * D);
  const output = newLike(q, heads * T * D);
  const group = fastPath(kernels, 'attentionGroupForward', q, (...args: AttentionGroupForwardArgs<A>) =>
    attentionGroupForward(kernels, ...args),
  );
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < nKvHeads; g++) {
      gatherHeads(queries, q, b, T, qDim, g * heads, heads, D);
      gatherHeadTransposed(keysTransposed, k, b, T, kvDim, g, D);
      gatherHeads(values, v, b, T, kvDim, g, 1, D);
      const groupProbs = probs.subarray(
        (b * nHeads + g * heads) * T * T,
        (b * nHeads + (g + 1) * heads) * T * T,
      ) as A;
      group(output, groupProbs, queries, keysTransposed, values, heads * T, T, D);
      scatterHeads(out, output, b, T, qDim, g * heads, heads, D);
    }
  }
}

export type AttentionGroupForwardArgs<A extends FloatArray> = [
  output: A,
  probs: A,
  queries: A,
  keysTransposed: A,
  values: A,
  rows: number,
  T: number,
  D: number,
];

/**
 * One key/value head's attention for one sequence: the `rows` = heads·T queries of the query heads that
 * share it, stacked, against its T keys and values (D wide). probs = causal softmax(Q·Kᵀ/√D), output = P·V.
 */
export function attentionGroupForward<A extends FloatArray>(
  kernels: Kernels<A> & Partial<TrainingFastPaths>,
  ...[output, probs, queries, keysTransposed, values, rows, T, D]: AttentionGroupForwardArgs<A>
): void {
  kernels.matmul(probs, queries, keysTransposed, rows, D, T); // S = Q·Kᵀ
  fastPath(kernels, 'causalSoftmax', queries, causalSoftmax)(probs, rows, T, 1 / Math.sqrt(D)); // P
  kernels.matmul(output, probs, values, rows, T, D); // P·V
}

/**
 * dV = Pᵀ·dOut and dP = dOut·Vᵀ (through out = P·V); dS from the softmax backward; then through S = Q·Kᵀ/√D:
 * dQ = dS·K and dK = dSᵀ·Q (the 1/√D is inside dS). The products over a stacked group sum the gradients
 * of all query heads that share a key/value head, which is GQA's backward pass. Writes dq, dk, dv.
 */
export function attentionBackward<A extends FloatArray>(
  kernels: Kernels<A> & Partial<TrainingFastPaths>,
  dq: A,
  dk: A,
  dv: A,
  dOut: A,
  probs: A,
  q: A,
  k: A,
  v: A,
  shape: AttentionShape,
): void {
  const { batchSize: B, seqLen: T, nHeads, nKvHeads, headDim: D } = shape;
  const heads = nHeads / nKvHeads;
  const [qDim, kvDim] = [nHeads * D, nKvHeads * D];
  const queries = newLike(q, heads * T * D);
  const keys = newLike(q, T * D);
  const valuesTransposed = newLike(q, D * T);
  const dOutput = newLike(q, heads * T * D);
  const dQueries = newLike(q, heads * T * D);
  const dKeys = newLike(q, T * D);
  const dValues = newLike(q, T * D);
  const group = fastPath(kernels, 'attentionGroupBackward', q, (...args: AttentionGroupBackwardArgs<A>) =>
    attentionGroupBackward(kernels, ...args),
  );
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < nKvHeads; g++) {
      gatherHeads(queries, q, b, T, qDim, g * heads, heads, D);
      gatherHeads(keys, k, b, T, kvDim, g, 1, D);
      gatherHeadTransposed(valuesTransposed, v, b, T, kvDim, g, D);
      gatherHeads(dOutput, dOut, b, T, qDim, g * heads, heads, D);
      const groupProbs = probs.subarray(
        (b * nHeads + g * heads) * T * T,
        (b * nHeads + (g + 1) * heads) * T * T,
      ) as A;
      group(dQueries, dKeys, dValues, dOutput, groupProbs, queries, keys, valuesTransposed, heads * T, T, D);
      scatterHeads(dq, dQueries, b, T, qDim, g * heads, heads, D);
      scatterHeads(dk, dKeys, b, T, kvDim, g, 1, D);
      scatterHeads(dv, dValues, b, T, kvDim, g, 1, D);
    }
  }
}

export type AttentionGroupBackwardArgs<A extends FloatArray> = [
  dQueries: A,
  dKeys: A,
  dValues: A,
  dOutput: A,
  probs: A,
  queries: A,
  keys: A,
  valuesTransposed: A,
  rows: number,
  T: number,
  D: number,
];

/** The backward pass of attentionGroupForward: writes dQueries [rows, D], dKeys and dValues [T, D]. */
export function attentionGroupBackward<A extends FloatArray>(
  kernels: Kernels<A> & Partial<TrainingFastPaths>,
  ...[
    dQueries,
    dKeys,
    dValues,
    dOutput,
    probs,
    queries,
    keys,
    valuesTransposed,
    rows,
    T,
    D,
  ]: AttentionGroupBackwardArgs<A>
): void {
  const dScores = newLike(queries, rows * T);
  kernels.matmulTransposedA(dValues, probs, dOutput, T, rows, D); // dV = Pᵀ·dOut
  kernels.matmul(dScores, dOutput, valuesTransposed, rows, D, T); // dP = dOut·Vᵀ
  fastPath(kernels, 'causalSoftmaxBackward', queries, causalSoftmaxBackward)(
    dScores,
    probs,
    rows,
    T,
    1 / Math.sqrt(D),
  ); // dS
  kernels.matmul(dQueries, dScores, keys, rows, T, D); // dQ = dS·K
  kernels.matmulTransposedA(dKeys, dScores, queries, T, rows, D); // dK = dSᵀ·Q
}

// ---------------------------------------------------------------------------------------------------------
// SwiGLU's element-wise step: out = silu(gate) ⊙ up, silu(g) = g·σ(g)

export function swigluForward(
  kernels: Kernels<FloatArray> & Partial<TrainingFastPaths>,
  out: FloatArray,
  gate: FloatArray,
  up: FloatArray,
): void {
  fastPath(kernels, 'swigluForward', out, swigluLoop)(out, gate, up);
}

export function swigluLoop(out: FloatArray, gate: FloatArray, up: FloatArray): void {
  for (let i = 0; i < out.length; i++) out[i] = silu(gate[i]) * up[i];
}

/** dGate = dOut ⊙ up ⊙ σ(g)·(1 + g·(1 − σ(g))), dUp = dOut ⊙ silu(g). Writes both. */
export function swigluBackward(
  kernels: Kernels<FloatArray> & Partial<TrainingFastPaths>,
  dGate: FloatArray,
  dUp: FloatArray,
  dOut: FloatArray,
  gate: FloatArray,
  up: FloatArray,
): void {
  fastPath(kernels, 'swigluBackward', dOut, swigluBackwardLoop)(dGate, dUp, dOut, gate, up);
}

export function swigluBackwardLoop(
  dGate: FloatArray,
  dUp: FloatArray,
  dOut: FloatArray,
  gate: FloatArray,
  up: FloatArray,
): void {
  for (let i = 0; i < dOut.length; i++) {
    const g = gate[i];
    const sigmoid = 1 / (1 + Math.exp(-g));
    dGate[i] = dOut[i] * up[i] * sigmoid * (1 + g * (1 - sigmoid));
    dUp[i] = dOut[i] * g * sigmoid;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Cross-entropy of each row's logits against its target token, averaged over rows:
//   loss_row = log Σ_j exp(logit_j) − logit_target

/** out[row] = log Σ_j exp(logits[row, j]), the max subtracted first so that exp() cannot overflow. */
export function logSumExpRows(out: Float64Array, logits: FloatArray, rows: number, width: number): void {
  for (let row = 0; row < rows; row++) {
    const base = row * width;
    let max = -Infinity;
    for (let j = 0; j < width; j++) if (logits[base + j] > max) max = logits[base + j];
    let sum = 0;
    for (let j = 0; j < width; j++) sum += Math.exp(logits[base + j] - max);
    out[row] = max + Math.log(sum);
  }
}

/** Returns the mean loss; writes each row's log-sum-exp (logSumExp[rows]) for the backward pass. */
export function crossEntropyForward(
  kernels: Kernels<FloatArray> & Partial<TrainingFastPaths>,
  logSumExp: Float64Array,
  logits: FloatArray,
  targets: Int32Array,
  rows: number,
  vocabSize: number,
): number {
  fastPath(kernels, 'logSumExpRows', logits, logSumExpRows)(logSumExp, logits, rows, vocabSize);
  let total = 0;
  for (let row = 0; row < rows; row++) total += logSumExp[row] - logits[row * vocabSize + targets[row]];
  return total / rows;
}

/** out[row, j] = exp(logits[row, j] − logSumExp[row])·scale: softmax, times a constant. */
export function softmaxGradientRows(
  out: FloatArray,
  logits: FloatArray,
  logSumExp: Float64Array,
  rows: number,
  width: number,
  scale: number,
): void {
  for (let row = 0; row < rows; row++) {
    const base = row * width;
    for (let j = 0; j < width; j++) out[base + j] = Math.exp(logits[base + j] - logSumExp[row]) * scale;
  }
}

/** dLogits = (softmax(logits) − onehot(target)) / rows: the mean over rows divides each row's gradient. */
export function crossEntropyBackward(
  kernels: Kernels<FloatArray> & Partial<TrainingFastPaths>,
  dLogits: FloatArray,
  logSumExp: Float64Array,
  logits: FloatArray,
  targets: Int32Array,
  rows: number,
  vocabSize: number,
): void {
  const perRow = 1 / rows;
  const gradient = fastPath(kernels, 'softmaxGradientRows', logits, softmaxGradientRows);
  gradient(dLogits, logits, logSumExp, rows, vocabSize, perRow);
  for (let row = 0; row < rows; row++) dLogits[row * vocabSize + targets[row]] -= perRow;
}
