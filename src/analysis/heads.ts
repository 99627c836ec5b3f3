/**
 * What each attention head does, measured: three pattern scores read from a Trace's attention weights, the
 * input that reveals induction heads, the ablation map (what the model loses when one head is silenced), and
 * grouped-query attention's sharing and the KV-cache bytes it saves. Pure functions over a model and its
 * Traces, shared by chapter 8's worker and `glassbox inspect heads|ablate`; no DOM, no Node I/O.
 *
 * Positions are absolute throughout (0 = the first token, BOS); the scores need a Trace of a whole sequence
 * (startPos 0), which is what every traced pass of the course and the CLI is.
 */
import { forward } from '../engine/forward.ts';
import { KVCache } from '../engine/kv-cache.ts';
import { headDim, kvHeadOf, type Model, type ModelConfig } from '../engine/model.ts';
import { XorShiftRng } from '../engine/rng.ts';
import type { Intervention } from '../engine/interventions.ts';
import { tokenSurpriseAt } from './surprise.ts';
import type { Trace } from '../engine/trace.ts';
import { UNK_ID as LLAMA2C_UNK_ID } from '../tokenizers/llama2c.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';
import type { MatrixKernels } from '../kernels/reference.ts';
import type { LayerKernels } from '../kernels/layer-reference.ts';

/** The three pattern scores of one head; null where the text has no position the score could average. */
export interface HeadPatternScores {
  layer: number;
  head: number;
  /**
   * Previous-token score: the mean, over query positions t = 1 … T−1, of the weight on position t − 1.
   * 1 for a head that always looks one token back. Null for a one-token text (no position has a predecessor).
   */
  previousToken: number | null;
  /**
   * First-token (sink) score: the mean, over query positions t = 1 … T−1, of the weight on position 0.
   * Position 0 itself is left out (it can only attend to itself, weight 1, for every head). Null for T = 1.
   */
  firstToken: number | null;
}

/** The attention weights of one layer, [H, T, S], from a whole-sequence Trace (startPos 0, so S = T). */
function layerWeights(trace: Trace, layer: number): { data: Float32Array; H: number; T: number } {
  if (trace.startPos !== 0)
    throw new Error(`head scores need a pass over the whole text (startPos 0), not from ${trace.startPos}`);
  const { data, shape } = trace.layers[layer].weights;
  const [H, T, S] = shape;
  if (S !== T) throw new Error(`layers[${layer}].weights is [${shape.join(', ')}]; expected [H, T, T]`);
  return { data, H, T };
}

/** Mean over query positions t in [from, T) of weights[head, t, key(t)]; null when the range is empty. */
function meanWeight(
  weights: Float32Array,
  head: number,
  T: number,
  from: number,
  key: (t: number) => number,
): number | null {
  if (from >= T) return null;
  let sum = 0;
  for (let t = from; t < T; t++) sum += weights[(head * T + t) * T + key(t)];
  return sum / (T - from);
}

/**
 * What a head that spreads its attention evenly over everything it can see would score: the mean, over query
 * positions t = from … T−1, of 1/(t + 1). The yardstick a pattern score should be read against (for the
 * previous-token and first-token scores from = 1; for the induction score from = n + 1, T = 1 + 2n).
 */
export function uniformBaseline(from: number, T: number): number | null {
  if (from >= T) return null;
  let sum = 0;
  for (let t = from; t < T; t++) sum += 1 / (t + 1);
  return sum / (T - from);
}

/** Previous-token and first-token scores of every head of every layer, layer-major. */
export function headPatternScores(trace: Trace): HeadPatternScores[] {
  return trace.layers.flatMap((_, layer) => {
    const { data, H, T } = layerWeights(trace, layer);
    return Array.from({ length: H }, (_, head) => ({
      layer,
      head,
      previousToken: meanWeight(data, head, T, 1, (t) => t - 1),
      firstToken: meanWeight(data, head, T, 1, () => 0),
    }));
  });
}

/** The input on which induction heads show themselves: BOS, n random tokens, the same n tokens again. */
export interface InductionInput {
  tokens: number[];
  /** n: the length of the random sequence (the text is 1 + 2n tokens). */
  length: number;
  seed: number;
}

/** Default random-sequence length and seed for the induction test (the CLI's and the page's). */
export const INDUCTION_DEFAULTS = { length: 32, seed: 1 } as const;

/**
 * BOS followed by `length` distinct tokens drawn with the engine's seeded RNG (xorshift64*, rng.ts) from the
 * vocabulary without the `special` ids, then the same tokens again: [BOS, a1 … an, a1 … an]. The tokens are
 * drawn without replacement (a partial Fisher–Yates shuffle of the allowed ids, one `nextU32` per draw), so
 * every token of the second half has exactly one earlier occurrence. Random tokens carry no meaning: a head
 * can only predict the second half by finding where the current token was before and reading what came next.
 */
export function inductionInput(
  config: ModelConfig,
  bosId: number,
  special: readonly number[],
  length: number = INDUCTION_DEFAULTS.length,
  seed: number = INDUCTION_DEFAULTS.seed,
): InductionInput {
  const excluded = new Set([bosId, ...special]);
  const allowed: number[] = [];
  for (let id = 0; id < config.vocabSize; id++) if (!excluded.has(id)) allowed.push(id);
  const longest = inductionLengthLimit(config, allowed.length);
  if (!Number.isInteger(length) || length < 1 || length > longest)
    throw new Error(
      `the induction sequence length must be an integer from 1 to ${longest} (1 + 2 × length ≤ the context of ${config.seqLen}, and distinct tokens), got ${length}`,
    );
  if (!Number.isInteger(seed) || seed < 1 || seed > Number.MAX_SAFE_INTEGER)
    throw new Error(`the induction seed must be a positive integer, got ${seed}`);
  const rng = new XorShiftRng(seed);
  const drawn: number[] = [];
  for (let i = 0; i < length; i++) {
    const pick = i + (rng.nextU32() % (allowed.length - i));
    [allowed[i], allowed[pick]] = [allowed[pick], allowed[i]];
    drawn.push(allowed[i]);
  }
  return { tokens: [bosId, ...drawn, ...drawn], length, seed };
}

/** The longest random sequence the induction test can use: 1 + 2n fits the context, n distinct tokens. */
export function inductionLengthLimit(config: ModelConfig, allowedTokens = config.vocabSize - 1): number {
  return Math.max(0, Math.min(Math.floor((config.seqLen - 1) / 2), allowedTokens));
}

/**
 * Induction score of every head on a Trace of an induction input of sequence length n: the mean, over the
 * second-half query positions t = n+1 … 2n, of the weight on position t − n + 1, the position right after the
 * earlier occurrence of token t (which sits at t − n). 1 for a head that always looks there. Layer-major.
 */
export function inductionScores(
  trace: Trace,
  n: number,
): { layer: number; head: number; induction: number }[] {
  return trace.layers.flatMap((_, layer) => {
    const { data, H, T } = layerWeights(trace, layer);
    if (T !== 1 + 2 * n)
      throw new Error(`an induction input of length ${n} has ${1 + 2 * n} tokens, not ${T}`);
    return Array.from({ length: H }, (_, head) => ({
      layer,
      head,
      induction: meanWeight(data, head, T, n + 1, (t) => t - n + 1) ?? 0,
    }));
  });
}

/** How a head is silenced for the ablation map (the engine's ablateHead intervention). */
export type AblationMode = 'zero' | 'mean';

export interface AblationMap {
  mode: AblationMode;
  nLayers: number;
  nHeads: number;
  /**
   * log p(actual next token) of the clean pass at positions 0 … T−2 (the prediction made at position t is
   * scored against the token at t + 1; the last position has no next token in the text and does not count).
   */
  clean: Float32Array;
  /** delta[l·H + h]: mean over those T−1 positions of (log p ablated − log p clean), in nats. */
  delta: Float32Array;
  /** perPosition[(l·H + h)·(T−1) + t]: the change at position t alone. */
  perPosition: Float32Array;
  /** Forward passes run (1 clean + layers × heads). */
  passes: number;
}

/** log p(tokens[t+1]) at every position t = 0 … T−2 of a pass's logits [T, V]. */
export function nextTokenLogProbs(
  logits: Float32Array,
  tokens: readonly number[],
  vocabSize: number,
): Float32Array {
  const out = new Float32Array(tokens.length - 1);
  // log p = −surprise: the same float64 log-softmax chapter 12 reads its surprise with.
  for (let t = 0; t + 1 < tokens.length; t++)
    out[t] = -tokenSurpriseAt(logits.subarray(t * vocabSize, (t + 1) * vocabSize), tokens[t + 1]);
  return out;
}

/**
 * The ablation map: for every (layer, head), one forward pass over the text with that head ablated (the
 * engine's `ablateHead` intervention: its output zeroed, or replaced by its mean over the text's positions),
 * and the change in log p(actual next token) against the clean pass, per position and averaged over
 * positions 0 … T−2. Negative: the model predicts the text worse without the head.
 *
 * `clean` is the traced pass of the text (the one the page and the CLI already ran); its logits give the
 * clean log-probabilities. Ablating a head of layer l cannot change layers 0 … l−1, so each ablated pass runs
 * only the layers from l on (`passFromLayer`), fed the clean stream entering layer l (`clean.layers[l].input`):
 * the same numbers as the whole pass, with fewer layers computed. Untraced passes.
 */
export function ablationMap(
  model: Model,
  clean: Trace,
  kernels: MatrixKernels & Partial<LayerKernels>,
  mode: AblationMode = 'zero',
): AblationMap {
  const { tokens } = clean;
  if (clean.startPos !== 0) throw new Error('the ablation map needs a traced pass over the whole text');
  if (tokens.length < 2)
    throw new Error('the ablation map needs a text of at least 2 tokens (one prediction to score)');
  const { nLayers, nHeads, vocabSize } = model.config;
  const cleanLogProbs = nextTokenLogProbs(clean.logits.data, tokens, vocabSize);
  const positions = tokens.length - 1;
  const delta = new Float32Array(nLayers * nHeads);
  const perPosition = new Float32Array(nLayers * nHeads * positions);
  for (let layer = 0; layer < nLayers; layer++) {
    for (let head = 0; head < nHeads; head++) {
      const logits = passFromLayer(model, clean, layer, kernels, [{ kind: 'ablateHead', layer, head, mode }]);
      const ablated = nextTokenLogProbs(logits, tokens, vocabSize);
      const cell = layer * nHeads + head;
      let sum = 0;
      for (let t = 0; t < positions; t++) {
        const change = ablated[t] - cleanLogProbs[t];
        perPosition[cell * positions + t] = change;
        sum += change;
      }
      delta[cell] = sum / positions;
    }
  }
  return {
    mode,
    nLayers,
    nHeads,
    clean: cleanLogProbs,
    delta,
    perPosition,
    passes: nLayers * nHeads,
  };
}

/**
 * The logits [T, V] of a pass over the clean Trace's tokens that runs only layers `first` … nLayers−1, with
 * `interventions` (named by their layer in the whole model, each at `first` or later), starting from the
 * clean stream entering layer `first`. It is a forward pass of the same model cut at `first`: a model whose
 * layers are the last nLayers − first, whose input stream is patched (patchResidual at every position) to the
 * clean one. Positions, RoPE and the causal mask are unchanged, so for a change at layer `first` or later it
 * gives the logits of the whole pass with that change.
 */
export function passFromLayer(
  model: Model,
  clean: Trace,
  first: number,
  kernels: MatrixKernels & Partial<LayerKernels>,
  interventions: readonly Intervention[] = [],
): Float32Array {
  const { config, weights } = model;
  if (!Number.isInteger(first) || first < 0 || first >= config.nLayers)
    throw new Error(`layer ${first} does not exist: the model has layers 0…${config.nLayers - 1}`);
  const rest: Model = {
    config: { ...config, nLayers: config.nLayers - first },
    weights: { ...weights, layers: weights.layers.slice(first) },
  };
  const input = clean.layers[first].input.data;
  const { dim } = config;
  const patches: Intervention[] = clean.tokens.map((_, position) => ({
    kind: 'patchResidual',
    layer: 0,
    position,
    value: input.subarray(position * dim, (position + 1) * dim),
  }));
  const shifted = interventions.map((intervention) => {
    if (intervention.layer < first)
      throw new Error(`an intervention at layer ${intervention.layer} comes before layer ${first}`);
    return { ...intervention, layer: intervention.layer - first };
  });
  const { logits } = forward(rest, clean.tokens, new KVCache(rest.config), {
    kernels,
    logits: 'all',
    interventions: [...patches, ...shifted],
  });
  return logits;
}

/** Grouped-query attention: which query heads read which key/value head (kvHeadOf, the engine's rule). */
export function kvGroups(config: ModelConfig): number[][] {
  const groups: number[][] = Array.from({ length: config.nKvHeads }, () => []);
  for (let head = 0; head < config.nHeads; head++)
    groups[kvHeadOf(head, config.nHeads, config.nKvHeads)].push(head);
  return groups;
}

/** The attention shape that sets the size of a KV cache. */
export interface KvShape {
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/**
 * Bytes a KV cache holds: 2 (a key and a value) × layers × key/value heads × head width × positions ×
 * bytes per number.
 */
export function kvCacheBytes(shape: KvShape, positions: number, bytesPerValue: number): number {
  return 2 * shape.nLayers * shape.nKvHeads * shape.headDim * positions * bytesPerValue;
}

/** The same with one key/value head per query head (multi-head attention): what GQA is measured against. */
export function kvCacheBytesWithoutGqa(shape: KvShape, positions: number, bytesPerValue: number): number {
  return kvCacheBytes({ ...shape, nKvHeads: shape.nHeads }, positions, bytesPerValue);
}

export function kvShapeOf(config: ModelConfig): KvShape {
  return {
    nLayers: config.nLayers,
    nHeads: config.nHeads,
    nKvHeads: config.nKvHeads,
    headDim: headDim(config),
  };
}

/** A published model's attention shape, as its config.json on the Hugging Face Hub gives it. */
export interface PublishedConfig extends KvShape {
  name: string;
  /** max_position_embeddings. */
  context: number;
  /** The config.json the numbers were read from. */
  source: string;
  /** Anything that changes what the cache must hold. */
  note?: string;
}

/**
 * Published configurations (num_hidden_layers, num_attention_heads, num_key_value_heads, head size =
 * hidden_size / num_attention_heads unless the config gives head_dim, max_position_embeddings), each from
 * its config.json on the Hugging Face Hub. Their caches are counted at 2 bytes a number (float16/bfloat16).
 */
export const PUBLISHED_CONFIGS: readonly PublishedConfig[] = [
  {
    name: 'Llama 2 7B',
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 32,
    headDim: 128,
    context: 4096,
    source: 'https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json',
  },
  {
    name: 'Llama 2 70B',
    nLayers: 80,
    nHeads: 64,
    nKvHeads: 8,
    headDim: 128,
    context: 4096,
    source: 'https://huggingface.co/meta-llama/Llama-2-70b-hf/blob/main/config.json',
  },
  {
    name: 'Llama 3 8B',
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 8,
    headDim: 128,
    context: 8192,
    source: 'https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json',
  },
  {
    name: 'Llama 3 70B',
    nLayers: 80,
    nHeads: 64,
    nKvHeads: 8,
    headDim: 128,
    context: 8192,
    source: 'https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json',
  },
  {
    name: 'Mistral 7B v0.1',
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 8,
    headDim: 128,
    context: 32768,
    source: 'https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json',
    note: 'sliding window of 4096: a cache need only keep the last 4096 positions',
  },
  {
    name: 'Qwen2.5 7B Instruct',
    nLayers: 28,
    nHeads: 28,
    nKvHeads: 4,
    headDim: 128,
    context: 32768,
    source: 'https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/blob/main/config.json',
  },
  {
    name: 'Gemma 2 9B',
    nLayers: 42,
    nHeads: 16,
    nKvHeads: 8,
    headDim: 256,
    context: 8192,
    source: 'https://huggingface.co/google/gemma-2-9b/blob/main/config.json',
    note: 'head_dim 256 is set in its config (hidden_size 3584 / 16 heads would be 224); every other layer attends to a 4096-position sliding window',
  },
];

/** Bytes per number of a 16-bit cache (float16 or bfloat16), as the published models are served. */
export const HALF_PRECISION_BYTES = 2;
/** Bytes per number of this engine's cache (Float32Array, kv-cache.ts). */
export const ENGINE_CACHE_BYTES = 4;

/** One row of the KV-cache table: per position and at the full context, with and without GQA. */
export interface KvCacheRow {
  name: string;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  context: number;
  bytesPerValue: number;
  /** Query heads sharing one key/value head. */
  groupSize: number;
  bytesPerToken: number;
  bytesAtContext: number;
  /** The same model with as many key/value heads as query heads. */
  bytesAtContextWithoutGqa: number;
  /** bytesAtContextWithoutGqa / bytesAtContext = nHeads / nKvHeads. */
  saving: number;
  source?: string;
  note?: string;
}

export function kvCacheRow(
  shape: KvShape & { name: string; context: number; source?: string; note?: string },
  bytesPerValue: number,
): KvCacheRow {
  const bytesAtContext = kvCacheBytes(shape, shape.context, bytesPerValue);
  const bytesAtContextWithoutGqa = kvCacheBytesWithoutGqa(shape, shape.context, bytesPerValue);
  return {
    name: shape.name,
    nLayers: shape.nLayers,
    nHeads: shape.nHeads,
    nKvHeads: shape.nKvHeads,
    headDim: shape.headDim,
    context: shape.context,
    bytesPerValue,
    groupSize: shape.nHeads / shape.nKvHeads,
    bytesPerToken: kvCacheBytes(shape, 1, bytesPerValue),
    bytesAtContext,
    bytesAtContextWithoutGqa,
    saving: bytesAtContextWithoutGqa / bytesAtContext,
    ...(shape.source ? { source: shape.source } : {}),
    ...(shape.note ? { note: shape.note } : {}),
  };
}

/** The loaded model's row (float32 cache, its own context) followed by the published models' rows. */
export function kvCacheTable(config: ModelConfig, label: string): KvCacheRow[] {
  return [
    kvCacheRow({ ...kvShapeOf(config), name: label, context: config.seqLen }, ENGINE_CACHE_BYTES),
    ...PUBLISHED_CONFIGS.map((published) => kvCacheRow(published, HALF_PRECISION_BYTES)),
  ];
}

/**
 * The ids the induction test never draws besides BOS: the tokenizer's end-of-sequence token and, for a
 * llama2.c vocabulary, its <unk> (tokens that mark boundaries or failures rather than text).
 */
export function specialTokenIds(tokenizer: Tokenizer): number[] {
  const unknown = tokenizer.family === 'llama2c' ? [LLAMA2C_UNK_ID] : [];
  return [tokenizer.bosId, tokenizer.eosId, ...unknown];
}
