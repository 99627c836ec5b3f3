/**
 * The Hugging Face Llama layout: a config.json of hyper-parameters and a model.safetensors of weights named
 * like `model.layers.3.self_attn.q_proj.weight`. Read with parseHfLlama, written with toHfLlama.
 *
 * One real difference from llama2.c hides in the q and k matrices. Both rotate pairs of query/key dimensions
 * for RoPE, but llama2.c pairs neighbours (0,1), (2,3), … while Hugging Face's `rotate_half` pairs (i, i + hd/2).
 * HF's conversion script therefore reorders the rows of wq and wk, per head, so that the same model gives the
 * same numbers under the other convention: permuteForHalfRope below.
 */
import { expectedShapes, headDim, validateConfig } from '../engine/model.ts';
import type { LayerWeights, Model, ModelConfig, Tensor } from '../engine/model.ts';
import { parseBoundedJson, type JsonLimits } from './bounded-json.ts';
import { FormatError } from './errors.ts';
import { parseSafetensors, serializeSafetensors } from './safetensors.ts';

/** Our per-layer weight name → its Hugging Face name inside `model.layers.{i}.`. */
const HF_LAYER_NAMES: Record<keyof LayerWeights, string> = {
  attnNorm: 'input_layernorm.weight',
  wq: 'self_attn.q_proj.weight',
  wk: 'self_attn.k_proj.weight',
  wv: 'self_attn.v_proj.weight',
  wo: 'self_attn.o_proj.weight',
  ffnNorm: 'post_attention_layernorm.weight',
  wGate: 'mlp.gate_proj.weight',
  wUp: 'mlp.up_proj.weight',
  wDown: 'mlp.down_proj.weight',
};
const LAYER_KEYS = Object.keys(HF_LAYER_NAMES) as (keyof LayerWeights)[];
const EMBEDDING = 'model.embed_tokens.weight';
const FINAL_NORM = 'model.norm.weight';
const LM_HEAD = 'lm_head.weight';
const layerName = (layer: number, key: keyof LayerWeights) => `model.layers.${layer}.${HF_LAYER_NAMES[key]}`;

/** ModelConfig field → config.json field, for error messages. */
const HF_FIELD_NAMES: Record<string, string> = {
  dim: 'hidden_size',
  hiddenDim: 'intermediate_size',
  nLayers: 'num_hidden_layers',
  nHeads: 'num_attention_heads',
  nKvHeads: 'num_key_value_heads',
  vocabSize: 'vocab_size',
  seqLen: 'max_position_embeddings',
  normEps: 'rms_norm_eps',
  ropeTheta: 'rope_theta',
};

/** Defaults of transformers' LlamaConfig for fields a config.json may leave out. */
const HF_DEFAULTS = { rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false };

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((size, i) => size === b[i]);

/** A Llama config.json is a few hundred bytes of flat JSON (rope_scaling nests one level). */
const CONFIG_JSON_LIMITS: JsonLimits = { maxLength: 1 << 20, maxDepth: 8, what: 'config.json' };

/** config.json → ModelConfig, refusing anything that is not a plain Llama this engine runs exactly. */
export function parseHfConfig(configJsonText: string, file: string): ModelConfig {
  // A declared function (not an arrow) so TypeScript narrows types after `if (…) fail(…)`.
  function fail(problem: string): never {
    throw new FormatError(file, problem);
  }
  const json = parseBoundedJson(configJsonText, file, CONFIG_JSON_LIMITS);
  if (!isPlainObject(json)) return fail(`must be a JSON object`);
  /** A value as it appears in the JSON (it came from JSON.parse, so it can be stringified back). */
  const show = (value: unknown) => {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  };

  const { model_type: modelType, architectures } = json;
  const archList = Array.isArray(architectures) ? architectures : [];
  if (modelType !== undefined && modelType !== 'llama') {
    fail(`model_type is ${show(modelType)}; this loader reads Llama models only (model_type "llama")`);
  }
  if (modelType === undefined && !archList.includes('LlamaForCausalLM')) {
    fail(`neither model_type "llama" nor architectures ["LlamaForCausalLM"]: not a Llama config`);
  }
  if (architectures !== undefined && !archList.every((a) => a === 'LlamaForCausalLM')) {
    fail(`architectures is ${JSON.stringify(architectures)}; only LlamaForCausalLM is supported`);
  }
  if (json.rope_scaling !== undefined && json.rope_scaling !== null) {
    fail(
      `rope_scaling ${JSON.stringify(json.rope_scaling)} is not supported (only plain RoPE, rope_scaling null)`,
    );
  }
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu') {
    fail(`hidden_act ${show(json.hidden_act)} is not supported (Llama's SwiGLU uses "silu")`);
  }
  for (const bias of ['attention_bias', 'mlp_bias']) {
    if (json[bias] !== undefined && json[bias] !== false) {
      fail(`${bias} ${show(json[bias])} is not supported (this engine's projections have no bias)`);
    }
  }

  const number = (name: string, fallback?: number): number => {
    const value = json[name] ?? fallback;
    if (value === undefined) return fail(`missing the required field ${name}`);
    if (typeof value !== 'number') {
      return fail(
        `${name} must be a number, got ${show(value)} (${Array.isArray(value) ? 'array' : typeof value})`,
      );
    }
    return value;
  };
  /** Sizes get their range checked by validateConfig; here they are named the way config.json names them. */
  const size = (name: string, fallback?: number): number => {
    const value = number(name, fallback);
    if (!Number.isInteger(value) || value <= 0) fail(`${name} must be a positive integer, got ${value}`);
    return value;
  };
  const heads = size('num_attention_heads');
  const tie = json.tie_word_embeddings ?? HF_DEFAULTS.tie_word_embeddings;
  if (typeof tie !== 'boolean') fail(`tie_word_embeddings must be true or false, got ${show(tie)}`);
  const config: ModelConfig = {
    dim: size('hidden_size'),
    hiddenDim: size('intermediate_size'),
    nLayers: size('num_hidden_layers'),
    nHeads: heads,
    nKvHeads: size('num_key_value_heads', heads),
    vocabSize: size('vocab_size'),
    seqLen: size('max_position_embeddings'),
    normEps: number('rms_norm_eps', HF_DEFAULTS.rms_norm_eps),
    ropeTheta: number('rope_theta', HF_DEFAULTS.rope_theta),
    ropeLayout: 'half',
    sharedClassifier: tie as boolean,
  };
  try {
    validateConfig(config, 'Llama config');
  } catch (error) {
    // validateConfig speaks ModelConfig; say it in config.json's own words.
    fail(
      (error as Error).message.replace(
        /\b(dim|hiddenDim|nLayers|nHeads|nKvHeads|vocabSize|seqLen|normEps|ropeTheta)\b/g,
        (field) => HF_FIELD_NAMES[field],
      ),
    );
  }
  if (json.head_dim !== undefined && json.head_dim !== null && json.head_dim !== headDim(config)) {
    fail(
      `head_dim ${show(json.head_dim)} differs from hidden_size / num_attention_heads = ${headDim(config)}; ` +
        `this engine needs head_dim = hidden_size / num_attention_heads`,
    );
  }
  return config;
}

/**
 * Reads a Hugging Face Llama checkpoint (config.json text + model.safetensors bytes). Every expected tensor must
 * be present with the expected shape, and no other tensor may be present; FormatError names the culprit.
 */
export function parseHfLlama(
  configJsonText: string,
  safetensorsBytes: Uint8Array,
  files: { config: string; weights: string },
): Model {
  const config = parseHfConfig(configJsonText, files.config);
  const { tensors } = parseSafetensors(safetensorsBytes, files.weights);
  const shapes = expectedShapes(config);
  const used = new Set<string>();
  const configSummary =
    `hidden_size=${config.dim}, intermediate_size=${config.hiddenDim}, num_attention_heads=${config.nHeads}, ` +
    `num_key_value_heads=${config.nKvHeads}, vocab_size=${config.vocabSize}`;

  const tensor = (name: string, shape: readonly number[]): Tensor => {
    const found = tensors.get(name);
    if (!found) {
      const missing = [name, ...expectedNames(config).filter((n) => n !== name && !tensors.has(n))];
      const more = missing.length > 1 ? ` (and ${missing.length - 1} more, e.g. ${missing[1]})` : '';
      throw new FormatError(files.weights, `missing tensor ${name}${more}`);
    }
    if (!sameShape(found.shape, shape)) {
      throw new FormatError(
        files.weights,
        `tensor ${name} has shape ${shapeText(found.shape)}, but ${files.config} (${configSummary}) ` +
          `implies ${shapeText(shape)}`,
      );
    }
    used.add(name);
    return { data: found.data, shape: found.shape };
  };

  const tokenEmbedding = tensor(EMBEDDING, shapes.tokenEmbedding);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const layer = {} as LayerWeights;
    for (const key of LAYER_KEYS) layer[key] = tensor(layerName(l, key), shapes.layer[key]);
    layers.push(layer);
  }
  const finalNorm = tensor(FINAL_NORM, shapes.finalNorm);
  let classifier = tokenEmbedding;
  if (!config.sharedClassifier) {
    if (!tensors.has(LM_HEAD)) {
      throw new FormatError(
        files.weights,
        `missing tensor ${LM_HEAD} (${files.config} says tie_word_embeddings is false, so the classifier ` +
          `must be stored)`,
      );
    }
    classifier = tensor(LM_HEAD, shapes.classifier);
  } else if (tensors.has(LM_HEAD)) {
    // Some exporters save the tied classifier anyway; that is harmless only if it really is the embedding.
    const head = tensors.get(LM_HEAD)!.data;
    const same =
      head.length === tokenEmbedding.data.length &&
      head.every((v, i) => Object.is(v, tokenEmbedding.data[i]));
    if (!same) {
      throw new FormatError(
        files.weights,
        `${LM_HEAD} is present and differs from ${EMBEDDING}, but ${files.config} says tie_word_embeddings ` +
          `is true (the classifier is the embedding table)`,
      );
    }
    used.add(LM_HEAD);
  }

  // Older exports store RoPE's inverse frequencies as a buffer; they follow from rope_theta, so ignore them.
  const extra = [...tensors.keys()].filter(
    (name) => !used.has(name) && !name.endsWith('.rotary_emb.inv_freq'),
  );
  if (extra.length > 0) {
    const listed = extra.slice(0, 5).join(', ') + (extra.length > 5 ? `, … (${extra.length} in all)` : '');
    throw new FormatError(
      files.weights,
      `unexpected tensor(s) that a Llama model with this config does not have: ${listed}`,
    );
  }
  return { config, weights: { tokenEmbedding, layers, finalNorm, classifier } };
}

function expectedNames(config: ModelConfig): string[] {
  const names = [EMBEDDING];
  for (let l = 0; l < config.nLayers; l++) for (const key of LAYER_KEYS) names.push(layerName(l, key));
  names.push(FINAL_NORM);
  if (!config.sharedClassifier) names.push(LM_HEAD);
  return names;
}

/**
 * Reorders the rows of a q or k projection [nHeads·hd, dim] from llama2.c's interleaved RoPE pairs to Hugging
 * Face's rotate-half pairs, exactly as HF's convert_llama_weights_to_hf.py `permute` does. Within each head,
 * interleaved row 2j (the first of pair j) becomes row j, and row 2j+1 becomes row hd/2 + j:
 *   new rows of a head = old rows [0, 2, 4, …, hd−2, 1, 3, 5, …, hd−1].
 * Then output dimension j and j + hd/2 are the pair that RoPE rotates together, as rotate_half expects.
 */
export function permuteForHalfRope(weight: Tensor, nHeads: number): Tensor {
  return moveRopePairRows(weight, nHeads, 'toHalf');
}

/**
 * The inverse of permuteForHalfRope: rotate-half rows back to llama2.c's (and GGUF's) interleaved pairs, as
 * llama.cpp's convert_hf_to_gguf.py does for q and k. Within each head, row j becomes row 2j and row hd/2 + j
 * becomes row 2j + 1.
 */
export function permuteFromHalfRope(weight: Tensor, nHeads: number): Tensor {
  return moveRopePairRows(weight, nHeads, 'fromHalf');
}

/** Row 2j + half of a head (interleaved) ↔ row half·hd/2 + j (rotate-half), moved in the direction asked. */
function moveRopePairRows(weight: Tensor, nHeads: number, direction: 'toHalf' | 'fromHalf'): Tensor {
  const [rows, cols] = weight.shape;
  const hd = rows / nHeads;
  const out = new Float32Array(weight.data.length);
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < hd / 2; j++) {
      for (const half of [0, 1]) {
        const interleaved = h * hd + 2 * j + half;
        const rotateHalf = h * hd + half * (hd / 2) + j;
        const [from, to] = direction === 'toHalf' ? [interleaved, rotateHalf] : [rotateHalf, interleaved];
        out.set(weight.data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return { data: out, shape: [rows, cols] };
}

/**
 * Writes a model as a Hugging Face Llama checkpoint. A llama2.c ('interleaved') model has its q/k rows permuted
 * so that HF's rotate-half RoPE computes the same function; a 'half' model is written as it is.
 */
export function toHfLlama(model: Model): { configJson: string; safetensors: Uint8Array } {
  const { config, weights } = model;
  validateConfig(config, 'toHfLlama');
  const shapes = expectedShapes(config);
  const check = (name: string, tensor: Tensor, shape: readonly number[]): Tensor => {
    if (!sameShape(tensor.shape, shape) || tensor.data.length !== shape.reduce((p, s) => p * s, 1)) {
      throw new Error(
        `toHfLlama: ${name} has shape ${shapeText(tensor.shape)}, expected ${shapeText(shape)}`,
      );
    }
    return tensor;
  };
  if (weights.layers.length !== config.nLayers) {
    throw new Error(
      `toHfLlama: model has ${weights.layers.length} layers but its config says ${config.nLayers}`,
    );
  }

  const toHalf = (tensor: Tensor, nHeads: number) =>
    config.ropeLayout === 'interleaved' ? permuteForHalfRope(tensor, nHeads) : tensor;
  const tensors: Record<string, Tensor> = {
    [EMBEDDING]: check(EMBEDDING, weights.tokenEmbedding, shapes.tokenEmbedding),
    [FINAL_NORM]: check(FINAL_NORM, weights.finalNorm, shapes.finalNorm),
  };
  if (!config.sharedClassifier) tensors[LM_HEAD] = check(LM_HEAD, weights.classifier, shapes.classifier);
  weights.layers.forEach((layer, l) => {
    for (const key of LAYER_KEYS) {
      const tensor = check(layerName(l, key), layer[key], shapes.layer[key]);
      const heads = key === 'wq' ? config.nHeads : key === 'wk' ? config.nKvHeads : 0;
      tensors[layerName(l, key)] = heads > 0 ? toHalf(tensor, heads) : tensor;
    }
  });

  const hfConfig = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.seqLen,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: config.sharedClassifier,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
  return {
    configJson: `${JSON.stringify(hfConfig, null, 2)}\n`,
    // transformers refuses safetensors files whose metadata does not name a framework.
    safetensors: serializeSafetensors(tensors, { format: 'pt' }),
  };
}
