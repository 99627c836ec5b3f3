/**
 * The Trace: every intermediate tensor of one forward pass, recorded when asked for.
 *
 * Naming and shape convention (T = tokens in this pass, S = positions attended to = startPos + T,
 * H = query heads, Hkv = key/value heads, D = headDim, dim = model width, hidden = FFN width, V = vocab):
 *
 *   tokens                       the T input ids, at positions startPos … startPos+T−1
 *   interventions                what the pass changed on purpose (empty for a plain pass)
 *   embeddings                   [T, dim]      rows of the embedding table
 *   layers[l].input              [T, dim]      residual stream entering layer l
 *   layers[l].attnNorm           [T, dim]      RMSNorm(input) · gain
 *   layers[l].q / k / v          [T, H|Hkv, D] projections, before RoPE
 *   layers[l].qRope / kRope      [T, H|Hkv, D] after RoPE
 *   layers[l].scores             [H, T, S]     q·k/√D for every key; −Infinity where the causal mask forbids
 *   layers[l].mask               [T, S]        1 where query t may attend to position s (s ≤ startPos+t), else 0
 *   layers[l].weights            [H, T, S]     softmax of scores: each row sums to 1, masked entries exactly 0
 *   layers[l].attnOutput         [T, H·D]      weighted sums of values, heads side by side (before wo)
 *   layers[l].attnProjected      [T, dim]      attnOutput · woᵀ: what attention adds to the stream
 *   layers[l].residualAfterAttn  [T, dim]      input + attnProjected
 *   layers[l].ffnNorm            [T, dim]      RMSNorm(residualAfterAttn) · gain
 *   layers[l].ffnGate / ffnUp    [T, hidden]   the two SwiGLU projections
 *   layers[l].ffnActivation      [T, hidden]   silu(gate) · up
 *   layers[l].ffnOutput          [T, dim]      ffnActivation · wDownᵀ: what the FFN adds to the stream
 *   layers[l].residualAfterFfn   [T, dim]      residualAfterAttn + ffnOutput (the next layer's input)
 *   finalNorm                    [T, dim]      RMSNorm of the last residual
 *   logits                       [T, V]        one score per vocabulary entry, per position
 *
 * Keys and values of earlier positions (from the KV cache) appear in scores/weights as columns 0 … startPos−1.
 */
import type { Intervention } from './interventions.ts';
import type { Tensor } from './model.ts';

export interface LayerTrace {
  input: Tensor;
  attnNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  qRope: Tensor;
  kRope: Tensor;
  scores: Tensor;
  mask: Tensor;
  weights: Tensor;
  attnOutput: Tensor;
  attnProjected: Tensor;
  residualAfterAttn: Tensor;
  ffnNorm: Tensor;
  ffnGate: Tensor;
  ffnUp: Tensor;
  ffnActivation: Tensor;
  ffnOutput: Tensor;
  residualAfterFfn: Tensor;
}

/** The names of a layer's tensors, in the order a pass computes them (and the order the JSON lists them). */
export const LAYER_TENSOR_NAMES = [
  'input',
  'attnNorm',
  'q',
  'k',
  'v',
  'qRope',
  'kRope',
  'scores',
  'mask',
  'weights',
  'attnOutput',
  'attnProjected',
  'residualAfterAttn',
  'ffnNorm',
  'ffnGate',
  'ffnUp',
  'ffnActivation',
  'ffnOutput',
  'residualAfterFfn',
] as const satisfies readonly (keyof LayerTrace)[];

export type LayerTensorName = (typeof LAYER_TENSOR_NAMES)[number];

export interface Trace {
  tokens: number[];
  startPos: number;
  /** What the pass was asked to change (interventions.ts); the tensors below show the changed values. */
  interventions: Intervention[];
  embeddings: Tensor;
  layers: LayerTrace[];
  finalNorm: Tensor;
  logits: Tensor;
}

/** A copy of `data` as a Tensor of the given shape (the forward pass reuses its buffers, so traces copy). */
export function snapshot(data: Float32Array, shape: readonly number[]): Tensor {
  return { data: Float32Array.from(data), shape };
}
