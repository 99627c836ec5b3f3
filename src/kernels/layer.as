// The per-token operations of a Llama block, besides the matrix products, in WebAssembly 128-bit SIMD
// (AssemblyScript; see matmul.as for the notation). Each is the twin of a readable TypeScript function
// that stays the reference, and tests hold this file to it:
//
//   rmsNormRows          src/engine/ops.ts        rmsNormRows (rmsNorm on each row)
//   swiglu               src/engine/ops.ts        swiglu
//   ropeRows             src/engine/ops.ts        applyRopeRows (applyRope on each row)
//   causalSelfAttention  src/engine/attention.ts  causalSelfAttention
//   softmaxSumsRows      src/engine/sampling.ts   softmaxSumsRows
//
// `src/kernels/wasm.ts` copies the caller's arrays in and out. All pointers are byte offsets into linear
// memory; all sizes are element counts. Where the reference sums in float64 (a JavaScript number) over a
// long vector — RMSNorm's sum of squares, softmax's denominator — so do these, in f64x2 lanes.

import { addWidened, exp4, laneMax, laneSum, madd, pairSum } from './simd';

/**
 * RMSNorm of `rows` rows of `dim` values: out = gain ⊙ x / √(mean(x²) + eps), row by row.
 */
export function rmsNormRows(out: usize, x: usize, gain: usize, rows: i32, dim: i32, eps: f64): void {
  const rowBytes = <usize>dim * 4;
  for (let r = 0; r < rows; r++) {
    let sum = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= dim; i += 4) {
      const v = v128.load(x + <usize>i * 4);
      sum = addWidened(sum, f32x4.mul(v, v));
    }
    let squares = pairSum(sum);
    for (; i < dim; i++) {
      const value = <f64>load<f32>(x + <usize>i * 4);
      squares += value * value;
    }
    const inverseRms = <f32>(1 / Math.sqrt(squares / dim + eps));
    const scale = f32x4.splat(inverseRms);
    i = 0;
    for (; i + 4 <= dim; i += 4) {
      const at = <usize>i * 4;
      v128.store(out + at, f32x4.mul(v128.load(gain + at), f32x4.mul(v128.load(x + at), scale)));
    }
    for (; i < dim; i++) {
      const at = <usize>i * 4;
      store<f32>(out + at, load<f32>(gain + at) * (load<f32>(x + at) * inverseRms));
    }
    x += rowBytes;
    out += rowBytes;
  }
}

/** silu(g) = g·σ(g) = g / (1 + e^−g), in four lanes. */
@inline
function silu4(g: v128): v128 {
  return f32x4.div(g, f32x4.add(f32x4.splat(1), exp4(f32x4.neg(g))));
}

/** SwiGLU's element-wise step over `length` values: out = silu(gate) ⊙ up. */
export function swiglu(out: usize, gate: usize, up: usize, length: i32): void {
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const at = <usize>i * 4;
    v128.store(out + at, f32x4.mul(silu4(v128.load(gate + at)), v128.load(up + at)));
  }
  for (; i < length; i++) {
    const at = <usize>i * 4;
    const g = silu4(f32x4.splat(load<f32>(gate + at)));
    store<f32>(out + at, f32x4.extract_lane(g, 0) * load<f32>(up + at));
  }
}

/**
 * Rotary position embedding, in place, on `rows` rows of `nHeads` heads of `headDim` values; row r is at
 * position startPos + r. `table` holds, for each position from startPos on, two rows of headDim values,
 * written by wasm.ts from the reference's own angles: cos[j] and sinSigned[j] such that every element is
 *
 *   out[j] = v[j]·cos[j] + v[partner(j)]·sinSigned[j]
 *
 * where partner(j) is the other member of j's pair — j ^ 1 for adjacent pairs (interleaved, llama2.c),
 * j ± headDim/2 for split halves (Hugging Face) — and sinSigned is −sin on a pair's first member, +sin on
 * its second: (a, b) → (a·cos − b·sin, a·sin + b·cos).
 */
export function ropeRows(vec: usize, table: usize, rows: i32, nHeads: i32, headDim: i32, halves: bool): void {
  const headBytes = <usize>headDim * 4;
  for (let r = 0; r < rows; r++) {
    const cos = table + <usize>r * 2 * headBytes;
    const sin = cos + headBytes;
    for (let h = 0; h < nHeads; h++) {
      if (halves) rotateHalves(vec, cos, sin, headDim);
      else rotateAdjacent(vec, cos, sin, headDim);
      vec += headBytes;
    }
  }
}

/** One head, pairs (2i, 2i+1): a vector holds two whole pairs, and a shuffle swaps each pair's members. */
@inline
function rotateAdjacent(head: usize, cos: usize, sin: usize, headDim: i32): void {
  let j = 0;
  for (; j + 4 <= headDim; j += 4) {
    const at = <usize>j * 4;
    const v = v128.load(head + at);
    const partner = f32x4.shuffle(v, v, 1, 0, 3, 2);
    v128.store(head + at, madd(partner, v128.load(sin + at), f32x4.mul(v, v128.load(cos + at))));
  }
  for (; j < headDim; j += 2) rotatePair(head, cos, sin, j, j + 1);
}

/** One head, pairs (i, i + headDim/2): the first half and the second half are each other's partners. */
@inline
function rotateHalves(head: usize, cos: usize, sin: usize, headDim: i32): void {
  const half = headDim / 2;
  const halfBytes = <usize>half * 4;
  let i = 0;
  for (; i + 4 <= half; i += 4) {
    const first = <usize>i * 4;
    const second = first + halfBytes;
    const a = v128.load(head + first);
    const b = v128.load(head + second);
    v128.store(head + first, madd(b, v128.load(sin + first), f32x4.mul(a, v128.load(cos + first))));
    v128.store(head + second, madd(a, v128.load(sin + second), f32x4.mul(b, v128.load(cos + second))));
  }
  for (; i < half; i++) rotatePair(head, cos, sin, i, i + half);
}

@inline
function rotatePair(head: usize, cos: usize, sin: usize, first: i32, second: i32): void {
  const p = <usize>first * 4;
  const q = <usize>second * 4;
  const a = load<f32>(head + p);
  const b = load<f32>(head + q);
  store<f32>(head + p, a * load<f32>(cos + p) + b * load<f32>(sin + p));
  store<f32>(head + q, b * load<f32>(cos + q) + a * load<f32>(sin + q));
}

/**
 * Causal self-attention with grouped-query heads, for T queries at positions startPos … startPos+T−1 (see
 * src/engine/attention.ts for the maths). `keys`/`values` hold positions 0 … S−1 (S = startPos+T),
 * `kvDim` values each; `scores` is room for S floats. Writes out[T, nHeads·headDim].
 *
 * Softmax's division is folded into the weighted sum — Σ_s (e_s/Σe)·v_s = (Σ_s e_s·v_s)/Σe — which saves
 * a pass over the weights; its maximum is found while the scores are computed.
 *
 * When tracing, `recordScores` and `recordWeights` (else 0) receive [nHeads, T, S] each, as the reference
 * records them: −∞ and 0 at the masked positions. The same arithmetic runs either way, so a traced pass
 * gives the same output as an untraced one.
 */
export function causalSelfAttention(
  out: usize,
  queries: usize,
  keys: usize,
  values: usize,
  scores: usize,
  startPos: i32,
  T: i32,
  nHeads: i32,
  nKvHeads: i32,
  headDim: i32,
  recordScores: usize,
  recordWeights: usize,
): void {
  const qDim = nHeads * headDim;
  const kvRowBytes = <usize>(nKvHeads * headDim) * 4;
  const scale = <f32>(1 / Math.sqrt(<f64>headDim));
  const S = startPos + T;
  for (let t = 0; t < T; t++) {
    const visible = startPos + t + 1; // positions 0 … startPos+t: the causal mask hides the rest
    for (let h = 0; h < nHeads; h++) {
      const kvHead = (h * nKvHeads) / nHeads;
      const headOffset = <usize>(t * qDim + h * headDim) * 4;
      const kvOffset = <usize>(kvHead * headDim) * 4;
      const recordRow = <usize>((h * T + t) * S) * 4;
      const max = attentionScores(scores, queries + headOffset, keys + kvOffset, kvRowBytes, visible, headDim, scale);
      if (recordScores) recordRowOf(recordScores + recordRow, scores, visible, S, 1, -Infinity);
      const inverseSum = <f32>(1 / exponentiate(scores, visible, max));
      if (recordWeights) recordRowOf(recordWeights + recordRow, scores, visible, S, inverseSum, 0);
      weightedSum(out + headOffset, scores, values + kvOffset, kvRowBytes, visible, headDim, inverseSum);
    }
  }
}

/** Writes `visible` values times `scale` to a record row of S, filling the masked rest with `masked`. */
function recordRowOf(row: usize, values: usize, visible: i32, S: i32, scale: f32, masked: f32): void {
  for (let s = 0; s < visible; s++) store<f32>(row + <usize>s * 4, load<f32>(values + <usize>s * 4) * scale);
  for (let s = visible; s < S; s++) store<f32>(row + <usize>s * 4, masked);
}

/**
 * scores[s] = (q · key_s)·scale for s < visible; returns the largest. Four keys at a time: four
 * independent running sums hide the multiply-add latency, and one transpose-and-add turns them into four
 * scores.
 */
function attentionScores(
  scores: usize,
  q: usize,
  keys: usize,
  rowBytes: usize,
  visible: i32,
  headDim: i32,
  scale: f32,
): f32 {
  const vectorDim = headDim & ~3;
  let maxima = f32x4.splat(-Infinity);
  let s = 0;
  for (; s + 4 <= visible; s += 4) {
    const k0 = keys + <usize>s * rowBytes;
    const k1 = k0 + rowBytes;
    const k2 = k1 + rowBytes;
    const k3 = k2 + rowBytes;
    let a0 = f32x4.splat(0),
      a1 = a0,
      a2 = a0,
      a3 = a0;
    for (let i = 0; i < vectorDim; i += 4) {
      const at = <usize>i * 4;
      const qi = v128.load(q + at);
      a0 = madd(qi, v128.load(k0 + at), a0);
      a1 = madd(qi, v128.load(k1 + at), a1);
      a2 = madd(qi, v128.load(k2 + at), a2);
      a3 = madd(qi, v128.load(k3 + at), a3);
    }
    // (a0, a1, a2, a3) → (Σa0, Σa1, Σa2, Σa3)
    const t01 = f32x4.add(f32x4.shuffle(a0, a1, 0, 4, 1, 5), f32x4.shuffle(a0, a1, 2, 6, 3, 7));
    const t23 = f32x4.add(f32x4.shuffle(a2, a3, 0, 4, 1, 5), f32x4.shuffle(a2, a3, 2, 6, 3, 7));
    let sums = f32x4.add(f32x4.shuffle(t01, t23, 0, 1, 4, 5), f32x4.shuffle(t01, t23, 2, 3, 6, 7));
    for (let i = vectorDim; i < headDim; i++) {
      const at = <usize>i * 4;
      const k = f32x4.replace_lane(
        f32x4.replace_lane(
          f32x4.replace_lane(f32x4.splat(load<f32>(k0 + at)), 1, load<f32>(k1 + at)),
          2,
          load<f32>(k2 + at),
        ),
        3,
        load<f32>(k3 + at),
      );
      sums = madd(f32x4.splat(load<f32>(q + at)), k, sums);
    }
    const scaled = f32x4.mul(sums, f32x4.splat(scale));
    maxima = f32x4.max(maxima, scaled);
    v128.store(scores + <usize>s * 4, scaled);
  }
  let max = laneMax(maxima);
  for (; s < visible; s++) {
    const key = keys + <usize>s * rowBytes;
    let acc = f32x4.splat(0);
    for (let i = 0; i < vectorDim; i += 4) {
      acc = madd(v128.load(q + <usize>i * 4), v128.load(key + <usize>i * 4), acc);
    }
    let dot = laneSum(acc);
    for (let i = vectorDim; i < headDim; i++) dot += load<f32>(q + <usize>i * 4) * load<f32>(key + <usize>i * 4);
    const score = dot * scale;
    max = Mathf.max(max, score);
    store<f32>(scores + <usize>s * 4, score);
  }
  return max;
}

/**
 * x[s] = e^(x[s] − max) for s < length, and returns their sum (in float64). Subtracting the largest
 * score keeps e^x from overflowing: these are softmax's numerators, and the sum its denominator.
 */
function exponentiate(x: usize, length: i32, max: f32): f64 {
  const shift = f32x4.splat(max);
  let sum = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const at = x + <usize>i * 4;
    const e = exp4(f32x4.sub(v128.load(at), shift));
    v128.store(at, e);
    sum = addWidened(sum, e);
  }
  let total = pairSum(sum);
  for (; i < length; i++) {
    const at = x + <usize>i * 4;
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(at) - max)), 0);
    store<f32>(at, e);
    total += e;
  }
  return total;
}

/**
 * out[0 … headDim) = scale · Σ_s weights[s]·value_s over s < visible. Eight output values (two vectors)
 * and two positions at a time: four independent running sums, so that a small head (8 values, as in
 * stories260K) is not held up by the multiply-add latency. Then four values, then one.
 */
function weightedSum(
  out: usize,
  weights: usize,
  values: usize,
  rowBytes: usize,
  visible: i32,
  headDim: i32,
  scale: f32,
): void {
  const factor = f32x4.splat(scale);
  let i = 0;
  for (; i + 8 <= headDim; i += 8) {
    let value = values + <usize>i * 4;
    let even0 = f32x4.splat(0),
      even1 = even0,
      odd0 = even0,
      odd1 = even0;
    let s = 0;
    for (; s + 2 <= visible; s += 2) {
      const w0 = v128.load32_splat(weights + <usize>s * 4);
      const w1 = v128.load32_splat(weights + <usize>s * 4, 4);
      even0 = madd(w0, v128.load(value), even0);
      even1 = madd(w0, v128.load(value, 16), even1);
      value += rowBytes;
      odd0 = madd(w1, v128.load(value), odd0);
      odd1 = madd(w1, v128.load(value, 16), odd1);
      value += rowBytes;
    }
    if (s < visible) {
      const w = v128.load32_splat(weights + <usize>s * 4);
      even0 = madd(w, v128.load(value), even0);
      even1 = madd(w, v128.load(value, 16), even1);
    }
    const at = out + <usize>i * 4;
    v128.store(at, f32x4.mul(f32x4.add(even0, odd0), factor));
    v128.store(at, f32x4.mul(f32x4.add(even1, odd1), factor), 16);
  }
  for (; i + 4 <= headDim; i += 4) {
    let value = values + <usize>i * 4;
    let c = f32x4.splat(0);
    for (let s = 0; s < visible; s++) {
      c = madd(v128.load32_splat(weights + <usize>s * 4), v128.load(value), c);
      value += rowBytes;
    }
    v128.store(out + <usize>i * 4, f32x4.mul(c, factor));
  }
  for (; i < headDim; i++) {
    let value = values + <usize>i * 4;
    let c: f32 = 0;
    for (let s = 0; s < visible; s++) {
      c += load<f32>(weights + <usize>s * 4) * load<f32>(value);
      value += rowBytes;
    }
    store<f32>(out + <usize>i * 4, c * scale);
  }
}

/**
 * For each of `rows` rows of `width` logits: the largest (maxOut[r]) and softmax's denominator
 * Σ e^(logit − max) (sumOut[r]). The exponentials are computed four at a time; they are added one by one
 * in float32, in the order of the readable version (which adds as the engine's sampler does), so the two
 * differ only by exp4's last bits, not by the order of a long float32 sum.
 */
export function softmaxSumsRows(maxOut: usize, sumOut: usize, logits: usize, rows: i32, width: i32): void {
  const rowBytes = <usize>width * 4;
  for (let r = 0; r < rows; r++) {
    let maxima = f32x4.splat(-Infinity);
    let i = 0;
    for (; i + 4 <= width; i += 4) maxima = f32x4.max(maxima, v128.load(logits + <usize>i * 4));
    let max = laneMax(maxima);
    for (; i < width; i++) max = Mathf.max(max, load<f32>(logits + <usize>i * 4));
    const shift = f32x4.splat(max);
    let sum: f32 = 0;
    i = 0;
    for (; i + 4 <= width; i += 4) {
      const e = exp4(f32x4.sub(v128.load(logits + <usize>i * 4), shift));
      sum += f32x4.extract_lane(e, 0);
      sum += f32x4.extract_lane(e, 1);
      sum += f32x4.extract_lane(e, 2);
      sum += f32x4.extract_lane(e, 3);
    }
    for (; i < width; i++) {
      sum += f32x4.extract_lane(exp4(f32x4.splat(load<f32>(logits + <usize>i * 4) - max)), 0);
    }
    store<f32>(maxOut + <usize>r * 4, max);
    store<f32>(sumOut + <usize>r * 4, sum);
    logits += rowBytes;
  }
}
