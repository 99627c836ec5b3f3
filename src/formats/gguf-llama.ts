/**
 * A Llama model in a GGUF file, the way llama.cpp's converters write one: what its tensor names and metadata
 * keys mean (read with ggufLlama, written with toGguf).
 *
 *   token_embd.weight            tokenEmbedding [vocab, dim]
 *   blk.N.attn_norm.weight       attnNorm        blk.N.ffn_norm.weight   ffnNorm
 *   blk.N.attn_q / attn_k / attn_v / attn_output.weight                 wq, wk, wv, wo
 *   blk.N.ffn_gate / ffn_up / ffn_down.weight                           wGate, wUp, wDown
 *   output_norm.weight           finalNorm
 *   output.weight                classifier; absent when it is the embedding table ("tied")
 *
 *   llama.context_length → seqLen        llama.embedding_length → dim     llama.block_count → nLayers
 *   llama.feed_forward_length → hiddenDim     llama.attention.head_count(_kv) → nHeads (nKvHeads)
 *   llama.attention.layer_norm_rms_epsilon → normEps     llama.rope.freq_base → ropeTheta (default 10000)
 *   tokenizer.ggml.tokens: the vocabulary, whose length is vocabSize
 *
 * RoPE: llama.cpp rotates adjacent pairs (2i, 2i+1) for Llama, as llama2.c does; its converter turns Hugging
 * Face's rotate-half rows of wq and wk back into that order. So a GGUF model is 'interleaved', and a 'half'
 * model is permuted back when written.
 *
 * Tokenizers live in the metadata too: tokenizer.ggml.model "llama" (SentencePiece: pieces with "▁" for a space,
 * scores, token types) becomes the llama2.c tokenizer; "gpt2" (byte-level BPE: tokens in GPT-2's printable
 * alphabet, merges "left right", tokenizer.ggml.pre naming the pre-tokenizer regex) becomes our BPE tokenizer.
 */
import { expectedShapes, headDim, validateConfig } from '../engine/model.ts';
import type { BlockWeightType, LayerWeights, Model, ModelConfig, Tensor, Weight } from '../engine/model.ts';
import { quantizedWeight } from '../engine/quant-matmul.ts';
import { dequantize, quantize, storageType, type QuantType } from '../engine/quant.ts';
import {
  bpeTokenizer,
  byteLevelString,
  createTokenizer,
  fromByteLevelString,
  withWholeWords,
  type BpeTokenizer,
  type Merge,
} from '../tokenizers/bpe.ts';
import {
  llama2cTokenizer,
  llama2cTokenizerFromPieces,
  type Llama2cTokenizer,
} from '../tokenizers/llama2c.ts';
import { KNOWN_PATTERNS, PRETOKENIZE_PATTERN } from '../tokenizers/pretokenize.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';
import { FormatError } from './errors.ts';
import {
  GgufType,
  parseGguf,
  serializeGguf,
  type GgufEntry,
  type GgufFile,
  type GgufTensorToWrite,
} from './gguf.ts';
import { permuteFromHalfRope } from './hf-llama.ts';
import { firstNonFinite, formatIndex } from './safetensors.ts';

/** Our per-layer weight → its name inside `blk.N.`. */
const GGUF_LAYER_NAMES: Record<keyof LayerWeights, string> = {
  attnNorm: 'attn_norm.weight',
  wq: 'attn_q.weight',
  wk: 'attn_k.weight',
  wv: 'attn_v.weight',
  wo: 'attn_output.weight',
  ffnNorm: 'ffn_norm.weight',
  wGate: 'ffn_gate.weight',
  wUp: 'ffn_up.weight',
  wDown: 'ffn_down.weight',
};
const LAYER_KEYS = Object.keys(GGUF_LAYER_NAMES) as (keyof LayerWeights)[];
const EMBEDDING = 'token_embd.weight';
const FINAL_NORM = 'output_norm.weight';
const OUTPUT = 'output.weight';
const layerName = (layer: number, key: keyof LayerWeights) => `blk.${layer}.${GGUF_LAYER_NAMES[key]}`;

/** ModelConfig field → GGUF key, for messages. */
const CONFIG_KEYS: Record<string, string> = {
  dim: 'llama.embedding_length',
  hiddenDim: 'llama.feed_forward_length',
  nLayers: 'llama.block_count',
  nHeads: 'llama.attention.head_count',
  nKvHeads: 'llama.attention.head_count_kv',
  vocabSize: 'tokenizer.ggml.tokens (its length)',
  seqLen: 'llama.context_length',
  normEps: 'llama.attention.layer_norm_rms_epsilon',
  ropeTheta: 'llama.rope.freq_base',
};

/** llama.cpp's default RoPE base when a file does not say. */
const DEFAULT_ROPE_THETA = 10000;

/** tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/**
 * tokenizer.ggml.pre → the pre-tokenizer regex it stands for in llama.cpp (src/llama-vocab.cpp), for those our
 * BPE runs: GPT-2's, Llama 3's (which is also glassbox's own, see pretokenize.ts) and GPT-4o's.
 */
const PRE_TOKENIZERS: Record<string, string> = {
  'gpt-2': patternNamed('GPT-2 (r50k/p50k)'),
  'llama-bpe': PRETOKENIZE_PATTERN,
  llama3: PRETOKENIZE_PATTERN,
  'llama-v3': PRETOKENIZE_PATTERN,
  'gpt-4o': patternNamed('o200k (GPT-4o)'),
};

/** For these, llama.cpp takes a pre-token that is a whole token as that token before merging (ignore_merges). */
const WHOLE_WORD_PRE_TOKENIZERS = new Set(['llama-bpe', 'llama3', 'llama-v3']);

/**
 * What glassbox writes as tokenizer.ggml.pre for a pattern: "llama-bpe" for its own pattern, which is Llama 3's
 * (the same alternatives; only the contractions are listed in another order, and they never overlap).
 */
function preTokenizerName(pattern: string): string | undefined {
  if (pattern === patternNamed('Llama 3')) return 'llama-bpe';
  return Object.entries(PRE_TOKENIZERS).find(([, known]) => known === pattern)?.[0];
}

function patternNamed(name: string): string {
  for (const [pattern, label] of KNOWN_PATTERNS) if (label === name) return pattern;
  throw new Error(`no known pre-tokenizer pattern is named ${name}`);
}

// ------------------------------------------------------------------------------------------------- reading

export interface GgufBundle {
  model: Model;
  tokenizer: Tokenizer;
  /** The tokenizer's own data, to write it again (glassbox quantize). */
  rawTokenizer: RawTokenizer;
  /** The file as stored: every tensor's blocks stay reachable here. */
  gguf: GgufFile;
}

export type RawTokenizer =
  { kind: 'llama'; tokenizer: Llama2cTokenizer } | { kind: 'gpt2'; tokenizer: BpeTokenizer };

/** Reads a GGUF Llama model and its tokenizer; every problem is one FormatError naming `file`. */
export function parseGgufLlama(bytes: Uint8Array, file: string): GgufBundle {
  const gguf = parseGguf(bytes, file);
  const rawTokenizer = ggufTokenizer(gguf, file);
  const tokenizer =
    rawTokenizer.kind === 'llama'
      ? llama2cTokenizer(rawTokenizer.tokenizer)
      : bpeTokenizer(rawTokenizer.tokenizer);
  return { model: ggufModel(gguf, file, tokenizer.vocabSize), tokenizer, rawTokenizer, gguf };
}

const INTEGER_TYPES: readonly number[] = [
  GgufType.UINT8,
  GgufType.INT8,
  GgufType.UINT16,
  GgufType.INT16,
  GgufType.UINT32,
  GgufType.INT32,
  GgufType.UINT64,
  GgufType.INT64,
];

/** Typed access to the metadata, each refusal naming the key. */
function metadataReader(gguf: GgufFile, file: string) {
  function fail(problem: string): never {
    throw new FormatError(file, problem);
  }
  const show = (entry: GgufEntry) =>
    entry.type === GgufType.ARRAY ? `an array of ${entry.value.length}` : JSON.stringify(String(entry.value));
  const get = (key: string) => gguf.metadata.get(key);
  return {
    fail,
    string(key: string, fallback?: string): string {
      const entry = get(key);
      if (!entry) return fallback ?? fail(`missing the metadata key ${key}`);
      if (entry.type !== GgufType.STRING) fail(`${key} must be a string, got ${show(entry)}`);
      return entry.value as string;
    },
    /** Any integer type, as a Number (refusing what is not a safe integer). */
    integer(key: string, fallback?: number): number {
      const entry = get(key);
      if (!entry) return fallback ?? fail(`missing the metadata key ${key}`);
      if (!INTEGER_TYPES.includes(entry.type) || typeof entry.value !== 'number') {
        return fail(`${key} must be an integer, got ${show(entry)}`);
      }
      return entry.value;
    },
    number(key: string, fallback?: number): number {
      const entry = get(key);
      if (!entry) return fallback ?? fail(`missing the metadata key ${key}`);
      if (typeof entry.value !== 'number') fail(`${key} must be a number, got ${show(entry)}`);
      return entry.value as number;
    },
    boolean(key: string, fallback: boolean): boolean {
      const entry = get(key);
      if (!entry) return fallback;
      if (entry.type !== GgufType.BOOL) fail(`${key} must be true or false, got ${show(entry)}`);
      return entry.value as boolean;
    },
    /** An array whose items are `itemType`s (any of `itemTypes`). */
    array<T>(key: string, itemTypes: readonly number[], what: string): readonly T[] | undefined {
      const entry = get(key);
      if (!entry) return undefined;
      if (entry.type !== GgufType.ARRAY || !itemTypes.includes(entry.itemType)) {
        fail(`${key} must be an array of ${what}, got ${show(entry)}`);
      }
      return entry.value as readonly T[];
    },
  };
}

function ggufConfig(gguf: GgufFile, file: string, vocabSize: number, sharedClassifier: boolean): ModelConfig {
  const meta = metadataReader(gguf, file);
  const architecture = meta.string('general.architecture');
  if (architecture !== 'llama') {
    meta.fail(`general.architecture is "${architecture}"; glassbox reads Llama models only ("llama")`);
  }
  const scaling = meta.string('llama.rope.scaling.type', 'none');
  if (scaling !== 'none' || gguf.tensors.has('rope_freqs.weight')) {
    meta.fail(
      `RoPE scaling (${scaling !== 'none' ? scaling : 'rope_freqs.weight'}) is not supported; only plain RoPE`,
    );
  }
  if (meta.integer('llama.expert_count', 0) > 0)
    meta.fail('a mixture of experts (llama.expert_count) is not supported');
  const nHeads = meta.integer('llama.attention.head_count');
  const config: ModelConfig = {
    dim: meta.integer('llama.embedding_length'),
    hiddenDim: meta.integer('llama.feed_forward_length'),
    nLayers: meta.integer('llama.block_count'),
    nHeads,
    nKvHeads: meta.integer('llama.attention.head_count_kv', nHeads),
    vocabSize,
    seqLen: meta.integer('llama.context_length'),
    normEps: meta.number('llama.attention.layer_norm_rms_epsilon'),
    ropeTheta: meta.number('llama.rope.freq_base', DEFAULT_ROPE_THETA),
    ropeLayout: 'interleaved',
    sharedClassifier,
  };
  try {
    validateConfig(config, 'the metadata');
  } catch (error) {
    meta.fail(
      (error as Error).message.replace(
        /\b(dim|hiddenDim|nLayers|nHeads|nKvHeads|vocabSize|seqLen|normEps|ropeTheta)\b/g,
        (field) => CONFIG_KEYS[field],
      ),
    );
  }
  const ropeDimensions = meta.integer('llama.rope.dimension_count', headDim(config));
  if (ropeDimensions !== headDim(config)) {
    meta.fail(
      `llama.rope.dimension_count is ${ropeDimensions} but the head size is ${headDim(config)}: partial RoPE is ` +
        `not supported`,
    );
  }
  const declaredVocab = meta.integer('llama.vocab_size', vocabSize);
  if (declaredVocab !== vocabSize) {
    meta.fail(`llama.vocab_size is ${declaredVocab} but tokenizer.ggml.tokens lists ${vocabSize} tokens`);
  }
  return config;
}

/** The block types the engine multiplies as stored (quant-matmul.ts); q4_k and q6_k are widened on load. */
const KEPT_TYPES: ReadonlySet<QuantType> = new Set(['q8_0', 'q4_0', 'q4_1', 'f16', 'bf16']);

/**
 * The model: config from the metadata, every tensor checked against it. Matrices in q8_0, q4_0, q4_1, f16 or
 * bf16 stay in their blocks and run as stored; the rest (norms, f32, q4_k, q6_k) are dequantized to float32,
 * and so is the token embedding table (a lookup reads a few rows; a tied classifier multiplies its blocks).
 */
function ggufModel(gguf: GgufFile, file: string, vocabSize: number): Model {
  const config = ggufConfig(gguf, file, vocabSize, !gguf.tensors.has(OUTPUT));
  const shapes = expectedShapes(config);
  const used = new Set<string>();
  /** The stored tensor `name`, checked: its shape, and that every number it holds is finite. */
  const checked = (name: string, shape: readonly number[]) => {
    const stored = gguf.tensors.get(name);
    if (!stored) throw new FormatError(file, `missing tensor ${name}`);
    if (stored.shape.length !== shape.length || stored.shape.some((size, i) => size !== shape[i])) {
      throw new FormatError(
        file,
        `tensor ${name} has shape [${stored.shape.join(', ')}], but the metadata (dim ${config.dim}, hidden ` +
          `${config.hiddenDim}, heads ${config.nHeads}/${config.nKvHeads}, vocab ${config.vocabSize}) implies ` +
          `[${shape.join(', ')}]`,
      );
    }
    used.add(name);
    const data = dequantize(stored);
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      throw new FormatError(
        file,
        `tensor ${name} holds ${data[bad]} at ${formatIndex(bad, shape)}; weights must be finite`,
      );
    }
    return { stored, data };
  };
  const tensor = (name: string, shape: readonly number[]): Tensor => ({
    data: checked(name, shape).data,
    shape: [...shape],
  });
  /** A matrix: kept in its blocks when the engine multiplies that type directly. */
  const matrix = (name: string, shape: readonly number[]): Weight => {
    const { stored, data } = checked(name, shape);
    if (!KEPT_TYPES.has(stored.type)) return { data, shape: [...shape] };
    return quantizedWeight({ type: stored.type as BlockWeightType, shape: [...shape], bytes: stored.bytes });
  };

  const tokenEmbedding = tensor(EMBEDDING, shapes.tokenEmbedding);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const layer = {} as Record<keyof LayerWeights, Weight>;
    for (const key of LAYER_KEYS) {
      const shape = shapes.layer[key];
      layer[key] = shape.length === 1 ? tensor(layerName(l, key), shape) : matrix(layerName(l, key), shape);
    }
    layers.push(layer);
  }
  const finalNorm = tensor(FINAL_NORM, shapes.finalNorm);
  // A tied classifier multiplies the embedding table's own blocks when their type runs as stored.
  const embeddingBlocks = gguf.tensors.get(EMBEDDING);
  const classifier = !config.sharedClassifier
    ? matrix(OUTPUT, shapes.classifier)
    : embeddingBlocks && KEPT_TYPES.has(embeddingBlocks.type)
      ? quantizedWeight({
          type: embeddingBlocks.type as BlockWeightType,
          shape: [...shapes.classifier],
          bytes: embeddingBlocks.bytes,
        })
      : tokenEmbedding;
  const extra = [...gguf.tensors.keys()].filter((name) => !used.has(name));
  if (extra.length > 0) {
    const listed = extra.slice(0, 5).join(', ') + (extra.length > 5 ? `, … (${extra.length} in all)` : '');
    throw new FormatError(
      file,
      `unexpected tensor(s) that a Llama model with this metadata does not have: ${listed}`,
    );
  }
  return { config, weights: { tokenEmbedding, layers, finalNorm, classifier } };
}

/** The tokenizer stored in the metadata. */
function ggufTokenizer(gguf: GgufFile, file: string): RawTokenizer {
  const meta = metadataReader(gguf, file);
  const kind = meta.string('tokenizer.ggml.model');
  const tokens = meta.array<string>('tokenizer.ggml.tokens', [GgufType.STRING], 'strings');
  if (!tokens) return meta.fail('missing tokenizer.ggml.tokens (the vocabulary)');
  const tokenTypes = meta.array<number>('tokenizer.ggml.token_type', INTEGER_TYPES, 'integers');
  if (tokenTypes && tokenTypes.length !== tokens.length) {
    meta.fail(`tokenizer.ggml.token_type has ${tokenTypes.length} entries for ${tokens.length} tokens`);
  }
  if (kind === 'llama') return { kind, tokenizer: sentencePieceTokenizer(meta, tokens, file) };
  if (kind === 'gpt2') return { kind, tokenizer: byteLevelTokenizer(meta, tokens, tokenTypes, file) };
  return meta.fail(
    `tokenizer.ggml.model is "${kind}"; glassbox reads "llama" (SentencePiece) and "gpt2" (BPE)`,
  );
}

type Metadata = ReturnType<typeof metadataReader>;

/** SentencePiece pieces write a space as "▁" (U+2581); llama2.c's tokenizer files write the space itself. */
const SENTENCEPIECE_SPACE = '\u2581';

function sentencePieceTokenizer(meta: Metadata, tokens: readonly string[], file: string): Llama2cTokenizer {
  const scores = meta.array<number>('tokenizer.ggml.scores', [GgufType.FLOAT32], 'f32') ?? [];
  if (scores.length !== tokens.length) {
    meta.fail(`tokenizer.ggml.scores has ${scores.length} entries for ${tokens.length} tokens`);
  }
  // run.c's encoder hard-codes <unk> = 0, <s> = 1, </s> = 2 and always adds the dummy-prefix space.
  for (const [key, expected] of [
    ['unknown_token_id', 0],
    ['bos_token_id', 1],
    ['eos_token_id', 2],
  ] as const) {
    const id = meta.integer(`tokenizer.ggml.${key}`, expected);
    if (id !== expected)
      meta.fail(`tokenizer.ggml.${key} is ${id}; the llama2.c tokenizer needs ${expected}`);
  }
  if (!meta.boolean('tokenizer.ggml.add_space_prefix', true)) {
    meta.fail(
      'tokenizer.ggml.add_space_prefix is false; the llama2.c tokenizer always adds the space prefix',
    );
  }
  const encoder = new TextEncoder();
  const pieces = tokens.map((token) => encoder.encode(token.replaceAll(SENTENCEPIECE_SPACE, ' ')));
  const longest = pieces.reduce((most, piece) => Math.max(most, piece.length), 1);
  return llama2cTokenizerFromPieces(pieces, Float32Array.from(scores), longest, file);
}

function byteLevelTokenizer(
  meta: Metadata,
  tokens: readonly string[],
  tokenTypes: readonly number[] | undefined,
  file: string,
): BpeTokenizer {
  const pre = meta.string('tokenizer.ggml.pre', 'default');
  const pattern = PRE_TOKENIZERS[pre];
  if (!pattern) {
    meta.fail(
      `tokenizer.ggml.pre is "${pre}", a pre-tokenizer glassbox does not run (it runs ` +
        `${Object.keys(PRE_TOKENIZERS).join(', ')})`,
    );
  }
  const special = (id: number) =>
    tokenTypes?.[id] === TOKEN_TYPE.CONTROL || tokenTypes?.[id] === TOKEN_TYPE.USER_DEFINED;
  const encoder = new TextEncoder();
  const tokenBytes = tokens.map((token, id) =>
    special(id)
      ? encoder.encode(token)
      : fromByteLevelString(token, () =>
          meta.fail(
            `tokenizer.ggml.tokens[${id}] ${JSON.stringify(token)} is not in GPT-2's byte-level alphabet`,
          ),
        ),
  );
  const idOf = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (!idOf.has(token)) idOf.set(token, id);
  });
  const mergeTexts = meta.array<string>('tokenizer.ggml.merges', [GgufType.STRING], 'strings') ?? [];
  const merges: Merge[] = mergeTexts.map((text, rank) => {
    const parts = text.split(' ');
    const ids =
      parts.length === 2 ? [parts[0], parts[1], parts[0] + parts[1]].map((part) => idOf.get(part)) : [];
    if (ids.length !== 3 || ids.some((id) => id === undefined)) {
      meta.fail(
        `tokenizer.ggml.merges[${rank}] ${JSON.stringify(text)} is not "left right" of two known tokens whose join is one`,
      );
    }
    return { left: ids[0]!, right: ids[1]!, merged: ids[2]! };
  });
  const bosId = meta.integer('tokenizer.ggml.bos_token_id');
  const eosId = meta.integer('tokenizer.ggml.eos_token_id');
  for (const [name, id] of [
    ['bos', bosId],
    ['eos', eosId],
  ] as const) {
    if (!(id >= 0 && id < tokens.length))
      meta.fail(`tokenizer.ggml.${name}_token_id ${id} is not a token id`);
  }
  const specialTokens = tokens.flatMap((text, id) => (special(id) ? [{ id, text }] : []));
  try {
    const tokenizer = { ...createTokenizer({ tokenBytes, merges, specialTokens, pattern }), bosId, eosId };
    return WHOLE_WORD_PRE_TOKENIZERS.has(pre) ? withWholeWords(tokenizer) : tokenizer;
  } catch (error) {
    throw new FormatError(file, `the tokenizer in the metadata: ${(error as Error).message}`);
  }
}

// ------------------------------------------------------------------------------------------------- writing

/** The types `glassbox quantize` writes, with llama.cpp's llama_ftype number for general.file_type. */
export const GGUF_WRITE_TYPES = { q8_0: 7, q4_0: 2, q4_1: 3, f16: 1, bf16: 32, f32: 0 } as const;
export type GgufWriteType = keyof typeof GGUF_WRITE_TYPES;

export interface GgufWriteResult {
  bytes: Uint8Array;
  /** The matrices stored as f16 because their rows are not whole blocks of the chosen type. */
  keptAtF16: string[];
  /** Every tensor as written, in file order. */
  tensors: GgufTensorToWrite[];
}

const u32 = (value: number): GgufEntry => ({ type: GgufType.UINT32, value });
const f32Entry = (value: number): GgufEntry => ({ type: GgufType.FLOAT32, value });
const str = (value: string): GgufEntry => ({ type: GgufType.STRING, value });
const array = (itemType: 4 | 5 | 6 | 8, value: readonly (number | string)[]): GgufEntry => ({
  type: GgufType.ARRAY,
  itemType,
  value,
});

/**
 * The model (and its tokenizer) as a GGUF file with every matrix stored as `type`, as llama.cpp would: norms
 * (1-D) stay f32, and a matrix whose rows are not whole blocks of `type` is stored as f16 instead.
 */
export function toGguf(
  model: Model,
  tokenizer: RawTokenizer,
  type: GgufWriteType,
  name = 'glassbox model',
): GgufWriteResult {
  const { config, weights } = model;
  validateConfig(config, 'toGguf');
  const keptAtF16: string[] = [];
  const tensors: GgufTensorToWrite[] = [];
  const add = (tensorName: string, tensor: Tensor) => {
    const storeAs = storageType(tensor.shape, type);
    if (tensor.shape.length > 1 && storeAs !== type) keptAtF16.push(tensorName);
    const stored = quantize(tensor.data, tensor.shape, storeAs);
    // float16 ends at 65504 (and so do the f16 scales of the blocks): refuse to write a file that would not load.
    const bad = firstNonFinite(dequantize(stored));
    if (bad >= 0) {
      throw new Error(
        `${tensorName} has values too large for ${storeAs} near ${formatIndex(bad, tensor.shape)} ` +
          `(its float16 numbers end at 65504)`,
      );
    }
    tensors.push({ name: tensorName, type: storeAs, shape: tensor.shape, bytes: stored.bytes });
  };
  // GGUF stores q and k with RoPE's pairs adjacent; a Hugging Face ('half') model is permuted back.
  const interleaved = (tensor: Tensor, heads: number) =>
    config.ropeLayout === 'half' ? permuteFromHalfRope(tensor, heads) : tensor;

  add(EMBEDDING, weights.tokenEmbedding);
  weights.layers.forEach((layer, l) => {
    for (const key of LAYER_KEYS) {
      const heads = key === 'wq' ? config.nHeads : key === 'wk' ? config.nKvHeads : 0;
      add(layerName(l, key), heads > 0 ? interleaved(layer[key], heads) : layer[key]);
    }
  });
  add(FINAL_NORM, weights.finalNorm);
  if (!config.sharedClassifier) add(OUTPUT, weights.classifier);

  const metadata = new Map<string, GgufEntry>([
    ['general.architecture', str('llama')],
    ['general.name', str(name)],
    ['general.file_type', u32(GGUF_WRITE_TYPES[type])],
    ['general.quantization_version', u32(2)],
    ['llama.context_length', u32(config.seqLen)],
    ['llama.embedding_length', u32(config.dim)],
    ['llama.block_count', u32(config.nLayers)],
    ['llama.feed_forward_length', u32(config.hiddenDim)],
    ['llama.rope.dimension_count', u32(headDim(config))],
    ['llama.attention.head_count', u32(config.nHeads)],
    ['llama.attention.head_count_kv', u32(config.nKvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', f32Entry(config.normEps)],
    ['llama.rope.freq_base', f32Entry(config.ropeTheta)],
    ['llama.vocab_size', u32(config.vocabSize)],
    ...tokenizerMetadata(tokenizer),
  ]);
  return { bytes: serializeGguf(metadata, tensors), keptAtF16, tensors };
}

function tokenizerMetadata(raw: RawTokenizer): [string, GgufEntry][] {
  if (raw.kind === 'llama') {
    const tok = raw.tokenizer;
    const decoder = new TextDecoder();
    const tokenType = (id: number) =>
      id === tok.unkId ? TOKEN_TYPE.UNKNOWN
      : id === tok.bosId || id === tok.eosId ? TOKEN_TYPE.CONTROL
      : id >= 3 && id < 3 + 256 ? TOKEN_TYPE.BYTE
      : TOKEN_TYPE.NORMAL; // prettier-ignore
    return [
      ['tokenizer.ggml.model', str('llama')],
      [
        'tokenizer.ggml.tokens',
        array(
          GgufType.STRING,
          tok.pieces.map((piece) => decoder.decode(piece).replaceAll(' ', SENTENCEPIECE_SPACE)),
        ),
      ],
      ['tokenizer.ggml.scores', array(GgufType.FLOAT32, Array.from(tok.scores))],
      [
        'tokenizer.ggml.token_type',
        array(
          GgufType.INT32,
          tok.pieces.map((_, id) => tokenType(id)),
        ),
      ],
      ['tokenizer.ggml.bos_token_id', u32(tok.bosId)],
      ['tokenizer.ggml.eos_token_id', u32(tok.eosId)],
      ['tokenizer.ggml.unknown_token_id', u32(tok.unkId)],
    ];
  }
  const tok = raw.tokenizer;
  const pre = preTokenizerName(tok.pattern);
  if (!pre)
    throw new Error("this tokenizer's pre-tokenizer regex has no llama.cpp name (tokenizer.ggml.pre)");
  const special = new Set(tok.specialTokens.map((token) => token.id));
  const text = (id: number) =>
    special.has(id) ? new TextDecoder().decode(tok.tokenBytes[id]) : byteLevelString(tok.tokenBytes[id]);
  if (tok.bosId === undefined || tok.eosId === undefined)
    throw new Error('the tokenizer needs BOS and EOS tokens');
  return [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(pre)],
    [
      'tokenizer.ggml.tokens',
      array(
        GgufType.STRING,
        tok.tokenBytes.map((_, id) => text(id)),
      ),
    ],
    [
      'tokenizer.ggml.token_type',
      array(
        GgufType.INT32,
        tok.tokenBytes.map((_, id) => (special.has(id) ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.NORMAL)),
      ),
    ],
    [
      'tokenizer.ggml.merges',
      array(
        GgufType.STRING,
        tok.merges.map(({ left, right }) => `${text(left)} ${text(right)}`),
      ),
    ],
    ['tokenizer.ggml.bos_token_id', u32(tok.bosId)],
    ['tokenizer.ggml.eos_token_id', u32(tok.eosId)],
    // glassbox puts BOS in front of every prompt; so should llama.cpp.
    ['tokenizer.ggml.add_bos_token', { type: GgufType.BOOL, value: true }],
  ];
}
