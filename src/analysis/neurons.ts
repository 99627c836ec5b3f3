/**
 * The feed-forward block's neurons: SwiGLU step by step for one position, the most active neurons, what a
 * neuron writes (the tokens its down-projection column promotes and suppresses through the classifier), and
 * what scaling it does to the next-token distribution. Pure functions of a Model and a Trace (no DOM, no
 * Node I/O), shared by the course's chapter 9 and `glassbox inspect neurons`.
 *
 * A "neuron" n of layer l is entry n of the SwiGLU activation, silu(gate_n) · up_n, with
 * gate_n = wGate[n, :] · h and up_n = wUp[n, :] · h for the normalized stream h. Rows n of wGate and wUp are
 * what it reads (its key); column n of wDown is what it writes into the stream, times its activation
 * (its value).
 */
import { forward } from '../engine/forward.ts';
import { KVCache } from '../engine/kv-cache.ts';
import type { Model } from '../engine/model.ts';
import { silu } from '../engine/ops.ts';
import { temperatureSoftmax } from '../engine/sampling.ts';
import type { Trace } from '../engine/trace.ts';
import type { LayerKernels } from '../kernels/layer-reference.ts';
import type { MatrixKernels } from '../kernels/reference.ts';
import { topIndices } from './lens.ts';

function checkLayer(trace: Trace, layer: number): void {
  const L = trace.layers.length;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L)
    throw new Error(`layer ${layer} does not exist: the model has layers 0…${L - 1}`);
}

function checkPosition(trace: Trace, position: number): void {
  const T = trace.tokens.length;
  if (!Number.isInteger(position) || position < 0 || position >= T)
    throw new Error(`position ${position} does not exist: the text has positions 0…${T - 1}`);
}

/** Row `row` of a [rows, width] Float32Array, copied. */
function row(data: Float32Array, width: number, index: number): Float32Array {
  return data.slice(index * width, (index + 1) * width);
}

// --- SwiGLU step by step --------------------------------------------------------------------------------

export interface SwigluSteps {
  layer: number;
  position: number;
  /** layers[l].ffnNorm[position]: the normalized stream the block reads, [dim]. */
  input: Float32Array;
  /** layers[l].ffnGate[position] = wGate · input, [hidden]. */
  gate: Float32Array;
  /** silu(gate), computed here with the engine's silu (the Trace does not keep it), [hidden]. */
  siluGate: Float32Array;
  /** layers[l].ffnUp[position] = wUp · input, [hidden]. */
  up: Float32Array;
  /** layers[l].ffnActivation[position] = silu(gate) ⊙ up, [hidden]. */
  activation: Float32Array;
  /** layers[l].ffnOutput[position] = wDown · activation: what the block adds to the stream, [dim]. */
  output: Float32Array;
}

/** The feed-forward block of `layer` at `position`, one step at a time, from the Trace. */
export function swigluSteps(trace: Trace, layer: number, position: number): SwigluSteps {
  checkLayer(trace, layer);
  checkPosition(trace, position);
  const slice = trace.layers[layer];
  const dim = slice.ffnNorm.shape[1];
  const hidden = slice.ffnGate.shape[1];
  const gate = row(slice.ffnGate.data, hidden, position);
  return {
    layer,
    position,
    input: row(slice.ffnNorm.data, dim, position),
    gate,
    siluGate: Float32Array.from(gate, silu),
    up: row(slice.ffnUp.data, hidden, position),
    activation: row(slice.ffnActivation.data, hidden, position),
    output: row(slice.ffnOutput.data, dim, position),
  };
}

// --- the most active neurons ----------------------------------------------------------------------------

export interface ActiveNeuron {
  layer: number;
  neuron: number;
  /** The activation (signed) at `position`. */
  activation: number;
  /** Where it was measured. */
  position: number;
}

/**
 * The `k` neurons of `layer` with the largest |activation|, largest first (ties: lower index first):
 * at `position`, or, with position 'all', each neuron's largest |activation| anywhere in the text (and the
 * position where it was).
 */
export function topNeurons(trace: Trace, layer: number, position: number | 'all', k: number): ActiveNeuron[] {
  checkLayer(trace, layer);
  if (position !== 'all') checkPosition(trace, position);
  const activation = trace.layers[layer].ffnActivation;
  const hidden = activation.shape[1];
  const T = trace.tokens.length;
  const magnitude = new Float64Array(hidden);
  const where = new Int32Array(hidden).fill(position === 'all' ? 0 : position);
  const from = position === 'all' ? 0 : position;
  const to = position === 'all' ? T : position + 1;
  for (let t = from; t < to; t++) {
    for (let n = 0; n < hidden; n++) {
      const value = Math.abs(activation.data[t * hidden + n]);
      if (value > magnitude[n]) {
        magnitude[n] = value;
        where[n] = t;
      }
    }
  }
  return topIndices(magnitude, Math.min(k, hidden)).map((neuron) => ({
    layer,
    neuron,
    activation: activation.data[where[neuron] * hidden + neuron],
    position: where[neuron],
  }));
}

/** What share of Σ|activation| at `position` the `count` largest neurons carry (how sparse the layer is). */
export function activationShare(trace: Trace, layer: number, position: number, count: number): number {
  const top = topNeurons(trace, layer, position, count);
  const activation = trace.layers[layer].ffnActivation;
  const hidden = activation.shape[1];
  let total = 0;
  for (let n = 0; n < hidden; n++) total += Math.abs(activation.data[position * hidden + n]);
  const shown = top.reduce((sum, entry) => sum + Math.abs(entry.activation), 0);
  return total === 0 ? 0 : shown / total;
}

// --- a neuron as a key → value memory -------------------------------------------------------------------

export interface TokenScore {
  token: number;
  /** classifier[token] · (finalNorm gain ⊙ wDown[:, n]) */
  score: number;
}

export interface NeuronValue {
  layer: number;
  neuron: number;
  /** wDown[:, n]: what one unit of activation adds to the stream, [dim]. */
  column: Float32Array;
  /** ‖wDown[:, n]‖ */
  columnNorm: number;
  /** The tokens whose logits a positive activation raises most, highest first. */
  promoted: TokenScore[];
  /** The tokens it lowers most, lowest first. */
  suppressed: TokenScore[];
}

/**
 * What neuron n of `layer` writes, read through the unembedding: score(v) = classifier[v] · (g ⊙ wDown[:, n]),
 * with g the FINAL RMSNorm's gain. The gain is included because everything the stream holds reaches the
 * classifier only through the final norm, which multiplies dimension i by g_i: leaving it out would rank
 * tokens by a product the model never computes (and the house model's gains are far from 1). The norm's
 * other factor, 1/rms(stream), is one positive number for the whole vector, so it scales every score alike
 * and cannot change the order. To first order, adding a·wDown[:, n] to the final stream moves logit v by
 * (a/rms)·score(v), less a term proportional to the logit v already had (the norm shrinking the whole vector
 * as it grows), which is not specific to the neuron; tests/analysis-neurons.test.ts checks exactly this.
 * Everything later layers do with the neuron's output is left out: this is its direct effect only. A
 * positive activation raises the logits of `promoted` and lowers those of `suppressed`; a negative one does
 * the opposite.
 */
export function neuronValue(model: Model, layer: number, neuron: number, k: number): NeuronValue {
  const { dim, hiddenDim, vocabSize, nLayers } = model.config;
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers)
    throw new Error(`layer ${layer} does not exist: the model has layers 0…${nLayers - 1}`);
  if (!Number.isInteger(neuron) || neuron < 0 || neuron >= hiddenDim)
    throw new Error(`neuron ${neuron} does not exist: layer ${layer} has neurons 0…${hiddenDim - 1}`);
  const wDown = model.weights.layers[layer].wDown.data; // [dim, hidden]
  const gain = model.weights.finalNorm.data;
  const classifier = model.weights.classifier.data; // [vocab, dim]
  const column = new Float32Array(dim);
  const read = new Float64Array(dim);
  let squares = 0;
  for (let i = 0; i < dim; i++) {
    column[i] = wDown[i * hiddenDim + neuron];
    read[i] = gain[i] * column[i];
    squares += column[i] * column[i];
  }
  const scores = new Float64Array(vocabSize);
  for (let v = 0; v < vocabSize; v++) {
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += classifier[v * dim + i] * read[i];
    scores[v] = sum;
  }
  const count = Math.min(k, vocabSize);
  const negated = scores.map((s) => -s);
  return {
    layer,
    neuron,
    column,
    columnNorm: Math.sqrt(squares),
    promoted: topIndices(scores, count).map((token) => ({ token, score: scores[token] })),
    suppressed: topIndices(negated, count).map((token) => ({ token, score: scores[token] })),
  };
}

/** Neuron n's activation at every position of the text: where in the reader's text its key matched. */
export function neuronActivations(trace: Trace, layer: number, neuron: number): Float32Array {
  checkLayer(trace, layer);
  const activation = trace.layers[layer].ffnActivation;
  const hidden = activation.shape[1];
  if (!Number.isInteger(neuron) || neuron < 0 || neuron >= hidden)
    throw new Error(`neuron ${neuron} does not exist: layer ${layer} has neurons 0…${hidden - 1}`);
  return Float32Array.from({ length: trace.tokens.length }, (_, t) => activation.data[t * hidden + neuron]);
}

// --- scaling a neuron -----------------------------------------------------------------------------------

export interface ScaledNeuron {
  layer: number;
  neuron: number;
  factor: number;
  /** softmax(logits) for the token after the last, as the model computes it … */
  before: Float32Array;
  /** … and with the neuron's activation multiplied by `factor` at every position (scaleNeuron). */
  after: Float32Array;
  /** The most likely next tokens before, most likely first, and the most likely after. */
  topBefore: number[];
  topAfter: number[];
  /** Σ before · log(before / after), in nats: how far the distribution moved. */
  klDivergence: number;
}

/**
 * The next-token distribution with neuron n of `layer` multiplied by `factor` at every position (the
 * engine's scaleNeuron intervention; 0 silences it, 1 changes nothing), beside the plain one. `before` comes
 * from `trace` (the pass over the same tokens); `after` is one more forward pass, untraced, last row only.
 */
export function scaleNeuronEffect(
  model: Model,
  trace: Trace,
  kernels: MatrixKernels & Partial<LayerKernels>,
  { layer, neuron, factor, k = 10 }: { layer: number; neuron: number; factor: number; k?: number },
): ScaledNeuron {
  const { vocabSize } = model.config;
  const T = trace.tokens.length;
  const before = temperatureSoftmax(trace.logits.data.slice((T - 1) * vocabSize, T * vocabSize), 1);
  const { logits } = forward(model, trace.tokens, new KVCache(model.config), {
    kernels,
    logits: 'last',
    interventions: [{ kind: 'scaleNeuron', layer, neuron, factor }],
  });
  const after = temperatureSoftmax(logits, 1);
  let klDivergence = 0;
  for (let v = 0; v < vocabSize; v++) {
    if (before[v] > 0) klDivergence += before[v] * Math.log(before[v] / Math.max(after[v], Number.MIN_VALUE));
  }
  return {
    layer,
    neuron,
    factor,
    before,
    after,
    topBefore: topIndices(before, Math.min(k, vocabSize)),
    topAfter: topIndices(after, Math.min(k, vocabSize)),
    klDivergence: Math.max(0, klDivergence),
  };
}

// --- why the hidden width is what it is -----------------------------------------------------------------

/**
 * The hidden width Meta's Llama code gives a model of width `dim` (llama/model.py, FeedForward): start from
 * the classic 4·dim, take 2/3 of it (SwiGLU has three matrices instead of two, so this keeps the parameter
 * count of a 4·dim two-matrix block), optionally scale by ffn_dim_multiplier, then round up to a multiple of
 * `multipleOf` (256 for Llama 2).
 */
export function llamaHiddenDim(dim: number, multipleOf: number, ffnDimMultiplier?: number): number {
  let hidden = Math.trunc((2 * 4 * dim) / 3);
  if (ffnDimMultiplier !== undefined) hidden = Math.trunc(ffnDimMultiplier * hidden);
  return multipleOf * Math.ceil(hidden / multipleOf);
}

export interface FfnWidth {
  dim: number;
  hidden: number;
  /** hidden / dim */
  ratio: number;
  /** This model's feed-forward weights per layer: three [hidden × dim] matrices. */
  swigluParameters: number;
  /** A classic (GPT-2) block of the same width: two matrices of 4·dim × dim (biases left out). */
  classicParameters: number;
  /** 8/3 · dim, the width at which SwiGLU's three matrices hold exactly the classic block's parameters. */
  equalParameterHidden: number;
  /** Llama's rule for this width (multiple of 256, as in Llama 2), and its per-layer parameters. */
  llamaRuleHidden: number;
  llamaRuleParameters: number;
}

/** The arithmetic behind a model's hidden width, from its config. */
export function ffnWidth(dim: number, hidden: number): FfnWidth {
  return {
    dim,
    hidden,
    ratio: hidden / dim,
    swigluParameters: 3 * hidden * dim,
    classicParameters: 2 * 4 * dim * dim,
    equalParameterHidden: (8 / 3) * dim,
    llamaRuleHidden: llamaHiddenDim(dim, 256),
    llamaRuleParameters: 3 * llamaHiddenDim(dim, 256) * dim,
  };
}

/**
 * Published shapes to check the rule against: Llama 2's config.json files (Hugging Face meta-llama/
 * Llama-2-7b-hf and -13b-hf: hidden_size, intermediate_size), whose widths the rule reproduces with
 * multiple_of = 256.
 */
export const LLAMA2_PUBLISHED = [
  { name: 'Llama 2 7B', dim: 4096, hidden: 11008 },
  { name: 'Llama 2 13B', dim: 5120, hidden: 13824 },
] as const;
