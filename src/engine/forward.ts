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
 * With `trace: true` it also returns a Trace of every intermediate tensor (see trace.ts); when off, the
 * tracing branches do nothing.
 */
import { withLayerKernels, type EngineKernels, type LayerKernels } from '../kernels/layer-reference.ts';
import type { MatrixKernels } from '../kernels/reference.ts';
import { selectKernels } from '../kernels/select.ts';
import type { KVCache } from './kv-cache.ts';
import { headDim, type LayerWeights, type Model } from './model.ts';
import { embed } from './ops.ts';
import { snapshot, type LayerTrace, type Trace } from './trace.ts';

export interface ForwardOptions {
  /** Record every intermediate tensor (costs memory and time; off by default). */
  trace?: boolean;
  /**
   * Which kernels compute the products and the layer operations (RMSNorm, RoPE, attention, SwiGLU): by
   * default the fastest this runtime has (WebAssembly SIMD), else the readable TypeScript in
   * src/kernels/reference.ts and src/engine/ops.ts / attention.ts, which tests hold the fast ones to.
   * Kernels without the layer operations (plain MatrixKernels) run those with the readable functions.
   */
  kernels?: MatrixKernels & Partial<LayerKernels>;
  /** 'all' returns logits for every position [T, V]; 'last' only for the last one [1, V] (what sampling needs). */
  logits?: 'all' | 'last';
}

export interface ForwardResult {
  /** [T, vocabSize] or, with logits: 'last', [1, vocabSize]. */
  logits: Float32Array;
  trace?: Trace;
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

function addInPlace(target: Float32Array, delta: Float32Array): void {
  for (let i = 0; i < target.length; i++) target[i] += delta[i];
}

export function forward(
  model: Model,
  tokens: readonly number[],
  cache: KVCache,
  options: ForwardOptions = {},
) {
  const { config, weights } = model;
  const kernels = withLayerKernels(options.kernels ?? selectKernels('auto'));
  const T = tokens.length;
  const startPos = cache.length;
  checkInput(model, tokens, cache);

  const { dim, hiddenDim, nHeads, nKvHeads, vocabSize, normEps } = config;
  const hd = headDim(config);
  const qDim = nHeads * hd;
  const kvDim = nKvHeads * hd;
  const act = allocateActivations(model, T);
  const tracing = options.trace === true;
  const layerTraces: LayerTrace[] = [];

  tokens.forEach((token, t) =>
    embed(act.x.subarray(t * dim, (t + 1) * dim), weights.tokenEmbedding.data, token, dim),
  );
  const embeddings = tracing ? snapshot(act.x, [T, dim]) : undefined;

  weights.layers.forEach((layer, l) => {
    const layerTrace = tracing ? ({} as LayerTrace) : undefined;
    if (layerTrace) layerTrace.input = snapshot(act.x, [T, dim]);

    // --- attention block ---
    kernels.rmsNormRows(act.normed, act.x, layer.attnNorm.data, T, dim, normEps);
    kernels.matmulTransposedB(act.q, act.normed, layer.wq.data, T, dim, qDim);
    kernels.matmulTransposedB(act.k, act.normed, layer.wk.data, T, dim, kvDim);
    kernels.matmulTransposedB(act.v, act.normed, layer.wv.data, T, dim, kvDim);
    if (layerTrace) {
      layerTrace.attnNorm = snapshot(act.normed, [T, dim]);
      layerTrace.q = snapshot(act.q, [T, nHeads, hd]);
      layerTrace.k = snapshot(act.k, [T, nKvHeads, hd]);
      layerTrace.v = snapshot(act.v, [T, nKvHeads, hd]);
    }

    kernels.applyRopeRows(act.q, startPos, T, nHeads, hd, config.ropeLayout, config.ropeTheta);
    kernels.applyRopeRows(act.k, startPos, T, nKvHeads, hd, config.ropeLayout, config.ropeTheta);
    // The new keys and values join the cache before attention, so each token can attend to itself.
    cache.keys[l].set(act.k, startPos * kvDim);
    cache.values[l].set(act.v, startPos * kvDim);

    const S = startPos + T;
    const record = layerTrace
      ? { scores: new Float32Array(nHeads * T * S), weights: new Float32Array(nHeads * T * S) }
      : undefined;
    kernels.causalSelfAttention(
      act.attnOutput,
      act.q,
      cache.keys[l],
      cache.values[l],
      startPos,
      T,
      { nHeads, nKvHeads, headDim: hd },
      record,
    );
    kernels.matmulTransposedB(act.projected, act.attnOutput, layer.wo.data, T, qDim, dim);
    addInPlace(act.x, act.projected);
    if (layerTrace && record) {
      layerTrace.qRope = snapshot(act.q, [T, nHeads, hd]);
      layerTrace.kRope = snapshot(act.k, [T, nKvHeads, hd]);
      layerTrace.scores = { data: record.scores, shape: [nHeads, T, S] };
      layerTrace.mask = { data: causalMask(startPos, T), shape: [T, S] };
      layerTrace.weights = { data: record.weights, shape: [nHeads, T, S] };
      layerTrace.attnOutput = snapshot(act.attnOutput, [T, qDim]);
      layerTrace.attnProjected = snapshot(act.projected, [T, dim]);
      layerTrace.residualAfterAttn = snapshot(act.x, [T, dim]);
    }

    // --- feed-forward block (SwiGLU) ---
    feedForward(act, layer, kernels, T, dim, hiddenDim, normEps);
    addInPlace(act.x, act.projected);
    if (layerTrace) {
      layerTrace.ffnNorm = snapshot(act.normed, [T, dim]);
      layerTrace.ffnGate = snapshot(act.gate, [T, hiddenDim]);
      layerTrace.ffnUp = snapshot(act.up, [T, hiddenDim]);
      layerTrace.ffnActivation = snapshot(act.activation, [T, hiddenDim]);
      layerTrace.ffnOutput = snapshot(act.projected, [T, dim]);
      layerTrace.residualAfterFfn = snapshot(act.x, [T, dim]);
      layerTraces.push(layerTrace);
    }
  });
  cache.length = startPos + T;

  kernels.rmsNormRows(act.normed, act.x, weights.finalNorm.data, T, dim, normEps);
  const rows = options.logits === 'last' ? 1 : T;
  const finalRows = act.normed.subarray((T - rows) * dim);
  const logits = new Float32Array(rows * vocabSize);
  kernels.matmulTransposedB(logits, finalRows, weights.classifier.data, rows, dim, vocabSize);
  const trace: Trace | undefined = tracing
    ? {
        tokens: [...tokens],
        startPos,
        embeddings: embeddings!,
        layers: layerTraces,
        finalNorm: snapshot(act.normed, [T, dim]),
        logits:
          rows === T ? { data: logits, shape: [T, vocabSize] } : allLogits(act.normed, model, kernels, T),
      }
    : undefined;
  return { logits, trace } satisfies ForwardResult;
}

/** FFN(x) = wDown · (silu(wGate·x) ⊙ (wUp·x)), on RMSNorm(x); leaves the result in act.projected. */
function feedForward(
  act: ReturnType<typeof allocateActivations>,
  layer: LayerWeights,
  kernels: EngineKernels,
  T: number,
  dim: number,
  hiddenDim: number,
  eps: number,
) {
  kernels.rmsNormRows(act.normed, act.x, layer.ffnNorm.data, T, dim, eps);
  kernels.matmulTransposedB(act.gate, act.normed, layer.wGate.data, T, dim, hiddenDim);
  kernels.matmulTransposedB(act.up, act.normed, layer.wUp.data, T, dim, hiddenDim);
  kernels.swiglu(act.activation, act.gate, act.up);
  kernels.matmulTransposedB(act.projected, act.activation, layer.wDown.data, T, hiddenDim, dim);
}

/** mask[t, s] = 1 when the query at startPos+t may see position s (s ≤ startPos+t), else 0. */
export function causalMask(startPos: number, T: number): Float32Array {
  const S = startPos + T;
  const mask = new Float32Array(T * S);
  for (let t = 0; t < T; t++) mask.fill(1, t * S, t * S + startPos + t + 1);
  return mask;
}

function allLogits(normed: Float32Array, model: Model, kernels: MatrixKernels, T: number) {
  const { dim, vocabSize } = model.config;
  const data = new Float32Array(T * vocabSize);
  kernels.matmulTransposedB(data, normed, model.weights.classifier.data, T, dim, vocabSize);
  return { data, shape: [T, vocabSize] };
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
