/**
 * What a Llama-family model *is*: its hyper-parameters (ModelConfig) and its weights (ModelWeights).
 *
 * Every weight matrix is stored row-major as [outFeatures, inFeatures], the layout PyTorch, Hugging Face and
 * llama2.c all use, so `y = W·x` reads row i of W to produce y[i].
 */

/** How RoPE pairs up the dimensions of a head before rotating them. */
export type RopeLayout =
  /** llama2.c / Meta's original code: adjacent pairs (0,1), (2,3), … */
  | 'interleaved'
  /** Hugging Face Llama ("rotate_half"): pairs (i, i + headDim/2). */
  | 'half';

export interface ModelConfig {
  /** Width of the residual stream (the size of every token's vector). */
  dim: number;
  /** Width of the SwiGLU feed-forward block's hidden layer. */
  hiddenDim: number;
  nLayers: number;
  /** Number of query heads. */
  nHeads: number;
  /** Number of key/value heads; fewer than nHeads means grouped-query attention (GQA). */
  nKvHeads: number;
  vocabSize: number;
  /** Longest sequence the model was trained on; the KV cache holds this many positions. */
  seqLen: number;
  /** Added inside RMSNorm's square root so an all-zero vector does not divide by zero. */
  normEps: number;
  /** RoPE base: pair i of a head turns at theta^(−2i/headDim) radians per position. */
  ropeTheta: number;
  ropeLayout: RopeLayout;
  /** True when the output classifier reuses the token embedding table ("tied" embeddings). */
  sharedClassifier: boolean;
}

/** A dense float32 tensor: the numbers, and the shape that says how to read them (row-major). */
export interface Tensor {
  data: Float32Array;
  shape: readonly number[];
}

/** The block formats of llama.cpp that a weight matrix can be multiplied in directly (see quant.ts). */
export type BlockWeightType = 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1';

/** A matrix stored in one of llama.cpp's block formats: its bytes exactly as a GGUF file holds them. */
export interface BlockWeight {
  type: BlockWeightType;
  shape: readonly number[];
  bytes: Uint8Array;
}

/**
 * A matrix as llama2.c's `runq` stores it: int8 values and one float32 scale per group of `groupSize`
 * consecutive values of the whole flattened matrix (value i is values[i] · scales[⌊i / groupSize⌋]).
 */
export interface RunqWeight {
  type: 'runq';
  shape: readonly number[];
  groupSize: number;
  values: Int8Array;
  scales: Float32Array;
}

/** A weight matrix stored in fewer bits, which the engine multiplies with directly (quant-matmul.ts). */
export type QuantizedWeight = BlockWeight | RunqWeight;

/**
 * A weight matrix. Either dense float32 (`data`), or `quantized`: then the engine multiplies with the stored
 * form, and `data` is its dequantized float32 copy, made on first read for figures and analyses (see
 * `quantizedWeight` in quant-matmul.ts).
 */
export interface Weight extends Tensor {
  quantized?: QuantizedWeight;
}

export interface LayerWeights {
  /** RMSNorm gain before attention, [dim]. */
  attnNorm: Tensor;
  /** Query projection, [nHeads·headDim, dim]. */
  wq: Weight;
  /** Key projection, [nKvHeads·headDim, dim]. */
  wk: Weight;
  /** Value projection, [nKvHeads·headDim, dim]. */
  wv: Weight;
  /** Attention output projection, [dim, nHeads·headDim]. */
  wo: Weight;
  /** RMSNorm gain before the feed-forward block, [dim]. */
  ffnNorm: Tensor;
  /** SwiGLU gate projection (llama2.c w1, HF gate_proj), [hiddenDim, dim]. */
  wGate: Weight;
  /** SwiGLU up projection (llama2.c w3, HF up_proj), [hiddenDim, dim]. */
  wUp: Weight;
  /** SwiGLU down projection (llama2.c w2, HF down_proj), [dim, hiddenDim]. */
  wDown: Weight;
}

export interface ModelWeights {
  /** One row per vocabulary entry, [vocabSize, dim]. */
  tokenEmbedding: Tensor;
  layers: LayerWeights[];
  /** RMSNorm gain after the last layer, [dim]. */
  finalNorm: Tensor;
  /** Maps the final vector to one logit per vocabulary entry, [vocabSize, dim]; the same object as
   * tokenEmbedding when config.sharedClassifier (or, in a quantized model, its quantized form). */
  classifier: Weight;
}

export interface Model {
  config: ModelConfig;
  weights: ModelWeights;
}

export function headDim(config: ModelConfig): number {
  return config.dim / config.nHeads;
}

/**
 * Which key/value head query head `head` reads (grouped-query attention): the query heads are split into
 * nKvHeads equal groups, in order, and each group shares one key/value head.
 */
export function kvHeadOf(head: number, nHeads: number, nKvHeads: number): number {
  return Math.floor((head * nKvHeads) / nHeads);
}

/** The shape every weight tensor must have for this config; loaders and the saver check against it. */
export function expectedShapes(config: ModelConfig): {
  tokenEmbedding: number[];
  finalNorm: number[];
  classifier: number[];
  layer: Record<keyof LayerWeights, number[]>;
} {
  const { dim, hiddenDim, nHeads, nKvHeads, vocabSize } = config;
  const hd = headDim(config);
  return {
    tokenEmbedding: [vocabSize, dim],
    finalNorm: [dim],
    classifier: [vocabSize, dim],
    layer: {
      attnNorm: [dim],
      wq: [nHeads * hd, dim],
      wk: [nKvHeads * hd, dim],
      wv: [nKvHeads * hd, dim],
      wo: [dim, nHeads * hd],
      ffnNorm: [dim],
      wGate: [hiddenDim, dim],
      wUp: [hiddenDim, dim],
      wDown: [dim, hiddenDim],
    },
  };
}

/** Number of distinct parameters (a shared classifier is counted once); counted from the shapes, so a
 * quantized weight is not dequantized to count it. */
export function parameterCount(model: Model): number {
  const w = model.weights;
  const size = (t: Tensor) => t.shape.reduce((product, n) => product * n, 1);
  let total = size(w.tokenEmbedding) + size(w.finalNorm);
  if (!model.config.sharedClassifier) total += size(w.classifier);
  for (const layer of w.layers) {
    for (const t of Object.values(layer) as Tensor[]) total += size(t);
  }
  return total;
}

/**
 * Checks that a config describes a model this engine can run, and throws a specific message otherwise.
 * Loaders call it before allocating anything, so a hostile header cannot ask for a huge allocation.
 */
export function validateConfig(config: ModelConfig, source: string): void {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  const positiveInt = (name: keyof ModelConfig, max: number) => {
    const v = config[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > max) {
      fail(`${name} must be a positive integer at most ${max}, got ${String(v)}`);
    }
  };
  positiveInt('dim', 1 << 16);
  positiveInt('hiddenDim', 1 << 18);
  positiveInt('nLayers', 1024);
  positiveInt('nHeads', 1024);
  positiveInt('nKvHeads', 1024);
  positiveInt('vocabSize', 1 << 22);
  positiveInt('seqLen', 1 << 20);
  if (config.dim % config.nHeads !== 0) fail(`dim ${config.dim} is not divisible by nHeads ${config.nHeads}`);
  if (headDim(config) % 2 !== 0) fail(`head size ${headDim(config)} must be even for RoPE`);
  if (config.nHeads % config.nKvHeads !== 0) {
    fail(`nHeads ${config.nHeads} is not a multiple of nKvHeads ${config.nKvHeads}`);
  }
  if (!(config.normEps > 0 && config.normEps < 1)) fail(`normEps must be in (0, 1), got ${config.normEps}`);
  if (!(config.ropeTheta > 1 && Number.isFinite(config.ropeTheta))) {
    fail(`ropeTheta must be a finite number above 1, got ${config.ropeTheta}`);
  }
  if (config.ropeLayout !== 'interleaved' && config.ropeLayout !== 'half') {
    fail(`ropeLayout must be "interleaved" or "half", got ${String(config.ropeLayout)}`);
  }
}
