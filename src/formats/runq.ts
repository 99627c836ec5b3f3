/**
 * llama2.c's int8 checkpoint, the ".bin" that runq.c reads (export.py --version 2).
 *
 * A 256-byte header, then the weights:
 *
 *   uint32 magic 0x616b3432 ("ak42")   int32 version = 2
 *   int32 × 7: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *   uint8 shared_classifier            int32 group_size            zeros up to byte 256
 *
 *   float32: rms_att [L, dim] · rms_ffn [L, dim] · rms_final [dim]           (the norms stay float32)
 *   then every matrix as int8 values followed by one float32 scale per group of group_size values:
 *   token_embedding [vocab, dim] · wq ×L · wk ×L · wv ×L · wo ×L · w1 ×L · w2 ×L · w3 ×L · (wcls [vocab, dim]
 *   only when shared_classifier is 0)
 *
 * A value is q · scale, its group being its position in the whole flattened matrix divided by group_size.
 * As runq.c does, the embedding table is dequantized for the lookup and the classifier multiplies the stored
 * int8 table; the engine multiplies every matrix as runq.c's `matmul` does (src/engine/quant-matmul.ts).
 */
import { expectedShapes, validateConfig } from '../engine/model.ts';
import type { LayerWeights, Model, ModelConfig, RunqWeight, Tensor, Weight } from '../engine/model.ts';
import { dequantizeWeight, quantizedWeight } from '../engine/quant-matmul.ts';
import { FormatError } from './errors.ts';
import { firstNonFinite, formatIndex, readFloat32LE } from './safetensors.ts';

/** "ak42" read as a little-endian uint32: the magic of llama2.c's versioned exports. */
export const AK42_MAGIC = 0x616b3432;
export const RUNQ_VERSION = 2;
const HEADER_BYTES = 256;
const HEADER_FIELDS = [
  'dim',
  'hidden_dim',
  'n_layers',
  'n_heads',
  'n_kv_heads',
  'vocab_size',
  'seq_len',
] as const;
type Header = Record<(typeof HEADER_FIELDS)[number], number>;

/** The largest group size accepted: export.py starts from 64 and only halves it. */
const MAX_GROUP_SIZE = 1 << 16;

/** runq.c's defaults, as run.c's: the file does not store them. */
const NORM_EPS = 1e-5;
const ROPE_THETA = 10000;

/** The quantized matrices in file order after the embedding table, with llama2.c's names. */
const MATRICES_IN_FILE_ORDER: [keyof LayerWeights, string][] = [
  ['wq', 'wq'],
  ['wk', 'wk'],
  ['wv', 'wv'],
  ['wo', 'wo'],
  ['wGate', 'w1'],
  ['wDown', 'w2'],
  ['wUp', 'w3'],
];

const product = (shape: readonly number[]) => shape.reduce((p, size) => p * size, 1);

/** Whether the bytes start like a runq file (magic "ak42", version 2). */
export function isRunqFile(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return view.getUint32(0, true) === AK42_MAGIC && view.getInt32(4, true) === RUNQ_VERSION;
}

/** The model described by a runq header, with the group size; FormatError naming `file` for a bad one. */
function readHeader(bytes: Uint8Array, file: string): { config: ModelConfig; groupSize: number } {
  if (bytes.length < HEADER_BYTES) {
    throw new FormatError(
      file,
      `file is ${bytes.length} bytes, too short for runq's ${HEADER_BYTES}-byte header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const header = {} as Header;
  HEADER_FIELDS.forEach((field, i) => (header[field] = view.getInt32(8 + 4 * i, true)));
  const described = HEADER_FIELDS.map((field) => `${field}=${header[field]}`).join(', ');
  const sharedFlag = view.getUint8(36);
  const groupSize = view.getInt32(37, true);
  if (sharedFlag > 1)
    throw new FormatError(file, `shared_classifier flag is ${sharedFlag}; it must be 0 or 1`);
  if (!(groupSize >= 1 && groupSize <= MAX_GROUP_SIZE)) {
    throw new FormatError(file, `group size ${groupSize} must be between 1 and ${MAX_GROUP_SIZE}`);
  }
  const config: ModelConfig = {
    dim: header.dim,
    hiddenDim: header.hidden_dim,
    nLayers: header.n_layers,
    nHeads: header.n_heads,
    nKvHeads: header.n_kv_heads,
    vocabSize: header.vocab_size,
    seqLen: header.seq_len,
    normEps: NORM_EPS,
    ropeTheta: ROPE_THETA,
    ropeLayout: 'interleaved',
    sharedClassifier: sharedFlag === 1,
  };
  try {
    validateConfig(config, `runq header (${described})`);
  } catch (error) {
    throw new FormatError(file, (error as Error).message);
  }
  return { config, groupSize };
}

/** Every part of the file in order, with sizes in bytes; checks each matrix is whole groups (as export.py). */
function fileLayout(config: ModelConfig, groupSize: number, file: string) {
  const shapes = expectedShapes(config);
  const normFloats = 2 * config.nLayers * config.dim + config.dim;
  const matrixBytes = (shape: readonly number[], name: string) => {
    const count = product(shape);
    if (count % groupSize !== 0) {
      throw new FormatError(file, `${name} has ${count} values, not whole groups of ${groupSize}`);
    }
    return count + (4 * count) / groupSize;
  };
  let total = HEADER_BYTES + 4 * normFloats + matrixBytes(shapes.tokenEmbedding, 'token_embedding');
  for (const [key, name] of MATRICES_IN_FILE_ORDER)
    total += config.nLayers * matrixBytes(shapes.layer[key], name);
  if (!config.sharedClassifier) total += matrixBytes(shapes.classifier, 'wcls');
  return { shapes, normFloats, totalBytes: total };
}

/**
 * Reads a llama2.c runq (int8, version 2) checkpoint. Throws FormatError (naming `file`) for anything it cannot
 * trust: the header is checked, then the exact size it implies, and only then are the weights read.
 */
export function parseRunqCheckpoint(bytes: Uint8Array, file: string): Model {
  if (!isRunqFile(bytes)) throw new FormatError(file, 'not a runq file (magic "ak42", version 2)');
  const { config, groupSize } = readHeader(bytes, file);
  const { shapes, normFloats, totalBytes } = fileLayout(config, groupSize, file);
  if (!Number.isSafeInteger(totalBytes))
    throw new FormatError(file, 'header sizes too large to count exactly');
  if (bytes.length !== totalBytes) {
    throw new FormatError(
      file,
      `file is ${bytes.length} bytes but its header (dim ${config.dim}, hidden ${config.hiddenDim}, ` +
        `${config.nLayers} layers, vocab ${config.vocabSize}, group size ${groupSize}, classifier ` +
        `${config.sharedClassifier ? 'shared' : 'separate'}) needs exactly ${totalBytes} bytes` +
        (bytes.length < totalBytes ? ' (truncated?)' : ''),
    );
  }

  let cursor = HEADER_BYTES;
  const finite = (values: Float32Array, shape: readonly number[], name: string, what: string) => {
    const bad = firstNonFinite(values);
    if (bad >= 0) {
      throw new FormatError(
        file,
        `${name}${formatIndex(bad, shape)}: ${what} is ${values[bad]}; it must be finite`,
      );
    }
  };
  const norms = readFloat32LE(bytes, cursor, normFloats);
  finite(norms, [normFloats], 'the norms', 'a gain');
  cursor += 4 * normFloats;
  const norm = (offset: number): Tensor => ({
    data: norms.subarray(offset, offset + config.dim),
    shape: [config.dim],
  });

  /** The next matrix: its int8 values (a view on `bytes`), then its scales. */
  const matrix = (shape: readonly number[], name: string): RunqWeight => {
    const count = product(shape);
    const values = new Int8Array(bytes.buffer, bytes.byteOffset + cursor, count);
    cursor += count;
    const scales = readFloat32LE(bytes, cursor, count / groupSize);
    cursor += 4 * scales.length;
    finite(scales, [scales.length], `${name} scales`, 'a scale');
    return { type: 'runq', shape: [...shape], groupSize, values, scales };
  };

  const embedding = matrix(shapes.tokenEmbedding, 'token_embedding');
  const layers: Partial<LayerWeights>[] = Array.from({ length: config.nLayers }, (_, l) => ({
    attnNorm: norm(l * config.dim),
    ffnNorm: norm((config.nLayers + l) * config.dim),
  }));
  for (const [key, name] of MATRICES_IN_FILE_ORDER) {
    for (let l = 0; l < config.nLayers; l++) {
      (layers[l] as Record<string, Weight>)[key] = quantizedWeight(
        matrix(shapes.layer[key], `${name}[${l}]`),
      );
    }
  }
  const classifier = config.sharedClassifier ? embedding : matrix(shapes.classifier, 'wcls');
  return {
    config,
    weights: {
      tokenEmbedding: { data: dequantizeWeight(embedding), shape: shapes.tokenEmbedding },
      layers: layers as LayerWeights[],
      finalNorm: norm(2 * config.nLayers * config.dim),
      classifier: quantizedWeight(classifier),
    },
  };
}

// ------------------------------------------------------------------------------------------------- writing

/**
 * A float32 matrix as export.py's `quantize_q80` stores it: groups of `groupSize` values of the flattened
 * matrix, scale = max|w| / 127 and q = round(w / scale) with torch.round's ties to even.
 */
function quantizeForExport(
  data: Float32Array,
  groupSize: number,
): { values: Int8Array; scales: Float32Array } {
  const values = new Int8Array(data.length);
  const scales = new Float32Array(data.length / groupSize);
  for (let g = 0; g < scales.length; g++) {
    let wmax = 0;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) wmax = Math.max(wmax, Math.abs(data[i]));
    const scale = Math.fround(wmax / 127);
    scales[g] = scale;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) {
      const v = scale === 0 ? 0 : Math.fround(data[i] / scale);
      const floor = Math.floor(v);
      const rounded = v - floor === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(v);
      values[i] = rounded;
    }
  }
  return { values, scales };
}

/**
 * A float32 model as a runq file (export.py's version2_export), for fixtures and tests: the classifier is
 * written separately unless config.sharedClassifier.
 */
export function serializeRunq(model: Model, groupSize: number): Uint8Array {
  const { config, weights } = model;
  validateConfig(config, 'serializeRunq');
  const { totalBytes } = fileLayout(config, groupSize, 'serializeRunq');
  const bytes = new Uint8Array(totalBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, AK42_MAGIC, true);
  view.setInt32(4, RUNQ_VERSION, true);
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen } = config;
  [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen].forEach((v, i) =>
    view.setInt32(8 + 4 * i, v, true),
  );
  view.setUint8(36, config.sharedClassifier ? 1 : 0);
  view.setInt32(37, groupSize, true);
  let cursor = HEADER_BYTES;
  const floats = (data: Float32Array) => {
    for (const v of data) {
      view.setFloat32(cursor, v, true);
      cursor += 4;
    }
  };
  for (const layer of weights.layers) floats(layer.attnNorm.data);
  for (const layer of weights.layers) floats(layer.ffnNorm.data);
  floats(weights.finalNorm.data);
  const matrix = (tensor: Tensor) => {
    const { values, scales } = quantizeForExport(tensor.data, groupSize);
    bytes.set(new Uint8Array(values.buffer), cursor);
    cursor += values.length;
    floats(scales);
  };
  matrix(weights.tokenEmbedding);
  for (const [key] of MATRICES_IN_FILE_ORDER) for (const layer of weights.layers) matrix(layer[key]);
  if (!config.sharedClassifier) matrix(weights.classifier);
  return bytes;
}
