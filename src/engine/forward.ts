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
 * Every linear layer goes through `linear` (quant-matmul.ts): a float32 weight is a plain matrix product, a
 * quantized one (q8_0, q4_0, q4_1, f16, bf16, llama2.c runq) is multiplied as stored, the way its format's
 * reference implementation multiplies it.
 *
 * The caller chooses the kernels (the readable TypeScript in src/kernels/reference.ts, or the WebAssembly
 * ones from src/kernels/select.ts): the engine itself imports no WebAssembly or thread code.
 */
import { withLayerKernels, type EngineKernels, type LayerKernels } from '../kernels/layer-reference.ts';
import type { MatrixKernels } from '../kernels/reference.ts';
import type { AttentionRecord } from './attention.ts';
import type { KVStore } from './kv-cache.ts';
import { headDim, type LayerWeights, type Model, type Tensor } from './model.ts';
import {
  checkInterventions,
  interveneOnAttention,
  patchResidual,
  scaleNeurons,
  type Intervention,
} from './interventions.ts';
import { float32LayerKernels } from './float32-ops.ts';
import { embed } from './ops.ts';
import { linear } from './quant-matmul.ts';
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

/**
 * One sequence in a pass: its KV cache, the position its new tokens start at, and which of the pass's rows
 * they are. A pass usually holds one sequence; a batched pass (forwardBatch) holds several, one after another,
 * so every weight matrix is read once for all of them.
 */
interface Sequence {
  cache: KVStore;
  /** Position of its first new token (the number of positions already in its cache). */
  startPos: number;
  /** How many new tokens it has, and the first row of the pass they occupy. */
  T: number;
  firstRow: number;
}

/** What every block of one pass shares: the model, the kernels, the buffers, the sequences in it. */
interface Pass {
  model: Model;
  kernels: EngineKernels;
  act: Activations;
  /** Rows in this pass: every sequence's new tokens. */
  rows: number;
  sequences: Sequence[];
  interventions: readonly Intervention[];
  recorder: Recorder;
}

/** The rows of `sequence` in a [rows, width] array of the pass. */
function rowsOf(array: Float32Array, sequence: Sequence, width: number): Float32Array {
  return array.subarray(sequence.firstRow * width, (sequence.firstRow + sequence.T) * width);
}

/**
 * The kernels of a pass. A llama2.c runq model runs all of runq.c's arithmetic, its layer operations in
 * float32 too (float32-ops.ts): its int8 rounding of every activation would otherwise turn the last-bit
 * differences of the float64 operations into different text.
 */
function passKernels(model: Model, kernels: ForwardOptions['kernels']): EngineKernels {
  const complete = withLayerKernels(kernels);
  const runq = model.weights.layers[0]?.wq.quantized?.type === 'runq';
  return runq ? { ...complete, ...float32LayerKernels } : complete;
}

/** Runs the embedding and every block over the pass's rows; leaves RMSNorm(final stream) in act.normed. */
function runBlocks(pass: Pass, tokens: readonly number[]): void {
  const { model, act, kernels, recorder, interventions, rows } = pass;
  const { dim, normEps, nLayers } = model.config;
  const { weights } = model;
  // Interventions name positions of one sequence: only a pass of one sequence takes them.
  const [first] = pass.sequences;

  tokens.forEach((token, row) =>
    embed(act.x.subarray(row * dim, (row + 1) * dim), weights.tokenEmbedding.data, token, dim),
  );
  recorder.embeddings(act.x, [rows, dim]);

  weights.layers.forEach((layer, l) => {
    patchResidual(act.x, l, interventions, first, dim);
    recorder.layerTensor('input', act.x, [rows, dim]);
    attentionBlock(pass, layer, l); // x = x + Attention(RMSNorm(x))
    feedForwardBlock(pass, layer, l); //   x = x + SwiGLU-FFN(RMSNorm(x))
    recorder.endLayer();
  });
  patchResidual(act.x, nLayers, interventions, first, dim);
  for (const sequence of pass.sequences) sequence.cache.length = sequence.startPos + sequence.T;

  kernels.rmsNormRows(act.normed, act.x, weights.finalNorm.data, rows, dim, normEps);
  recorder.finalNorm(act.normed, [rows, dim]);
}

export function forward(
  model: Model,
  tokens: readonly number[],
  cache: KVStore,
  options: ForwardOptions & { trace: true },
): TracedForwardResult;
export function forward(
  model: Model,
  tokens: readonly number[],
  cache: KVStore,
  options: ForwardOptions,
): ForwardResult;
export function forward(
  model: Model,
  tokens: readonly number[],
  cache: KVStore,
  options: ForwardOptions,
): ForwardResult {
  checkInput(model, tokens, cache);
  const interventions = options.interventions ?? [];
  checkInterventions(model.config, interventions);
  const { dim, vocabSize } = model.config;
  const T = tokens.length;
  const pass: Pass = {
    model,
    kernels: passKernels(model, options.kernels),
    act: allocateActivations(model, T),
    rows: T,
    sequences: [{ cache, startPos: cache.length, T, firstRow: 0 }],
    interventions,
    recorder: options.trace === true ? new TraceRecorder() : NOT_RECORDING,
  };
  const startPos = cache.length;
  runBlocks(pass, tokens);

  const rows = options.logits === 'last' ? 1 : T;
  const logits = classify(pass, pass.act.normed.subarray((T - rows) * dim), rows);

  // A Trace holds every position's logits: a traced pass asked for the last row computes them all too.
  const allLogits = () => ({
    data: rows === T ? logits : classify(pass, pass.act.normed, T),
    shape: [T, vocabSize],
  });
  const trace = pass.recorder.finish(tokens, startPos, interventions, allLogits);
  return { logits, trace };
}

/** One sequence of a batched pass: its new tokens and its own KV cache. */
export interface BatchEntry {
  tokens: readonly number[];
  cache: KVStore;
}

/**
 * Several sequences of different lengths in one pass: their rows go through every matrix product together
 * (each weight is read once for the whole batch, which is what makes batching pay when decoding is limited by
 * memory bandwidth), while RoPE, the KV cache and attention stay per sequence. Each sequence's logits equal
 * those of `forward` on it alone. Returns per sequence [T, V] logits, or with logits: 'last' its last row [1, V].
 * No Trace and no interventions: those are for looking inside one sequence.
 */
export function forwardBatch(
  model: Model,
  batch: readonly BatchEntry[],
  options: Pick<ForwardOptions, 'kernels' | 'logits'>,
): Float32Array[] {
  if (batch.length === 0) throw new Error('forwardBatch: the batch is empty');
  batch.forEach(({ tokens, cache }) => checkInput(model, tokens, cache));
  if (new Set(batch.map(({ cache }) => cache)).size < batch.length)
    throw new Error('forwardBatch: two sequences share one KV cache; each needs its own');
  const { dim, vocabSize } = model.config;
  let firstRow = 0;
  const sequences = batch.map(({ tokens, cache }) => {
    const sequence = { cache, startPos: cache.length, T: tokens.length, firstRow };
    firstRow += tokens.length;
    return sequence;
  });
  const pass: Pass = {
    model,
    kernels: passKernels(model, options.kernels),
    act: allocateActivations(model, firstRow),
    rows: firstRow,
    sequences,
    interventions: [],
    recorder: NOT_RECORDING,
  };
  runBlocks(
    pass,
    batch.flatMap(({ tokens }) => tokens),
  );

  if (options.logits !== 'last') {
    const logits = classify(pass, pass.act.normed, pass.rows);
    return sequences.map((sequence) => rowsOf(logits, sequence, vocabSize).slice());
  }
  // Only each sequence's last row: gather them, then one product for the batch.
  const lastRows = new Float32Array(sequences.length * dim);
  sequences.forEach((sequence, i) => {
    const last = sequence.firstRow + sequence.T - 1;
    lastRows.set(pass.act.normed.subarray(last * dim, (last + 1) * dim), i * dim);
  });
  const logits = classify(pass, lastRows, sequences.length);
  return sequences.map((_, i) => logits.slice(i * vocabSize, (i + 1) * vocabSize));
}

/** x = x + Attention(RMSNorm(x)): causal, grouped-query, with RoPE on q and k; the new k, v join the cache. */
function attentionBlock(pass: Pass, layer: LayerWeights, l: number): void {
  const { model, kernels, act, rows, recorder } = pass;
  const { dim, nHeads, nKvHeads, normEps } = model.config;
  const hd = headDim(model.config);
  const qDim = nHeads * hd;
  const kvDim = nKvHeads * hd;

  kernels.rmsNormRows(act.normed, act.x, layer.attnNorm.data, rows, dim, normEps);
  linear(kernels, act.q, act.normed, layer.wq, rows, dim, qDim);
  linear(kernels, act.k, act.normed, layer.wk, rows, dim, kvDim);
  linear(kernels, act.v, act.normed, layer.wv, rows, dim, kvDim);
  recorder.layerTensor('attnNorm', act.normed, [rows, dim]);
  recorder.layerTensor('q', act.q, [rows, nHeads, hd]);
  recorder.layerTensor('k', act.k, [rows, nKvHeads, hd]);
  recorder.layerTensor('v', act.v, [rows, nKvHeads, hd]);

  // Positions, the cache and attention belong to each sequence; everything else is row by row.
  for (const sequence of pass.sequences) attendWithinSequence(pass, sequence, l);
  recorder.layerTensor('qRope', act.q, [rows, nHeads, hd]);
  recorder.layerTensor('kRope', act.k, [rows, nKvHeads, hd]);

  linear(kernels, act.projected, act.attnOutput, layer.wo, rows, qDim, dim);
  addInPlace(act.x, act.projected);
  recorder.layerTensor('attnOutput', act.attnOutput, [rows, qDim]);
  recorder.layerTensor('attnProjected', act.projected, [rows, dim]);
  recorder.layerTensor('residualAfterAttn', act.x, [rows, dim]);
}

/** RoPE on one sequence's q and k, its new k and v into its cache, then its tokens attend over that cache. */
function attendWithinSequence(pass: Pass, sequence: Sequence, l: number): void {
  const { model, kernels, act, recorder } = pass;
  const { nHeads, nKvHeads, ropeLayout, ropeTheta } = model.config;
  const { cache, startPos, T } = sequence;
  const hd = headDim(model.config);
  const qDim = nHeads * hd;
  const kvDim = nKvHeads * hd;
  const queries = rowsOf(act.q, sequence, qDim);
  const keys = rowsOf(act.k, sequence, kvDim);

  kernels.applyRopeRows(queries, startPos, T, nHeads, hd, ropeLayout, ropeTheta);
  kernels.applyRopeRows(keys, startPos, T, nKvHeads, hd, ropeLayout, ropeTheta);
  // The new keys and values join the cache before attention, so each token can attend to itself.
  cache.write(l, startPos, keys, rowsOf(act.v, sequence, kvDim));
  const cached = cache.read(l, startPos + T);

  const output = rowsOf(act.attnOutput, sequence, qDim);
  const shape = { nHeads, nKvHeads, headDim: hd };
  const record = recorder.attentionRecord(nHeads, startPos, T);
  kernels.causalSelfAttention(output, queries, cached.keys, cached.values, startPos, T, shape, record);
  interveneOnAttention(l, pass.interventions, {
    config: model.config,
    rows: sequence,
    queries,
    keys: cached.keys,
    values: cached.values,
    output,
    tracedWeights: record?.weights,
  });
}

/** x = x + SwiGLU-FFN(RMSNorm(x)), where FFN(h) = wDown · (silu(wGate·h) ⊙ (wUp·h)). */
function feedForwardBlock(pass: Pass, layer: LayerWeights, l: number): void {
  const { model, kernels, act, rows, recorder } = pass;
  const { dim, hiddenDim, normEps } = model.config;

  kernels.rmsNormRows(act.normed, act.x, layer.ffnNorm.data, rows, dim, normEps);
  linear(kernels, act.gate, act.normed, layer.wGate, rows, dim, hiddenDim);
  linear(kernels, act.up, act.normed, layer.wUp, rows, dim, hiddenDim);
  kernels.swiglu(act.activation, act.gate, act.up);
  scaleNeurons(act.activation, l, pass.interventions, pass.sequences[0], hiddenDim);
  linear(kernels, act.projected, act.activation, layer.wDown, rows, hiddenDim, dim);
  addInPlace(act.x, act.projected);
  recorder.layerTensor('ffnNorm', act.normed, [rows, dim]);
  recorder.layerTensor('ffnGate', act.gate, [rows, hiddenDim]);
  recorder.layerTensor('ffnUp', act.up, [rows, hiddenDim]);
  recorder.layerTensor('ffnActivation', act.activation, [rows, hiddenDim]);
  recorder.layerTensor('ffnOutput', act.projected, [rows, dim]);
  recorder.layerTensor('residualAfterFfn', act.x, [rows, dim]);
}

function addInPlace(target: Float32Array, delta: Float32Array): void {
  for (let i = 0; i < target.length; i++) target[i] += delta[i];
}

/** logits = classifier · normed, for the first `rows` rows of `normed`. */
function classify(pass: Pass, normed: Float32Array, rows: number): Float32Array {
  const { dim, vocabSize } = pass.model.config;
  const logits = new Float32Array(rows * vocabSize);
  linear(pass.kernels, logits, normed, pass.model.weights.classifier, rows, dim, vocabSize);
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

function checkInput(model: Model, tokens: readonly number[], cache: KVStore) {
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
