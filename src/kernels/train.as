/**
 * Training's element-wise kernels: the softmaxes of attention and of the cross-entropy loss, forward and
 * backward, over many rows at once. With the matrix products in WebAssembly these loops were most of what
 * stayed in JavaScript (a third of a training step at a context of 512). Their readable versions are the
 * loops of src/engine/train/ops.ts, the reference the tests hold these to: the same formulas, with exp
 * computed four at a time (exp4) and sums kept in four float32 lanes, so they differ from the readable
 * float64 loops in the last bits only.
 */
import { exp4, laneMax, laneSum } from './simd';

/**
 * Attention's causal softmax, in place, over `rows` rows of T scores: row r belongs to position t = r mod T;
 * its entries s ≤ t become softmax(scale · score) over those entries, the masked ones (s > t) become 0.
 */
export function causalSoftmaxRows(scores: usize, rows: i32, T: i32, scale: f32): void {
  const factor = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    const visible = (r % T) + 1;
    let maxima = f32x4.splat(-Infinity);
    let s = 0;
    for (; s + 4 <= visible; s += 4) {
      const at = scores + <usize>s * 4;
      const x = f32x4.mul(v128.load(at), factor);
      v128.store(at, x);
      maxima = f32x4.max(maxima, x);
    }
    let max = laneMax(maxima);
    for (; s < visible; s++) {
      const at = scores + <usize>s * 4;
      const x = load<f32>(at) * scale;
      store<f32>(at, x);
      max = Mathf.max(max, x);
    }
    // Subtracting the max keeps exp() from overflowing.
    const sum = exponentiateInPlace(scores, visible, max);
    scaleInPlace(scores, visible, 1 / sum);
    memory.fill(scores + <usize>visible * 4, 0, <usize>(T - visible) * 4);
    scores += <usize>T * 4;
  }
}

/** x[i] ← e^(x[i] − max) for i < length; returns their sum. */
@inline
function exponentiateInPlace(x: usize, length: i32, max: f32): f32 {
  const shift = f32x4.splat(max);
  let sums = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const at = x + <usize>i * 4;
    const e = exp4(f32x4.sub(v128.load(at), shift));
    v128.store(at, e);
    sums = f32x4.add(sums, e);
  }
  let sum = laneSum(sums);
  for (; i < length; i++) {
    const at = x + <usize>i * 4;
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(at) - max)), 0);
    store<f32>(at, e);
    sum += e;
  }
  return sum;
}

@inline
function scaleInPlace(x: usize, length: i32, factor: f32): void {
  const f = f32x4.splat(factor);
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const at = x + <usize>i * 4;
    v128.store(at, f32x4.mul(v128.load(at), f));
  }
  for (; i < length; i++) {
    const at = x + <usize>i * 4;
    store<f32>(at, load<f32>(at) * factor);
  }
}

/**
 * The causal softmax's backward pass, in place: dProbs becomes dS, the gradient with respect to the scores
 * before scaling: dS[s] = P[s]·(dP[s] − Σ_j P[j]·dP[j])·scale for s ≤ t, 0 for the masked entries.
 */
export function causalSoftmaxBackwardRows(dProbs: usize, probs: usize, rows: i32, T: i32, scale: f32): void {
  const factor = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    const visible = (r % T) + 1;
    let sums = f32x4.splat(0);
    let s = 0;
    for (; s + 4 <= visible; s += 4) {
      const at = <usize>s * 4;
      sums = f32x4.add(sums, f32x4.mul(v128.load(probs + at), v128.load(dProbs + at)));
    }
    let expected = laneSum(sums);
    for (; s < visible; s++) expected += load<f32>(probs + <usize>s * 4) * load<f32>(dProbs + <usize>s * 4);
    const mean = f32x4.splat(expected);
    s = 0;
    for (; s + 4 <= visible; s += 4) {
      const at = <usize>s * 4;
      const p = v128.load(probs + at);
      v128.store(dProbs + at, f32x4.mul(f32x4.mul(p, f32x4.sub(v128.load(dProbs + at), mean)), factor));
    }
    for (; s < visible; s++) {
      const at = <usize>s * 4;
      store<f32>(dProbs + at, load<f32>(probs + at) * (load<f32>(dProbs + at) - expected) * scale);
    }
    memory.fill(dProbs + <usize>visible * 4, 0, <usize>(T - visible) * 4);
    dProbs += <usize>T * 4;
    probs += <usize>T * 4;
  }
}

/** out[r] = log Σ_j e^(logits[r, j]) for each of `rows` rows of `width` (the max subtracted first). */
export function logSumExpRows(out: usize, logits: usize, rows: i32, width: i32): void {
  for (let r = 0; r < rows; r++) {
    let maxima = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= width; j += 4) maxima = f32x4.max(maxima, v128.load(logits + <usize>j * 4));
    let max = laneMax(maxima);
    for (; j < width; j++) max = Mathf.max(max, load<f32>(logits + <usize>j * 4));
    const shift = f32x4.splat(max);
    let sums = f32x4.splat(0);
    j = 0;
    for (; j + 4 <= width; j += 4) sums = f32x4.add(sums, exp4(f32x4.sub(v128.load(logits + <usize>j * 4), shift)));
    let sum = laneSum(sums);
    for (; j < width; j++) sum += f32x4.extract_lane(exp4(f32x4.splat(load<f32>(logits + <usize>j * 4) - max)), 0);
    store<f32>(out + <usize>r * 4, max + Mathf.log(sum));
    logits += <usize>width * 4;
  }
}

/**
 * The cross-entropy's gradient without its one-hot part: out[r, j] = e^(logits[r, j] − logSumExp[r])·scale
 * (softmax times the mean's 1/rows; the caller subtracts `scale` at each row's target).
 */
export function softmaxGradientRows(out: usize, logits: usize, logSumExp: usize, rows: i32, width: i32, scale: f32): void {
  const factor = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    const lse = load<f32>(logSumExp + <usize>r * 4);
    const shift = f32x4.splat(lse);
    let j = 0;
    for (; j + 4 <= width; j += 4) {
      const at = <usize>j * 4;
      v128.store(out + at, f32x4.mul(exp4(f32x4.sub(v128.load(logits + at), shift)), factor));
    }
    for (; j < width; j++) {
      const at = <usize>j * 4;
      store<f32>(out + at, f32x4.extract_lane(exp4(f32x4.splat(load<f32>(logits + at) - lse)), 0) * scale);
    }
    out += <usize>width * 4;
    logits += <usize>width * 4;
  }
}

/**
 * SwiGLU's backward pass over `length` values (out = silu(g) ⊙ up, silu(g) = g·σ(g)):
 * dGate = dOut ⊙ up ⊙ σ(g)·(1 + g·(1 − σ(g))), dUp = dOut ⊙ silu(g).
 */
export function swigluBackward(dGate: usize, dUp: usize, dOut: usize, gate: usize, up: usize, length: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const at = <usize>i * 4;
    const g = v128.load(gate + at);
    const d = v128.load(dOut + at);
    const sigmoid = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(g))));
    const slope = f32x4.mul(sigmoid, f32x4.add(one, f32x4.mul(g, f32x4.sub(one, sigmoid))));
    v128.store(dGate + at, f32x4.mul(f32x4.mul(d, v128.load(up + at)), slope));
    v128.store(dUp + at, f32x4.mul(d, f32x4.mul(g, sigmoid)));
  }
  for (; i < length; i++) {
    const at = <usize>i * 4;
    const g = load<f32>(gate + at);
    const d = load<f32>(dOut + at);
    const sigmoid: f32 = 1 / (1 + f32x4.extract_lane(exp4(f32x4.splat(-g)), 0));
    store<f32>(dGate + at, d * load<f32>(up + at) * sigmoid * (1 + g * (1 - sigmoid)));
    store<f32>(dUp + at, d * g * sigmoid);
  }
}
