/**
 * llama2.c's legacy float32 checkpoint (the ".bin" that run.c reads in `read_checkpoint`).
 *
 * The file is a 28-byte header of seven little-endian int32s
 *
 *   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *
 * followed by nothing but float32s, each weight for all layers stacked together, in this order:
 *
 *   token_embedding [vocab, dim]
 *   rms_att [L, dim] · wq [L, nHeads·hs, dim] · wk [L, nKv·hs, dim] · wv [L, nKv·hs, dim] · wo [L, dim, nHeads·hs]
 *   rms_ffn [L, dim] · w1 [L, hidden, dim] · w2 [L, dim, hidden] · w3 [L, hidden, dim]
 *   rms_final [dim]
 *   freq_cis: seq_len·hs/2 real parts then as many imaginary parts (a RoPE table old versions stored; skipped)
 *   wcls [vocab, dim], only when vocab_size was written negative (the classifier is not the embedding table)
 *
 * (A .bin that starts with "ak42", version 2, is llama2.c's int8 runq format instead: runq.ts reads it.)
 *
 * There is no magic number and no checksum, so the header is all we have to go on: it is validated, the exact
 * file size it implies is compared with the real one, and only then are the weights read.
 */
import { expectedShapes, validateConfig } from '../engine/model.ts';
import type { LayerWeights, Model, ModelConfig, Tensor } from '../engine/model.ts';
import { FormatError } from './errors.ts';
import { AK42_MAGIC, isRunqFile, parseRunqCheckpoint } from './runq.ts';
import { firstNonFinite, formatIndex, readFloat32LE } from './safetensors.ts';

const HEADER_FIELDS = [
  'dim',
  'hidden_dim',
  'n_layers',
  'n_heads',
  'n_kv_heads',
  'vocab_size',
  'seq_len',
] as const;
const HEADER_BYTES = 4 * HEADER_FIELDS.length;

/** ModelConfig field → header field, for error messages. */
const HEADER_FIELD_NAMES: Record<string, string> = {
  hiddenDim: 'hidden_dim',
  nLayers: 'n_layers',
  nHeads: 'n_heads',
  nKvHeads: 'n_kv_heads',
  vocabSize: 'vocab_size',
  seqLen: 'seq_len',
};

type Header = Record<(typeof HEADER_FIELDS)[number], number>;

/** The per-layer weights in the order llama2.c stores them, with llama2.c's own names. */
const LAYER_WEIGHTS_IN_FILE_ORDER: [keyof LayerWeights, string][] = [
  ['attnNorm', 'rms_att_weight'],
  ['wq', 'wq'],
  ['wk', 'wk'],
  ['wv', 'wv'],
  ['wo', 'wo'],
  ['ffnNorm', 'rms_ffn_weight'],
  ['wGate', 'w1'],
  ['wDown', 'w2'],
  ['wUp', 'w3'],
];

/** run.c's defaults: llama2.c files do not store these. */
const LLAMA2C_NORM_EPS = 1e-5;
const LLAMA2C_ROPE_THETA = 10000;

const product = (shape: readonly number[]) => shape.reduce((p, size) => p * size, 1);

/** Recognises files that are something else than a legacy llama2.c checkpoint, and says what they are. */
function rejectOtherFormats(bytes: Uint8Array, file: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (start: number, length: number) =>
    bytes.length >= start + length ? String.fromCharCode(...bytes.subarray(start, start + length)) : '';

  if (bytes.length >= 8 && view.getUint32(0, true) === AK42_MAGIC) {
    const version = view.getInt32(4, true);
    throw new FormatError(
      file,
      `this is a versioned llama2.c export (magic "ak42", version ${version}); glassbox reads the legacy ` +
        `float32 format (export.py --version 0) and runq's int8 format (version 2)`,
    );
  }
  if (ascii(0, 4) === 'GGUF') {
    throw new FormatError(
      file,
      `this is a GGUF file (llama.cpp's), not a llama2.c checkpoint: name it .gguf`,
    );
  }
  if (ascii(0, 4) === 'PK\x03\x04') {
    throw new FormatError(file, `this is a zip archive (a PyTorch checkpoint?), not a llama2.c checkpoint`);
  }
  // safetensors: a u64 header length that fits the file, then a JSON object.
  if (bytes.length >= 10 && view.getUint32(4, true) === 0 && ascii(8, 2) === '{"') {
    const headerBytes = view.getUint32(0, true);
    if (headerBytes >= 2 && 8 + headerBytes <= bytes.length) {
      throw new FormatError(
        file,
        `this is a safetensors file, not a llama2.c checkpoint; load it with its config.json as a Hugging Face model`,
      );
    }
  }
}

function readHeader(bytes: Uint8Array): Header {
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const header = {} as Header;
  HEADER_FIELDS.forEach((field, i) => (header[field] = view.getInt32(4 * i, true)));
  return header;
}

const describeHeader = (header: Header) =>
  HEADER_FIELDS.map((field) => `${field}=${header[field]}`).join(', ');

/**
 * The float32 count of every part of the file, in file order. Plain Numbers are exact here: validateConfig caps
 * every field, so the largest possible total (about 2^46 floats) is far below 2^53.
 */
function fileLayout(config: ModelConfig) {
  const shapes = expectedShapes(config);
  const layerFloats = LAYER_WEIGHTS_IN_FILE_ORDER.map(([key]) => config.nLayers * product(shapes.layer[key]));
  const freqCisFloats = config.seqLen * (config.dim / config.nHeads); // real + imaginary halves, seq_len·hs/2 each
  const classifierFloats = config.sharedClassifier ? 0 : product(shapes.classifier);
  const totalFloats =
    product(shapes.tokenEmbedding) +
    layerFloats.reduce((a, b) => a + b, 0) +
    product(shapes.finalNorm) +
    freqCisFloats +
    classifierFloats;
  return { shapes, freqCisFloats, classifierFloats, totalFloats, totalBytes: HEADER_BYTES + 4 * totalFloats };
}

/** Compares the real file size with the one the header implies, and explains the common ways they differ. */
function checkFileSize(bytes: Uint8Array, file: string, header: Header, config: ModelConfig): void {
  const { totalBytes, classifierFloats, shapes } = fileLayout(config);
  if (!Number.isSafeInteger(totalBytes))
    throw new FormatError(file, `header sizes too large to count exactly`);
  const actual = bytes.length;
  if (actual === totalBytes) return;

  const headerText = `the header (${describeHeader(header)})`;
  const classifierBytes = 4 * product(shapes.classifier);
  if (actual < totalBytes) {
    if (!config.sharedClassifier && actual === totalBytes - 4 * classifierFloats) {
      throw new FormatError(
        file,
        `file is ${actual} bytes and ends exactly where the classifier would start, but ${headerText} has a ` +
          `negative vocab_size, which means a separate [vocab, dim] classifier follows (${totalBytes} bytes in ` +
          `all); if the classifier is the shared embedding table, vocab_size should be ${config.vocabSize}`,
      );
    }
    throw new FormatError(
      file,
      `file is ${actual} bytes but ${headerText} needs ${totalBytes} bytes (truncated, or not a llama2.c checkpoint)`,
    );
  }
  if (config.sharedClassifier && actual === totalBytes + classifierBytes) {
    throw new FormatError(
      file,
      `file is ${actual} bytes: ${totalBytes} bytes of weights plus exactly one more [vocab, dim] matrix, which ` +
        `looks like a separate classifier, but ${headerText} has a positive vocab_size, which means the ` +
        `classifier is shared with the embedding table; a separate classifier is marked by vocab_size ` +
        `${-config.vocabSize}`,
    );
  }
  throw new FormatError(
    file,
    `file is ${actual} bytes but ${headerText} needs exactly ${totalBytes} bytes: ` +
      `${actual - totalBytes} unexpected bytes follow the last weight`,
  );
}

/**
 * Reads a llama2.c float32 checkpoint. Throws FormatError (naming `file`) for anything it cannot trust.
 * The weights are views on `bytes` when its floats are 4-byte aligned (no copy), so do not modify `bytes` after.
 */
export function parseLlama2cCheckpoint(bytes: Uint8Array, file: string): Model {
  // runq's int8 export (version 2) is a .bin too: it has its own loader.
  if (isRunqFile(bytes)) return parseRunqCheckpoint(bytes, file);
  rejectOtherFormats(bytes, file);
  if (bytes.length < HEADER_BYTES) {
    throw new FormatError(
      file,
      `file is ${bytes.length} bytes, too short for the ${HEADER_BYTES}-byte llama2.c header`,
    );
  }
  const header = readHeader(bytes);
  const config: ModelConfig = {
    dim: header.dim,
    hiddenDim: header.hidden_dim,
    nLayers: header.n_layers,
    nHeads: header.n_heads,
    nKvHeads: header.n_kv_heads,
    // llama2.c's convention: a negative vocab_size says the classifier is stored separately.
    vocabSize: Math.abs(header.vocab_size),
    seqLen: header.seq_len,
    normEps: LLAMA2C_NORM_EPS,
    ropeTheta: LLAMA2C_ROPE_THETA,
    ropeLayout: 'interleaved',
    sharedClassifier: header.vocab_size > 0,
  };
  try {
    validateConfig(config, `llama2.c header (${describeHeader(header)})`);
  } catch (error) {
    // validateConfig speaks ModelConfig; say it with the header's own field names.
    const message = (error as Error).message.replace(
      /\b(hiddenDim|nLayers|nHeads|nKvHeads|vocabSize|seqLen)\b/g,
      (field) => HEADER_FIELD_NAMES[field],
    );
    throw new FormatError(file, message);
  }
  // Only now is the size known to be exact, so nothing below can read (or allocate) past the file.
  checkFileSize(bytes, file, header, config);

  const { shapes, freqCisFloats, totalFloats } = fileLayout(config);
  const floats = readFloat32LE(bytes, HEADER_BYTES, totalFloats);
  let cursor = 0;
  /** The next tensor in the file; checks it is all finite, naming it the way the reader will see it. */
  const take = (shape: readonly number[], name: string): Tensor => {
    const data = floats.subarray(cursor, cursor + product(shape));
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      const byteOffset = HEADER_BYTES + 4 * (cursor + bad);
      throw new FormatError(
        file,
        `weight ${name}${formatIndex(bad, shape)} is ${data[bad]} (file byte offset ${byteOffset}); ` +
          `weights must be finite`,
      );
    }
    cursor += data.length;
    return { data, shape };
  };

  const tokenEmbedding = take(shapes.tokenEmbedding, 'tokenEmbedding (llama2.c token_embedding_table)');
  const perLayer: Partial<LayerWeights>[] = Array.from({ length: config.nLayers }, () => ({}));
  for (const [key, llama2cName] of LAYER_WEIGHTS_IN_FILE_ORDER) {
    for (let l = 0; l < config.nLayers; l++) {
      perLayer[l][key] = take(shapes.layer[key], `layers[${l}].${key} (llama2.c ${llama2cName}[${l}])`);
    }
  }
  const finalNorm = take(shapes.finalNorm, 'finalNorm (llama2.c rms_final_weight)');
  cursor += freqCisFloats; // run.c skips it too: RoPE is computed, not read
  const classifier = config.sharedClassifier
    ? tokenEmbedding
    : take(shapes.classifier, 'classifier (llama2.c wcls)');

  return {
    config,
    weights: { tokenEmbedding, layers: perLayer as LayerWeights[], finalNorm, classifier },
  };
}
