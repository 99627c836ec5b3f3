/**
 * Inference engineering by arithmetic: what one forward pass costs in floating-point operations and in bytes
 * it must read, from the model's shapes alone, so that a measured time can be turned into GFLOP/s and GB/s
 * and placed on a roofline. Also the statistics of repeated measurements. Pure functions, shared by
 * chapter 15's worker and page; no DOM, no timing.
 *
 * The counts follow forward.ts line by line: per layer the q, k, v, output, gate, up and down products (2
 * operations, a multiply and an add, per weight per row), attention's scores and weighted sum over every
 * position a query can see, and the classifier on the rows whose logits are asked for. Norms, RoPE, softmax
 * and SwiGLU's element-wise step are left out: they are a few operations per number of a row, not per weight.
 */
import { headDim, type ModelConfig } from '../engine/model.ts';

/** Bytes per weight and per cached number in this engine (Float32Array). */
export const FLOAT32_BYTES = 4;

/** What one forward pass does and reads. */
export interface PassCost {
  /** Rows (new tokens) in the pass, and the position the first of them takes. */
  rows: number;
  startPos: number;
  /** Multiply-adds of the weight products ×2, every layer and the classifier. */
  matmulFlops: number;
  /** Scores q·k and the weighted sum of values, ×2 operations per multiply-add. */
  attentionFlops: number;
  flops: number;
  /** Every weight matrix read once (the pass reads each once, however many rows it holds), plus norms and the embedding rows. */
  weightBytes: number;
  /** Keys and values of every position attention reads, once per layer, and the new ones written. */
  cacheBytes: number;
  bytes: number;
  /** FLOPs per byte read: the quantity a roofline is drawn against. */
  intensity: number;
}

/** Weights in the matrices a pass multiplies by per row, per layer (q, k, v, o, gate, up, down). */
export function layerMatrixWeights(config: ModelConfig): number {
  const { dim, hiddenDim, nHeads, nKvHeads } = config;
  const hd = headDim(config);
  return dim * nHeads * hd + 2 * dim * nKvHeads * hd + nHeads * hd * dim + 3 * dim * hiddenDim;
}

/**
 * The cost of one forward pass of `rows` new tokens after `startPos` cached positions, with logits for the
 * last `logitRows` rows (1 for sampling: forward(…, { logits: 'last' })).
 */
export function passCost(config: ModelConfig, rows: number, startPos: number, logitRows = 1): PassCost {
  const { dim, nLayers, nHeads, nKvHeads, vocabSize } = config;
  const hd = headDim(config);
  const kvDim = nKvHeads * hd;
  const matmulFlops = 2 * rows * nLayers * layerMatrixWeights(config) + 2 * logitRows * dim * vocabSize;
  // Query t (0-based in the pass) sees startPos + t + 1 positions: Σ = rows·startPos + rows(rows+1)/2.
  const seen = rows * startPos + (rows * (rows + 1)) / 2;
  const attentionFlops = nLayers * nHeads * 2 * (2 * hd * seen);
  const weights = nLayers * (layerMatrixWeights(config) + 2 * dim) + dim + vocabSize * dim;
  const embeddingRows = config.sharedClassifier ? 0 : rows * dim; // a shared table is read whole already
  const weightBytes = (weights + embeddingRows) * FLOAT32_BYTES;
  const positions = startPos + rows;
  const cacheBytes = nLayers * 2 * kvDim * (positions + rows) * FLOAT32_BYTES;
  const flops = matmulFlops + attentionFlops;
  const bytes = weightBytes + cacheBytes;
  return {
    rows,
    startPos,
    matmulFlops,
    attentionFlops,
    flops,
    weightBytes,
    cacheBytes,
    bytes,
    intensity: flops / bytes,
  };
}

/** The work of several passes together: FLOPs and bytes add up; the intensity is their ratio. */
export function totalCost(passes: readonly PassCost[]): { flops: number; bytes: number; intensity: number } {
  const flops = passes.reduce((sum, pass) => sum + pass.flops, 0);
  const bytes = passes.reduce((sum, pass) => sum + pass.bytes, 0);
  return { flops, bytes, intensity: flops / bytes };
}

/**
 * The passes that generate `count` tokens after a prompt of `promptLength` tokens. With the KV cache: one
 * prefill of the prompt, then count − 1 decode passes of one token each. Without it: every step runs the whole
 * text so far again, the prompt plus the tokens generated before it.
 */
export function generationPasses(
  config: ModelConfig,
  promptLength: number,
  count: number,
  cached: boolean,
): PassCost[] {
  return Array.from({ length: count }, (_, i) =>
    cached
      ? i === 0
        ? passCost(config, promptLength, 0)
        : passCost(config, 1, promptLength + i - 1)
      : passCost(config, promptLength + i, 0),
  );
}

/**
 * The passes of one decode step for `batch` sequences whose caches hold `positions` positions each: one pass
 * of `batch` rows (forwardBatch), the weights read once for all of them, each sequence's cache read for its own.
 */
export function batchDecodeCost(config: ModelConfig, batch: number, positions: number): PassCost {
  const one = passCost(config, 1, positions);
  const { dim } = config;
  const matmulFlops = batch * one.matmulFlops; // every row multiplies every weight, the classifier included
  const attentionFlops = batch * one.attentionFlops;
  const cacheBytes = batch * one.cacheBytes;
  const weightBytes = one.weightBytes + (config.sharedClassifier ? 0 : (batch - 1) * dim * FLOAT32_BYTES);
  const flops = matmulFlops + attentionFlops;
  const bytes = weightBytes + cacheBytes;
  return {
    rows: batch,
    startPos: positions,
    matmulFlops,
    attentionFlops,
    flops,
    weightBytes,
    cacheBytes,
    bytes,
    intensity: flops / bytes,
  };
}

/** The roofline: the most FLOP/s a workload of this intensity can reach on a machine of this peak and bandwidth. */
export function attainable(intensity: number, peakFlops: number, bandwidth: number): number {
  return Math.min(peakFlops, intensity * bandwidth);
}

/** Where the two roofs meet: the intensity above which the processor, not the memory, is the limit. */
export function ridgePoint(peakFlops: number, bandwidth: number): number {
  return peakFlops / bandwidth;
}

/** Repeated measurements of one thing: the median (what the figures show) and the spread. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  count: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], count: sorted.length };
}

/** The with-and-without-cache comparison of chapter 15: at most this many tokens, and about this much work. */
export const CURVE_MAX_TOKENS = 96;
export const CURVE_FLOP_BUDGET = 4e9;
/** Positions kept free after the reader's text (a longer text is cut), so that there is something to generate. */
export const CURVE_ROOM = 8;

/**
 * How much of the reader's text the comparison reads and how many tokens it generates after it: the context's
 * room, at most CURVE_MAX_TOKENS, and fewer when generating without the cache would cost more than
 * CURVE_FLOP_BUDGET (a large model's uncached passes grow quickly).
 */
export function curvePlan(config: ModelConfig, textLength: number): { promptLength: number; count: number } {
  const promptLength = Math.max(1, Math.min(textLength, config.seqLen - CURVE_ROOM));
  let count = Math.min(config.seqLen - promptLength + 1, CURVE_MAX_TOKENS);
  while (
    count > 2 &&
    totalCost(generationPasses(config, promptLength, count, false)).flops > CURVE_FLOP_BUDGET
  )
    count--;
  return { promptLength, count };
}
