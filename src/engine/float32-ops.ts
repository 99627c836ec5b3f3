/**
 * The layer operations — RMSNorm, RoPE, attention, SwiGLU — in llama2.c's own arithmetic: float32 throughout,
 * each operation rounded where runq.c rounds it, in its order (Math.fround after every float32 operation;
 * sinf and cosf as the C library computes them, libm-float32.ts; expf and powf as the float32 rounding of
 * the float64 function).
 *
 * The engine's readable operations (ops.ts, attention.ts) add up in float64 and agree with these to about
 * 1e-7 of each value; for a float32 model that never changes a generated token. A llama2.c `runq` model is
 * different: it rounds every activation vector to int8 before each product, so a difference in the last bit
 * of an activation can move a value across a rounding boundary, and over a few hundred tokens the text
 * drifts. A runq model therefore runs these (forward.ts chooses them), which is what makes `glassbox
 * generate` print runq's text byte for byte.
 */
import type { AttentionRecord, AttentionShape } from './attention.ts';
import type { LayerKernels } from '../kernels/layer-reference.ts';
import { cosf, sinf } from './libm-float32.ts';
import { kvHeadOf, type RopeLayout } from './model.ts';
import { softmaxSumsRows } from './sampling.ts';

const f32 = Math.fround;
const expf = (x: number) => f32(Math.exp(x));

/** run.c's rmsnorm: a float32 sum of squares, divided by the size, plus eps, 1/sqrtf, then gain·(ss·x). */
function rmsNormRows(
  out: Float32Array,
  x: Float32Array,
  gain: Float32Array,
  rows: number,
  dim: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const row = r * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss = f32(ss + f32(x[row + j] * x[row + j]));
    ss = f32(f32(ss / dim) + f32(eps));
    ss = f32(1 / f32(Math.sqrt(ss)));
    for (let j = 0; j < dim; j++) out[row + j] = f32(gain[j] * f32(ss * x[row + j]));
  }
}

/** run.c's SwiGLU: val ·= 1 / (1 + expf(−val)), then val ·= up. */
function swiglu(out: Float32Array, gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    const val = gate[i];
    const sigmoid = f32(1 / f32(1 + expf(-val)));
    out[i] = f32(f32(val * sigmoid) * up[i]);
  }
}

/**
 * run.c's RoPE: for the pair at even index i of a head, freq = 1 / powf(theta, i / headSize) and the angle
 * pos · freq, both float32; adjacent pairs (run.c has no other layout).
 */
function applyRopeRows(
  vec: Float32Array,
  startPos: number,
  rows: number,
  nHeads: number,
  headDim: number,
  layout: RopeLayout,
  theta: number,
): void {
  if (layout !== 'interleaved')
    throw new Error('llama2.c arithmetic: RoPE pairs must be adjacent (interleaved)');
  const width = nHeads * headDim;
  for (let r = 0; r < rows; r++) {
    const pos = startPos + r;
    for (let i = 0; i < width; i += 2) {
      const freq = f32(1 / f32(Math.pow(f32(theta), f32((i % headDim) / headDim))));
      const angle = f32(pos * freq);
      const cos = cosf(angle);
      const sin = sinf(angle);
      const v0 = vec[r * width + i];
      const v1 = vec[r * width + i + 1];
      vec[r * width + i] = f32(f32(v0 * cos) - f32(v1 * sin));
      vec[r * width + i + 1] = f32(f32(v0 * sin) + f32(v1 * cos));
    }
  }
}

/**
 * run.c's attention for each query: float32 dot products with every visible key, divided by sqrtf(headDim);
 * softmax (max, expf(x − max), a float32 sum, divide); then the values added up position by position.
 */
function causalSelfAttention(
  out: Float32Array,
  queries: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  startPos: number,
  T: number,
  shape: AttentionShape,
  record?: AttentionRecord,
): void {
  const { nHeads, nKvHeads, headDim } = shape;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const S = startPos + T;
  const sqrtHeadDim = f32(Math.sqrt(headDim));
  const att = new Float32Array(S);
  for (let t = 0; t < T; t++) {
    const visible = startPos + t + 1;
    for (let h = 0; h < nHeads; h++) {
      const q = t * qDim + h * headDim;
      const kvOffset = kvHeadOf(h, nHeads, nKvHeads) * headDim;
      for (let s = 0; s < visible; s++) {
        let score = 0;
        for (let i = 0; i < headDim; i++)
          score = f32(score + f32(queries[q + i] * keys[s * kvDim + kvOffset + i]));
        att[s] = f32(score / sqrtHeadDim);
      }
      const row = (h * T + t) * S;
      if (record) {
        record.scores.set(att.subarray(0, visible), row);
        record.scores.fill(-Infinity, row + visible, row + S);
      }
      let max = att[0];
      for (let s = 1; s < visible; s++) if (att[s] > max) max = att[s];
      let sum = 0;
      for (let s = 0; s < visible; s++) {
        att[s] = expf(f32(att[s] - max));
        sum = f32(sum + att[s]);
      }
      for (let s = 0; s < visible; s++) att[s] = f32(att[s] / sum);
      if (record) {
        record.weights.set(att.subarray(0, visible), row);
        record.weights.fill(0, row + visible, row + S);
      }
      const o = t * qDim + h * headDim;
      out.fill(0, o, o + headDim);
      for (let s = 0; s < visible; s++) {
        for (let i = 0; i < headDim; i++)
          out[o + i] = f32(out[o + i] + f32(att[s] * values[s * kvDim + kvOffset + i]));
      }
    }
  }
}

/**
 * The layer operations in llama2.c's float32 arithmetic, as a kernel set's layer part (softmax's sums over
 * the vocabulary are float32 already, as the sampler adds them).
 */
export const float32LayerKernels: LayerKernels = {
  rmsNormRows,
  swiglu,
  applyRopeRows,
  causalSelfAttention,
  softmaxSumsRows,
};
