/**
 * The Llama forward pass: token ids in, one row of logits (a score per vocabulary entry) per position out.
 *
 *   x = embedding[token]
 *   for each layer:
 *     x = x + Attention(RMSNorm(x))          causal, grouped-query, with RoPE on q and k
 *     x = x + SwiGLU-FFN(RMSNorm(x))
 *   logits = classifier · RMSNorm(x)
 *
 * One function serves both prefill (a whole prompt, T tokens at once, so every weight matrix is read once
 * per pass rather than once per token) and decode (T = 1, reusing the keys and values in the KV cache).
 * With `trace: true` it also returns a Trace of every intermediate tensor (see trace.ts), written by a
 * recorder that does nothing when not tracing, so the arithmetic is the same either way.
 *
 * The caller chooses the kernels (the readable TypeScript in src/kernels/reference.ts, or the WebAssembly
 * ones from src/kernels/select.ts): the engine itself imports no WebAssembly or thread code.
 */
import { withLayerKernels, type EngineKernels, type LayerKernels } from '../kernels/layer-reference.ts';
import type { MatrixKernels } from '../kernels/reference.ts';
import type { AttentionRecord } from './attention.ts';
import type { KVCache } from './kv-cache.ts';
import { headDim, type LayerWeights, type Model, type Tensor } from './model.ts';
import {
  checkInterventions,
  interveneOnAttention,
  patchResidual,
  scaleNeurons,
  type Intervention,
} from './interventions.ts';
import { embed } from './ops.ts';
import { LAYER_TENSOR_NAMES, snapshot, type LayerTensorName, type LayerTrace, type Trace } from './trace.ts';

export interface ForwardOptions {
  /**
   * Which kernels compute the products and the layer operations (RMSNorm, RoPE, attention, SwiGLU): the
   * readable TypeScript (src/kernels/reference.ts, src/engine/ops.ts / attention.ts) or a faster set the
   * tests hold to it. Kernels without the layer operations (plain MatrixKernels) run those with the
   * readable functions.
   */
  kernels: MatrixKernels & Partial<LayerKernels>;
  /** Record every intermediate tensor (costs memory and time; off by default). */
  trace?: boolean;
  /** 'all' returns logits for every position [T, V]; 'last' only for the last one [1, V] (what sampling needs). */
  logits?: 'all' | 'last';
  /** Changes to make on purpose (interventions.ts); none by default, and an empty list changes nothing. */
  interventions?: readonly Intervention[];
}

export interface ForwardResult {
  /** [T, vocabSize] or, with logits: 'last', [1, vocabSize]. */
  logits: Float32Array;
  trace?: Trace;
}

/** What a pass asked for with `trace: true` returns: the Trace is always there. */
export interface TracedForwardResult extends ForwardResult {
  trace: Trace;
}

/** Scratch buffers for one pass of T tokens (row-major [T, width]). */
function allocateActivations(model: Model, T: number) {
  const { dim, hiddenDim, nHeads, nKvHeads } = model.config;
  const hd = headDim(model.config);
  return {
    x: new Float32Array(T * dim), // the residual stream
    normed: new Float32Array(T * dim),
    q: new Float32Array(T * nHeads * hd),
    k: new Float32Array(T * nKvHeads * hd),
    v: new Float32Array(T * nKvHeads * hd),
    attnOutput: new Float32Array(T * nHeads * hd),
    projected: new Float32Array(T * dim),
    gate: new Float32Array(T * hiddenDim),
    up: new Float32Array(T * hiddenDim),
    activation: new Float32Array(T * hiddenDim),
  };
}

type Activations = ReturnType<typeof allocateActivations>;

/** What every block of one pass shares: the model, the kernels, the buffers, where the pass starts. */
interface Pass {
  model: Model;
  kernels: EngineKernels;
  act: Activations;
  cache: KVCache;
  /** Tokens in this pass. */
  T: number;
  /** Position of the first of them (the number already in the cache). */
  startPos: number;
  interventions: readonly Intervention[];
  recorder: Recorder;
}

export function forward(
  model: Model,
  tokens: readonly number[],
  cache: KVCache,
  options: ForwardOptions & { trace: true },
): TracedForwardResult;
export function forward(
  model: Model,
  tokens: readonly number[],
  cache: KVCache,
  options: ForwardOptions,
): ForwardResult;
export function forward(
  model: Model,
  tokens: readonly number[],
  cache: KVCache,
  options: ForwardOptions,
): ForwardResult {
  checkInput(model, tokens, cache);
  const interventions = options.interventions ?? [];
  checkInterventions(model.config, interventions);
  const { config, weights } = model;
  const { dim, vocabSize, normEps } = config;
  const T = tokens.length;
  const pass: Pass = {
    model,
    kernels: withLayerKernels(options.kernels),
    act: allocateActivations(model, T),
    cache,
    T,
    startPos: cache.length,
    interventions,
    recorder: options.trace === true ? new TraceRecorder() : NOT_RECORDING,
  };
  const { act, kernels, recorder } = pass;

  tokens.forEach((token, t) =>
    embed(act.x.subarray(t * dim, (t + 1) * dim), weights.tokenEmbedding.data, token, dim),
  );
  recorder.embeddings(act.x, [T, dim]);

  weights.layers.forEach((layer, l) => {
    patchResidual(act.x, l, interventions, pass, dim);
    recorder.layerTensor('input', act.x, [T, dim]);
    attentionBlock(pass, layer, l); // x = x + Attention(RMSNorm(x))
    feedForwardBlock(pass, layer, l); //   x = x + SwiGLU-FFN(RMSNorm(x))
    recorder.endLayer();
  });
  patchResidual(act.x, config.nLayers, interventions, pass, dim);
  cache.length = pass.startPos + T;

  kernels.rmsNormRows(act.normed, act.x, weights.finalNorm.data, T, dim, normEps);
  recorder.finalNorm(act.normed, [T, dim]);
  const rows = options.logits === 'last' ? 1 : T;
  const logits = new Float32Array(rows * vocabSize);
  const finalRows = act.normed.subarray((T - rows) * dim);
  kernels.matmulTransposedB(logits, finalRows, weights.classifier.data, rows, dim, vocabSize);

  // A Trace holds every position's logits: a traced pass asked for the last row computes them all too.
  const allLogits = () => ({
    data: rows === T ? logits : classify(pass, act.normed),
    shape: [T, vocabSize],
  });
  const trace = recorder.finish(tokens, pass.startPos, interventions, allLogits);
  return { logits, trace };
}

/** x = x + Attention(RMSNorm(x)): causal, grouped-query, with RoPE on q and k; the new k, v join the cache. */
function attentionBlock(pass: Pass, layer: LayerWeights, l: number): void {
  const { model, kernels, act, cache, T, startPos, recorder } = pass;
  const { dim, nHeads, nKvHeads, normEps, ropeLayout, ropeTheta } = model.config;
  const hd = headDim(model.config);
  const qDim = nHeads * hd;
  const kvDim = nKvHeads * hd;

  kernels.rmsNormRows(act.normed, act.x, layer.attnNorm.data, T, dim, normEps);
  kernels.matmulTransposedB(act.q, act.normed, layer.wq.data, T, dim, qDim);
  kernels.matmulTransposedB(act.k, act.normed, layer.wk.data, T, dim, kvDim);
  kernels.matmulTransposedB(act.v, act.normed, layer.wv.data, T, dim, kvDim);
  recorder.layerTensor('attnNorm', act.normed, [T, dim]);
  recorder.layerTensor('q', act.q, [T, nHeads, hd]);
  recorder.layerTensor('k', act.k, [T, nKvHeads, hd]);
  recorder.layerTensor('v', act.v, [T, nKvHeads, hd]);

  kernels.applyRopeRows(act.q, startPos, T, nHeads, hd, ropeLayout, ropeTheta);
  kernels.applyRopeRows(act.k, startPos, T, nKvHeads, hd, ropeLayout, ropeTheta);
  recorder.layerTensor('qRope', act.q, [T, nHeads, hd]);
  recorder.layerTensor('kRope', act.k, [T, nKvHeads, hd]);
  // The new keys and values join the cache before attention, so each token can attend to itself.
  cache.keys[l].set(act.k, startPos * kvDim);
  cache.values[l].set(act.v, startPos * kvDim);

  const shape = { nHeads, nKvHeads, headDim: hd };
  const record = recorder.attentionRecord(nHeads, startPos, T);
  kernels.causalSelfAttention(
    act.attnOutput,
    act.q,
    cache.keys[l],
    cache.values[l],
    startPos,
    T,
    shape,
    record,
  );
  interveneOnAttention(l, pass.interventions, {
    config: model.config,
    rows: pass,
    queries: act.q,
    keys: cache.keys[l],
    values: cache.values[l],
    output: act.attnOutput,
    tracedWeights: record?.weights,
  });
  kernels.matmulTransposedB(act.projected, act.attnOutput, layer.wo.data, T, qDim, dim);
  addInPlace(act.x, act.projected);
  recorder.layerTensor('attnOutput', act.attnOutput, [T, qDim]);
  recorder.layerTensor('attnProjected', act.projected, [T, dim]);
  recorder.layerTensor('residualAfterAttn', act.x, [T, dim]);
}

/** x = x + SwiGLU-FFN(RMSNorm(x)), where FFN(h) = wDown · (silu(wGate·h) ⊙ (wUp·h)). */
function feedForwardBlock(pass: Pass, layer: LayerWeights, l: number): void {
  const { model, kernels, act, T, recorder } = pass;
  const { dim, hiddenDim, normEps } = model.config;

  kernels.rmsNormRows(act.normed, act.x, layer.ffnNorm.data, T, dim, normEps);
  kernels.matmulTransposedB(act.gate, act.normed, layer.wGate.data, T, dim, hiddenDim);
  kernels.matmulTransposedB(act.up, act.normed, layer.wUp.data, T, dim, hiddenDim);
  kernels.swiglu(act.activation, act.gate, act.up);
  scaleNeurons(act.activation, l, pass.interventions, pass, hiddenDim);
  kernels.matmulTransposedB(act.projected, act.activation, layer.wDown.data, T, hiddenDim, dim);
  addInPlace(act.x, act.projected);
  recorder.layerTensor('ffnNorm', act.normed, [T, dim]);
  recorder.layerTensor('ffnGate', act.gate, [T, hiddenDim]);
  recorder.layerTensor('ffnUp', act.up, [T, hiddenDim]);
  recorder.layerTensor('ffnActivation', act.activation, [T, hiddenDim]);
  recorder.layerTensor('ffnOutput', act.projected, [T, dim]);
  recorder.layerTensor('residualAfterFfn', act.x, [T, dim]);
}

function addInPlace(target: Float32Array, delta: Float32Array): void {
  for (let i = 0; i < target.length; i++) target[i] += delta[i];
}

/** logits = classifier · normed, for every row of `normed`. */
function classify(pass: Pass, normed: Float32Array): Float32Array {
  const { dim, vocabSize } = pass.model.config;
  const logits = new Float32Array(pass.T * vocabSize);
  pass.kernels.matmulTransposedB(logits, normed, pass.model.weights.classifier.data, pass.T, dim, vocabSize);
  return logits;
}

/**
 * Where a pass writes down what it computed. The blocks call it at the same places whether or not a Trace
 * was asked for; NOT_RECORDING ignores every call, TraceRecorder copies each tensor into the Trace.
 */
interface Recorder {
  embeddings(data: Float32Array, shape: readonly number[]): void;
  layerTensor(name: LayerTensorName, data: Float32Array, shape: readonly number[]): void;
  /**
   * Fresh buffers for attention to write its scores and weights into ([H, T, S], S = startPos + T), which
   * the Trace keeps with the causal mask; undefined when not recording.
   */
  attentionRecord(nHeads: number, startPos: number, T: number): AttentionRecord | undefined;
  endLayer(): void;
  finalNorm(data: Float32Array, shape: readonly number[]): void;
  /** The Trace (`logits` is called only when recording), or undefined. */
  finish(
    tokens: readonly number[],
    startPos: number,
    interventions: readonly Intervention[],
    logits: () => Tensor,
  ): Trace | undefined;
}

const NOT_RECORDING: Recorder = {
  embeddings() {},
  layerTensor() {},
  attentionRecord: () => undefined,
  endLayer() {},
  finalNorm() {},
  finish: () => undefined,
};

/** Builds a Trace (trace.ts gives every name and shape). The pass reuses its buffers, so tensors are copied. */
class TraceRecorder implements Recorder {
  private embedded: Tensor | undefined;
  private normed: Tensor | undefined;
  private readonly layers: LayerTrace[] = [];
  private current = new Map<LayerTensorName, Tensor>();

  embeddings(data: Float32Array, shape: readonly number[]): void {
    this.embedded = snapshot(data, shape);
  }

  layerTensor(name: LayerTensorName, data: Float32Array, shape: readonly number[]): void {
    this.current.set(name, snapshot(data, shape));
  }

  attentionRecord(nHeads: number, startPos: number, T: number): AttentionRecord {
    const S = startPos + T;
    const record = { scores: new Float32Array(nHeads * T * S), weights: new Float32Array(nHeads * T * S) };
    this.current.set('scores', { data: record.scores, shape: [nHeads, T, S] });
    this.current.set('mask', { data: causalMask(startPos, T), shape: [T, S] });
    this.current.set('weights', { data: record.weights, shape: [nHeads, T, S] });
    return record;
  }

  /** The layer's tensors, in trace.ts's order, checking that the pass recorded every one. */
  endLayer(): void {
    const layer = {} as Record<LayerTensorName, Tensor>;
    for (const name of LAYER_TENSOR_NAMES) {
      const tensor = this.current.get(name);
      if (!tensor) throw new Error(`forward: layer ${this.layers.length} recorded no ${name}`);
      layer[name] = tensor;
    }
    this.layers.push(layer satisfies LayerTrace);
    this.current = new Map();
  }

  finalNorm(data: Float32Array, shape: readonly number[]): void {
    this.normed = snapshot(data, shape);
  }

  finish(
    tokens: readonly number[],
    startPos: number,
    interventions: readonly Intervention[],
    logits: () => Tensor,
  ): Trace {
    if (!this.embedded || !this.normed)
      throw new Error('forward: the pass recorded no embeddings or final norm');
    return {
      tokens: [...tokens],
      startPos,
      interventions: [...interventions],
      embeddings: this.embedded,
      layers: this.layers,
      finalNorm: this.normed,
      logits: logits(),
    };
  }
}

/** mask[t, s] = 1 when the query at startPos+t may see position s (s ≤ startPos+t), else 0. */
export function causalMask(startPos: number, T: number): Float32Array {
  const S = startPos + T;
  const mask = new Float32Array(T * S);
  for (let t = 0; t < T; t++) mask.fill(1, t * S, t * S + startPos + t + 1);
  return mask;
}

function checkInput(model: Model, tokens: readonly number[], cache: KVCache) {
  if (tokens.length === 0) throw new Error('forward: no tokens given');
  if (cache.length + tokens.length > cache.capacity) {
    throw new Error(
      `forward: ${cache.length} cached + ${tokens.length} new positions exceed the context of ${cache.capacity} (seqLen)`,
    );
  }
  for (const token of tokens) {
    if (!Number.isInteger(token) || token < 0 || token >= model.config.vocabSize) {
      throw new Error(`forward: token id ${token} is outside the vocabulary 0…${model.config.vocabSize - 1}`);
    }
  }
}
